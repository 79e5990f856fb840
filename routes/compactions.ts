/**
 * Compactions over HTTP (docs/api.md#compactions). Thin: parse → one Compactor call → map. Errors are
 * AppErrors thrown by the compactor and mapped by the app's error handler; the one header an error
 * needs (`Retry-After` on 429) is set here.
 *
 * Registered with the compactor as a plugin option: `app.register(compactionsRoutes, { compactor })`.
 * Paths are absolute: register it without a prefix.
 */
import { Readable } from 'node:stream'
import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { COMPACTION_KINDS, COMPACTION_SOURCES, COMPACTION_STATUSES, toCompactionJson, type FailureCode } from '../src/compact/compaction.js'
import type { Compactor } from '../src/compact/compactor.js'
import type { CompactionEvent, SubmitResult } from '../src/compact/compactor-port.js'
import { CHUNK_KINDS, SCHEMA_SELECTIONS } from '../src/compact/plan.js'
import { batchToJson } from '../src/core/batch.js'
import { ID_PATTERNS, type ShardId } from '../src/core/ids.js'
import { isAppError } from '../src/errors.js'
import { CompactionJson, AntichainJson,
  DescriptionJson, HollowBatchJson, RunOrderJson, ShardIdParam } from '../src/http/api-types.js'
import { ErrorBody } from '../src/http/error-body.js'
import { errorResponses, jsonResponse } from '../src/http/responses.js'

const count = z.number().int().nonnegative()

const CompactionIdParam = z.object({
  id: z.string().regex(new RegExp(ID_PATTERNS.compactionId), 'must be a compaction id c<uuid>'),
})

const Deadline = z
  .union([z.string().regex(/^[0-9]+(h|m|s|ms)$/, 'must be a duration like "30s", "1500ms" or "2m"'), z.number().int().positive()])
  .meta({ description: 'A duration counted from submission: "30s", "1500ms", "2m", or integer milliseconds.' })

const SubmitCompaction = z
  .strictObject({
    desc: z
      .object({ lower: AntichainJson, upper: AntichainJson, since: AntichainJson.optional() })
      .optional()
      .meta({
        description:
          'The range to compact: hollow batches inside one spine batch, or (with major) whole spine batches. Omitted: with major the whole trace, else every merge the spine has in progress. ' +
          "desc.since omitted: the join of the covered spine batches' sinces (major: the shard's since).",
      }),
    inputs: z.array(HollowBatchJson).optional().meta({ description: "Explicit input batches (persist's CompactReq); omitted: the trace's batches that exactly tile desc." }),
    major: z.boolean().optional().meta({ description: "Merge the whole trace (or desc, made of whole spine batches) into one batch at the shard's since." }),
    writerSchemaId: count.optional().meta({ description: "The requester's schema; default the shard's latest." }),
    wait: z.boolean().optional().meta({ description: 'Answer when the compaction ends (200, 503, 504 or 500 with the Compaction).' }),
    deadline: Deadline.optional(),
    dryRun: z.boolean().optional().meta({ description: 'Answer with the plan; queue nothing.' }),
  })
  .meta({ id: 'SubmitCompaction' })

const SubmitHeaders = z.looseObject({
  'idempotency-key': z.string().min(1).max(256).optional().meta({ description: 'A repeated key for the same shard returns the existing compaction.' }),
})

const MergePlanFields = {
  timeoutMs: count,
  schemaSelection: z.enum(SCHEMA_SELECTIONS),
  schemaId: count,
  runs: z.array(
    z.object({
      input: count,
      order: RunOrderJson.nullable(),
      schemaId: count.nullable(),
      parts: count,
      encodedBytes: count,
      maxPartBytes: count,
      exploded: z.boolean(),
    }),
  ),
  chunks: z.array(
    z.object({
      runs: z.array(count).meta({ description: 'Indices into runs' }),
      memoryBytes: count,
      kind: z.enum(CHUNK_KINDS).meta({
        description:
          "How its output (desc: its output's description) reaches the trace: combined (with every other chunk's, as one output: incremental compaction off), batches (alone, in place of the whole input batches it merges), runs (alone, in place of the runs it merges of one input batch too large for one chunk).",
      }),
      desc: DescriptionJson,
    }),
  ),
  memoryViolations: count,
}

