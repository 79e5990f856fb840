/**
 * Stage D of a compaction (persist's `compact`; docs/compaction.md#stage-d-merging-the-runs): memory reservations, the
 * chunks (plan.ts `planChunks`), then each chunk merged in worker threads with its outputs uploaded
 * as they come. Without incremental compaction the output batch is assembled (one run per chunk);
 * with it, each chunk's output is handed to Stage C (`ExecuteContext.applyChunk`) as soon as its
 * parts are written. Also the dry-run plan.
 */
import { emptyBatch, KEY_LOWER_MAX_BYTES, type BatchPart, type HollowBatch, type HollowPart, type RunMeta } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { Description } from '../core/description.js'
import { newPartId, type ShardId, type WriterKey } from '../core/ids.js'
import { blobKey, partialBatchKey, type PartialBatchKey } from '../core/paths.js'
import type { DataType } from '../columnar/data-type.js'
import type { SortOrder } from '../columnar/sort-key.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import type { Metrics } from '../metrics/metrics.js'
import { WHOLE_BATCHES, type CompactionInput } from '../trace/compaction-input.js'
import { inputStats, type InputStats, type MergePlan, type ResolvedRequest } from './compaction.js'
import type { ChunkOutput, ExecuteContext } from './compactor-port.js'
import { sampleKeys, splitByKey, worthSampling, type KeyRangeTask, type RangeRun } from '../engine/key-split.js'
import { WINDOW_MIN_PART_BYTES, windowChunk, type Window } from '../engine/windows.js'
import { startMergeTask, type MergeTaskOutput } from '../engine/merge-task.js'
import { SharedSlots } from '../engine/shared-slots.js'
import type { MergeRunsStats } from '../engine/merge-runs.js'
import type { MergeTaskPayload } from '../engine/protocol.js'
import { heuristic, maxOutstandingParts, planChunks, reserveMemory, runCost, selectSchema, timeoutMs, type PlannedChunk, type PlannedChunks, type WindowedReads } from './plan.js'
import type { PlannedRun } from '../engine/runs.js'
import { fetchPart, PartCache } from '../engine/part-cache.js'
import type { WorkerPool } from '../engine/worker-pool.js'

export interface ExecutorDeps {
  /** The worker pool (a getter: the pool is spawned on first use). */
  pool(): WorkerPool
  readonly blob: Blob
  readonly writerKey: WriterKey
  readonly metrics: Pick<Metrics, 'compaction' | 'compactionWrites' | 'consolidation'>
  /**
   * Protects an uploaded output from GC until it is applied or deleted (the shard port releases
   * it). Default: no protection.
   */
  pinOutput?(shardId: ShardId, key: PartialBatchKey): void
  /** The key and value types of a shard's schema. */
  lookupSchema(shardId: ShardId, schemaId: number): Promise<{ readonly key: DataType; readonly val: DataType }>
  /** Chunks with less input are merged by one worker. Default: the larger of `SPLIT_MIN_BYTES` and the target size. */
  readonly splitMinBytes?: number
  /** Parts larger than this are read one record batch at a time (windows.ts). Default: `WINDOW_MIN_PART_BYTES`. */
  readonly windowMinBytes?: number
}

/** Thrown by `execute` when it fails after writing parts: the compactor deletes them. */
export class ExecuteError extends AppError {
  constructor(
    cause: unknown,
    readonly writtenParts: readonly PartialBatchKey[],
  ) {
    const code = cause instanceof AppError ? cause.code : 'INTERNAL'
    super(code, cause instanceof Error ? cause.message : String(cause), {}, { cause })
  }
}

