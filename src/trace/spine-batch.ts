/**
 * SpineBatch: one entry of a spine level. It spans `desc` and holds the hollow batches that tile
 * it, oldest first, each tagged with the spine ids it covers. A spine batch produced by a fueled
 * merge holds the concatenation of its inputs' hollow batches until a compaction result replaces
 * them (persist's "fueled" batch); one holding a single run is "compact".
 *
 * Invariants (checked by `validate` in trace.ts):
 * - `parts` is non-empty; its ids tile `id` and its lowers/uppers tile `[desc.lower, desc.upper)`;
 * - `len === Σ parts[i].batch.len`;
 * - every part's since is ≤ `desc.since`.
 */
import type { Antichain } from '../core/antichain.js'
import { emptyBatch, type HollowBatch } from '../core/batch.js'
import { description, type Description } from '../core/description.js'
import type { SpineId } from './spine-id.js'

export interface IdHollowBatch {
  readonly id: SpineId
  readonly batch: HollowBatch
}

export interface SpineBatch {
  readonly id: SpineId
  readonly desc: Description
  readonly parts: readonly IdHollowBatch[]
  /** Σ of the parts' lens: an upper bound on the updates until the batch is compacted. */
  readonly len: number
}

/** A spine batch of exactly one hollow batch, taking its desc and len. */
export function singleSpineBatch(part: IdHollowBatch): SpineBatch {
  return Object.freeze({ id: part.id, desc: part.batch.desc, parts: Object.freeze([part]), len: part.batch.len })
}

export function emptySpineBatch(id: SpineId, lower: Antichain, upper: Antichain, since: Antichain): SpineBatch {
  return singleSpineBatch(Object.freeze({ id, batch: emptyBatch(description(lower, upper, since)) }))
}

/** At most one hollow batch, and that one a single run. */
export function isCompact(sb: SpineBatch): boolean {
  return sb.parts.length <= 1 && sb.parts.every((p) => p.batch.runSplits.length === 0)
}

export function spineBatchLen(parts: readonly IdHollowBatch[]): number {
  return parts.reduce((s, p) => s + p.batch.len, 0)
}
