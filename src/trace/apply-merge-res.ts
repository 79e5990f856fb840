/**
 * Applying a compaction result to the trace (docs/compaction.md#applying-the-result, desc-based matching), as a
 * pure function with five outcomes:
 *
 * | result | when | trace |
 * |---|---|---|
 * | `applied_exact` | output lower/upper = a spine batch's, since ≤ its since, len ≤ its len | that spine batch becomes the output alone (same id, output desc) |
 * | `applied_subset` | output lower = hollow batch i's lower, upper = hollow batch j's upper (i ≤ j) inside one spine batch, since and len fit | parts i..j become the output (spine batch keeps its desc) |
 * | `not_applied_too_many_updates` | as either match, but the output has more updates than what it replaces | unchanged |
 * | `not_applied_invalid_since` | no match applied, and some spine batch would have matched but for the output since being beyond its since | unchanged |
 * | `not_applied_no_match` | otherwise | unchanged |
 *
 * NB: unlike persist, which folds an invalid since into no-match at the trace level, compactd
 * reports it (docs/compaction.md#the-five-outcomes). When the parts being replaced and the output both have known diff sums,
 * they must agree; a mismatch is `not_applied_no_match` (persist panics: its inputs always come
 * from state, while compactd's may come from a request).
 */
import * as ac from '../core/antichain.js'
import { diffsSum, type BatchPart, type HollowBatch } from '../core/batch.js'
import type { Description } from '../core/description.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { MergeState } from './merge-state.js'
import { singleSpineBatch, spineBatchLen, type IdHollowBatch, type SpineBatch } from './spine-batch.js'
import { formatSpineId, spineId } from './spine-id.js'
import { spineBoundaries, type Trace } from './trace.js'

export const APPLY_MERGE_RESULTS = [
  'applied_exact',
  'applied_subset',
  'not_applied_no_match',
  'not_applied_invalid_since',
  'not_applied_too_many_updates',
] as const
export type ApplyMergeResult = (typeof APPLY_MERGE_RESULTS)[number]

/** The result replaced something in the trace. */
export const applied = (r: ApplyMergeResult): boolean => r === 'applied_exact' || r === 'applied_subset'

/** The result found its place in the trace, applied or not (persist keeps such an answer across CAS retries). */
export const matched = (r: ApplyMergeResult): boolean => applied(r) || r === 'not_applied_too_many_updates'

export interface FueledMergeRes {
  readonly output: HollowBatch
}

/**
 * Why a result did not apply: its range matches nothing (`range`), its diffs do not sum like what it
 * would replace (`diffs`), its since is beyond (`since`), it has more updates (`updates`); with a
 * sentence for an operator.
 */
export interface ApplyDetail {
  readonly why: 'range' | 'diffs' | 'since' | 'updates'
  readonly message: string
}


/**
 * Offers `res.output` to every spine batch; the first match (applied or too many updates) wins, per
 * the table above. `detail` says, for an operator, why a result did not apply (null when it did).
 */
export function applyMergeRes(trace: Trace, res: FueledMergeRes): { trace: Trace; result: ApplyMergeResult; detail: ApplyDetail | null } {
  let sinceOnly: ApplyDetail | null = null
  let mismatch: ApplyDetail | null = null
  // Newest first, as persist does; the spine batches' ranges are disjoint, so the order only
  // matters for results spanning an empty interval.
  for (let li = 0; li < trace.levels.length; li++) {
    const level = trace.levels[li] as MergeState
    for (let bi = level.batches.length - 1; bi >= 0; bi--) {
      const check = checkSpineBatch(trace.tk, level.batches[bi] as SpineBatch, res.output)
      if (check.result === 'not_applied_invalid_since') sinceOnly ??= check.detail
      else if (check.detail !== null && !matched(check.result)) mismatch ??= check.detail
      if (!matched(check.result)) continue
      if (check.replacement === null) return { trace, result: check.result, detail: check.detail }
      return { trace: replaceSpineBatch(trace, li, bi, check.replacement), result: check.result, detail: null }
    }
  }
  if (sinceOnly !== null) return { trace, result: 'not_applied_invalid_since', detail: sinceOnly }
  const tk = trace.tk
  const range = `from ${ac.format(tk, res.output.desc.lower)} to ${ac.format(tk, res.output.desc.upper)}`
  return {
    trace,
    result: 'not_applied_no_match',
    detail: mismatch ?? { why: 'range', message: `no spine batch, and no run of hollow batches inside one, spans exactly ${range}: ${spineBoundaries(trace)}` },
  }
}

/**
 * The outcome of offering `output` to one spine batch, and the batch that would replace it.
 * `not_applied_invalid_since` here means: it would have matched (exactly or as a subset) but for its since.
 */
