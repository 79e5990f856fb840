/** Builders for trace tests: u64 hollow batches with deterministic part keys. */
import type { Antichain } from '../../src/core/antichain.js'
import type { BatchPart, HollowBatch } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import type { PartialBatchKey } from '../../src/core/paths.js'
import { u64 } from '../../src/core/timestamp.js'
import type { Trace } from '../../src/trace/trace.js'
import { emptyTrace, pushBatch, spineBatches } from '../../src/trace/trace.js'
import { formatSpineId } from '../../src/trace/spine-id.js'
import type { FueledMergeReq } from '../../src/trace/fueled-merge-req.js'
import * as ac from '../../src/core/antichain.js'

export const tk = u64

let partCounter = 0

export function partKey(n = ++partCounter): PartialBatchKey {
  return `w00000000-0000-4000-8000-000000000000/p00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}` as PartialBatchKey
}

export function hollowPart(updates: number, diffsSum: bigint | null = BigInt(updates)): BatchPart {
  return { kind: 'hollow', key: partKey(), encodedSizeBytes: 100 + updates, keyLower: '', diffsSum, schemaId: 0, stats: { updates } }
}

export const f = (...ts: number[]): Antichain => ts.map((t) => BigInt(t))

/**
 * A u64 batch `[lower, upper)` with `since` and `len` updates in one part (none when len is 0).
 * `diffsSum` defaults to len (each update +1); pass null for unknown.
 */
export function hb(lower: number, upper: number, since: number, len: number, diffs: bigint | null = BigInt(len)): HollowBatch {
  const parts = len === 0 ? [] : [hollowPart(len, diffs)]
  return {
    desc: description(f(lower), f(upper), f(since)),
    len,
    parts,
    runSplits: [],
    runMeta: parts.length === 0 ? [] : [{ order: 'structured', schemaId: 0 }],
  }
}

/** Pushes every batch in turn, collecting merge requests. */
export function pushAll(trace: Trace, batches: HollowBatch[]): { trace: Trace; reqs: FueledMergeReq[] } {
  const reqs: FueledMergeReq[] = []
  for (const b of batches) {
    const r = pushBatch(trace, b)
    trace = r.trace
    reqs.push(...r.mergeReqs)
  }
  return { trace, reqs }
}

export function u64Trace(): Trace {
  return emptyTrace(tk)
}

/** Upstream's datadriven notation: `[id][lower][upper][since] hollowBatches/len`. */
export function describeSpine(trace: Trace): string[] {
  return spineBatches(trace).map(
    (sb) => `[${formatSpineId(sb.id)}]${ac.format(tk, sb.desc.lower)}${ac.format(tk, sb.desc.upper)}${ac.format(tk, sb.desc.since)} ${sb.parts.length}/${sb.len}`,
  )
}

/** `[lower][upper][since] n` for a merge request with n input hollow batches. */
export function describeReq(r: FueledMergeReq): string {
  return `${ac.format(tk, r.desc.lower)}${ac.format(tk, r.desc.upper)}${ac.format(tk, r.desc.since)} ${r.inputs.length}`
}
