/**
 * Applying the output of a chunk made of runs of one hollow batch (persist's `PartialBatch`, used
 * when a batch is too large for one chunk of an incremental compaction): inside the hollow batch
 * whose lower and upper are the output's, the named parts leave their runs (a run left without
 * parts is dropped) and the output's runs are added after the runs that stay.
 *
 * | result | when | trace |
 * |---|---|---|
 * | `applied_subset` | a hollow batch has the output's lower and upper and holds every named part; the output's since is not beyond its spine batch's; the diff sums agree; the output has no more updates than the parts it replaces | the batch holds its other runs and the output's; it keeps its desc; its spine batch keeps its desc |
 * | `not_applied_too_many_updates` | as above, but the output has more updates | unchanged |
 * | `not_applied_invalid_since` | as above, but the output's since is beyond the spine batch's | unchanged |
 * | `not_applied_no_match` | no such hollow batch, a named part is gone (another result replaced it), or the diff sums differ | unchanged |
 *
 * Updates of the replaced parts: the sum of their parts' `stats.updates`. An inline part's count
 * is not known; then the batch's len stays as it was (an upper bound, which a batch's len may be)
 * and the output may not hold more updates than the whole batch.
 *
 * NB: the batch keeps its desc, so its since may be behind the times of the output's runs (the
 * output's since is at most the spine batch's since). Reads do not notice: they read at an as-of at
 * or beyond the trace since, where every time in the spine batch reads the same.
 */
import * as ac from '../core/antichain.js'
import { runs, type BatchPart, type HollowBatch, type Run } from '../core/batch.js'
import { knownDiffsSum, type ApplyDetail } from './apply-merge-res.js'
import { partIdentity } from './compaction-input.js'
import type { MergeState } from './merge-state.js'
import type { ReplaceResult } from './replace-spine-batches.js'
import { spineBatchLen, type IdHollowBatch, type SpineBatch } from './spine-batch.js'
import { formatSpineId } from './spine-id.js'
import type { Trace } from './trace.js'

/** Replaces the `parts` (and so their runs) of one hollow batch by the output's runs (see the table above). */
export function replaceRuns(trace: Trace, output: HollowBatch, parts: readonly BatchPart[]): ReplaceResult {
  const tk = trace.tk
  const where = `the hollow batch from ${ac.format(tk, output.desc.lower)} to ${ac.format(tk, output.desc.upper)}`
  if (parts.length === 0) return noMatch(trace, `the result names no runs of ${where} to replace`)
  const named = new Set(parts.map(partIdentity))
  let missing: string | null = null
  for (let li = 0; li < trace.levels.length; li++) {
    const level = trace.levels[li] as MergeState
    for (let bi = 0; bi < level.batches.length; bi++) {
      const sb = level.batches[bi] as SpineBatch
      for (let hi = 0; hi < sb.parts.length; hi++) {
        const hb = (sb.parts[hi] as IdHollowBatch).batch
        if (!ac.equals(tk, hb.desc.lower, output.desc.lower) || !ac.equals(tk, hb.desc.upper, output.desc.upper)) continue
        const present = hb.parts.filter((p) => named.has(partIdentity(p)))
        if (new Set(present.map(partIdentity)).size !== named.size) {
          // NB: empty-interval batches share bounds; a later candidate may still hold the parts.
          missing ??= `${named.size - new Set(present.map(partIdentity)).size} of the ${named.size} parts it replaces are no longer in ${where} (another result replaced their runs meanwhile)`
          continue
        }
        const checked = check(tk, sb, hb, present, output)
        if ('detail' in checked) return { trace, result: checked.result, detail: checked.detail }
        const batch = withRuns(hb, [...keptRuns(hb, named), ...runs(output)], checked.len)
        return { trace: replaceHollowBatch(trace, li, bi, hi, batch), result: 'applied_subset', detail: null }
      }
    }
  }
  return noMatch(trace, missing ?? `no hollow batch spans exactly ${ac.format(tk, output.desc.lower)} to ${ac.format(tk, output.desc.upper)} any more`)
}

/** The since, diff-sum and update-count checks; the batch's new len when they pass. */
function check(
  tk: Trace['tk'],
  sb: SpineBatch,
  hb: HollowBatch,
  replaced: readonly BatchPart[],
  output: HollowBatch,
): { readonly len: number } | { readonly result: 'not_applied_invalid_since' | 'not_applied_no_match' | 'not_applied_too_many_updates'; readonly detail: ApplyDetail } {
  const name = `spine batch ${formatSpineId(sb.id)}`
  if (!ac.frontierLessEqual(tk, output.desc.since, sb.desc.since)) {
    return {
      result: 'not_applied_invalid_since',
      detail: { why: 'since', message: `the output's since ${ac.format(tk, output.desc.since)} is beyond the since ${ac.format(tk, sb.desc.since)} of ${name}, whose runs it would replace` },
    }
  }
  const before = knownDiffsSum(replaced)
  const after = knownDiffsSum(output.parts)
  if (before !== null && after !== null && before !== after) {
    return { result: 'not_applied_no_match', detail: { why: 'diffs', message: `the runs it would replace in ${name} sum their diffs to ${before}, the output to ${after}: it is not a compaction of them` } }
  }
  const known = replaced.every((p) => p.kind === 'hollow')
  const removed = known ? Math.min(hb.len, replaced.reduce((s, p) => s + (p.kind === 'hollow' ? p.stats.updates : 0), 0)) : hb.len
  if (output.len > removed) {
    return {
      result: 'not_applied_too_many_updates',
      detail: { why: 'updates', message: `the output has ${output.len} updates, more than the ${removed} of the runs it would replace in ${name} (a better compaction was applied meanwhile)` },
    }
  }
  return { len: known ? hb.len - removed + output.len : hb.len }
}

/** The batch's runs without the named parts; a run left with none is dropped. */
function keptRuns(hb: HollowBatch, named: ReadonlySet<string>): Run[] {
  return runs(hb).flatMap((r) => {
    const left = r.parts.filter((p) => !named.has(partIdentity(p)))
    return left.length === 0 ? [] : [{ meta: r.meta, parts: left }]
  })
}

/** `hb`'s desc with `rs` as its runs and `len` updates. */
export function withRuns(hb: HollowBatch, rs: readonly Run[], len: number): HollowBatch {
  const parts: BatchPart[] = []
  const runSplits: number[] = []
  for (const r of rs) {
    if (r.parts.length === 0) continue
    if (parts.length > 0) runSplits.push(parts.length)
    parts.push(...r.parts)
  }
  return Object.freeze({ desc: hb.desc, len, parts: Object.freeze(parts), runSplits: Object.freeze(runSplits), runMeta: Object.freeze(rs.filter((r) => r.parts.length > 0).map((r) => r.meta)) })
}

function replaceHollowBatch(trace: Trace, li: number, bi: number, hi: number, batch: HollowBatch): Trace {
  const levels = trace.levels.map((level, i) => {
    if (i !== li) return level
    const batches = level.batches.map((sb, j) => {
      if (j !== bi) return sb
      const parts = Object.freeze(sb.parts.map((p, k) => (k === hi ? Object.freeze({ id: p.id, batch }) : p)))
      return Object.freeze({ id: sb.id, desc: sb.desc, parts, len: spineBatchLen(parts) })
    })
    return Object.freeze({ batches: Object.freeze(batches), merge: level.merge })
  })
  return Object.freeze({ ...trace, levels: Object.freeze(levels) })
}

function noMatch(trace: Trace, message: string): ReplaceResult {
  return { trace, result: 'not_applied_no_match', detail: { why: 'range', message } }
}
