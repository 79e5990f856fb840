/**
 * TypeScript types of the API for clients, generated from the OpenAPI document with
 * openapi-typescript: `paths`, `operations` and `components`, for a typed client such as
 * openapi-fetch (`createClient<paths>({ baseUrl })`). `npm run openapi` writes them next to the
 * document as openapi/compactd-api.d.ts; test/client/generated-client.test.ts regenerates them
 * from openapi/openapi.json, fails when the committed file differs, and drives a server with them.
 */
import openapiTS, { astToString } from 'openapi-typescript'

export const CLIENT_TYPES_HEADER = [
  '/**',
  ' * Types of the compactd HTTP API, generated from openapi/openapi.json by openapi-typescript',
  ' * (`npm run openapi`). Do not edit. Use with openapi-fetch:',
  " *   import createClient from 'openapi-fetch'",
  " *   const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:6880' })",
  ' */',
  '',
].join('\n')

/** The .d.ts text for the OpenAPI document `documentJson`. */
export async function clientTypes(documentJson: string): Promise<string> {
  const ast = await openapiTS(documentJson)
  return `${CLIENT_TYPES_HEADER}${astToString(ast)}`
}
