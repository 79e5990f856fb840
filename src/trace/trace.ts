/**
 * Trace: a shard's spine as an immutable value, and its pure transitions. Each transition returns
 * a new value and leaves its argument untouched, so a state machine can apply one to the state it
 * read and compare-and-set the result.
 *
 * Spine batches run oldest → newest as the levels reversed (highest level first), each level's
 * batches in order. Invariants (`validate`): a level is full iff it has a merge, whose id covers
 * the level; spine ids are contiguous from 0 to `nextId`; lowers and uppers are contiguous from
 * `[minimum]` to `upper`; every spine batch's since is ≤ `since`; each spine batch is well formed
 * (see spine-batch.ts).
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import { validateBatch, type HollowBatch } from '../core/batch.js'
import type { TimestampKind } from '../core/timestamp.js'
import { removeRedundantMergeReqs, type FueledMergeReq } from './fueled-merge-req.js'
import { BATCHES_PER_LEVEL, levelId, type MergeState } from './merge-state.js'
import { isCompact, spineBatchLen, type SpineBatch } from './spine-batch.js'
import { formatSpineId, spineIdEquals } from './spine-id.js'
import { Spine } from './spine.js'

export interface Trace {
  readonly tk: TimestampKind
  /** The compaction frontier; spine batches' sinces are at or before it. May be beyond `upper`. */
  readonly since: Antichain
  /** The upper of the newest batch (`[minimum]` when empty). */
  readonly upper: Antichain
  readonly nextId: number
  /** `levels[i]` is level i. */
  readonly levels: readonly MergeState[]
}

export function emptyTrace(tk: TimestampKind): Trace {
  const min = ac.minimumFrontier(tk)
  return Object.freeze({ tk, since: min, upper: min, nextId: 0, levels: Object.freeze([]) })
}

/**
 * Why `batch` cannot be pushed, or null: it must be a valid batch whose lower is the trace's upper,
 * whose interval is not empty, and whose since is not beyond the trace's since.
 * NB: an empty-interval batch (lower = upper) is not an error upstream, just not pushed: skip it.
 */
export function checkPush(trace: Trace, batch: HollowBatch): string | null {
  const tk = trace.tk
  const invalid = validateBatch(tk, batch)
  if (invalid !== null) return invalid
  if (!ac.equals(tk, batch.desc.lower, trace.upper)) {
    return `batch lower ${ac.format(tk, batch.desc.lower)} does not match the trace upper ${ac.format(tk, trace.upper)}`
  }
  if (ac.equals(tk, batch.desc.lower, batch.desc.upper)) return 'an empty-interval batch (lower = upper) is not pushed into the trace'
  if (!ac.frontierLessEqual(tk, batch.desc.since, trace.since)) {
    return `batch since ${ac.format(tk, batch.desc.since)} is beyond the trace since ${ac.format(tk, trace.since)}`
  }
  return null
}

/** Appends `batch` (throws if `checkPush` objects); returns the merge requests it caused, redundant ones removed. */
export function pushBatch(trace: Trace, batch: HollowBatch): { trace: Trace; mergeReqs: FueledMergeReq[] } {
  const problem = checkPush(trace, batch)
  if (problem !== null) throw new Error(`cannot push batch: ${problem}`)
  const spine = Spine.of(trace)
  spine.insert(batch)
  return { trace: spine.toTrace(), mergeReqs: removeRedundantMergeReqs(trace.tk, spine.log) }
}

/**
 * Spends `fuel` (a non-negative integer) on maintenance, as if that many empty updates arrived.
 * `didWork` is false when the trace holds fewer than two hollow batches (nothing to merge).
 */
export function exert(trace: Trace, fuel: number): { trace: Trace; mergeReqs: FueledMergeReq[]; didWork: boolean } {
  const spine = Spine.of(trace)
  const didWork = spine.exert(fuel)
  return { trace: spine.toTrace(), mergeReqs: removeRedundantMergeReqs(trace.tk, spine.log), didWork }
}

/**
 * Completes every merge in progress (an operator's "complete the merges"; see Spine.completeMerges):
 * their merged spine batches are the returned merge requests, for compaction to do the real work.
 * `didWork` is false when no merge was in progress (the trace is returned as is).
 */
export function completeMerges(trace: Trace): { trace: Trace; mergeReqs: FueledMergeReq[]; didWork: boolean } {
  const spine = Spine.of(trace)
  if (!spine.completeMerges()) return { trace, mergeReqs: [], didWork: false }
  return { trace: spine.toTrace(), mergeReqs: removeRedundantMergeReqs(trace.tk, spine.log), didWork: true }
}

/**
 * Sets the since. It may move beyond the upper (legal).
 * NB: the caller keeps it monotone; a since moved backwards below a batch's since fails `validate`.
 */
export function downgradeSince(trace: Trace, since: Antichain): Trace {
  return Object.freeze({ ...trace, since })
}

/** Spine batches, oldest first. */
export function spineBatches(trace: Trace): SpineBatch[] {
  return leveledSpineBatches(trace).map((x) => x.batch)
}

