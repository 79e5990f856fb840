/**
 * Finding what a compaction request covers (docs/compaction.md#submission-and-validation): the hollow batches that
 * exactly tile a range, and the since a result for that range should have.
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import type { HollowBatch } from '../core/batch.js'
import type { Trace } from './trace.js'
import { allHollowBatches, spineBatches } from './trace.js'

/**
 * The hollow batches, oldest first, from the first whose lower is `lower` through the first after
 * it whose upper is `upper`; null when there is no such run or the range is empty (`lower = upper`).
 * The run may span several spine batches (its result will then match none of them).
 */
export function batchesTiling(trace: Trace, lower: Antichain, upper: Antichain): HollowBatch[] | null {
  const tk = trace.tk
  if (ac.equals(tk, lower, upper)) return null
  const batches = allHollowBatches(trace)
  const start = batches.findIndex((b) => ac.equals(tk, b.desc.lower, lower))
  if (start < 0) return null
  for (let end = start; end < batches.length; end++) {
    if (ac.equals(tk, (batches[end] as HollowBatch).desc.upper, upper)) return batches.slice(start, end + 1)
  }
  return null
}

/**
 * The join of the sinces of the spine batches overlapping `[lower, upper)`: a spine batch overlaps
 * unless it ends at or before `lower` (`sb.upper ≤ lower`) or starts at or after `upper`
 * (`upper ≤ sb.lower`). Null when none overlaps.
 */
export function sinceForRange(trace: Trace, lower: Antichain, upper: Antichain): Antichain | null {
  const tk = trace.tk
  let since: Antichain | null = null
  for (const sb of spineBatches(trace)) {
    if (ac.frontierLessEqual(tk, sb.desc.upper, lower) || ac.frontierLessEqual(tk, upper, sb.desc.lower)) continue
    since = since === null ? sb.desc.since : ac.join(tk, since, sb.desc.since)
  }
  return since
}
