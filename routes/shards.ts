/**
 * Shards over HTTP (docs/api.md#shards): create, list (paged, by name), detail, spine, delete, schemas,
 * since, GC. Thin: parse → one
 * Shards call → map. Errors are AppErrors thrown by the service and mapped by the app's error
 * handler.
 *
 * Registered with the service as a plugin option: `app.register(shardsRoutes, { shards })`.
 * Paths are absolute: register it without a prefix.
 *
 * Request schemas are documented precisely but some fields are validated loosely (`documentedAs`):
 * types are checked by the service's bounded parser (zod's recursive schema would overflow the
 * stack on a deeply nested body, and a 5xx is never the client's answer), and rows and frontiers
 * by the service against the shard, so their errors carry the API's codes (INVALID_BATCH...).
 */
import { Buffer } from 'node:buffer'
import type { FastifyRouteSchemaDef, FastifyValidationResult } from 'fastify/types/schema.js'
import { validatorCompiler, type FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { ShardId } from '../src/core/ids.js'
import { TIMESTAMP_KINDS } from '../src/core/timestamp.js'
import { AntichainJson, DataTypeJson, ShardIdParam, ShardJson, ShardSpineJson, ShardSummaryJson } from '../src/http/api-types.js'
import { errorResponses, jsonResponse } from '../src/http/responses.js'
import { MAX_NAME_BYTES } from '../src/shard/name-index.js'
import { shardJson, shardSpineJson, shardSummaryJson } from '../src/shard/shard-json.js'
import { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from '../src/shard/shard-listing.js'
import type { Shards } from '../src/shard/shards.js'

// ---- loose validation ----------------------------------------------------------------------------

const looser = new WeakMap<object, z.ZodType>()
const bytesBodies = new WeakSet<object>()

/**
 * A request schema documented as `doc` (the OpenAPI document shows it) but validated with `check`,
 * a looser schema whose gaps the service fills. Typed as `check`, which is what handlers receive.
 * Routes using it set `validatorCompiler: looseValidatorCompiler`.
 */
export function documentedAs<C extends z.ZodType>(check: C, doc: z.ZodType, opts: { readonly acceptBytes?: boolean } = {}): C {
  looser.set(doc, check)
  if (opts.acceptBytes === true) bytesBodies.add(doc)
  return doc as unknown as C
}

/**
 * Validates with the `check` schema of a `documentedAs` schema (others as themselves). A body that
 * is a Buffer (an Arrow stream, from the content-type parser) passes when the schema accepts bytes.
 * A validator that throws (e.g. on absurd nesting) is a 400, never a 500.
 */
export function looseValidatorCompiler<T>(route: FastifyRouteSchemaDef<T>): FastifyValidationResult {
  const schema = route.schema as z.ZodType
  const check = looser.get(schema) ?? schema
  const acceptBytes = route.httpPart === 'body' && bytesBodies.has(schema)
  const inner = validatorCompiler({ ...route, schema: check }) as (data: unknown) => { value?: unknown; error?: Error }
  return (data: unknown) => {
    if (Buffer.isBuffer(data)) return acceptBytes ? { value: data } : { error: new Error(`${route.httpPart ?? 'body'}: expected a JSON object`) }
    try {
      return inner(data)
    } catch (err) {
      if (err instanceof RangeError) return { error: new Error(`${route.httpPart ?? 'request'}: nested too deeply`) }
      throw err
    }
  }
}

// ---- schemas -------------------------------------------------------------------------------------

// NB: zod counts UTF-16 code units, never more than UTF-8 bytes; the service checks the bytes.
const ShardName = z.string().max(MAX_NAME_BYTES)

const CreateShardCheck = z.strictObject({ name: ShardName.optional(), timestamp: z.enum(TIMESTAMP_KINDS), keySchema: z.unknown().optional(), valSchema: z.unknown().optional() })
const CreateShard = documentedAs(
  CreateShardCheck,
  z
    .strictObject({
      name: ShardName.optional().meta({
        description: `Unique among shards not deleted (empty: no name, any number of shards); at most ${MAX_NAME_BYTES} bytes of UTF-8, no control characters. Default empty.`,
      }),
      timestamp: z.enum(TIMESTAMP_KINDS).meta({ description: 'u64: totally ordered; product: pairs [a, b] with the product order.' }),
      keySchema: DataTypeJson,
      valSchema: DataTypeJson,
    })
    .meta({ id: 'CreateShard' }),
)

const RegisterSchemaCheck = z.strictObject({ keySchema: z.unknown().optional(), valSchema: z.unknown().optional() })
const RegisterSchema = documentedAs(
  RegisterSchemaCheck,
  z
    .strictObject({ keySchema: DataTypeJson, valSchema: DataTypeJson })
    .meta({ id: 'RegisterSchema', description: 'The next schema: the latest with nullable fields added or fields made nullable.' }),
)

const DowngradeSince = z.strictObject({ since: AntichainJson }).meta({ id: 'DowngradeSince' })

const SinceQuery = z.object({
  view: z
    .enum(['shard', 'summary'])
    .optional()
    .meta({ description: 'What the answer holds: the whole shard (default, as GET /v1/shards/{shardId}) or its summary (frontiers, seqno and stats, a few hundred bytes whatever the trace).' }),
})

const SchemaId = z.object({ id: z.number().int().nonnegative() }).meta({ id: 'SchemaId' })

const GcResultJson = z
  .object({
    deletedParts: z.number().int().nonnegative(),
    deletedBytes: z.number().int().nonnegative(),
    truncatedBelowSeqno: z.number().int().nonnegative().meta({ description: 'Every state version below this seqno is gone.' }),
  })
  .meta({ id: 'GcResult' })

const ListShardsQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIST_LIMIT)
    .optional()
    .meta({ description: `At most this many shards (default ${DEFAULT_LIST_LIMIT}). A page may hold fewer (deleted shards are skipped) and still have a nextCursor.` }),
  cursor: z.string().min(1).max(2048).optional().meta({ description: 'The nextCursor of the page before, as received (opaque).' }),
  name: ShardName.optional().meta({ description: 'Exactly this name: the one shard that has it, or none.' }),
  namePrefix: ShardName.optional().meta({ description: 'Names starting with this, in name order (unnamed shards are left out).' }),
})

