/**
 * Completes every route's documented responses with the errors the shared plumbing can produce,
 * so the OpenAPI document lists them without each route repeating them:
 *
 * | condition                                  | adds                                                |
 * |--------------------------------------------|-----------------------------------------------------|
 * | every route                                | 500 INTERNAL                                        |
 * | route validates body/query/params/headers  | 400 BAD_REQUEST                                     |
 * | route validates a body                     | 413 PAYLOAD_TOO_LARGE, 415 UNSUPPORTED_MEDIA_TYPE   |
 * | route under /v1                            | 401 UNAUTHORIZED, 503 STORAGE_ERROR, 507 INSUFFICIENT_STORAGE, bearer security |
 *
 * A status the route already declares is left alone. Hidden routes (`schema.hide`) are untouched.
 * NB: an onRoute hook only sees routes added after it: register this plugin before any route.
 */
import type { FastifyInstance, FastifySchema, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { isProtectedPath } from './auth.js'
import { errorResponses } from './responses.js'

export const BEARER_SCHEME = 'bearerAuth'

const STANDARD = errorResponses({
  400: 'Invalid request: the message names the first invalid field, `fields` lists every one (BAD_REQUEST)',
  401: 'Missing or wrong bearer token (UNAUTHORIZED)',
  413: 'Body larger than the configured limit (PAYLOAD_TOO_LARGE)',
  415: 'Content type not accepted here; the message and `accepted` name those that are (UNSUPPORTED_MEDIA_TYPE)',
  500: 'Internal error; the body carries the request id to find it in the log (INTERNAL)',
  503: 'A storage operation failed (STORAGE_ERROR): retry later, unless `permanent` is true (credentials, permissions, a missing bucket or a data directory changed outside compactd need an operator)',
  507: 'The storage has no space left (INSUFFICIENT_STORAGE): nothing was written; retry once space is freed',
})

type RouteSchema = {
  hide?: boolean
  body?: unknown
  querystring?: unknown
  params?: unknown
  headers?: unknown
  response?: Record<string, unknown>
  security?: unknown
}

/** The onRoute hook; replaces `route.schema` (fastify compiles schemas after onRoute hooks run). */
export function completeResponses(route: RouteOptions & { readonly path?: string }): void {
  const schema = (route.schema ?? {}) as RouteSchema
  if (schema.hide === true) return
  const response: Record<string, unknown> = { ...(schema.response ?? {}) }
  const add = (status: keyof typeof STANDARD): void => {
    if (!(String(status) in response)) response[String(status)] = STANDARD[status]
  }
  if (schema.body !== undefined || schema.querystring !== undefined || schema.params !== undefined || schema.headers !== undefined) add(400)
  if (schema.body !== undefined) {
    add(413)
    add(415)
  }
  const isV1 = [route.url, route.path].some((p) => typeof p === 'string' && isProtectedPath(p))
  if (isV1) {
    add(401)
    add(503)
    add(507)
  }
  add(500)
  const security = isV1 && schema.security === undefined ? { security: [{ [BEARER_SCHEME]: [] }] } : {}
  route.schema = { ...schema, response, ...security } as FastifySchema
}

async function standardResponses(app: FastifyInstance): Promise<void> {
  app.addHook('onRoute', completeResponses)
}

export const standardResponsesPlugin = fp(standardResponses, { name: 'compactd-standard-responses', fastify: '5.x' })