export function checkSpineBatch(
  tk: TimestampKind,
  sb: SpineBatch,
  output: HollowBatch,
): { result: ApplyMergeResult; replacement: SpineBatch | null; detail: ApplyDetail | null } {
  const exact = ac.equals(tk, output.desc.lower, sb.desc.lower) && ac.equals(tk, output.desc.upper, sb.desc.upper)
  const range = exact ? null : findReplacementRange(tk, sb, output.desc)
  if (!exact && range === null) return { result: 'not_applied_no_match', replacement: null, detail: null }
  const name = `spine batch ${formatSpineId(sb.id)}`
  if (!ac.frontierLessEqual(tk, output.desc.since, sb.desc.since)) {
    return {
      result: 'not_applied_invalid_since',
      replacement: null,
      detail: {
        why: 'since',
        message: `the output's since ${ac.format(tk, output.desc.since)} is beyond the since ${ac.format(tk, sb.desc.since)} of ${name} it would replace (a major compaction advances batches to the shard's since)`,
      },
    }
  }
  const diffMismatch = (replaced: readonly IdHollowBatch[]): ApplyDetail => ({
    why: 'diffs',
    message: `the batches it would replace in ${name} sum their diffs to ${knownDiffsSum(replaced.flatMap((p) => p.batch.parts))}, the output to ${knownDiffsSum(output.parts)}: it is not a compaction of them`,
  })
  const tooMany = (before: number): ApplyDetail => ({
    why: 'updates',
    message: `the output has ${output.len} updates, more than the ${before} it would replace in ${name} (a better compaction was applied meanwhile)`,
  })

  // NB: persist treats a diff-sum mismatch as an invariant violation (its inputs always come from
  // state). compactd also takes inputs from requests, so a result whose diffs do not sum like the
  // batches it would replace is simply not a compaction of them: not matched, never applied.
  if (exact) {
    if (!diffsSumsAgree(sb.parts, output)) return { result: 'not_applied_no_match', replacement: null, detail: diffMismatch(sb.parts) }
    if (output.len > sb.len) return { result: 'not_applied_too_many_updates', replacement: null, detail: tooMany(sb.len) }
    return { result: 'applied_exact', replacement: singleSpineBatch(Object.freeze({ id: sb.id, batch: output })), detail: null }
  }

  const { start, end } = range as { start: number; end: number }
  const replaced = sb.parts.slice(start, end + 1)
  if (!diffsSumsAgree(replaced, output)) return { result: 'not_applied_no_match', replacement: null, detail: diffMismatch(replaced) }
  const first = replaced[0] as IdHollowBatch
  const last = replaced[replaced.length - 1] as IdHollowBatch
  const parts = Object.freeze([
    ...sb.parts.slice(0, start),
    Object.freeze({ id: spineId(first.id.lo, last.id.hi), batch: output }),
    ...sb.parts.slice(end + 1),
  ])
  const len = spineBatchLen(parts)
  if (len > sb.len) return { result: 'not_applied_too_many_updates', replacement: null, detail: tooMany(spineBatchLen(replaced)) }
  return { result: 'applied_subset', replacement: Object.freeze({ id: sb.id, desc: sb.desc, parts, len }), detail: null }
}

/**
 * Indices `start ≤ end` of the hollow batches whose lower is `desc.lower` and whose upper is
 * `desc.upper`, scanning oldest first and stopping once both are seen (a later match overwrites an
 * earlier one until then, which matters only around empty-interval batches). Null if either is
 * missing, or if they are out of order (an empty-interval result between two batches).
 */
function findReplacementRange(tk: TimestampKind, sb: SpineBatch, desc: Description): { start: number; end: number } | null {
  let start: number | null = null
  let end: number | null = null
  for (const [i, p] of sb.parts.entries()) {
    if (ac.equals(tk, p.batch.desc.lower, desc.lower)) start = i
    if (ac.equals(tk, p.batch.desc.upper, desc.upper)) end = i
    if (start !== null && end !== null) break
  }
  if (start === null || end === null || start > end) return null
  return { start, end }
}

/** Sum of the parts' diffs; null when unknown, and (as upstream) for no parts at all. */
export function knownDiffsSum(parts: readonly BatchPart[]): bigint | null {
  return parts.length === 0 ? null : diffsSum(parts)
}

/** Whether the output's diffs sum like the batches it replaces (true when either is unknown). */
function diffsSumsAgree(replaced: readonly IdHollowBatch[], output: HollowBatch): boolean {
  const before = knownDiffsSum(replaced.flatMap((p) => p.batch.parts))
  const after = knownDiffsSum(output.parts)
  return before === null || after === null || before === after
}

function replaceSpineBatch(trace: Trace, li: number, bi: number, sb: SpineBatch): Trace {
  const levels = trace.levels.map((level, i) =>
    i !== li ? level : Object.freeze({ batches: Object.freeze(level.batches.map((b, j) => (j === bi ? sb : b))), merge: level.merge }),
  )
  return Object.freeze({ ...trace, levels: Object.freeze(levels) })
}
