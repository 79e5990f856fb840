/**
 * Gathering spine batches (our addition, for the chunks of an incremental major compaction): the
 * consecutive spine batches from the one holding the hollow batch that starts at `lower` to the one
 * holding the hollow batch that ends at `upper` become one spine batch holding all their hollow
 * batches, in order, with since `join(since, their sinces)`. No data moves and no hollow batch
 * changes: it is what completing a merge does to a level, done over a range, so that a chunk's
 * output (whose since is the shard's) can then replace hollow batches inside one spine batch.
 *
 * The gathered spine batch takes the level and position of the oldest (as replace-spine-batches.ts
 * does), so every invariant of `validate` holds; its since is never beyond the trace since.
 * Nothing to gather (one spine batch already at or beyond `since`) returns the trace unchanged.
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import { description } from '../core/description.js'
import type { ApplyDetail } from './apply-merge-res.js'
import { substituteSpineBatches } from './replace-spine-batches.js'
import { spineBatchLen, type SpineBatch } from './spine-batch.js'
import { spineId } from './spine-id.js'
import { spineBoundaries, spineBatches, type Trace } from './trace.js'

export type GatherResult =
  | { readonly ok: true; readonly trace: Trace }
  | { readonly ok: false; readonly result: 'not_applied_no_match' | 'not_applied_invalid_since'; readonly detail: ApplyDetail }

/** Gathers the spine batches spanning `[lower, upper)` into one at `since` (see above). */
export function gatherSpineBatches(trace: Trace, lower: Antichain, upper: Antichain, since: Antichain): GatherResult {
  const tk = trace.tk
  const range = `from ${ac.format(tk, lower)} to ${ac.format(tk, upper)}`
  if (!ac.frontierLessEqual(tk, since, trace.since)) {
    return { ok: false, result: 'not_applied_invalid_since', detail: { why: 'since', message: `the output's since ${ac.format(tk, since)} is beyond the shard's since ${ac.format(tk, trace.since)}` } }
  }
  const all = spineBatches(trace)
  const hollow = all.flatMap((sb, i) => sb.parts.map((p) => ({ spine: i, batch: p.batch })))
  const start = hollow.findIndex((x) => ac.equals(tk, x.batch.desc.lower, lower))
  const end = start < 0 ? -1 : hollow.findIndex((x, i) => i >= start && ac.equals(tk, x.batch.desc.upper, upper))
  if (start < 0 || end < 0) {
    return { ok: false, result: 'not_applied_no_match', detail: { why: 'range', message: `no hollow batches of the trace span exactly ${range} any more: ${spineBoundaries(trace)}` } }
  }
  const replaced = all.slice((hollow[start] as { spine: number }).spine, (hollow[end] as { spine: number }).spine + 1)
  const first = replaced[0] as SpineBatch
  const last = replaced[replaced.length - 1] as SpineBatch
  const joined = replaced.reduce((s, sb) => ac.join(tk, s, sb.desc.since), since)
  if (replaced.length === 1 && ac.equals(tk, joined, first.desc.since)) return { ok: true, trace }
  const parts = Object.freeze(replaced.flatMap((sb) => sb.parts))
  const gathered: SpineBatch = Object.freeze({ id: spineId(first.id.lo, last.id.hi), desc: description(first.desc.lower, last.desc.upper, joined), parts, len: spineBatchLen(parts) })
  return { ok: true, trace: substituteSpineBatches(trace, replaced, gathered) }
}
