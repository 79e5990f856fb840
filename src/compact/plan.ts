/**
 * The pure planning steps of a compaction (docs/compaction.md#the-pipeline; persist's classic compactor):
 * heuristics, `validate_req`, timeout, schema selection, fast-path eligibility, memory
 * reservations, `order_runs` and `chunk_runs`; and the chunks of an incremental compaction, whole
 * input batches at a time (`chunkBatches`, persist's newest batch-granular chunking). No I/O: the
 * compactor runs these, the dry-run API prints them.
 */
import * as ac from '../core/antichain.js'
import { maxPartBytes, type HollowBatch, type RunOrder } from '../core/batch.js'
import { description, type Description } from '../core/description.js'
import type { TimestampKind } from '../core/timestamp.js'
import { batchRuns, orderRuns, roundRobin, sortedIn, type Chunk, type PlannedRun } from '../engine/runs.js'

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
  const windowed = sortedIn(run, windows.order)
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

export const CHUNK_KINDS = ['combined', 'batches', 'runs'] as const
/**
 * How a chunk's output reaches the trace: `combined`, with every other chunk's as one output batch
 * (incremental compaction off); `batches`, alone, in place of the whole input batches it merged;
 * `runs`, alone, in place of the runs it merged of one input batch (too large for one chunk).
 */
export type ChunkKind = (typeof CHUNK_KINDS)[number]

/** A chunk as Stage D merges it and hands its output over. */
export interface PlannedChunk extends Chunk {
  readonly kind: ChunkKind
  /** The input batches its runs come from, `inputs[first..last]` (one for `runs`). */
  readonly first: number
  readonly last: number
  /** Its output's desc: the request's for `combined`; for `batches`, from its first input's lower to its last's upper; for `runs`, its input's bounds; always with the request's since. */
  readonly desc: Description
}

export interface PlannedChunks {
  readonly chunks: readonly PlannedChunk[]
  /** Chunks forced over `run_reserved` (a single run, a batch of at most two runs). */
  readonly memoryViolations: number
}

export interface ChunkingOptions {
  /** Incremental compaction: chunks of whole batches (or of one batch's runs), each applied alone. */
  readonly incremental: boolean
  /** The inputs are one batch's remaining runs (a rescued attempt): every chunk is `runs`. */
  readonly runsOnly: boolean
  readonly order: RunOrder
  readonly runReservedBytes: number
  readonly targetSizeBytes: number
  readonly windows: WindowedReads | null
}

/** The chunks of a merge of `inputs` into `desc`: `chunkBatches` when incremental, else `chunk_runs` (one `combined` chunk per group). */
export function planChunks(inputs: readonly HollowBatch[], desc: Description, o: ChunkingOptions): PlannedChunks {
  if (o.incremental && o.runsOnly && inputs.length === 1) {
    const only = inputs[0] as HollowBatch
    const split = chunkRuns(batchRuns(only, 0, o.order), o.runReservedBytes, o.targetSizeBytes, o.windows)
    const own = description(only.desc.lower, only.desc.upper, desc.since)
    return { chunks: split.chunks.map((c) => ({ ...c, kind: 'runs', first: 0, last: 0, desc: own })), memoryViolations: split.memoryViolations }
  }
  if (o.incremental) return chunkBatches(inputs, desc.since, o)
  const plan = chunkRuns(orderRuns(inputs, o.order), o.runReservedBytes, o.targetSizeBytes, o.windows)
  const chunks = plan.chunks.map((c): PlannedChunk => {
    const indices = c.runs.map((r) => r.input)
    return { ...c, kind: 'combined', first: Math.min(...indices), last: Math.max(...indices), desc }
  })
  return { chunks, memoryViolations: plan.memoryViolations }
}

/**
 * Batch-granular chunking (persist's newest `chunk_runs`), for incremental compaction. Input
 * batches are taken in order; a batch costs the sum of its runs' costs (`runCost`). A batch joins
 * the current chunk when the chunk's usage plus its cost fits `runReservedBytes`, or when the
 * chunk and the batch hold at most two runs together. Otherwise the chunk closes, and the batch
 * starts the next one when it fits alone or has at most two runs; a batch that does neither is
 * split alone into chunks of its runs (`chunkRuns`, kind `runs`). Batches with no parts cost
 * nothing and join the current chunk. A chunk's runs are read round robin over its batches, as
 * `order_runs` does.
 *
 * Two choices of ours: a batch of at most two runs that closed a chunk starts the next rather than
 * being split alone (so the batch after it may still join it, and chunks keep two runs where they
 * can); and, as in `chunk_runs`, a memory violation is a chunk taken over budget by more than one
 * run (persist also counts a lone run over budget).
 */
export function chunkBatches(inputs: readonly HollowBatch[], since: Description['since'], o: Omit<ChunkingOptions, 'incremental' | 'runsOnly'>): PlannedChunks {
  const cost = (r: PlannedRun): number => (r.parts.length === 0 ? o.targetSizeBytes : o.windows === null ? maxPartBytes(r) : runCost(r, o.windows))
  const chunks: PlannedChunk[] = []
  let violations = 0
  /** The chunk being filled: its first input, each input's runs, its usage and run count. */
  const open: { chunk: { first: number; lists: PlannedRun[][]; usage: number; runs: number } | null } = { chunk: null }
  const close = (): void => {
    const c = open.chunk
    if (c === null) return
    const last = c.first + c.lists.length - 1
    const desc = description((inputs[c.first] as HollowBatch).desc.lower, (inputs[last] as HollowBatch).desc.upper, since)
    chunks.push({ kind: 'batches', first: c.first, last, desc, runs: roundRobin(c.lists), memoryBytes: c.usage })
    open.chunk = null
  }
  const join = (i: number, runs: PlannedRun[], size: number): void => {
    const c = (open.chunk ??= { first: i, lists: [], usage: 0, runs: 0 })
    c.lists.push(runs)
    c.usage += size
    c.runs += runs.length
    if (c.usage > o.runReservedBytes && c.runs > 1 && runs.length > 0) violations++
  }
  for (const [i, b] of inputs.entries()) {
    const runs = batchRuns(b, i, o.order)
    const size = runs.reduce((s, r) => s + cost(r), 0)
    if ((open.chunk?.usage ?? 0) + size <= o.runReservedBytes || (open.chunk?.runs ?? 0) + runs.length <= 2) {
      join(i, runs, size)
      continue
    }
    close()
    if (size <= o.runReservedBytes || runs.length <= 2) {
      join(i, runs, size)
      continue
    }
    const split = chunkRuns(runs, o.runReservedBytes, o.targetSizeBytes, o.windows)
    violations += split.memoryViolations
    const own = description(b.desc.lower, b.desc.upper, since)
    for (const c of split.chunks) chunks.push({ ...c, kind: 'runs', first: i, last: i, desc: own })
  }
  close()
  return { chunks, memoryViolations: violations }
}
