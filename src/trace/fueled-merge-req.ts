/**
 * FueledMergeReq: what the spine asks for when a fueled merge completes over inputs that are not
 * all empty: compact `inputs` (oldest first, tiling `desc`) into one batch with `desc.since`.
 */
import * as ac from '../core/antichain.js'
import type { Description } from '../core/description.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { IdHollowBatch } from './spine-batch.js'
import { covers, type SpineId } from './spine-id.js'

export interface FueledMergeReq {
  readonly id: SpineId
  readonly desc: Description
  readonly inputs: readonly IdHollowBatch[]
}

/**
 * Drops requests whose work another request of the same call subsumes: one insert can complete a
 * chain of merges `(a, b), (a, b, c), …`, and only the largest is worth doing. Processes back to
 * front; a request is dropped when a kept one covers its id with an equal since, and keeping a
 * request drops the kept ones it covers. Survivors come out in reverse input order.
 */
export function removeRedundantMergeReqs(tk: TimestampKind, reqs: readonly FueledMergeReq[]): FueledMergeReq[] {
  const coversReq = (a: FueledMergeReq, b: FueledMergeReq): boolean =>
    covers(a.id, b.id) && ac.equals(tk, a.desc.since, b.desc.since)
  let kept: FueledMergeReq[] = []
  for (let i = reqs.length - 1; i >= 0; i--) {
    const req = reqs[i] as FueledMergeReq
    if (kept.some((k) => coversReq(k, req))) continue
    kept = kept.filter((k) => !coversReq(req, k))
    kept.push(req)
  }
  return kept
}
