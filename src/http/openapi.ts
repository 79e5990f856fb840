/**
 * The OpenAPI 3.1 document: @fastify/swagger fed by the routes' zod schemas, finished for client
 * generators (openapi-finish.ts: one component per schema, operationIds, examples, explicit
 * security), and rendered with a stable key order so the committed openapi/openapi.json can be
 * compared byte for byte with a fresh one. `redocly lint` (recommended rules) checks it in npm test.
 *
 * NB: a zod schema given `.meta({ id })` becomes a component of every document built in that
 * process, used or not. Give ids only to schemas the routes use, in modules the routes import, so
 * the document depends on the routes alone.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import type { FastifyInstance } from 'fastify'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import pkg from '../../package.json' with { type: 'json' }
import { finishOpenApi } from './openapi-finish.js'
import { BEARER_SCHEME } from './standard-responses.js'

export const OPENAPI_PATH = '/openapi.json'
export const DOCS_PREFIX = '/docs'

/** The document's `info`: the version is package.json's, so the contract and the release agree. */
export const API_INFO = {
  title: 'compactd',
  description:
    'A compaction server for differential data: Arrow parts in object storage, shard state in a compare-and-set consensus store. Operators and clients: docs/ in the repository.',
  version: pkg.version,
  license: { name: pkg.license, identifier: pkg.license },
} as const

/** Where a server listens by default; clients pass their own base URL. */
export const API_SERVERS = [{ url: 'http://127.0.0.1:6880', description: 'A compactd on its default address (COMPACTD_HOST, COMPACTD_PORT)' }] as const

/** Tags in the order the docs show them; a new resource's routes add theirs here. */
export const API_TAGS = [
  { name: 'operations', description: 'Health, readiness, metrics and this document; never need a token.' },
  { name: 'shards', description: 'Create and inspect shards, register schemas, downgrade since, force GC.' },
  { name: 'data', description: 'Write and append batches, read snapshots and stored parts.' },
  { name: 'compactions', description: 'Submit, list, watch and cancel compactions; stateless compaction.' },
  { name: 'configs', description: 'Dynamic configs: read, change atomically, audit history.' },
  { name: 'cluster', description: 'The instances sharing this consensus store and their compactions.' },
] as const

export function swaggerOptions(): FastifyDynamicSwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: { ...API_INFO, license: { ...API_INFO.license } },
      servers: API_SERVERS.map((s) => ({ ...s })),
      tags: API_TAGS.map((t) => ({ ...t })),
      components: {
        securitySchemes: {
          [BEARER_SCHEME]: {
            type: 'http',
            scheme: 'bearer',
            description: 'COMPACTD_AUTH_TOKEN, when the server has one; every /v1 operation requires it then. Operations outside /v1 never do.',
          },
        },
      },
    },
    // Schemas with a `.meta({ id })` in zod's global registry become components, referenced by $ref.
    transform: jsonSchemaTransform,
    transformObject: (doc) => finishOpenApi(jsonSchemaTransformObject(doc)),
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
