/**
 * MergeState: one level of the spine. It holds up to `BATCHES_PER_LEVEL` spine batches, oldest
 * first, and, exactly when full, the fueling merge of them. A fueling merge is bookkeeping only:
 * `remainingWork` counts down as fuel arrives, and at zero the level is completed into one spine
 * batch (which is when a merge request is emitted; the real work is done by a compaction later).
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import { description } from '../core/description.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { FueledMergeReq } from './fueled-merge-req.js'
import { emptySpineBatch, type SpineBatch } from './spine-batch.js'
import { formatSpineId, spineId, type SpineId } from './spine-id.js'

export const BATCHES_PER_LEVEL = 2

export interface FuelingMerge {
  /** Covers the level's batches: `(first.id.lo, last.id.hi)`. */
  readonly id: SpineId
  /** The since the merged batch gets: the join of the inputs' sinces and the spine since at begin. */
  readonly since: Antichain
  /** Fuel still needed; starts at Σ of the inputs' lens. NB: applied results may shrink inputs, not this. */
  readonly remainingWork: number
}

export interface MergeState {
  readonly batches: readonly SpineBatch[]
  readonly merge: FuelingMerge | null
}

/** The id covering `bs`, or null when there are none. */
export function levelId(bs: readonly SpineBatch[]): SpineId | null {
  const first = bs[0]
  const last = bs[bs.length - 1]
  return first === undefined || last === undefined ? null : spineId(first.id.lo, last.id.hi)
}

/**
 * Starts a merge of `bs`: since = join of their sinces, joined with `frontier` when given
 * (the spine since, except when completing a level that had no merge). Null when `bs` is empty.
 */
export function beginMerge(tk: TimestampKind, bs: readonly SpineBatch[], frontier: Antichain | null): FuelingMerge | null {
  const id = levelId(bs)
  const first = bs[0]
  if (id === null || first === undefined) return null
  let since = first.desc.since
  for (const b of bs) since = ac.join(tk, since, b.desc.since)
  if (frontier !== null) since = ac.join(tk, since, frontier)
  const remainingWork = bs.reduce((s, b) => s + b.len, 0)
  return Object.freeze({ id, since, remainingWork })
}

/**
 * Finishes `merge` over `bs` (at least one batch): all inputs empty ⇒ one empty batch spanning
 * them; otherwise a spine batch holding every input's hollow batches, and a merge request for it
 * is appended to `log`.
 */
export function finishMerge(merge: FuelingMerge, bs: readonly SpineBatch[], log: FueledMergeReq[]): SpineBatch {
  const first = bs[0]
  const last = bs[bs.length - 1]
  if (first === undefined || last === undefined) throw new Error('finishing a merge of no batches')
  const id = spineId(first.id.lo, last.id.hi)
  if (id.lo >= id.hi) throw new Error(`merged spine id ${formatSpineId(id)} is empty`)
  const lower = first.desc.lower
  const upper = last.desc.upper
  if (bs.every((b) => b.len === 0)) return emptySpineBatch(id, lower, upper, merge.since)
  const desc = description(lower, upper, merge.since)
  const parts = Object.freeze(bs.flatMap((b) => b.parts))
  const len = bs.reduce((s, b) => s + b.len, 0)
  log.push(Object.freeze({ id, desc, inputs: parts }))
  return Object.freeze({ id, desc, parts, len })
}
