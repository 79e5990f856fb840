/**
 * The trace as the HTTP API shows it (docs/spine.md#reading-the-trace-in-the-api): spine batches oldest
 * first with their level and hollow batches, the merges in progress per level, and counts including
 * the backlog (merge work the spine holds). Not lossless; see trace-json.ts for that.
 */
import { batchToJson, encodedSizeBytes, inlineBytes, runs, type HollowBatchJson } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { DescriptionJson } from '../core/description.js'
import * as ac from '../core/antichain.js'
import type { TimestampJson } from '../core/timestamp.js'
import type { MergeState } from './merge-state.js'
import { isCompact, type IdHollowBatch, type SpineBatch } from './spine-batch.js'
import { formatSpineId } from './spine-id.js'
import { leveledSpineBatches, spineBatches, type Trace } from './trace.js'

/** What both views say of a spine batch before its batches or counts. `compact`: one hollow batch of one run (no merge work left in it). */
export interface SpineBatchHeadJson {
  id: string
  desc: DescriptionJson
  len: number
  level: number
  compact: boolean
}

export interface TraceSummaryJson {
  batches: (SpineBatchHeadJson & { batches: HollowBatchJson[] })[]
  /** Fueling merges in progress, one per full level, lowest level first. */
  merges: { level: number; id: string; since: TimestampJson[]; remainingWork: number }[]
}

export function traceSummaryJson(trace: Trace): TraceSummaryJson {
  const tk = trace.tk
  return {
    batches: leveledSpineBatches(trace).map(({ level, batch: sb }) => ({ ...spineBatchHead(trace, level, sb), batches: sb.parts.map((p) => batchToJson(tk, p.batch)) })),
    merges: mergesJson(trace),
  }
}

/** The spine batch's counts in the API: its hollow batches, parts, runs, Σ len and encoded bytes. */
export type SpineBatchStats = Pick<TraceStats, 'batches' | 'parts' | 'runs' | 'updates' | 'encodedBytes'>

/**
 * The trace's spine without its hollow batches: each spine batch with its counts. Its size grows
 * with the number of spine batches (a few per level), not with the batches a trace that compaction
 * fell behind on holds (thousands, each with its parts): what a view of the spine needs.
 */
export interface TraceSpineJson {
  batches: (SpineBatchHeadJson & { stats: SpineBatchStats })[]
  merges: TraceSummaryJson['merges']
}

export function traceSpineJson(trace: Trace): TraceSpineJson {
  return {
    batches: leveledSpineBatches(trace).map(({ level, batch: sb }) => {
      const { inlineBytes: _inline, ...stats } = countsOf(sb)
      return { ...spineBatchHead(trace, level, sb), stats }
    }),
    merges: mergesJson(trace),
  }
}

function spineBatchHead(trace: Trace, level: number, sb: SpineBatch): SpineBatchHeadJson {
  return { id: formatSpineId(sb.id), desc: descs.toJson(trace.tk, sb.desc), len: sb.len, level, compact: isCompact(sb) }
}

function mergesJson(trace: Trace): TraceSummaryJson['merges'] {
  return trace.levels.flatMap((l: MergeState, level) =>
    l.merge === null ? [] : [{ level, id: formatSpineId(l.merge.id), since: ac.toJson(trace.tk, l.merge.since), remainingWork: l.merge.remainingWork }],
  )
}

export interface TraceStats {
  spineBatches: number
  batches: number
  parts: number
  runs: number
  updates: number
  encodedBytes: number
  /** Spine batches that are not compact: merge work a compaction would do (persist's non-compact batches). */
  backlogBatches: number
  /** Encoded bytes of those batches: what compacting them reads. */
  backlogBytes: number
}

type SpineBatchCounts = Pick<TraceStats, 'batches' | 'parts' | 'runs' | 'updates' | 'encodedBytes'> & { inlineBytes: number }

/**
 * Counts of each spine batch and hollow batch entry, kept for as long as it lives: both are
 * immutable and shared by the traces a transition makes from one another (a merge that completes
 * makes a new spine batch of the same entries), and the stats are taken after every command (the
 * backlog metrics), so a trace that gained a batch counts that batch, not every batch again.
 */
const spineBatchCounts = new WeakMap<SpineBatch, SpineBatchCounts>()
const entryCounts = new WeakMap<IdHollowBatch, SpineBatchCounts>()

function entryCountsOf(p: IdHollowBatch): SpineBatchCounts {
  let counts = entryCounts.get(p)
  if (counts === undefined) {
    const b = p.batch
    counts = { batches: 1, parts: b.parts.length, runs: runs(b).length, updates: b.len, encodedBytes: encodedSizeBytes(b), inlineBytes: inlineBytes(b) }
    entryCounts.set(p, counts)
  }
  return counts
}

/** Adds `c` to `into`. */
function addCounts(into: SpineBatchCounts, c: SpineBatchCounts): void {
  into.batches += c.batches
  into.parts += c.parts
  into.runs += c.runs
  into.updates += c.updates
  into.encodedBytes += c.encodedBytes
  into.inlineBytes += c.inlineBytes
}

const noCounts = (): SpineBatchCounts => ({ batches: 0, parts: 0, runs: 0, updates: 0, encodedBytes: 0, inlineBytes: 0 })

function countsOf(sb: SpineBatch): SpineBatchCounts {
  let counts = spineBatchCounts.get(sb)
  if (counts === undefined) {
    counts = noCounts()
    for (const p of sb.parts) addCounts(counts, entryCountsOf(p))
    spineBatchCounts.set(sb, counts)
  }
  return counts
}

/** Bytes of the parts kept inline in the trace (checked against the state's limit on every inline append). */
export function traceInlineBytes(trace: Trace): number {
  let sum = 0
  for (const sb of spineBatches(trace)) sum += countsOf(sb).inlineBytes
  return sum
}

/** Counts over the whole trace; `updates` is Σ len (an upper bound until batches are compacted). */
export function traceStats(trace: Trace): TraceStats {
  const sum = noCounts()
  let spineBatchCount = 0
  let backlogBatches = 0
  let backlogBytes = 0
  for (const sb of spineBatches(trace)) {
    const c = countsOf(sb)
    addCounts(sum, c)
    spineBatchCount++
    if (!isCompact(sb)) {
      backlogBatches++
      backlogBytes += c.encodedBytes
    }
  }
  const { inlineBytes: _inline, ...counts } = sum
  return { spineBatches: spineBatchCount, ...counts, backlogBatches, backlogBytes }
}
