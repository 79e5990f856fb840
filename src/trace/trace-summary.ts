/**
 * The trace as the HTTP API shows it (API.md, Shard `trace` and `stats`): spine batches oldest
 * first with their level and hollow batches. Not lossless; see trace-json.ts for that.
 */
import { batchToJson, encodedSizeBytes, runs, type HollowBatchJson } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { DescriptionJson } from '../core/description.js'
import { formatSpineId } from './spine-id.js'
import { allHollowBatches, leveledSpineBatches, spineBatches, type Trace } from './trace.js'

export interface TraceSummaryJson {
  batches: { id: string; desc: DescriptionJson; len: number; level: number; batches: HollowBatchJson[] }[]
}

export function traceSummaryJson(trace: Trace): TraceSummaryJson {
  const tk = trace.tk
  return {
    batches: leveledSpineBatches(trace).map(({ level, batch: sb }) => ({
      id: formatSpineId(sb.id),
      desc: descs.toJson(tk, sb.desc),
      len: sb.len,
      level,
      batches: sb.parts.map((p) => batchToJson(tk, p.batch)),
    })),
  }
}

export interface TraceStats {
  spineBatches: number
  batches: number
  parts: number
  runs: number
  updates: number
  encodedBytes: number
}

/** Counts over the whole trace; `updates` is Σ len (an upper bound until batches are compacted). */
export function traceStats(trace: Trace): TraceStats {
  const hollow = allHollowBatches(trace)
  return {
    spineBatches: spineBatches(trace).length,
    batches: hollow.length,
    parts: hollow.reduce((s, b) => s + b.parts.length, 0),
    runs: hollow.reduce((s, b) => s + runs(b).length, 0),
    updates: hollow.reduce((s, b) => s + b.len, 0),
    encodedBytes: hollow.reduce((s, b) => s + encodedSizeBytes(b), 0),
  }
}
