/**
 * Writing and reading data over HTTP (docs/api.md#writing-data, docs/api.md#reading-data): batches, append,
 * snapshot, part inspection. Thin: parse → one Shards call → map.
 *
 * Registered with the service as a plugin option: `app.register(dataRoutes, { shards })`. Paths
 * are absolute: register it without a prefix.
 *
 * - Batch bodies are JSON or an Arrow IPC stream (`application/vnd.apache.arrow.stream`); with
 *   Arrow, the frontiers come as JSON in query parameters. They are never buffered or parsed here:
 *   the batches route has content-type parsers of its own that leave the request stream unread, and
 *   the service streams it to a write task in a worker. A declared `content-length` over the body
 *   limit is 413 before anything is read; a body that grows past it is 413 when it does.
 * - Snapshots stream: a worker encodes the body (JSON or an Arrow IPC stream) chunk by chunk and
 *   the next chunk is encoded when the socket has taken the last, so the response never sits whole
 *   in memory; a snapshot of one chunk is sent as one buffer. The read's lease is released when the
 *   response ends, fails or the client goes away (which also aborts the merge).
 */
import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { batchToJson } from '../src/core/batch.js'
import * as descs from '../src/core/description.js'
import { ID_PATTERNS, type PartId, type ShardId, type WriterKey } from '../src/core/ids.js'
import type { FastifyRouteSchemaDef, FastifyValidationResult } from 'fastify/types/schema.js'
import { encodeUpdatesStream } from '../src/columnar/part-format.js'
import { updatesToJson } from '../src/columnar/updates.js'
import type { BodyChunk } from '../src/engine/read-task.js'
import * as ac from '../src/core/antichain.js'
import { AppError } from '../src/errors.js'
import { tooLarge } from '../src/engine/write-batch.js'
import { AntichainJson, DescriptionJson, HollowBatchJson, RunOrderJson, ShardIdParam, TimestampJson, UpdateJson } from '../src/http/api-types.js'
import { errorResponses, jsonResponse } from '../src/http/responses.js'
import type { Shards, WriteBatchResult } from '../src/shard/shards.js'
import { documentedAs, looseValidatorCompiler } from './shards.js'

export const ARROW_STREAM = 'application/vnd.apache.arrow.stream'

const ArrowStreamDoc = z.string().meta({
  format: 'binary',
  description: `An Arrow IPC stream (${ARROW_STREAM}) with columns k, v (the shard's key and value types), t (uint64, or struct<a: uint32, b: uint32> for product) and d (int64).`,
})

const WriteBatchJsonCheck = z.strictObject({
  lower: z.unknown().optional(),
  upper: z.unknown().optional(),
  updates: z.array(z.unknown()),
  append: z.boolean().optional(),
  expectedUpper: z.unknown().optional(),
})
const WriteBatchJsonDoc = z
  .strictObject({
    lower: AntichainJson,
    upper: AntichainJson,
    updates: z.array(UpdateJson),
    append: z.boolean().optional().meta({ description: 'Default true: compare-and-append the batch.' }),
    expectedUpper: AntichainJson.optional().meta({ description: "The shard's upper the append expects; default lower." }),
  })
  .meta({ id: 'WriteBatch' })
const WriteBatch = documentedAs(WriteBatchJsonCheck, z.union([WriteBatchJsonDoc, ArrowStreamDoc]), { acceptBytes: true })

const JsonText = (what: string) => z.string().max(1 << 16).optional().meta({ description: `Arrow bodies only: ${what}, as JSON.` })
const WriteBatchQuery = z.object({
  lower: JsonText('the batch lower'),
  upper: JsonText('the batch upper'),
  append: z.enum(['true', 'false']).optional().meta({ description: 'Arrow bodies only; default true.' }),
  expectedUpper: JsonText("the shard's upper the append expects (default lower)"),
})

const WriteBatchResponse = z
  .object({ batch: HollowBatchJson, appended: z.boolean(), seqno: z.number().int().nonnegative().optional(), upper: AntichainJson.optional() })
  .meta({ id: 'WriteBatchResult' })