const CompactionPlan = z
  .object({
    plan: z.object({
      kind: z.enum(COMPACTION_KINDS),
      heuristic: z.object({ inputs: count, parts: count, updates: count, wouldCompact: z.boolean() }),
      ...MergePlanFields,
      merges: z.array(z.object({ desc: DescriptionJson, heuristic: z.object({ inputs: count, parts: count, updates: count, wouldCompact: z.boolean() }), ...MergePlanFields })).meta({
        description: "Each merge's plan; the fields above repeat the first's.",
      }),
    }),
  })
  .meta({
    id: 'CompactionPlan',
    description: 'What a compaction would do (dryRun): its runs in the order its chunks read them, and its chunks (batch-granular with incremental compaction, as chunk_runs makes them without).',
  })

const ListQuery = z.object({
  shardId: z.string().regex(new RegExp(ID_PATTERNS.shardId), 'must be a shard id s<uuid>').optional(),
  status: z.enum(COMPACTION_STATUSES).optional(),
  source: z.enum(COMPACTION_SOURCES).optional().meta({ description: 'Only operator requests (`request`) or writer maintenance (`maintenance`).' }),
  limit: z.coerce.number().int().min(1).max(1000).optional().meta({ description: 'At most this many (default 100).' }),
  cursor: z.string().min(1).max(256).optional().meta({ description: "The page after the one whose `nextCursor` this is." }),
})

const Instance = z
  .object({
    id: z.string().meta({ description: 'COMPACTD_INSTANCE_ID, or the host name and a random suffix.' }),
    version: z.string(),
    startedAt: z.iso.datetime(),
    heartbeatAt: z.iso.datetime().meta({ description: 'Its last heartbeat; an instance missing three is no longer listed.' }),
    running: count.meta({ description: 'Compactions it was running at its last heartbeat.' }),
    stateFormats: z
      .array(z.number().int())
      .optional()
      .meta({
        description:
          'The shard state version formats it reads: 1 whole, 2 delta. Absent for a build from before state deltas, which reads whole versions only; while such an instance is live, every instance writes whole versions.',
      }),
    self: z.boolean().meta({ description: 'The instance that answered.' }),
  })
  .meta({ id: 'Instance' })

const CompactOnly = z
  .strictObject({
    shardId: ShardIdParam.shape.shardId,
    desc: DescriptionJson,
    inputs: z.array(HollowBatchJson),
    writerSchemaId: count.optional(),
  })
  .meta({ id: 'CompactOnly' })

/** wait: true answers with these statuses for a compaction that did not succeed. */
const WAIT_STATUS: Partial<Record<FailureCode, 503 | 504 | 507>> = { COMPACTION_DISABLED: 503, TIMED_OUT: 504, DEADLINE_EXCEEDED: 504, INSUFFICIENT_STORAGE: 507 }

/** The HTTP status of a submission's answer (docs/api.md#waiting-dry-runs-idempotency-and-deadlines). */
export function statusFor(r: SubmitResult): 200 | 202 | 500 | 503 | 504 | 507 {
  if (r.kind === 'plan') return 200
  const c = r.compaction
  if (c.status === 'skipped') return 200
  if (!r.waited) return 202
  if (c.status === 'succeeded' || c.status === 'not_applied') return 200
  return (c.error === undefined ? undefined : WAIT_STATUS[c.error.code]) ?? 500
}

/** A 429 carries a Retry-After header; the error handler writes the body. */
function withRetryAfter(err: unknown, reply: FastifyReply): unknown {
  if (isAppError(err) && err.code === 'QUEUE_FULL' && typeof err.extra.retryAfterSeconds === 'number') {
    reply.header('retry-after', String(err.extra.retryAfterSeconds))
  }
  return err
}

/** The stream's frames; when the events end early (this instance stops, the job store is full), a last `error` frame says why. */
/**
 * How long an event stream may go without a byte before it gets a comment line: a compaction queued
 * behind others sends no event for minutes, and proxies and load balancers close connections idle
 * for about a minute (nginx's proxy_read_timeout, cloud load balancers' idle timeouts).
 */
export const SSE_KEEP_ALIVE_MS = 15_000

