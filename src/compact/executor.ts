/**
 * Stage D of a compaction (persist's `compact`, PERSIST_SEMANTICS.md §4.5): memory reservations,
 * `order_runs`, `chunk_runs`, then each chunk merged in a worker thread with its outputs uploaded
 * as they come, and the output batch assembled (one run per chunk). Also the dry-run plan.
 */
import { KEY_LOWER_MAX_BYTES, type BatchPart, type HollowBatch, type HollowPart, type RunMeta, type RunOrder } from '../core/batch.js'
import { newPartId, type ShardId, type WriterKey } from '../core/ids.js'
import { blobKey, partialBatchKey, type PartialBatchKey } from '../core/paths.js'
import type { DataType } from '../columnar/data-type.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import type { Metrics } from '../metrics/metrics.js'
import type { DryRunPlan, ResolvedRequest } from './compaction.js'
import type { ExecuteContext } from './compactor-port.js'
import { keepBuffer, runMergeTask } from './merge-task.js'
import { chunkRuns, heuristic, maxOutstandingParts, orderRuns, reserveMemory, selectSchema, timeoutMs, type Chunk, type PlannedRun } from './plan.js'
import type { WorkerPool } from './worker-pool.js'

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

  async function execute(req: ResolvedRequest, cfg: ConfigValues, ctx: ExecuteContext): Promise<{ output: HollowBatch }> {
    const written: PartialBatchKey[] = []
    try {
      const target = Math.max(1, cfg.persist_blob_target_size)
      const { runReservedBytes } = reserveMemory(cfg.persist_compaction_memory_bound_bytes, target, mergingWorkers(cfg, deps.pool().size))
      const order = cfg.persist_batch_preferred_order
      const ordered = orderRuns(req.inputs, order)
      const plan = chunkRuns(ordered, runReservedBytes, target)
      m.memoryViolations.inc(plan.memoryViolations)
      const schema = await deps.lookupSchema(req.shardId, ctx.schema.schemaId)
      const progress = { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 0, chunksTotal: plan.chunks.length }
      ctx.onProgress(progress)
      const parts: BatchPart[] = []
      const runSplits: number[] = []
      const runMeta: RunMeta[] = []
      let len = 0
      for (const chunk of plan.chunks) {
        if (ctx.signal.aborted) throw ctx.signal.reason
        m.chunksCompacted.inc()
        m.runsCompacted.inc(chunk.runs.length)
        const base = { ...progress }
        const started = performance.now()
        const ranges = splitByKey(chunk, order, mergingWorkers(cfg, deps.pool().size))
        const shared = ranges.length > 1 ? new SharedParts() : null
        const outstanding = maxOutstandingParts(runReservedBytes, chunk.memoryBytes, target)
        const taskProgress = ranges.map(() => ({ updatesRead: 0, bytesRead: 0, updatesWritten: 0 }))
        const results = await Promise.all(
          ranges.map(async (range, t) => {
            const taskParts: HollowPart[] = []
            const stats = await runMergeTask(
              deps.pool(),
              {
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
                output: { kind: 'parts', desc: req.desc, schemaId: ctx.schema.schemaId },
              },
              {
                partSizes: range.runs.map((r) => r.parts.map((i) => (r.run.parts[i] as BatchPart).encodedSizeBytes)),
                prefetchBudgetBytes: (2 * target) / ranges.length,
                maxOutstanding: Math.max(1, Math.floor(outstanding / ranges.length)),
                fetch: (run, part) => {
                  const r = range.runs[run] as RangeRun
                  const p = r.run.parts[r.parts[part] as number] as BatchPart
                  return shared === null ? fetchPart(deps.blob, req.shardId, p) : shared.get(p, range.users(r, part), () => fetchPart(deps.blob, req.shardId, p))
                },
                onOutput: async (out) => {
                  const key = partialBatchKey(deps.writerKey, newPartId())
                  let keyLower = out.keyLower ?? new Uint8Array(0)
                  if (keyLower.byteLength > KEY_LOWER_MAX_BYTES) {
                    keyLower = keyLower.subarray(0, KEY_LOWER_MAX_BYTES)
                    metrics.compactionWrites.keyLowerTooBig.inc()
                  }
                  const part: HollowPart = {
                    kind: 'hollow',
                    key,
                    encodedSizeBytes: out.bytes.byteLength,
                    keyLower: Buffer.from(keyLower.buffer, keyLower.byteOffset, keyLower.byteLength).toString('base64'),
                    diffsSum: out.diffsSum ?? null,
                    schemaId: ctx.schema.schemaId,
                    stats: { updates: out.rows },
                  }
                  taskParts.push(part)
                  written.push(key)
                  deps.pinOutput?.(req.shardId, key)
                  const t0 = performance.now()
                  await deps.blob.set(blobKey(req.shardId, key), out.bytes, { signal: ctx.signal })
                  metrics.compactionWrites.writeBatchPartSeconds.inc((performance.now() - t0) / 1000)
                  metrics.compactionWrites.bytes.inc(out.bytes.byteLength)
                  metrics.compactionWrites.goodbytes.inc(out.goodBytes ?? 0)
                  metrics.compactionWrites.stepStatsSeconds.inc(out.statsSeconds ?? 0)
                  metrics.compactionWrites.writeBatchOrder.inc({ order })
                  progress.bytesWritten += out.bytes.byteLength
                  progress.partsWritten += 1
                  ctx.onProgress({ ...progress })
                },
                onProgress: (p) => {
                  taskProgress[t] = p
                  progress.updatesRead = base.updatesRead + taskProgress.reduce((s, x) => s + x.updatesRead, 0)
                  progress.bytesRead = base.bytesRead + taskProgress.reduce((s, x) => s + x.bytesRead, 0)
                  progress.updatesWritten = base.updatesWritten + taskProgress.reduce((s, x) => s + x.updatesWritten, 0)
                  ctx.onProgress({ ...progress })
                },
                onPrefetchPlan: (all) => {
                  if (!all) m.notAllPrefetched.inc()
                },
                onPartTaken: (prefetched) => {
                  metrics.consolidation.partsFetched.inc()
                  if (prefetched) m.partsPrefetched.inc()
                  else m.partsWaited.inc()
                },
                onWriteStall: () => metrics.compactionWrites.writeStall.inc(),
                signal: ctx.signal,
              },
            )
            return { stats, parts: taskParts }
          }),
        )
        const fetchSeconds = results.reduce((s, r) => s + r.stats.fetchSeconds, 0)
        m.stepSeconds.inc({ step: 'part_fetch' }, fetchSeconds)
        m.stepSeconds.inc({ step: 'heap_population' }, 0)
        metrics.compactionWrites.stepPartWritingSeconds.inc((performance.now() - started) / 1000)
        // NB: bytes read count a part shared by both halves once per half.
        progress.updatesRead = base.updatesRead + results.reduce((s, r) => s + r.stats.updatesRead, 0)
        progress.bytesRead = base.bytesRead + results.reduce((s, r) => s + r.stats.bytesRead, 0)
        const chunkLen = results.reduce((s, r) => s + r.stats.updatesWritten, 0)
        progress.updatesWritten = base.updatesWritten + chunkLen
        progress.chunksDone += 1
        ctx.onProgress({ ...progress })
        // The halves' outputs, in key order, are one sorted run.
        const chunkParts = results.flatMap((r) => r.parts)
        if (chunkParts.length === 0) continue
        if (parts.length > 0) runSplits.push(parts.length)
        parts.push(...chunkParts)
        runMeta.push({ order, schemaId: ctx.schema.schemaId })
        len += chunkLen
      }
      return { output: { desc: req.desc, len, parts, runSplits, runMeta } }
    } catch (err) {
      throw new ExecuteError(err, written)
    }
  }

  function plan(req: ResolvedRequest, cfg: ConfigValues): DryRunPlan {
    const target = Math.max(1, cfg.persist_blob_target_size)
    const { runReservedBytes } = reserveMemory(cfg.persist_compaction_memory_bound_bytes, target, mergingWorkers(cfg, deps.pool().size))
    const ordered = orderRuns(req.inputs, cfg.persist_batch_preferred_order)
    const chunks = chunkRuns(ordered, runReservedBytes, target)
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
        maxPartBytes: r.parts.reduce((s, p) => Math.max(s, p.encodedSizeBytes), 0),
        exploded: r.exploded,
      })),
      chunks: chunks.chunks.map((c) => ({ runs: c.runs.map((r) => index.get(r) as number), memoryBytes: c.memoryBytes })),
      memoryViolations: chunks.memoryViolations,
    }
  }

  return { execute, plan }
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

