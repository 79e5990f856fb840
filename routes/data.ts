/**
 * Writing and reading data over HTTP (API.md "Writing and reading data"): batches, append,
 * snapshot, part inspection. Thin: parse → one Shards call → map.
 *
 * Registered with the service as a plugin option: `app.register(dataRoutes, { shards })`. Paths
 * are absolute: register it without a prefix.
 *
 * - Batch bodies are JSON or an Arrow IPC stream (`application/vnd.apache.arrow.stream`, read as
 *   bytes by this plugin's content-type parser, within the app's body limit); with Arrow, the
 *   frontiers come as JSON in query parameters.
 * - Snapshots stream: JSON is written row chunk by row chunk as the merge produces them, Arrow as
 *   one IPC stream of record batches, so the response never sits whole in memory. The read's lease
 *   is released when the response ends, fails or the client goes away (which also aborts the merge).
 */
import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { batchToJson } from '../src/core/batch.js'
import * as descs from '../src/core/description.js'
import { ID_PATTERNS, type PartId, type ShardId, type WriterKey } from '../src/core/ids.js'
import { encodeUpdatesStream, UpdatesStreamWriter } from '../src/columnar/part-format.js'
import { updatesToJson, type Updates } from '../src/columnar/updates.js'
import * as ac from '../src/core/antichain.js'
import { AppError } from '../src/errors.js'
import { AntichainJson, DescriptionJson, HollowBatchJson, RunOrderJson, ShardIdParam, TimestampJson, UpdateJson } from '../src/http/api-types.js'
import { errorResponses, jsonResponse } from '../src/http/responses.js'
import type { Shards, SnapshotRead, WriteBatchResult } from '../src/shard/shards.js'
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

async function* jsonSnapshot(read: SnapshotRead, chunks: AsyncIterable<Updates>): AsyncGenerator<string> {
  yield `{"asOf":${JSON.stringify(read.tk.toJson(read.asOf))},"updates":[`
  let first = true
  for await (const chunk of chunks) {
    let text = ''
    for (const row of updatesToJson(chunk)) {
      text += first ? JSON.stringify(row) : `,${JSON.stringify(row)}`
      first = false
    }
    if (text !== '') yield text
  }
  yield ']}'
}

async function* arrowSnapshot(read: SnapshotRead, chunks: AsyncIterable<Updates>): AsyncGenerator<Buffer> {
  const writer = new UpdatesStreamWriter(read.shape)
  const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength)
  for await (const chunk of chunks) yield bytes(writer.write(chunk))
  yield bytes(writer.end())
}

/** `first` (unless done), then the rest of `it`; returning early closes `it`. */
async function* continueWith<T>(first: IteratorResult<T>, it: AsyncIterator<T>): AsyncGenerator<T> {
  try {
    if (first.done === true) return
    yield first.value
    for (let r = await it.next(); r.done !== true; r = await it.next()) yield r.value
  } finally {
    await it.return?.()
  }
}

const dataRoutes: FastifyPluginAsyncZod<{ shards: Shards }> = async (fastify, { shards }) => {
  fastify.addContentTypeParser(ARROW_STREAM, { parseAs: 'buffer' }, (_req, body, done) => done(null, body))

  fastify.post(
    '/v1/shards/:shardId/batches',
    {
      validatorCompiler: looseValidatorCompiler,
      schema: {
        tags: ['data'],
        summary: 'Write a batch, and compare-and-append it unless append is false',
        description:
          'Rows are validated against the latest schema and [lower, upper), sorted and consolidated, cut into parts of about persist_blob_target_size (small parts inline in state). ' +
          'JSON body, or an Arrow IPC stream with lower, upper, append and expectedUpper as JSON query parameters.',
        consumes: ['application/json', ARROW_STREAM],
        params: ShardIdParam,
        querystring: WriteBatchQuery,
        body: WriteBatch,
        response: {
          201: jsonResponse('The batch, and whether it was appended', WriteBatchResponse),
          ...errorResponses({
            400: 'A row outside [lower, upper) or not of the schema, a bad frontier or a bad Arrow stream (INVALID_BATCH, naming the first bad row)',
            ...NOT_FOUND,
            409: 'expectedUpper is not the shard upper (UPPER_MISMATCH, with "currentUpper"); the parts written are deleted',
          }),
        },
      },
    },
    async (req, reply) => {
      const shardId = req.params.shardId as ShardId
      const body: unknown = req.body
      const r = Buffer.isBuffer(body)
        ? await shards.writeBatch(shardId, {
            kind: 'arrow',
            bytes: body,
            lower: jsonParam(req.query.lower, 'query.lower'),
            upper: jsonParam(req.query.upper, 'query.upper'),
            ...(req.query.append === undefined ? {} : { append: req.query.append === 'true' }),
            ...(req.query.expectedUpper === undefined ? {} : { expectedUpper: jsonParam(req.query.expectedUpper, 'query.expectedUpper') }),
          })
        : await shards.writeBatch(shardId, { kind: 'json', ...req.body })
      return reply.code(201).send(writeBatchJson(r))
    },
  )

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
      const read = await shards.snapshot(req.params.shardId as ShardId, req.query.asOf, { signal: abort.signal })
      const arrow = wantsArrow(req.headers.accept)
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort.abort(new Error('client went away'))
      })
      // NB: the first chunk is read before the response starts, so a read that fails at once (a
      // store down, say) is an ordinary error response, not a broken stream.
      const chunks = read.updates[Symbol.asyncIterator]()
      let first: IteratorResult<Updates>
      try {
        first = await chunks.next()
      } catch (err) {
        read.release()
        throw err
      }
      const rest = continueWith(first, chunks)
      const stream = Readable.from(arrow ? arrowSnapshot(read, rest) : jsonSnapshot(read, rest), { objectMode: false })
      stream.once('close', () => read.release())
      return reply.type(arrow ? ARROW_STREAM : 'application/json; charset=utf-8').send(stream as unknown as string)
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