export function createExecutor(deps: ExecutorDeps) {
  const { metrics } = deps
  const m = metrics.compaction
  /** Input parts are read into these and read by the workers in place. */
  const inputs = new SharedSlots()
  /** Input slots dropped because a compaction ended with them still held (aborts, failures). */
  let droppedSlots = 0

  /** The chunks of `req` under `cfg`, and the budget they were planned with (the dry-run plan shows the same). */
  function chunking(req: ResolvedRequest, cfg: ConfigValues, incremental: boolean): Chunking {
    const target = Math.max(1, cfg.persist_blob_target_size)
    const workers = mergingWorkers(cfg, deps.pool().size)
    const { runReservedBytes } = reserveMemory(cfg.persist_compaction_memory_bound_bytes, target, workers)
    const order = cfg.persist_batch_preferred_order
    const windows = { order, minPartBytes: deps.windowMinBytes ?? WINDOW_MIN_PART_BYTES }
    const plan = planChunks(req.inputs, req.desc, { incremental, runsOnly: req.scope === 'runs', order, runReservedBytes, targetSizeBytes: target, windows })
    return { plan, target, workers, runReservedBytes, order, windows }
  }

  async function execute(req: ResolvedRequest, cfg: ConfigValues, ctx: ExecuteContext): Promise<{ output: HollowBatch }> {
    const applyChunk = cfg.persist_enable_incremental_compaction ? ctx.applyChunk : undefined
    const written: PartialBatchKey[] = []
    // Parts handed to Stage C (applyChunk): they are its to apply or delete, never in `writtenParts`.
    const handed = new Set<PartialBatchKey>()
    // Stops every task on the caller's abort, on the first task's failure, or when Stage C says stop.
    const abort = new AbortController()
    const signal = AbortSignal.any([ctx.signal, abort.signal])
    // Each chunk's tasks' results, in chunk order.
    const chunks: Promise<TaskResult[]>[] = []
    // The hand-overs so far, one at a time in chunk order.
    let handing: Promise<void> = Promise.resolve()
    let stopped = false
    // Marks the input slots this compaction borrows.
    const owner = {}
    try {
      const c = chunking(req, cfg, applyChunk !== undefined)
      m.memoryViolations.inc(c.plan.memoryViolations)
      const schema = await deps.lookupSchema(req.shardId, ctx.schema.schemaId)
      const env: ChunkEnv = {
        ...c,
        req,
        cfg,
        ctx,
        schema,
        signal,
        tally: new Tally(ctx, c.plan.chunks.length),
        chunkWindows: new Map(),
        cache: new PartCache((p) => {
          const window = env.chunkWindows.get(p)
          const alloc = (size: number): Uint8Array => inputs.acquire(size, owner)
          return window !== undefined ? window.fetch(alloc) : fetchPart(deps.blob, req.shardId, p, alloc)
        }),
        upload: (out) => upload(req, cfg, ctx, out, signal, written),
      }
      for (const [index, planned] of c.plan.chunks.entries()) {
        if (signal.aborted) throw signal.reason
        const started = await startChunk(env, planned)
        started.results.catch((err: unknown) => abort.abort(err))
        chunks.push(started.results)
        if (applyChunk !== undefined) {
          handing = handing.then(async () => {
            const done = await started.results
            if (stopped || signal.aborted) return
            const out = chunkOutput(req, planned, done, c.order, ctx.schema.schemaId, index, c.plan.chunks.length)
            for (const p of out.output.parts) if (p.kind === 'hollow') handed.add(p.key)
            if ((await applyChunk(out)) === 'continue') return
            stopped = true
            abort.abort(new AppError('CANCELLED', 'a chunk did not apply; the rest of the compaction stopped'))
          })
          handing.catch((err: unknown) => abort.abort(err))
        }
        // The next chunk starts once both workers are done with this one, while its last outputs
        // may still be uploading (or being applied); waiting for both keeps one chunk's input parts
        // in memory at once.
        await Promise.race([started.workersDone, started.results])
      }
      const done = await Promise.all(chunks)
      await handing
      // NB: after a stop or an abort, later chunks' outputs were never handed over: the error
      // below names them (written, not handed) so that the caller deletes them.
      if (stopped || signal.aborted) throw signal.reason
      return { output: applyChunk !== undefined ? emptyBatch(req.desc) : assemble(req.desc, done, c.order, ctx.schema.schemaId) }
    } catch (err) {
      abort.abort(err)
      // Let every started task and hand-over settle, so that `written` names every part that may exist.
      await Promise.allSettled([...chunks, handing])
      throw new ExecuteError(signal.reason ?? err, written.filter((k) => !handed.has(k)))
    } finally {
      droppedSlots += inputs.dropLent(owner)
    }
  }

  /** Uploads one output part (pinned against GC first) and returns its hollow part. */
  async function upload(req: ResolvedRequest, cfg: ConfigValues, ctx: ExecuteContext, out: MergeTaskOutput, signal: AbortSignal, written: PartialBatchKey[]): Promise<HollowPart> {
    const key = partialBatchKey(ctx.writerKey ?? deps.writerKey, newPartId())
    let keyLower = out.keyLower ?? new Uint8Array(0)
    if (keyLower.byteLength > KEY_LOWER_MAX_BYTES) {
      keyLower = keyLower.subarray(0, KEY_LOWER_MAX_BYTES)
      metrics.compactionWrites.keyLowerTooBig.inc()
    }
    written.push(key)
    deps.pinOutput?.(req.shardId, key)
    const t0 = performance.now()
    await deps.blob.set(blobKey(req.shardId, key), out.bytes, { signal })
    metrics.compactionWrites.writeBatchPartSeconds.inc((performance.now() - t0) / 1000)
    metrics.compactionWrites.bytes.inc(out.bytes.byteLength)
    metrics.compactionWrites.goodbytes.inc(out.goodBytes ?? 0)
    metrics.compactionWrites.stepStatsSeconds.inc(out.statsSeconds ?? 0)
    metrics.compactionWrites.writeBatchOrder.inc({ order: cfg.persist_batch_preferred_order })
    return {
      kind: 'hollow',
      key,
      encodedSizeBytes: out.bytes.byteLength,
      keyLower: Buffer.from(keyLower.buffer, keyLower.byteOffset, keyLower.byteLength).toString('base64'),
      diffsSum: out.diffsSum ?? null,
      schemaId: ctx.schema.schemaId,
      // NB: a part of one batch is read whole, whatever its size; only several batches make windows.
      stats: out.batches > 1 ? { updates: out.rows, batchBytes: out.maxBatchBytes } : { updates: out.rows },
    }
  }

  /**
   * Starts merging one chunk: its large parts windowed, split by key between the workers, each half
   * a merge task whose outputs upload as they come. Resolves once the tasks are queued.
   */
  async function startChunk(env: ChunkEnv, planned: PlannedChunk): Promise<{ results: Promise<TaskResult[]>; workersDone: Promise<void> }> {
    const { req, ctx, order, signal, cache, tally } = env
    m.chunksCompacted.inc()
    m.runsCompacted.inc(planned.runs.length)
    if (planned.runs.length === 0) {
      // A chunk of batches with no parts: nothing to merge, an empty output.
      tally.chunkDone()
      return { results: Promise.resolve([]), workersDone: Promise.resolve() }
    }
    const started = performance.now()
    const windowed = await windowChunk(planned, { blob: deps.blob, shardId: req.shardId, order, ...(deps.windowMinBytes === undefined ? {} : { minPartBytes: deps.windowMinBytes }), signal })
    env.chunkWindows = windowed.windows
    const { chunk, windows } = windowed
    // The first part of every run is needed first in any case: fetch a large one, and sample its
    // keys for the split (a small one, e.g. a window, is not worth decoding here).
    const sample = async (run: PlannedRun): Promise<Uint8Array[]> =>
      worthSampling(run, order, ctx.schema.schemaId) ? sampleKeys(await cache.fetch(run.parts[0] as BatchPart), order) : []
    // NB: a chunk smaller than what one output part holds is not split: two halves would write
    // two parts where one does, for a merge too short for a second worker to pay off.
    const chunkWorkers = chunkInputBytes(chunk) >= (deps.splitMinBytes ?? Math.max(SPLIT_MIN_BYTES, env.target)) ? env.workers : 1
    const samples = chunkWorkers > 1 ? await Promise.all(chunk.runs.map(sample)) : []
    const split = splitByKey(chunk, order, ctx.schema.schemaId, chunkWorkers, samples)
    for (const run of chunk.runs) run.parts.forEach((p, i) => cache.expect(p, split.sharers(run, i)))
    const outstanding = maxOutstandingParts(env.runReservedBytes, chunk.memoryBytes, env.target)
    const handles = split.tasks.map((range) => {
      const counts = tally.task()
      const taskParts: Promise<HollowPart>[] = []
      const handle = startMergeTask(deps.pool(), taskPayload(env, planned, range), {
        partSizes: range.runs.map((r) => r.parts.map((i) => (r.run.parts[i] as BatchPart).encodedSizeBytes)),
        prefetchBudgetBytes: (2 * env.target) / split.tasks.length,
        maxOutstanding: Math.max(1, Math.floor(outstanding / split.tasks.length)),
        fetch: (run, part) => {
          const r = range.runs[run] as RangeRun
          return cache.take(r.run.parts[r.parts[part] as number] as BatchPart)
        },
        onOutput: async (out) => {
          // NB: pushed in output order before the upload ends, so the parts stay in key order.
          const part = env.upload(out)
          taskParts.push(part)
          await part
          tally.wrote(out.bytes.byteLength)
        },
        onProgress: (p) => {
          Object.assign(counts, p)
          tally.report()
        },
        onPrefetchPlan: (all) => {
          if (!all) m.notAllPrefetched.inc()
        },
        onPartTaken: (prefetched, run, part) => {
          // Fetch metrics count parts: a part read in windows counts at its first.
          const r = range.runs[run] as RangeRun
          const p = r.run.parts[r.parts[part] as number] as BatchPart
          if (windows.get(p)?.first === false) return
          metrics.consolidation.partsFetched.inc()
          if (prefetched) m.partsPrefetched.inc()
          else m.partsWaited.inc()
        },
        onWriteStall: () => metrics.compactionWrites.writeStall.inc(),
        signal,
      })
      return { handle, finished: handle.finished.then(async (stats) => ({ stats, parts: await Promise.all(taskParts) })) }
    })
    const results = Promise.all(handles.map((h) => h.finished)).then((results) => {
      m.stepSeconds.inc({ step: 'part_fetch' }, results.reduce((s, r) => s + r.stats.fetchSeconds, 0))
      m.stepSeconds.inc({ step: 'heap_population' }, 0)
      metrics.compactionWrites.stepPartWritingSeconds.inc((performance.now() - started) / 1000)
      tally.chunkDone()
      return results
    })
    return { results, workersDone: Promise.all(handles.map((h) => h.handle.workerDone)).then(() => undefined) }
  }

  function plan(req: ResolvedRequest, cfg: ConfigValues): MergePlan {
    const { plan: chunks, windows } = chunking(req, cfg, cfg.persist_enable_incremental_compaction)
    // NB: runs in the order the chunks read them (without incremental compaction, order_runs').
    const runs = chunks.chunks.flatMap((c) => c.runs)
    const schema = selectSchema(req.inputs, req.knownSchemaIds, req.writerSchemaId, cfg.persist_compaction_use_most_recent_schema)
    let at = 0
    return {
      heuristic: heuristic(req.inputs, {
        minInputs: cfg.persist_compaction_heuristic_min_inputs,
        minParts: cfg.persist_compaction_heuristic_min_parts,
        minUpdates: cfg.persist_compaction_heuristic_min_updates,
      }),
      timeoutMs: timeoutMs(req.inputs, cfg.persist_compaction_minimum_timeout),
      schemaSelection: schema.selection,
      schemaId: schema.schemaId,
      runs: runs.map((r) => ({
        input: r.input,
        order: r.meta.order,
        schemaId: r.meta.schemaId,
        parts: r.parts.length,
        encodedBytes: r.parts.reduce((s, p) => s + p.encodedSizeBytes, 0),
        maxPartBytes: runCost(r, windows),
        exploded: r.exploded,
      })),
      chunks: chunks.chunks.map((c) => ({ runs: c.runs.map(() => at++), memoryBytes: c.memoryBytes, kind: c.kind, desc: descs.toJson(req.tk, c.desc) })),
      memoryViolations: chunks.memoryViolations,
    }
  }

  /** The input slot pool: slots kept, slots still held, slots dropped while held (for tests). */
  function inputSlots(): { size: number; lent: number; dropped: number } {
    return { size: inputs.size, lent: inputs.lent, dropped: droppedSlots }
  }

  return { execute, plan, inputSlots }
}

