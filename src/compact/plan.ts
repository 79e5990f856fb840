/**
 * The pure planning steps of a compaction (docs/compaction.md#the-pipeline): heuristics,
 * `validate_req`, timeout, schema selection, fast-path eligibility, memory reservations,
 * `order_runs` and `chunk_runs`. No I/O: the compactor runs these, the dry-run API prints them.
 */
import * as ac from '../core/antichain.js'
import { maxPartBytes, type HollowBatch, type RunOrder } from '../core/batch.js'
import type { Description } from '../core/description.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { Chunk, PlannedRun } from '../engine/runs.js'

export const MIB = 1024 * 1024

export interface HeuristicConfig {
  readonly minInputs: number
  readonly minParts: number
  readonly minUpdates: number
}

export interface HeuristicVerdict {
  readonly inputs: number
  readonly parts: number
  readonly updates: number
  readonly wouldCompact: boolean
}

/** Stage A's gate: any one of the three thresholds met is enough. */
export function heuristic(inputs: readonly HollowBatch[], cfg: HeuristicConfig): HeuristicVerdict {
  const parts = inputs.reduce((s, b) => s + b.parts.length, 0)
  const updates = inputs.reduce((s, b) => s + b.len, 0)
  const wouldCompact = inputs.length >= cfg.minInputs || parts >= cfg.minParts || updates >= cfg.minUpdates
  return { inputs: inputs.length, parts, updates, wouldCompact }
}

/**
 * `validate_req`: inputs consecutive from `desc.lower` to `desc.upper`, and the output since not
 * strictly behind any input's since (an incomparable since passes, as upstream). Returns the
 * first problem as a sentence, or null.
 */
export function validateRequest(tk: TimestampKind, desc: Description, inputs: readonly HollowBatch[]): string | null {
  if (inputs.length === 0) return 'a compaction needs at least one input batch'
  let frontier = desc.lower
  for (const [i, input] of inputs.entries()) {
    if (ac.frontierLessThan(tk, desc.since, input.desc.since)) {
      return `output since ${ac.format(tk, desc.since)} must be at or in advance of input ${i}'s since ${ac.format(tk, input.desc.since)}`
    }
    if (!ac.equals(tk, frontier, input.desc.lower)) {
      return `invalid merge of non-consecutive batches: ${ac.format(tk, frontier)} vs input ${i}'s lower ${ac.format(tk, input.desc.lower)}`
    }
    frontier = input.desc.upper
  }
  if (!ac.equals(tk, frontier, desc.upper)) {
    return `invalid merge of non-consecutive batches: ${ac.format(tk, frontier)} vs the request's upper ${ac.format(tk, desc.upper)}`
  }
  return null
}

/** `max(minimum timeout, 1 s per whole MiB of input)`, in milliseconds. */
export function timeoutMs(inputs: readonly HollowBatch[], minimumTimeoutMs: number): number {
  const bytes = inputs.reduce((s, b) => s + b.parts.reduce((t, p) => t + p.encodedSizeBytes, 0), 0)
  return Math.max(minimumTimeoutMs, Math.floor(bytes / MIB) * 1000)
}

export const SCHEMA_SELECTIONS = ['recent_schema', 'disabled', 'no_schema'] as const
export type SchemaSelectionLabel = (typeof SCHEMA_SELECTIONS)[number]

export interface SchemaSelection {
  readonly selection: SchemaSelectionLabel
  readonly schemaId: number
}

/**
 * [classic] schema choice: the newest schema id among the inputs' runs, when the shard knows it
 * and `useMostRecentSchema` is on; else the writer's schema. An id the shard does not know counts
 * as no candidate.
 */
export function selectSchema(inputs: readonly HollowBatch[], knownSchemaIds: ReadonlySet<number>, writerSchemaId: number, useMostRecentSchema: boolean): SchemaSelection {
  let candidate: number | null = null
  for (const b of inputs) {
    for (const m of b.runMeta) {
      if (m.schemaId !== null && (candidate === null || m.schemaId > candidate)) candidate = m.schemaId
    }
  }
  if (candidate === null || !knownSchemaIds.has(candidate)) return { selection: 'no_schema', schemaId: writerSchemaId }
  if (!useMostRecentSchema) return { selection: 'disabled', schemaId: writerSchemaId }
  return { selection: 'recent_schema', schemaId: candidate }
}