/** The frames of `events`, with a `: keep-alive` comment after every `keepAliveMs` without one. */
async function* sseFrames(events: AsyncIterable<CompactionEvent>, keepAliveMs: number): AsyncGenerator<string> {
  const it = events[Symbol.asyncIterator]()
  let timer: NodeJS.Timeout | undefined
  try {
    let next = it.next()
    for (;;) {
      const quiet = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), keepAliveMs)
      })
      const r = await Promise.race([next, quiet])
      clearTimeout(timer)
      if (r === null) {
        yield ': keep-alive\n\n'
        continue
      }
      if (r.done === true) return
      yield `event: ${r.value.type}\ndata: ${JSON.stringify(toCompactionJson(r.value.compaction))}\n\n`
      next = it.next()
    }
  } catch (err) {
    if (!isAppError(err)) throw err
    yield `event: error\ndata: ${JSON.stringify({ code: err.code, message: err.message })}\n\n`
  } finally {
    clearTimeout(timer)
    // NB: not awaited: a next() may be pending; the client's disconnect aborts the events anyway.
    void it.return?.(undefined)
  }
}

export interface CompactionsRoutesOptions {
  readonly compactor: Compactor
  /** SSE_KEEP_ALIVE_MS unless given (tests). */
  readonly sseKeepAliveMs?: number
}