/** The plan of one merge and the budget it was made with. */
interface Chunking {
  readonly plan: PlannedChunks
  readonly target: number
  /** Workers that may merge one chunk. */
  readonly workers: number
  readonly runReservedBytes: number
  readonly order: SortOrder
  /** Which parts are read in windows (plan.ts). */
  readonly windows: WindowedReads
}

/** What merging each chunk of one execute call shares. */
interface ChunkEnv extends Chunking {
  readonly req: ResolvedRequest
  readonly cfg: ConfigValues
  readonly ctx: ExecuteContext
  readonly schema: { readonly key: DataType; readonly val: DataType }
  readonly signal: AbortSignal
  readonly tally: Tally
  readonly cache: PartCache
  /** The current chunk's windows of large parts (windows.ts); other parts are fetched whole. */
  chunkWindows: ReadonlyMap<BatchPart, Window>
  upload(out: MergeTaskOutput): Promise<HollowPart>
}

/** One merge task's end: its stats and the parts it wrote, in key order. */
interface TaskResult {
  readonly stats: MergeRunsStats
  readonly parts: HollowPart[]
}

/** Stage D's running totals, reported to Stage C at every change (every task's latest counts, summed). */
class Tally {
  readonly #ctx: ExecuteContext
  readonly #tasks: { updatesRead: number; bytesRead: number; updatesWritten: number }[] = []
  readonly #progress: { updatesRead: number; updatesWritten: number; bytesRead: number; bytesWritten: number; partsWritten: number; chunksDone: number; chunksTotal: number }

