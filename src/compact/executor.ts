/**
 * Stage D of a compaction (persist's `compact`; docs/compaction.md#stage-d-merging-the-runs): memory reservations,
 * `order_runs`, `chunk_runs`, then each chunk merged in a worker thread with its outputs uploaded
 * as they come, and the output batch assembled (one run per chunk). Also the dry-run plan.
 */
import { KEY_LOWER_MAX_BYTES, type BatchPart, type HollowBatch, type HollowPart, type RunMeta } from '../core/batch.js'
import { newPartId, type ShardId, type WriterKey } from '../core/ids.js'
import { blobKey, partialBatchKey, type PartialBatchKey } from '../core/paths.js'
import type { DataType } from '../columnar/data-type.js'
import type { SortOrder } from '../columnar/sort-key.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import type { Metrics } from '../metrics/metrics.js'
import type { MergePlan, ResolvedRequest } from './compaction.js'
import type { ExecuteContext } from './compactor-port.js'
import { sampleKeys, splitByKey, splittable, type KeyRangeTask, type RangeRun } from '../engine/key-split.js'
import { WINDOW_MIN_PART_BYTES, windowChunk, type WindowedChunk } from '../engine/windows.js'
import { startMergeTask, type MergeTaskOutput } from '../engine/merge-task.js'
import { SharedSlots } from '../engine/shared-slots.js'
import type { MergeRunsStats } from '../engine/merge-runs.js'
import type { MergeTaskPayload } from '../engine/protocol.js'
import { chunkRuns, heuristic, maxOutstandingParts, reserveMemory, runCost, selectSchema, timeoutMs } from './plan.js'
import { orderRuns, type PlannedRun } from '../engine/runs.js'
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

  async function execute(req: ResolvedRequest, cfg: ConfigValues, ctx: ExecuteContext): Promise<{ output: HollowBatch }> {
    const written: PartialBatchKey[] = []
    // Stops every task on the caller's abort or on the first task's failure.
    const abort = new AbortController()
    const signal = AbortSignal.any([ctx.signal, abort.signal])
    // Each chunk's tasks' results, in chunk order.
    const chunks: Promise<{ stats: MergeRunsStats; parts: HollowPart[] }[]>[] = []
    // Marks the input slots this compaction borrows.
    const owner = {}

    /** Uploads one output part (pinned against GC first) and returns its hollow part. */
    const upload = async (out: MergeTaskOutput): Promise<HollowPart> => {
      const key = partialBatchKey(deps.writerKey, newPartId())
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

    try {
      const target = Math.max(1, cfg.persist_blob_target_size)
      const workers = mergingWorkers(cfg, deps.pool().size)
      const { runReservedBytes } = reserveMemory(cfg.persist_compaction_memory_bound_bytes, target, workers)
      const order = cfg.persist_batch_preferred_order
      const ordered = orderRuns(req.inputs, order)
      const plan = chunkRuns(ordered, runReservedBytes, target, { order, minPartBytes: deps.windowMinBytes ?? WINDOW_MIN_PART_BYTES })
      m.memoryViolations.inc(plan.memoryViolations)
      const schema = await deps.lookupSchema(req.shardId, ctx.schema.schemaId)
      const progress = { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 0, chunksTotal: plan.chunks.length }
      ctx.onProgress(progress)
      // Every task's latest counts; the progress sums them.
      const taskCounts: { updatesRead: number; bytesRead: number; updatesWritten: number }[] = []
      const report = (): void => {
        progress.updatesRead = taskCounts.reduce((s, x) => s + x.updatesRead, 0)
        progress.bytesRead = taskCounts.reduce((s, x) => s + x.bytesRead, 0)
        progress.updatesWritten = taskCounts.reduce((s, x) => s + x.updatesWritten, 0)
        ctx.onProgress({ ...progress })
      }
      // The current chunk's windows of large parts (windows.ts); other parts are fetched whole.
      let windowed: WindowedChunk | null = null
      const cache = new PartCache((p) => {
        const window = windowed?.windows.get(p)
        const alloc = (size: number): Uint8Array => inputs.acquire(size, owner)
        return window !== undefined ? window.fetch(alloc) : fetchPart(deps.blob, req.shardId, p, alloc)
      })
      for (const planned of plan.chunks) {
        if (signal.aborted) throw signal.reason
        m.chunksCompacted.inc()
        m.runsCompacted.inc(planned.runs.length)
        const started = performance.now()
        windowed = await windowChunk(planned, { blob: deps.blob, shardId: req.shardId, order, ...(deps.windowMinBytes === undefined ? {} : { minPartBytes: deps.windowMinBytes }), signal })
        const { chunk, windows } = windowed
        // The first part of every run is needed first in any case: fetch it, and sample its keys
        // for the split.
        const sample = async (run: PlannedRun): Promise<Uint8Array[]> =>
          run.parts.length > 0 && splittable(run, order, ctx.schema.schemaId) ? sampleKeys(await cache.fetch(run.parts[0] as BatchPart), order) : []
        // NB: a chunk smaller than what one output part holds is not split: two halves would write
        // two parts where one does, for a merge too short for a second worker to pay off.
        const chunkWorkers = chunkInputBytes(chunk) >= (deps.splitMinBytes ?? Math.max(SPLIT_MIN_BYTES, target)) ? workers : 1
        const samples = chunkWorkers > 1 ? await Promise.all(chunk.runs.map(sample)) : []
        const split = splitByKey(chunk, order, ctx.schema.schemaId, chunkWorkers, samples)
        for (const run of chunk.runs) run.parts.forEach((p, i) => cache.expect(p, split.sharers(run, i)))
        const outstanding = maxOutstandingParts(runReservedBytes, chunk.memoryBytes, target)
        const handles = split.tasks.map((range) => {
          const counts = { updatesRead: 0, bytesRead: 0, updatesWritten: 0 }
          taskCounts.push(counts)
          const taskParts: Promise<HollowPart>[] = []
          const handle = startMergeTask(deps.pool(), taskPayload(req, ctx, schema, range, cfg, order, target), {
            partSizes: range.runs.map((r) => r.parts.map((i) => (r.run.parts[i] as BatchPart).encodedSizeBytes)),
            prefetchBudgetBytes: (2 * target) / split.tasks.length,
            maxOutstanding: Math.max(1, Math.floor(outstanding / split.tasks.length)),
            fetch: (run, part) => {
              const r = range.runs[run] as RangeRun
              return cache.take(r.run.parts[r.parts[part] as number] as BatchPart)
            },
            onOutput: async (out) => {
              // NB: pushed in output order before the upload ends, so the parts stay in key order.
              const part = upload(out)
              taskParts.push(part)
              await part
              progress.bytesWritten += out.bytes.byteLength
              progress.partsWritten += 1
              ctx.onProgress({ ...progress })
            },
            onProgress: (p) => {
              Object.assign(counts, p)
              report()
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
          progress.chunksDone += 1
          report()
          return results
        })
        results.catch((err: unknown) => abort.abort(err))
        chunks.push(results)
        // The next chunk starts once both workers are done with this one, while its last outputs
        // may still be uploading; waiting for both keeps one chunk's input parts in memory at once.
        await Promise.race([Promise.all(handles.map((h) => h.handle.workerDone)), results])
      }
      const parts: BatchPart[] = []
      const runSplits: number[] = []
      const runMeta: RunMeta[] = []
      let len = 0
      for (const results of chunks) {
        // The halves' outputs, in key order, are one sorted run.
        const done = await results
        const chunkParts = done.flatMap((r) => r.parts)
        if (chunkParts.length === 0) continue
        if (parts.length > 0) runSplits.push(parts.length)
        parts.push(...chunkParts)
        runMeta.push({ order, schemaId: ctx.schema.schemaId })
        len += done.reduce((s, r) => s + r.stats.updatesWritten, 0)
      }
      return { output: { desc: req.desc, len, parts, runSplits, runMeta } }
    } catch (err) {
      abort.abort(err)
      // Let every started task settle, so that `written` names every part that may exist.
      await Promise.allSettled(chunks)
      throw new ExecuteError(signal.reason ?? err, written)
    } finally {
      droppedSlots += inputs.dropLent(owner)
    }
  }

  function plan(req: ResolvedRequest, cfg: ConfigValues): MergePlan {
    const target = Math.max(1, cfg.persist_blob_target_size)
    const { runReservedBytes } = reserveMemory(cfg.persist_compaction_memory_bound_bytes, target, mergingWorkers(cfg, deps.pool().size))
    const ordered = orderRuns(req.inputs, cfg.persist_batch_preferred_order)
    const chunks = chunkRuns(ordered, runReservedBytes, target, { order: cfg.persist_batch_preferred_order, minPartBytes: deps.windowMinBytes ?? WINDOW_MIN_PART_BYTES })
    const index = new Map(ordered.map((r, i) => [r, i]))
    const schema = selectSchema(req.inputs, req.knownSchemaIds, req.writerSchemaId, cfg.persist_compaction_use_most_recent_schema)
    return {
      heuristic: heuristic(req.inputs, {
        minInputs: cfg.persist_compaction_heuristic_min_inputs,
        minParts: cfg.persist_compaction_heuristic_min_parts,
        minUpdates: cfg.persist_compaction_heuristic_min_updates,
      }),
      timeoutMs: timeoutMs(req.inputs, cfg.persist_compaction_minimum_timeout),
      schemaSelection: schema.selection,
      schemaId: schema.schemaId,
      runs: ordered.map((r) => ({
        input: r.input,
        order: r.meta.order,
        schemaId: r.meta.schemaId,
        parts: r.parts.length,
        encodedBytes: r.parts.reduce((s, p) => s + p.encodedSizeBytes, 0),
        maxPartBytes: runCost(r, { order: cfg.persist_batch_preferred_order, minPartBytes: deps.windowMinBytes ?? WINDOW_MIN_PART_BYTES }),
        exploded: r.exploded,
      })),
      chunks: chunks.chunks.map((c) => ({ runs: c.runs.map((r) => index.get(r) as number), memoryBytes: c.memoryBytes })),
      memoryViolations: chunks.memoryViolations,
    }
  }

  /** The input slot pool: slots kept, slots still held, slots dropped while held (for tests). */
  function inputSlots(): { size: number; lent: number; dropped: number } {
    return { size: inputs.size, lent: inputs.lent, dropped: droppedSlots }
  }

  return { execute, plan, inputSlots }
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
function taskPayload(req: ResolvedRequest, ctx: ExecuteContext, schema: { readonly key: DataType; readonly val: DataType }, range: KeyRangeTask, cfg: ConfigValues, order: SortOrder, target: number): MergeTaskPayload {
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
    output: { kind: 'parts', desc: req.desc, schemaId: ctx.schema.schemaId, reuseBuffers: true },
  }
}

/** The registered description of the input batch a planned run came from. */
function registered(req: ResolvedRequest, r: PlannedRun): { lower: HollowBatch['desc']['lower']; upper: HollowBatch['desc']['upper'] } {
  const desc = (req.inputs[r.input] as HollowBatch).desc
  return { lower: desc.lower, upper: desc.upper }
}

