/**
 * Stage D of a compaction (persist's `compact`, PERSIST_SEMANTICS.md §4.5): memory reservations,
 * `order_runs`, `chunk_runs`, then each chunk merged in a worker thread with its outputs uploaded
 * as they come, and the output batch assembled (one run per chunk). Also the dry-run plan.
 */
import { type BatchPart, type HollowBatch, type HollowPart, type RunMeta } from '../core/batch.js'
import { newPartId, type ShardId, type WriterKey } from '../core/ids.js'
import { blobKey, partialBatchKey, type PartialBatchKey } from '../core/paths.js'
import type { DataType } from '../columnar/data-type.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import type { Metrics } from '../metrics/metrics.js'
import type { DryRunPlan, ResolvedRequest } from './compaction.js'
import type { ExecuteContext } from './compactor.js'
import { runMergeTask } from './merge-task.js'
import { chunkRuns, heuristic, maxOutstandingParts, orderRuns, reserveMemory, selectSchema, timeoutMs, type PlannedRun } from './plan.js'
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
      const { runReservedBytes } = reserveMemory(cfg.persist_compaction_memory_bound_bytes, target)
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
        const chunkParts: HollowPart[] = []
        const started = performance.now()
        const stats = await runMergeTask(
          deps.pool(),
          {
            task: {
              timeKind: req.tk.name,
              since: req.desc.since,
              asOf: null,
              runs: chunk.runs.map((r) => ({ order: r.meta.order, parts: r.parts.map((p) => ({ registeredLower: registered(req, r).lower, registeredUpper: registered(req, r).upper, encodedSizeBytes: p.encodedSizeBytes })) })),
              keyType: schema.key,
              valType: schema.val,
              order,
              targetSizeBytes: target,
              yieldAfterUpdates: cfg.compaction_yield_after_n_updates,
            },
            output: { kind: 'parts', desc: req.desc, schemaId: ctx.schema.schemaId },
          },
          {
            partSizes: chunk.runs.map((r) => r.parts.map((p) => p.encodedSizeBytes)),
            prefetchBudgetBytes: 2 * target,
            maxOutstanding: maxOutstandingParts(runReservedBytes, chunk.memoryBytes, target),
            fetch: (run, part) => fetchPart(deps.blob, req.shardId, (chunk.runs[run] as PlannedRun).parts[part] as BatchPart),
            onOutput: async (out) => {
              const key = partialBatchKey(deps.writerKey, newPartId())
              const part: HollowPart = {
                kind: 'hollow',
                key,
                encodedSizeBytes: out.bytes.byteLength,
                keyLower: Buffer.from(out.keyLower ?? new Uint8Array(0)).toString('base64'),
                diffsSum: out.diffsSum ?? null,
                schemaId: ctx.schema.schemaId,
                stats: { updates: out.rows },
              }
              chunkParts.push(part)
              written.push(key)
              deps.pinOutput?.(req.shardId, key)
              const t0 = performance.now()
              await deps.blob.set(blobKey(req.shardId, key), out.bytes, { signal: ctx.signal })
              metrics.compactionWrites.writeBatchPartSeconds.inc((performance.now() - t0) / 1000)
              metrics.compactionWrites.bytes.inc(out.bytes.byteLength)
              metrics.compactionWrites.writeBatchOrder.inc({ order })
              progress.bytesWritten += out.bytes.byteLength
              progress.partsWritten += 1
              ctx.onProgress({ ...progress })
            },
            onProgress: (p) => {
              progress.updatesRead = base.updatesRead + p.updatesRead
              progress.bytesRead = base.bytesRead + p.bytesRead
              progress.updatesWritten = base.updatesWritten + p.updatesWritten
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
        m.stepSeconds.inc({ step: 'part_fetch' }, stats.fetchSeconds)
        m.stepSeconds.inc({ step: 'heap_population' }, 0)
        metrics.compactionWrites.stepPartWritingSeconds.inc((performance.now() - started) / 1000)
        progress.updatesRead = base.updatesRead + stats.updatesRead
        progress.bytesRead = base.bytesRead + stats.bytesRead
        progress.updatesWritten = base.updatesWritten + stats.updatesWritten
        progress.chunksDone += 1
        ctx.onProgress({ ...progress })
        if (chunkParts.length === 0) continue
        if (parts.length > 0) runSplits.push(parts.length)
        parts.push(...chunkParts)
        runMeta.push({ order, schemaId: ctx.schema.schemaId })
        len += stats.updatesWritten
      }
      return { output: { desc: req.desc, len, parts, runSplits, runMeta } }
    } catch (err) {
      throw new ExecuteError(err, written)
    }
  }

  function plan(req: ResolvedRequest, cfg: ConfigValues): DryRunPlan {
    const target = Math.max(1, cfg.persist_blob_target_size)
    const { runReservedBytes } = reserveMemory(cfg.persist_compaction_memory_bound_bytes, target)
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

/** The registered description of the input batch a planned run came from. */
function registered(req: ResolvedRequest, r: PlannedRun): { lower: HollowBatch['desc']['lower']; upper: HollowBatch['desc']['upper'] } {
  const desc = (req.inputs[r.input] as HollowBatch).desc
  return { lower: desc.lower, upper: desc.upper }
}

/** A part's bytes: from blob for hollow parts, from state for inline ones. A missing blob is an error. */
export async function fetchPart(blob: Blob, shardId: ShardId, part: BatchPart): Promise<Uint8Array> {
  if (part.kind === 'inline') return part.updates
  const bytes = await blob.get(blobKey(shardId, part.key))
  if (bytes === null) throw new AppError('INTERNAL', `part ${part.key} of shard ${shardId} is missing from blob storage`)
  return bytes
}