const AppendCheck = z.strictObject({ batch: z.unknown().optional(), expectedUpper: z.unknown().optional() })
const Append = documentedAs(
  AppendCheck,
  z
    .strictObject({ batch: HollowBatchJson, expectedUpper: AntichainJson.optional().meta({ description: "The shard's upper the append expects; default the batch's lower." }) })
    .meta({ id: 'AppendBatch' }),
)
const AppendResponse = z.object({ appended: z.literal(true), seqno: z.number().int().nonnegative(), upper: AntichainJson }).meta({ id: 'AppendResult' })

const SnapshotQuery = z.object({
  asOf: z.string().min(1).max(256).meta({ description: 'A timestamp: 5 or a decimal string for u64, [a,b] for product.' }),
})
const SnapshotJson = z.object({ asOf: TimestampJson, updates: z.array(UpdateJson) }).meta({ id: 'Snapshot' })

const PartParams = ShardIdParam.extend({
  writerKey: z.string().regex(new RegExp(ID_PATTERNS.writerKey), 'must be a writer key w<uuid> or n<7 digits>'),
  partId: z.string().regex(new RegExp(ID_PATTERNS.partId), 'must be a part id p<uuid>'),
})
const PartJson = z
  .object({ key: z.string(), desc: DescriptionJson, order: RunOrderJson, schemaId: z.number().int().nonnegative(), updates: z.array(UpdateJson) })
  .meta({ id: 'PartContents' })

const NOT_FOUND = { 404: 'No such shard (SHARD_NOT_FOUND)', 410: 'The shard was deleted (SHARD_DELETED)' } as const

/** JSON or Arrow, by the request's Accept header. */
function wantsArrow(accept: string | undefined): boolean {
  return accept !== undefined && accept.toLowerCase().includes(ARROW_STREAM)
}

/** Whether a request body is an Arrow stream, by its content type. */
function isArrowBody(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.toLowerCase().startsWith(ARROW_STREAM)
}

/**
 * The batches route's validators: its body is streamed to a write task, which validates it (the
 * schema only documents it); params and query string as every route's.
 */
function streamedBodyValidatorCompiler<T>(route: FastifyRouteSchemaDef<T>): FastifyValidationResult {
  if (route.httpPart === 'body') return (data: unknown) => ({ value: data })
  return looseValidatorCompiler(route)
}

function jsonParam(text: string | undefined, field: string): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new AppError('INVALID_BATCH', `${field}: must be JSON, e.g. [5]`)
  }
}

function writeBatchJson(r: WriteBatchResult) {
  return {
    batch: batchToJson(r.tk, r.batch),
    appended: r.appended,
    ...(r.seqno === undefined ? {} : { seqno: r.seqno }),
    ...(r.upper === undefined ? {} : { upper: ac.toJson(r.tk, r.upper) }),
  }
}

const bufferOf = (c: BodyChunk): Buffer => Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength)

/**
 * The chunks already taken, then the rest of `it`, as Buffers; returning early closes `it`.
 * `stalled` is called when the client has taken no data for `sendTimeoutMs` since a chunk was
 * handed to the response (0: never): the next chunk is asked for only once the socket took the last.
 */
async function* bodyFrom(taken: readonly BodyChunk[], it: AsyncIterator<BodyChunk>, sendTimeoutMs: number, stalled: () => void): AsyncGenerator<Buffer> {
  let timer: ReturnType<typeof setTimeout> | null = null
  const handed = (): void => {
    if (timer !== null) clearTimeout(timer)
    if (sendTimeoutMs > 0) timer = setTimeout(stalled, sendTimeoutMs).unref()
  }
  try {
    for (const c of taken) {
      handed()
      yield bufferOf(c)
    }
    for (let r = await it.next(); r.done !== true; r = await it.next()) {
      handed()
      yield bufferOf(r.value)
    }
  } finally {
    if (timer !== null) clearTimeout(timer)
    await it.return?.()
  }
}