/** Spine batches with their level, oldest first. */
export function leveledSpineBatches(trace: Trace): { level: number; batch: SpineBatch }[] {
  const out: { level: number; batch: SpineBatch }[] = []
  for (let level = trace.levels.length - 1; level >= 0; level--) {
    for (const batch of (trace.levels[level] as MergeState).batches) out.push({ level, batch })
  }
  return out
}

/** The spine batches' ranges, oldest first, as a sentence: `the spine batches are 0-3 from [0] to [8], 3-4 from [8] to [9]`. */
export function spineBoundaries(trace: Trace): string {
  const tk = trace.tk
  const all = spineBatches(trace).map((sb) => `${formatSpineId(sb.id)} from ${ac.format(tk, sb.desc.lower)} to ${ac.format(tk, sb.desc.upper)}`)
  return all.length === 0 ? 'the trace is empty' : `the spine batches are ${all.join(', ')}`
}

/** Every hollow batch the trace references, oldest first (for GC reachability and reads). */
export function allHollowBatches(trace: Trace): HollowBatch[] {
  return spineBatches(trace).flatMap((sb) => sb.parts.map((p) => p.batch))
}

/**
 * A merge request for every spine batch that is not compact, oldest first (persist's
 * `fueled_merge_reqs_before_ms` without claim tracking): work that a lost or failed compaction left undone.
 */
export function nonCompactMergeReqs(trace: Trace): FueledMergeReq[] {
  return spineBatches(trace)
    .filter((sb) => !isCompact(sb))
    .map((sb) => Object.freeze({ id: sb.id, desc: sb.desc, inputs: sb.parts }))
}

/** Checks every invariant; returns the first violation as a sentence, or null. */
export function validate(trace: Trace): string | null {
  const tk = trace.tk
  let nextLo = 0
  let frontier = ac.minimumFrontier(tk)
  for (let li = trace.levels.length - 1; li >= 0; li--) {
    const level = trace.levels[li] as MergeState
    if (level.batches.length > BATCHES_PER_LEVEL) return `level ${li} holds ${level.batches.length} batches`
    const full = level.batches.length === BATCHES_PER_LEVEL
    if (full !== (level.merge !== null)) return `level ${li} is ${full ? 'full without a merge' : 'merging without being full'}`
    if (level.merge !== null) {
      const id = levelId(level.batches)
      if (id === null || !spineIdEquals(id, level.merge.id)) {
        return `level ${li} merge id ${formatSpineId(level.merge.id)} does not cover its batches`
      }
      if (!Number.isSafeInteger(level.merge.remainingWork) || level.merge.remainingWork < 0) {
        return `level ${li} merge has remaining work ${level.merge.remainingWork}`
      }
    }
    for (const sb of level.batches) {
      const name = `spine batch ${formatSpineId(sb.id)}`
      if (sb.id.lo !== nextLo) return `${name} does not follow id ${nextLo}`
      if (sb.id.lo >= sb.id.hi) return `${name} has an empty id range`
      nextLo = sb.id.hi
      if (!ac.equals(tk, sb.desc.lower, frontier)) {
        return `${name} lower ${ac.format(tk, sb.desc.lower)} does not match the previous upper ${ac.format(tk, frontier)}`
      }
      frontier = sb.desc.upper
      if (!ac.frontierLessEqual(tk, sb.desc.since, trace.since)) {
        return `${name} since ${ac.format(tk, sb.desc.since)} is beyond the trace since ${ac.format(tk, trace.since)}`
      }
      const bad = validateSpineBatch(tk, sb)
      if (bad !== null) return `${name}: ${bad}`
    }
  }
  if (trace.nextId !== nextLo) return `next id ${trace.nextId} does not follow the last spine batch id ${nextLo}`
  if (!ac.equals(tk, trace.upper, frontier)) {
    return `trace upper ${ac.format(tk, trace.upper)} does not match the last batch upper ${ac.format(tk, frontier)}`
  }
  return null
}

function validateSpineBatch(tk: TimestampKind, sb: SpineBatch): string | null {
  if (sb.parts.length === 0) return 'holds no hollow batches'
  if (sb.len !== spineBatchLen(sb.parts)) return `len ${sb.len} is not the sum of its hollow batches' lens`
  let nextLo = sb.id.lo
  let frontier = sb.desc.lower
  for (const [i, p] of sb.parts.entries()) {
    if (p.id.lo !== nextLo || p.id.lo >= p.id.hi) return `hollow batch ${i} id ${formatSpineId(p.id)} does not follow id ${nextLo}`
    nextLo = p.id.hi
    if (!ac.equals(tk, p.batch.desc.lower, frontier)) return `hollow batch ${i} lower does not match the previous upper`
    frontier = p.batch.desc.upper
    if (!ac.frontierLessEqual(tk, p.batch.desc.since, sb.desc.since)) return `hollow batch ${i} since is beyond the spine batch since`
    const invalid = validateBatch(tk, p.batch)
    if (invalid !== null) return `hollow batch ${i}: ${invalid}`
  }
  if (nextLo !== sb.id.hi) return `hollow batch ids end at ${nextLo}, not ${sb.id.hi}`
  if (!ac.equals(tk, frontier, sb.desc.upper)) return 'hollow batches do not end at the spine batch upper'
  return null
}