  constructor(ctx: ExecuteContext, chunksTotal: number) {
    this.#ctx = ctx
    this.#progress = { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 0, chunksTotal }
    ctx.onProgress({ ...this.#progress })
  }

  /** A new task's counts, to update in place and `report`. */
  task(): { updatesRead: number; bytesRead: number; updatesWritten: number } {
    const counts = { updatesRead: 0, bytesRead: 0, updatesWritten: 0 }
    this.#tasks.push(counts)
    return counts
  }

  report(): void {
    const p = this.#progress
    p.updatesRead = this.#tasks.reduce((s, x) => s + x.updatesRead, 0)
    p.bytesRead = this.#tasks.reduce((s, x) => s + x.bytesRead, 0)
    p.updatesWritten = this.#tasks.reduce((s, x) => s + x.updatesWritten, 0)
    this.#ctx.onProgress({ ...p })
  }

  wrote(bytes: number): void {
    this.#progress.bytesWritten += bytes
    this.#progress.partsWritten += 1
    this.#ctx.onProgress({ ...this.#progress })
  }

  chunkDone(): void {
    this.#progress.chunksDone += 1
    this.report()
  }
}

/** The output batch of a compaction without incremental apply: one run per chunk that wrote parts. */
function assemble(desc: Description, chunks: readonly TaskResult[][], order: SortOrder, schemaId: number): HollowBatch {
  const parts: BatchPart[] = []
  const runSplits: number[] = []
  const runMeta: RunMeta[] = []
  let len = 0
  for (const done of chunks) {
    // The halves' outputs, in key order, are one sorted run.
    const chunkParts = done.flatMap((r) => r.parts)
    if (chunkParts.length === 0) continue
    if (parts.length > 0) runSplits.push(parts.length)
    parts.push(...chunkParts)
    runMeta.push({ order, schemaId })
    len += done.reduce((s, r) => s + r.stats.updatesWritten, 0)
  }
  return { desc, len, parts, runSplits, runMeta }
}

/** One chunk's output as Stage C takes it: one run (or none), its desc, what it replaces. */
function chunkOutput(req: ResolvedRequest, planned: PlannedChunk, done: readonly TaskResult[], order: SortOrder, schemaId: number, index: number, count: number): ChunkOutput {
  const parts = done.flatMap((r) => r.parts)
  const len = done.reduce((s, r) => s + r.stats.updatesWritten, 0)
  const output: HollowBatch = { desc: planned.desc, len, parts, runSplits: [], runMeta: parts.length === 0 ? [] : [{ order, schemaId }] }
  const replaced = planned.runs.flatMap((r) => r.parts)
  const input: CompactionInput = planned.kind === 'runs' ? { kind: 'runs', parts: replaced } : WHOLE_BATCHES
  const inputs: InputStats =
    planned.kind === 'runs'
      ? {
          batches: 1,
          parts: replaced.length,
          runs: planned.runs.length,
          updates: replaced.reduce((s, p) => s + (p.kind === 'hollow' ? p.stats.updates : 0), 0),
          encodedBytes: replaced.reduce((s, p) => s + p.encodedSizeBytes, 0),
        }
      : inputStats(req.inputs.slice(planned.first, planned.last + 1))
  return { output, input, inputs, index, count }
}

/** Chunks with less input than this (or than the target size) are merged by one worker. */
export const SPLIT_MIN_BYTES = 8 * 1024 * 1024

/** The encoded bytes of every part of a chunk's runs. */
function chunkInputBytes(chunk: { readonly runs: readonly PlannedRun[] }): number {
  return chunk.runs.reduce((s, r) => s + r.parts.reduce((t, p) => t + p.encodedSizeBytes, 0), 0)
}

/**
 * How many workers merge one chunk: two when the pool has them and the memory bound leaves room
 * for a second output in progress after at least two runs of the largest size (bound ≥ 8 × target);
 * otherwise one, as persist does.
 */
function mergingWorkers(cfg: ConfigValues, poolSize: number): number {
  const target = Math.max(1, cfg.persist_blob_target_size)
  return poolSize >= 2 && cfg.persist_compaction_memory_bound_bytes >= 8 * target ? 2 : 1
}

/** What the worker needs to merge one key range of a chunk. */
function taskPayload(env: ChunkEnv, planned: PlannedChunk, range: KeyRangeTask): MergeTaskPayload {
  const { req, ctx, schema, cfg, order, target } = env
  return {
    task: {
      timeKind: req.tk.name,
      since: req.desc.since,
      asOf: null,
      runs: range.runs.map((r) => {
        const { lower, upper } = registered(req, r.run)
        return { order: r.run.meta.order, parts: r.parts.map((i) => ({ registeredLower: lower, registeredUpper: upper, encodedSizeBytes: (r.run.parts[i] as BatchPart).encodedSizeBytes })) }
      }),
      keyType: schema.key,
      valType: schema.val,
      order,
      targetSizeBytes: target,
      yieldAfterUpdates: cfg.compaction_yield_after_n_updates,
      keyRange: range.keyRange,
    },
    // NB: each part records the desc it was written for: the chunk's with incremental compaction
    // (what it is applied as), the request's otherwise.
    output: { kind: 'parts', desc: planned.desc, schemaId: ctx.schema.schemaId, reuseBuffers: true },
  }
}

/** The registered description of the input batch a planned run came from. */
function registered(req: ResolvedRequest, r: PlannedRun): { lower: HollowBatch['desc']['lower']; upper: HollowBatch['desc']['upper'] } {
  const desc = (req.inputs[r.input] as HollowBatch).desc
  return { lower: desc.lower, upper: desc.upper }
}

