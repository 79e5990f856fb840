/**
 * Applying a major compaction's result (our addition to persist's trace): a run of whole spine
 * batches, oldest to newest, is replaced by one spine batch holding the output. Persist only ever
 * replaces one spine batch or hollow batches inside one (apply-merge-res.ts), so merging the whole
 * trace into one batch at the shard's since is not something its trace can take; this is.
 *
 * | result | when | trace |
 * |---|---|---|
 * | `applied_exact` | the output's lower is a spine batch's lower and its upper a later (or the same) spine batch's upper, its since is not beyond the trace since, its diffs sum like theirs, it has no more updates than they hold | those spine batches become one, holding the output |
 * | `not_applied_too_many_updates` | as above, but the output has more updates | unchanged |
 * | `not_applied_invalid_since` | as above, but the output's since is beyond the trace since | unchanged |
 * | `not_applied_no_match` | no such run of spine batches, or the diff sums differ | unchanged |
 *
 * Where the merged batch goes: into the level and position of the oldest batch it replaces (the
 * highest level of the run); the others leave their levels. A level that still holds two batches
 * keeps (or gets) a merge covering them, whose since is joined with the output's; a level left with
 * one batch loses its merge (its partner was merged away). Spine ids, the trace upper and since are
 * unchanged, so every invariant of `validate` holds (checked by the property test).
 *
 * NB: the merged batch's since may be beyond the sinces of the batches it replaces (that is the
 * point: times advance to the shard's since), but never beyond the trace since, so every read
 * (at an as-of at or beyond the trace since) sees the same updates.
 */
import * as ac from '../core/antichain.js'
import type { HollowBatch } from '../core/batch.js'
import { knownDiffsSum, type ApplyDetail, type ApplyMergeResult } from './apply-merge-res.js'
import { levelId, type FuelingMerge, type MergeState } from './merge-state.js'
import { singleSpineBatch, type SpineBatch } from './spine-batch.js'
import { spineId } from './spine-id.js'
import { leveledSpineBatches, spineBoundaries, type Trace } from './trace.js'

export interface ReplaceResult {
  readonly trace: Trace
  readonly result: ApplyMergeResult
  /** Why it did not apply (null when applied). */
  readonly detail: ApplyDetail | null
}

/** Replaces the whole spine batches `output` spans by one holding it (see the table above). */
export function replaceSpineBatches(trace: Trace, output: HollowBatch): ReplaceResult {
  const tk = trace.tk
  const leveled = leveledSpineBatches(trace)
  const range = `from ${ac.format(tk, output.desc.lower)} to ${ac.format(tk, output.desc.upper)}`
  // NB: the first batch starting at the lower and the last ending at the upper, so empty-interval
  // batches at either end (exert leaves them) are merged in too.
  const first = leveled.findIndex((x) => ac.equals(tk, x.batch.desc.lower, output.desc.lower))
  const last = first < 0 ? -1 : leveled.findLastIndex((x, i) => i >= first && ac.equals(tk, x.batch.desc.upper, output.desc.upper))
  if (first < 0 || last < 0) {
    return { trace, result: 'not_applied_no_match', detail: { why: 'range', message: `${range} is not made of whole spine batches any more: ${spineBoundaries(trace)}` } }
  }
  const replaced = leveled.slice(first, last + 1).map((x) => x.batch)
  if (!ac.frontierLessEqual(tk, output.desc.since, trace.since)) {
    return {
      trace,
      result: 'not_applied_invalid_since',
      detail: { why: 'since', message: `the output's since ${ac.format(tk, output.desc.since)} is beyond the shard's since ${ac.format(tk, trace.since)}` },
    }
  }
  const before = knownDiffsSum(replaced.flatMap((sb) => sb.parts.flatMap((p) => p.batch.parts)))
  const after = knownDiffsSum(output.parts)
  if (before !== null && after !== null && before !== after) {
    return { trace, result: 'not_applied_no_match', detail: { why: 'diffs', message: `the batches of ${range} sum their diffs to ${before}, the output to ${after}: it is not a compaction of them` } }
  }
  const len = replaced.reduce((s, sb) => s + sb.len, 0)
  if (output.len > len) {
    return {
      trace,
      result: 'not_applied_too_many_updates',
      detail: { why: 'updates', message: `the output has ${output.len} updates, more than the ${len} of the batches of ${range} (a better compaction was applied meanwhile)` },
    }
  }

  const oldest = leveled[first] as { level: number; batch: SpineBatch }
  const merged = singleSpineBatch(Object.freeze({ id: spineId(oldest.batch.id.lo, (replaced[replaced.length - 1] as SpineBatch).id.hi), batch: output }))
  return { trace: substituteSpineBatches(trace, replaced, merged), result: 'applied_exact', detail: null }
}

/**
 * `trace` with the consecutive spine batches `replaced` (oldest first) replaced by `merged`, which
 * takes the level and position of the oldest; the others leave their levels, and each level's
 * merge is kept, joined or dropped as the table above says.
 */
export function substituteSpineBatches(trace: Trace, replaced: readonly SpineBatch[], merged: SpineBatch): Trace {
  const oldest = replaced[0]
  const gone = new Set(replaced)
  const levels = trace.levels.map((level): MergeState => {
    if (!level.batches.some((b) => gone.has(b))) return level
    const batches = level.batches.flatMap((b) => (b === oldest ? [merged] : gone.has(b) ? [] : [b]))
    return Object.freeze({ batches: Object.freeze(batches), merge: mergeAfter(trace.tk, level.merge, batches) })
  })
  return Object.freeze({ ...trace, levels: Object.freeze(levels) })
}

/** The merge a level keeps after its batches changed: one covering two batches, none for fewer. */
function mergeAfter(tk: Trace['tk'], merge: FuelingMerge | null, batches: readonly SpineBatch[]): FuelingMerge | null {
  const id = levelId(batches)
  if (batches.length < 2 || id === null) return null
  const since = batches.reduce((s, b) => ac.join(tk, s, b.desc.since), merge?.since ?? (batches[0] as SpineBatch).desc.since)
  const remainingWork = merge?.remainingWork ?? batches.reduce((s, b) => s + b.len, 0)
  return Object.freeze({ id, since, remainingWork })
}