/** One run as one half of a split chunk sees it: the indices of the parts it needs. */
interface RangeRun {
  readonly run: PlannedRun
  readonly parts: readonly number[]
}

interface KeyRangeTask {
  readonly keyRange: { readonly lower: Uint8Array | null; readonly upper: Uint8Array | null } | undefined
  readonly runs: readonly RangeRun[]
  /** How many halves need part `part` of run `run` (for releasing shared bytes). */
  users(run: RangeRun, part: number): number
}

/**
 * Splits a chunk into two key ranges at the parts' key lower that best balances their bytes, so two workers merge
 * it at once; each half reads only the parts whose key span reaches into its range. Keys equal to
 * the split key all go to the upper half, so a (key, value) is never split. One task (no split)
 * when there is one worker or no usable key lowers (runs in another order, legacy parts).
 * NB: a part spanning the split key is read by both halves, from one shared copy.
 */
function splitByKey(chunk: Chunk, order: RunOrder, workers: number): KeyRangeTask[] {
  const all = (): KeyRangeTask => ({ keyRange: undefined, runs: chunk.runs.map((run) => ({ run, parts: run.parts.map((_, i) => i) })), users: () => 1 })
  if (workers < 2) return [all()]
  const lowerOf = (run: PlannedRun, i: number): Uint8Array | null => {
    const p = run.parts[i]
    if (p === undefined || p.kind !== 'hollow' || p.keyLower === '' || run.exploded || (run.meta.order ?? 'codec') !== order) return null
    return Buffer.from(p.keyLower, 'base64')
  }
  const candidates: Uint8Array[] = []
  for (const run of chunk.runs) for (let i = 1; i < run.parts.length; i++) {
    const k = lowerOf(run, i)
    if (k !== null) candidates.push(k)
  }
  if (candidates.length === 0) return [all()]
  // The split that best balances the bytes on either side: a part counts below a candidate when
  // the next part starts at or before it, above when it starts at or after it, half otherwise.
  const bytesBelow = (split: Uint8Array): number => {
    let below = 0
    for (const run of chunk.runs) {
      for (let i = 0; i < run.parts.length; i++) {
        const size = (run.parts[i] as BatchPart).encodedSizeBytes
        const lo = i === 0 ? null : lowerOf(run, i)
        const hi = lowerOf(run, i + 1)
        if (hi !== null && Buffer.compare(hi, split) <= 0) below += size
        else if (lo === null || Buffer.compare(lo, split) < 0) below += size / 2
      }
    }
    return below
  }
  const total = chunk.runs.reduce((s, r) => s + r.parts.reduce((t, p) => t + p.encodedSizeBytes, 0), 0)
  let split = candidates[0] as Uint8Array
  let best = Infinity
  for (const c of candidates) {
    const imbalance = Math.abs(2 * bytesBelow(c) - total)
    if (imbalance < best) {
      best = imbalance
      split = c
    }
  }
  const needs = (run: PlannedRun, i: number, half: 0 | 1): boolean => {
    // Part i holds keys in [lower_i, lower_{i+1}] (equal keys may straddle a part boundary).
    const lo = i === 0 ? null : lowerOf(run, i)
    const hi = lowerOf(run, i + 1)
    // NB: a key lower cut to KEY_LOWER_MAX_BYTES is a prefix P of the next part's first key K, and
    // the split key (itself a stored key lower) is at most that long: nothing that short lies
    // strictly between P and K, so comparing the split with P answers as comparing it with K would.
    const known = (run.parts.length === 1 || i === 0 || lo !== null) && (i + 1 === run.parts.length || hi !== null)
    if (!known) return true
    return half === 0 ? lo === null || Buffer.compare(lo, split) < 0 : hi === null || Buffer.compare(hi, split) >= 0
  }
  const halves = ([0, 1] as const).map((half) => ({
    keyRange: half === 0 ? { lower: null, upper: split } : { lower: split, upper: null },
    runs: chunk.runs.map((run) => ({ run, parts: run.parts.map((_, i) => i).filter((i) => needs(run, i, half)) })),
  }))
  const users = (run: RangeRun, part: number): number => {
    const i = run.parts[part] as number
    return (needs(run.run, i, 0) ? 1 : 0) + (needs(run.run, i, 1) ? 1 : 0)
  }
  return halves.map((h) => ({ ...h, users }))
}

