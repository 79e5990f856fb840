/**
 * Response declarations for route schemas, in the content-type form fastify and
 * fastify-type-provider-zod both understand, so each status gets a real description in the
 * OpenAPI document instead of "Default Response".
 *
 *   response: {
 *     200: jsonResponse('The shard', Shard),
 *     ...errorResponses({ 404: 'No such shard (SHARD_NOT_FOUND)', 409: 'Since would regress (SINCE_REGRESSION)' }),
 *   }
 */
import type { z } from 'zod'
import { ErrorBody } from './error-body.js'

export interface JsonResponse<S extends z.ZodType> {
  readonly description: string
  readonly content: { readonly 'application/json': { readonly schema: S } }
}

export function jsonResponse<S extends z.ZodType>(description: string, schema: S): JsonResponse<S> {
  return { description, content: { 'application/json': { schema } } }
}

/** Error bodies for the given statuses, each with its description. */
export function errorResponses<S extends number>(descriptions: Readonly<Record<S, string>>): Record<S, JsonResponse<typeof ErrorBody>> {
  const out = {} as Record<S, JsonResponse<typeof ErrorBody>>
  for (const [status, description] of Object.entries(descriptions) as Array<[string, string]>) {
    out[Number(status) as S] = jsonResponse(description, ErrorBody)
  }
  return out
}
