/**
 * `npm run openapi`: writes openapi/openapi.json from the routes (the app built on mem:// stores),
 * and the client types generated from it, openapi/compactd-api.d.ts (scripts/client-types.ts).
 * test/openapi.test.ts and test/client/generated-client.test.ts fail when the committed files
 * differ from what this writes.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../src/app.js'
import { renderOpenApi } from '../src/http/openapi.js'
import { createServices } from '../src/services.js'
import { parseSettings } from '../src/settings.js'
import { clientTypes } from './client-types.js'

const OPENAPI_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'openapi', 'openapi.json')
const CLIENT_TYPES_FILE = join(dirname(OPENAPI_FILE), 'compactd-api.d.ts')

const settings = parseSettings(['--blob', 'mem://', '--consensus', 'mem://', '--log-level', 'silent'], {})
const services = await createServices(settings)
const app = buildApp(services, { logger: false })
try {
  await app.ready()
  await mkdir(dirname(OPENAPI_FILE), { recursive: true })
  const document = renderOpenApi(app)
  await writeFile(OPENAPI_FILE, document)
  process.stdout.write(`wrote ${OPENAPI_FILE}\n`)
  await writeFile(CLIENT_TYPES_FILE, await clientTypes(document))
  process.stdout.write(`wrote ${CLIENT_TYPES_FILE}\n`)
} finally {
  await app.close()
  await services.close()
}