/**
 * Parts fetched once and read by both halves of a split chunk, held in shared memory until every
 * half that needs one has taken it.
 */
class SharedParts {
  readonly #entries = new Map<BatchPart, { bytes: Promise<Uint8Array>; left: number }>()

  get(part: BatchPart, users: number, fetch: () => Promise<Uint8Array>): Promise<Uint8Array> {
    let entry = this.#entries.get(part)
    if (entry === undefined) {
      const bytes = fetch().then((b) => {
        const sab = new SharedArrayBuffer(b.byteLength)
        const view = new Uint8Array(sab)
        view.set(b)
        return view
      })
      entry = { bytes, left: users }
      this.#entries.set(part, entry)
    }
    if (--entry.left <= 0) this.#entries.delete(part)
    return entry.bytes
  }
}

/** The registered description of the input batch a planned run came from. */
function registered(req: ResolvedRequest, r: PlannedRun): { lower: HollowBatch['desc']['lower']; upper: HollowBatch['desc']['upper'] } {
  const desc = (req.inputs[r.input] as HollowBatch).desc
  return { lower: desc.lower, upper: desc.upper }
}

/** A part's bytes: from blob for hollow parts, from state for inline ones. A missing blob is an error. */
export async function fetchPart(blob: Blob, shardId: ShardId, part: BatchPart): Promise<Uint8Array> {
  if (part.kind === 'inline') return keepBuffer(part.updates)
  const bytes = await blob.get(blobKey(shardId, part.key))
  if (bytes === null) throw new AppError('INTERNAL', `part ${part.key} of shard ${shardId} is missing from blob storage`)
  return bytes
}

