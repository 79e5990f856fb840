/**
 * The OpenAPI 3.1 document: @fastify/swagger fed by the routes' zod schemas, rendered with a stable
 * key order so the committed openapi/openapi.json can be compared byte for byte with a fresh one.
 *
 * NB: a zod schema given `.meta({ id })` becomes a component of every document built in that
 * process, used or not. Give ids only to schemas the routes use, in modules the routes import, so
 * the document depends on the routes alone.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import { BEARER_SCHEME } from './standard-responses.js'

export const OPENAPI_PATH = '/openapi.json'
export const DOCS_PREFIX = '/docs'

export const API_INFO = {
  title: 'compactd',
  description:
    'A compaction server for differential data: Arrow parts in object storage, shard state in a compare-and-set consensus store.',
  version: '1.0.0',
} as const

/** Tags in the order the docs show them; a new resource's routes add theirs here. */
export const API_TAGS = [
  { name: 'operations', description: 'Health, readiness, metrics and this document; never need a token.' },
  { name: 'shards', description: 'Create and inspect shards, register schemas, downgrade since, force GC.' },
  { name: 'data', description: 'Write and append batches, read snapshots and stored parts.' },
  { name: 'compactions', description: 'Submit, list, watch and cancel compactions; stateless compaction.' },
  { name: 'configs', description: 'Dynamic configs: read, change atomically, audit history.' },
] as const

export function swaggerOptions(): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: { ...API_INFO },
      tags: API_TAGS.map((t) => ({ ...t })),
      components: {
        securitySchemes: {
          [BEARER_SCHEME]: { type: 'http', scheme: 'bearer', description: 'COMPACTD_AUTH_TOKEN, when the server has one.' },
        },
      },
    },
    // Schemas with a `.meta({ id })` in zod's global registry become components, referenced by $ref.
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  }
}

/** The document as served and committed: 2-space JSON, keys sorted at every level, trailing newline. */
export function renderOpenApi(app: FastifyInstance): string {
  return `${JSON.stringify(sortKeys(app.swagger()), null, 2)}\n`
}

/** A deep copy with object keys in code-point order; array order is meaning, so it is kept. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value === null || typeof value !== 'object') return value
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key])
  return out
}
