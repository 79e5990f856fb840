/**
 * The trace as the HTTP API shows it (docs/spine.md#reading-the-trace-in-the-api): spine batches oldest
 * first with their level and hollow batches, the merges in progress per level, and counts including
 * the backlog (merge work the spine holds). Not lossless; see trace-json.ts for that.
 */
import { batchToJson, encodedSizeBytes, runs, type HollowBatchJson } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { DescriptionJson } from '../core/description.js'
import * as ac from '../core/antichain.js'
import type { TimestampJson } from '../core/timestamp.js'
import type { MergeState } from './merge-state.js'
import { isCompact } from './spine-batch.js'
import { formatSpineId } from './spine-id.js'
import { allHollowBatches, leveledSpineBatches, spineBatches, type Trace } from './trace.js'

export interface TraceSummaryJson {
  /** `compact`: one hollow batch of one run (no merge work left in it). */
  batches: { id: string; desc: DescriptionJson; len: number; level: number; compact: boolean; batches: HollowBatchJson[] }[]
  /** Fueling merges in progress, one per full level, lowest level first. */
  merges: { level: number; id: string; since: TimestampJson[]; remainingWork: number }[]
}

export function traceSummaryJson(trace: Trace): TraceSummaryJson {
  const tk = trace.tk
  return {
    batches: leveledSpineBatches(trace).map(({ level, batch: sb }) => ({
      id: formatSpineId(sb.id),
      desc: descs.toJson(tk, sb.desc),
      len: sb.len,
      level,
      compact: isCompact(sb),
      batches: sb.parts.map((p) => batchToJson(tk, p.batch)),
    })),
    merges: trace.levels.flatMap((l: MergeState, level) =>
      l.merge === null ? [] : [{ level, id: formatSpineId(l.merge.id), since: ac.toJson(tk, l.merge.since), remainingWork: l.merge.remainingWork }],
    ),
  }
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

/** Counts over the whole trace; `updates` is Σ len (an upper bound until batches are compacted). */
export function traceStats(trace: Trace): TraceStats {
  const hollow = allHollowBatches(trace)
  const backlog = spineBatches(trace).filter((sb) => !isCompact(sb))
  return {
    spineBatches: spineBatches(trace).length,
    batches: hollow.length,
    parts: hollow.reduce((s, b) => s + b.parts.length, 0),
    runs: hollow.reduce((s, b) => s + runs(b).length, 0),
    updates: hollow.reduce((s, b) => s + b.len, 0),
    encodedBytes: hollow.reduce((s, b) => s + encodedSizeBytes(b), 0),
    backlogBatches: backlog.length,
    backlogBytes: backlog.reduce((s, sb) => s + sb.parts.reduce((t, p) => t + encodedSizeBytes(p.batch), 0), 0),
  }
}