const compactionsRoutes: FastifyPluginAsyncZod<CompactionsRoutesOptions> = async (fastify, { compactor, sseKeepAliveMs = SSE_KEEP_ALIVE_MS }) => {
  fastify.post(
    '/v1/shards/:shardId/compactions',
    {
      schema: {
        tags: ['compactions'],
        summary: 'Submit a compaction request',
        params: ShardIdParam,
        headers: SubmitHeaders,
        body: SubmitCompaction,
        response: {
          200: jsonResponse('Skipped (below every heuristic), the dry-run plan, or (wait) the compaction succeeded', z.union([CompactionJson, CompactionPlan])),
          202: jsonResponse('Queued', CompactionJson),
          ...errorResponses({
            404: 'No such shard (SHARD_NOT_FOUND)',
            410: 'The shard was deleted (SHARD_DELETED)',
            422: 'Invalid request: non-consecutive inputs, since, foreign keys, unknown schema (INVALID_COMPACTION)',
            429: 'Queue full (QUEUE_FULL), with Retry-After and queueDepth',
          }),
          500: jsonResponse('(wait) the compaction failed otherwise; or an internal error', z.union([CompactionJson, ErrorBody])),
          503: jsonResponse('(wait) compaction disabled; or storage failed, or the compactor is stopping', z.union([CompactionJson, ErrorBody])),
          504: jsonResponse('(wait) the compaction timed out or missed its deadline', CompactionJson),
          507: jsonResponse('(wait) the compaction failed for lack of storage space; or the storage has no space left to queue it (INSUFFICIENT_STORAGE)', z.union([CompactionJson, ErrorBody])),
        },
      },
    },
    async (req, reply) => {
      try {
        const result = await compactor.submit(req.params.shardId as ShardId, req.body, {
          idempotencyKey: req.headers['idempotency-key'],
          source: 'request',
        })
        return reply.code(statusFor(result)).send(result.kind === 'plan' ? { plan: result.plan } : toCompactionJson(result.compaction))
      } catch (err) {
        throw withRetryAfter(err, reply)
      }
    },
  )

  fastify.post(
    '/v1/compact',
    {
      schema: {
        tags: ['compactions'],
        summary: 'Compact inputs and return the output, without heuristics or apply',
        body: CompactOnly,
        response: {
          200: jsonResponse('The output batch; its parts belong to the caller', z.object({ output: HollowBatchJson })),
          ...errorResponses({
            404: 'No such shard (SHARD_NOT_FOUND)',
            410: 'The shard was deleted (SHARD_DELETED)',
            422: 'Invalid request (INVALID_COMPACTION)',
            503: 'Compaction disabled by the kill switch (COMPACTION_DISABLED), storage failed, or the compactor is stopping',
            504: 'Timed out (TIMED_OUT); parts written so far were deleted',
          }),
        },
      },
    },
    async (req) => {
      const { tk, output } = await compactor.compactOnly({ ...req.body, shardId: req.body.shardId as ShardId })
      return { output: batchToJson(tk, output) }
    },
  )

  fastify.get(
    '/v1/compactions',
    {
      schema: {
        tags: ['compactions'],
        summary: "The cluster's compactions, newest first, a page at a time",
        description: 'Every instance lists the same compactions: queued, running (on any instance) and finished ones younger than compaction_history_retention.',
        querystring: ListQuery,
        response: {
          200: jsonResponse(
            'A page of compactions',
            z.object({
              compactions: z.array(CompactionJson),
              nextCursor: z.string().nullable().meta({ description: 'Pass as cursor for the next page; null on the last page.' }),
            }),
          ),
          ...errorResponses({ 400: 'A bad filter or cursor (BAD_REQUEST, naming the field)' }),
        },
      },
    },
    async (req) => {
      const page = await compactor.list(req.query)
      return { compactions: page.compactions.map(toCompactionJson), nextCursor: page.nextCursor }
    },
  )

  fastify.get(
    '/v1/compactions/:id',
    {
      schema: {
        tags: ['compactions'],
        summary: 'One compaction',
        params: CompactionIdParam,
        response: { 200: jsonResponse('The compaction', CompactionJson), ...errorResponses({ 404: 'Unknown or forgotten (COMPACTION_NOT_FOUND)' }) },
      },
    },
    async (req) => toCompactionJson(await compactor.get(req.params.id)),
  )

  fastify.delete(
    '/v1/compactions/:id',
    {
      schema: {
        tags: ['compactions'],
        summary: 'Cancel a compaction (queued: removed; running: aborted, outputs deleted)',
        params: CompactionIdParam,
        response: {
          200: jsonResponse('The compaction, cancelled', CompactionJson),
          ...errorResponses({
            404: 'Unknown or forgotten (COMPACTION_NOT_FOUND)',
            409: 'Already finished, or already applying its result (ALREADY_FINISHED)',
          }),
        },
      },
    },
    async (req) => toCompactionJson(await compactor.cancel(req.params.id)),
  )

  fastify.get(
    '/v1/compactions/:id/events',
    {
      schema: {
        tags: ['compactions'],
        summary: "Server-sent events of one compaction's progress",
        description:
          '`progress` events carrying the Compaction (the current one first), then one `done` carrying the final one. When the answering instance stops first, a last `error` event carries `{code, message}`: follow the compaction on another instance. A queued compaction that cannot start because the job store has no space left ends the stream the same way, with INSUFFICIENT_STORAGE. After 15 s without an event comes a `: keep-alive` comment line (ignored by SSE readers), so proxies do not close a quiet stream.',
        params: CompactionIdParam,
        response: {
          200: { description: 'An event stream', content: { 'text/event-stream': { schema: z.string() } } },
          ...errorResponses({ 404: 'Unknown or forgotten (COMPACTION_NOT_FOUND)' }),
        },
      },
    },
    async (req, reply) => {
      // NB: an unknown id is a 404 before the stream opens.
      await compactor.get(req.params.id)
      const disconnected = new AbortController()
      const events = compactor.events(req.params.id, { signal: disconnected.signal })
      reply.raw.once('close', () => disconnected.abort())
      return reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache')
        // nginx (and proxies that honour it) passes events on as they come instead of buffering.
        .header('x-accel-buffering', 'no')
        // NB: the cast only quiets the type provider; fastify pipes a stream without serializing it.
        .send(Readable.from(sseFrames(events, sseKeepAliveMs)) as unknown as string)
    },
  )

  fastify.get(
    '/v1/instances',
    {
      schema: {
        tags: ['cluster'],
        summary: 'The live instances of the cluster',
        description: 'Every instance sharing this consensus store that sent a heartbeat recently, by id.',
        response: { 200: jsonResponse('The instances', z.object({ instances: z.array(Instance) })) },
      },
    },
    async () => ({
      instances: (await compactor.instances()).map((i) => ({
        id: i.id,
        version: i.version,
        startedAt: new Date(i.startedAt).toISOString(),
        heartbeatAt: new Date(i.heartbeatAt).toISOString(),
        running: i.running,
        ...(i.stateFormats === undefined ? {} : { stateFormats: [...i.stateFormats] }),
        self: i.self,
      })),
    }),
  )
}

export default compactionsRoutes