const batchesRoute: FastifyPluginAsyncZod<{ shards: Shards }> = async (fastify, { shards }) => {
  // NB: encapsulated, so only this route's JSON bodies bypass the app's parser: the request
  // stream is left unread for the write task. A declared length over the limit is refused here.
  fastify.removeContentTypeParser(['application/json', ARROW_STREAM])
  fastify.addContentTypeParser(['application/json', ARROW_STREAM], (req, _payload, done) => {
    const declared = Number(req.headers['content-length'])
    const limit = req.routeOptions.bodyLimit
    if (Number.isFinite(declared) && declared > limit) done(tooLarge(limit), undefined)
    else done(null, undefined)
  })

  fastify.post(
    '/v1/shards/:shardId/batches',
    {
      validatorCompiler: streamedBodyValidatorCompiler,
      schema: {
        tags: ['data'],
        summary: 'Write a batch, and compare-and-append it unless append is false',
        description:
          'Rows are validated against the latest schema and [lower, upper), sorted (unless they come sorted) and consolidated, cut into parts of about persist_blob_target_size (small parts inline in state), as the body arrives. ' +
          'JSON body, or an Arrow IPC stream with lower, upper, append and expectedUpper as JSON query parameters. ' +
          'Sorted rows make one run; unsorted rows make one run per persist_blob_target_size of them. In a JSON body, put lower and upper before updates: rows that come before them wait in memory.',
        consumes: ['application/json', ARROW_STREAM],
        params: ShardIdParam,
        querystring: WriteBatchQuery,
        body: WriteBatch,
        response: {
          201: jsonResponse('The batch, and whether it was appended', WriteBatchResponse),
          ...errorResponses({
            400: 'A row outside [lower, upper) or not of the schema, a bad frontier or a bad Arrow stream (INVALID_BATCH, naming the first bad row), or a body that is not JSON or not shaped like a batch (BAD_REQUEST)',
            ...NOT_FOUND,
            408: 'No byte of the body came for 60 s (REQUEST_TIMEOUT): the write was abandoned',
            409: 'expectedUpper is not the shard upper (UPPER_MISMATCH, with "currentUpper"); the parts written are deleted',
            413: 'The body is larger than the body limit (PAYLOAD_TOO_LARGE), declared or as it arrives',
          }),
        },
      },
    },
    async (req, reply) => {
      const shardId = req.params.shardId as ShardId
      const r = isArrowBody(req.headers['content-type'])
        ? await shards.writeBatch(shardId, {
            kind: 'arrow-body',
            body: req.raw,
            lower: jsonParam(req.query.lower, 'query.lower'),
            upper: jsonParam(req.query.upper, 'query.upper'),
            ...(req.query.append === undefined ? {} : { append: req.query.append === 'true' }),
            ...(req.query.expectedUpper === undefined ? {} : { expectedUpper: jsonParam(req.query.expectedUpper, 'query.expectedUpper') }),
          })
        : await shards.writeBatch(shardId, { kind: 'json-body', body: req.raw })
      return reply.code(201).send(writeBatchJson(r))
    },
  )
}

export interface DataRoutesOptions {
  readonly shards: Shards
  /** A snapshot response whose client takes no data this long is closed (0: never): `Settings.sendTimeoutMs`. */
  readonly sendTimeoutMs: number
}