const ShardPageJson = z
  .object({
    shards: z.array(ShardSummaryJson),
    nextCursor: z.string().optional().meta({ description: 'Present when there may be more: pass it as cursor for the next page.' }),
  })
  .meta({ id: 'ShardPage' })

const DeletedShardJson = z.object({ shardId: z.string(), deletedAt: z.string().meta({ description: 'When it was deleted (ISO 8601).' }) }).meta({ id: 'DeletedShard' })

const NOT_FOUND = { 404: 'No such shard (SHARD_NOT_FOUND)', 410: 'The shard was deleted (SHARD_DELETED, with deletedAt)' } as const

const shardsRoutes: FastifyPluginAsyncZod<{ shards: Shards }> = async (fastify, { shards }) => {
  fastify.post(
    '/v1/shards',
    {
      validatorCompiler: looseValidatorCompiler,
      schema: {
        tags: ['shards'],
        summary: 'Create a shard',
        body: CreateShard,
        response: {
          201: jsonResponse('The new shard', ShardJson),
          ...errorResponses({ 400: 'Invalid body, name or type (BAD_REQUEST)', 409: 'Another shard has the name (SHARD_NAME_TAKEN, with its shardId)' }),
        },
      },
    },
    async (req, reply) => reply.code(201).send(shardJson(await shards.create(req.body))),
  )

  fastify.get(
    '/v1/shards',
    {
      schema: {
        tags: ['shards'],
        summary: 'Shards, a page at a time: oldest first, or by name',
        description:
          'Without name filters: live shards oldest first (ids made before ids were time-ordered sort by id). namePrefix: named shards whose name starts with it, in name order. name: the shard with exactly that name.',
        querystring: ListShardsQuery,
        response: { 200: jsonResponse('A page of shards', ShardPageJson), ...errorResponses({ 400: 'Bad limit, cursor, name or namePrefix (BAD_REQUEST)' }) },
      },
    },
    async (req) => {
      const page = await shards.list(req.query)
      return { shards: page.shards.map(shardSummaryJson), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) }
    },
  )

  fastify.get(
    '/v1/shards/:shardId',
    {
      schema: {
        tags: ['shards'],
        summary: 'One shard with its schemas, trace and stats',
        params: ShardIdParam,
        response: { 200: jsonResponse('The shard', ShardJson), ...errorResponses(NOT_FOUND) },
      },
    },
    async (req) => shardJson(await shards.get(req.params.shardId as ShardId)),
  )

  fastify.get(
    '/v1/shards/:shardId/spine',
    {
      schema: {
        tags: ['shards'],
        summary: 'One shard with its spine batches counted, not listed',
        description:
          "The shard as GET /v1/shards/{shardId} shows it but for its schemas and hollow batches: each spine batch carries its counts (stats) instead of its batches and their parts. Its size grows with the spine (a few spine batches per level), not with the trace: a view of the spine of a shard whose compaction fell behind reads kilobytes, where the whole shard is megabytes.",
        params: ShardIdParam,
        response: { 200: jsonResponse('The shard and its spine', ShardSpineJson), ...errorResponses(NOT_FOUND) },
      },
    },
    async (req) => shardSpineJson(await shards.get(req.params.shardId as ShardId)),
  )

  fastify.delete(
    '/v1/shards/:shardId',
    {
      schema: {
        tags: ['shards'],
        summary: 'Delete a shard',
        description:
          'Turns the shard into a tombstone: from then on reads, writes, schemas, since, GC and compactions of it answer 410 SHARD_DELETED, its name is free for a new shard, and GC deletes its blobs. Deleting it again is 410.',
        params: ShardIdParam,
        response: { 200: jsonResponse('The shard was deleted', DeletedShardJson), ...errorResponses(NOT_FOUND) },
      },
    },
    async (req) => shards.delete(req.params.shardId as ShardId),
  )

  fastify.post(
    '/v1/shards/:shardId/schemas',
    {
      validatorCompiler: looseValidatorCompiler,
      schema: {
        tags: ['shards'],
        summary: 'Register the next schema',
        description: 'Allowed evolutions: add nullable fields, make fields nullable. Registering the latest schema again returns its id.',
        params: ShardIdParam,
        body: RegisterSchema,
        response: {
          201: jsonResponse('The schema id', SchemaId),
          ...errorResponses({ 400: 'Invalid type (BAD_REQUEST) or an evolution the rules forbid (SCHEMA_INCOMPATIBLE)', ...NOT_FOUND }),
        },
      },
    },
    async (req, reply) => reply.code(201).send(await shards.registerSchema(req.params.shardId as ShardId, req.body.keySchema, req.body.valSchema)),
  )

  fastify.post(
    '/v1/shards/:shardId/since',
    {
      schema: {
        tags: ['shards'],
        summary: 'Downgrade the since (monotone)',
        description:
          'Answers the shard as GET /v1/shards/{shardId} does, which lists every hollow batch and part (megabytes for a long trace); with view=summary, its summary as a listing shows it. A client that moves the since often and needs only the new frontiers asks for the summary.',
        params: ShardIdParam,
        querystring: SinceQuery,
        body: DowngradeSince,
        response: {
          200: jsonResponse('The shard (view=shard, the default) or its summary (view=summary)', z.union([ShardJson, ShardSummaryJson])),
          ...errorResponses({ 400: 'Not a frontier of the shard (BAD_REQUEST)', ...NOT_FOUND, 409: 'The since would move backwards (SINCE_REGRESSION, with "since")' }),
        },
      },
    },
    async (req) => {
      const v = await shards.downgradeSince(req.params.shardId as ShardId, req.body.since)
      return req.query.view === 'summary' ? shardSummaryJson(v) : shardJson(v)
    },
  )

  fastify.post(
    '/v1/shards/:shardId/gc',
    {
      schema: {
        tags: ['shards'],
        summary: 'Run a GC pass over the shard now',
        description:
          'Deletes blobs no live state references once the grace period has passed, and truncates state versions no reader of this instance needs.',
        params: ShardIdParam,
        response: { 200: jsonResponse('What the pass did', GcResultJson), ...errorResponses(NOT_FOUND) },
      },
    },
    async (req) => shards.gc(req.params.shardId as ShardId),
  )
}

export default shardsRoutes