/** Exactly one input has data, in a single run, already compacted (since ≠ minimum): metric only. */
export function fastPathEligible(tk: TimestampKind, inputs: readonly HollowBatch[]): boolean {
  const nonEmpty = inputs.filter((b) => b.len > 0)
  if (nonEmpty.length !== 1) return false
  const only = nonEmpty[0] as HollowBatch
  return only.runSplits.length === 0 && !ac.equals(tk, only.desc.since, ac.minimumFrontier(tk))
}

export interface MemoryReservation {
  readonly inProgressBytes: number
  readonly runReservedBytes: number
}

/**
 * `in_progress = 2 × target` per merging worker, `run_reserved = bound − in_progress` (bound ≥ 4 ×
 * target is a config rule). A chunk split between two workers has two outputs in progress at once,
 * so it reserves twice (persist merges a chunk on one thread: `mergingWorkers` 1).
 */
export function reserveMemory(memoryBoundBytes: number, targetSizeBytes: number, mergingWorkers = 1): MemoryReservation {
  const inProgressBytes = 2 * targetSizeBytes * Math.max(1, mergingWorkers)
  return { inProgressBytes, runReservedBytes: Math.max(0, memoryBoundBytes - inProgressBytes) }
}

export interface ChunkPlan {
  readonly chunks: readonly Chunk[]
  /** Chunks forced over `run_reserved` to keep at least two runs together. */
  readonly memoryViolations: number
}

/**
 * `chunk_runs`: greedy in run order. Each run costs its largest part (or the target size when it
 * has none). A chunk closes when the next run would overflow `runReservedBytes`, unless it holds a
 * single run: then the next run joins anyway (a memory violation), so every chunk but possibly the
 * last merges at least two runs and repeated compaction converges.
 */
export function chunkRuns(ordered: readonly PlannedRun[], runReservedBytes: number, targetSizeBytes: number, windows: WindowedReads | null = null): ChunkPlan {
  const cost = (r: PlannedRun): number => (r.parts.length === 0 ? targetSizeBytes : windows === null ? maxPartBytes(r) : runCost(r, windows))
  const chunks: Chunk[] = []
  let violations = 0
  let current: PlannedRun[] = []
  let usage = 0
  for (let i = 0; i < ordered.length; i++) {
    const run = ordered[i] as PlannedRun
    current.push(run)
    usage += cost(run)
    const next = ordered[i + 1]
    if (next === undefined) break
    if (usage + cost(next) <= runReservedBytes) continue
    if (current.length === 1) {
      violations++
      continue
    }
    chunks.push({ runs: current, memoryBytes: usage })
    current = []
    usage = 0
  }
  if (current.length > 0) chunks.push({ runs: current, memoryBytes: usage })
  return { chunks, memoryViolations: violations }
}

/** Which parts a compaction reads a record batch at a time (engine/windows.ts decides the same way). */
export interface WindowedReads {
  /** The compaction's order: only runs sorted in it (and not exploded) are read in windows. */
  readonly order: RunOrder
  /** Parts larger than this (written in several batches) are read in windows. */
  readonly minPartBytes: number
}

/**
 * What a run costs in a chunk's memory budget: persist's largest part, except that a part read in
 * windows costs two windows (the one being merged and the next, asked for ahead), whatever its size.
 * So runs whose windows fit the bound merge in one pass into one run (our addition to persist's
 * `chunk_runs`; parts read whole keep persist's accounting and its memory violations).
 */
export function runCost(run: PlannedRun, windows: WindowedReads): number {
  const windowed = !run.exploded && (run.meta.order ?? 'codec') === windows.order
  return run.parts.reduce((m, p) => {
    const batch = p.kind === 'hollow' ? p.stats.batchBytes : undefined
    const cost = windowed && batch !== undefined && p.encodedSizeBytes > windows.minPartBytes ? Math.min(p.encodedSizeBytes, 2 * batch) : p.encodedSizeBytes
    return Math.max(m, cost)
  }, 0)
}

/** `1 + floor(leftover / target)` concurrent uploads for a chunk (docs/compaction.md#chunking-within-the-memory-bound). */
export function maxOutstandingParts(runReservedBytes: number, chunkUsageBytes: number, targetSizeBytes: number): number {
  return 1 + Math.floor(Math.max(0, runReservedBytes - chunkUsageBytes) / Math.max(1, targetSizeBytes))
}