const dataRoutes: FastifyPluginAsyncZod<DataRoutesOptions> = async (fastify, { shards, sendTimeoutMs }) => {
  // Other routes of this plugin read an Arrow body as bytes, to refuse it with a clear 400.
  fastify.addContentTypeParser(ARROW_STREAM, { parseAs: 'buffer' }, (_req, body, done) => done(null, body))
  await fastify.register(batchesRoute, { shards })

  fastify.post(
    '/v1/shards/:shardId/append',
    {
      validatorCompiler: looseValidatorCompiler,
      schema: {
        tags: ['data'],
        summary: 'Compare-and-append a batch written earlier with append false',
        description: 'Every part is checked against blob storage first. On 409 the batch stays unappended (its parts are collected by GC after the grace period).',
        params: ShardIdParam,
        body: Append,
        response: {
          201: jsonResponse('The batch is in the shard', AppendResponse),
          ...errorResponses({
            400: 'A malformed batch, a part key of another shard, or a part that does not exist or does not match the batch (INVALID_BATCH)',
            ...NOT_FOUND,
            409: 'expectedUpper is not the shard upper (UPPER_MISMATCH, with "currentUpper")',
          }),
        },
      },
    },
    async (req, reply) => {
      const r = await shards.append(req.params.shardId as ShardId, req.body.batch, req.body.expectedUpper)
      return reply.code(201).send({ appended: true as const, seqno: r.seqno, upper: ac.toJson(r.tk, r.upper) })
    },
  )

  fastify.get(
    '/v1/shards/:shardId/snapshot',
    {
      schema: {
        tags: ['data'],
        summary: 'Read the shard at asOf: consolidated, sorted, streamed',
        description: `Every update at or before asOf with its time advanced to asOf. JSON, or with "accept: ${ARROW_STREAM}" an Arrow IPC stream with columns k, v, t, d.`,
        params: ShardIdParam,
        querystring: SnapshotQuery,
        response: {
          200: {
            description: 'The snapshot, streamed',
            content: { 'application/json': { schema: SnapshotJson }, [ARROW_STREAM]: { schema: ArrowStreamDoc } },
          },
          ...errorResponses({ 400: 'asOf is not a timestamp of the shard (BAD_REQUEST) or not in [since, upper) (AS_OF_NOT_AVAILABLE, with "since" and "upper")', ...NOT_FOUND }),
        },
      },
    },
    async (req, reply) => {
      const abort = new AbortController()
      const arrow = wantsArrow(req.headers.accept)
      const read = await shards.snapshot(req.params.shardId as ShardId, req.query.asOf, { format: arrow ? 'arrow' : 'json', abort })
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort.abort(new Error('client went away'))
      })
      reply.type(arrow ? ARROW_STREAM : 'application/json; charset=utf-8')
      // NB: the first chunk is read before the response starts, so a read that fails at once (a
      // store down, say) is an ordinary error response, not a broken stream; and when it is also
      // the last (a small snapshot), it goes out as one buffer.
      const chunks = read.body[Symbol.asyncIterator]()
      let first: IteratorResult<BodyChunk>
      try {
        first = await chunks.next()
      } catch (err) {
        read.release()
        throw err
      }
      // NB: the type provider types a body as the document the schema describes; these bytes are
      // that document, already encoded (the cast says so, nothing else).
      if (first.done !== true && first.value.last) {
        void chunks.return?.(undefined)
        return reply.send(bufferOf(first.value) as unknown as string)
      }
      // NB: a client that stops reading must not hold its read (a worker, memory) for good.
      const stalled = (): void => {
        req.log.info({ sendTimeoutMs }, 'snapshot client took no data for the send timeout: closing the connection')
        reply.raw.destroy(new Error('send timeout'))
      }
      const stream = Readable.from(bodyFrom(first.done === true ? [] : [first.value], chunks, sendTimeoutMs, stalled), { objectMode: false })
      stream.once('close', () => read.release())
      return reply.send(stream as unknown as string)
    },
  )

  fastify.get(
    '/v1/shards/:shardId/parts/:writerKey/:partId',
    {
      schema: {
        tags: ['data'],
        summary: 'One part as stored (unconsolidated)',
        description: `JSON, or with "accept: ${ARROW_STREAM}" the rows as an Arrow IPC stream.`,
        params: PartParams,
        response: {
          200: { description: 'The part', content: { 'application/json': { schema: PartJson }, [ARROW_STREAM]: { schema: ArrowStreamDoc } } },
          ...errorResponses({ 404: 'No such shard (SHARD_NOT_FOUND) or part (PART_NOT_FOUND)', 410: NOT_FOUND[410] }),
        },
      },
    },
    async (req, reply) => {
      const p = await shards.readPart(req.params.shardId as ShardId, req.params.writerKey as WriterKey, req.params.partId as PartId)
      if (wantsArrow(req.headers.accept)) {
        const bytes = encodeUpdatesStream(p.updates)
        return reply.type(ARROW_STREAM).send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as unknown as string)
      }
      return reply.type('application/json; charset=utf-8').send({
        key: p.key,
        desc: descs.toJson(p.tk, p.meta.desc),
        order: p.meta.order,
        schemaId: p.meta.schemaId,
        updates: updatesToJson(p.updates),
      })
    },
  )
}

export default dataRoutes
