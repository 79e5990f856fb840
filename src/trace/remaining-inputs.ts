/**
 * What of a compaction's inputs is still in the trace: the work a rescued attempt has left to do
 * after an earlier attempt applied some of its chunks (docs/compaction.md#incremental-compaction).
 *
 * Each input hollow batch is found by its lower and upper, then compared by its parts
 * (compaction-input.ts `partIdentity`):
 * - the trace's batch holds exactly its parts: untouched. Consecutive untouched inputs make one
 *   `batches` group (their output replaces them by desc);
 * - the trace's batch holds some of its parts: chunks of its runs were applied. The runs still
 *   holding its parts make one `runs` group (their output must replace those runs only: the
 *   batch also holds the outputs already applied);
 * - no such batch, or none of its parts: done (replaced by a chunk's output, or by another result).
 * An input with no parts counts as untouched while a batch with its bounds and no parts is in the
 * trace; a group made only of such inputs is left out (there is nothing to compact in it).
 */
import * as ac from '../core/antichain.js'
import { runs, type BatchPart, type HollowBatch } from '../core/batch.js'
import { partIdentity } from './compaction-input.js'
import { withRuns } from './replace-runs.js'
import { allHollowBatches, type Trace } from './trace.js'

export type RemainingGroup =
  /** Consecutive inputs still in the trace as they were. */
  | { readonly kind: 'batches'; readonly inputs: readonly HollowBatch[] }
  /** The runs of one input still in the trace: the trace's batch (its desc), holding only those runs. */
  | { readonly kind: 'runs'; readonly batch: HollowBatch }

/** The groups of `inputs` (consecutive, oldest first) still to compact in `trace`, in order. */
export function remainingInputs(trace: Trace, inputs: readonly HollowBatch[]): RemainingGroup[] {
  const tk = trace.tk
  const inTrace = allHollowBatches(trace)
  const groups: RemainingGroup[] = []
  let untouched: HollowBatch[] = []
  const close = (): void => {
    if (untouched.some((b) => b.parts.length > 0)) groups.push({ kind: 'batches', inputs: untouched })
    untouched = []
  }
  for (const input of inputs) {
    const ids = new Set(input.parts.map(partIdentity))
    const same = inTrace.filter((b) => ac.equals(tk, b.desc.lower, input.desc.lower) && ac.equals(tk, b.desc.upper, input.desc.upper))
    const whole = same.find((b) => b.parts.length === input.parts.length && b.parts.every((p) => ids.has(partIdentity(p))))
    if (whole !== undefined) {
      untouched.push(input)
      continue
    }
    close()
    const partial = same.find((b) => b.parts.some((p) => ids.has(partIdentity(p))))
    if (partial === undefined) continue
    const left = runs(partial).flatMap((r) => {
      const mine = r.parts.filter((p) => ids.has(partIdentity(p)))
      return mine.length === 0 ? [] : [{ meta: r.meta, parts: mine }]
    })
    const len = left.every((r) => r.parts.every((p) => p.kind === 'hollow'))
      ? left.reduce((s, r) => s + r.parts.reduce((t, p) => t + (p.kind === 'hollow' ? p.stats.updates : 0), 0), 0)
      : partial.len
    groups.push({ kind: 'runs', batch: withRuns(partial, left, Math.min(len, partial.len)) })
  }
  close()
  return groups
}

/**
 * `inputs` without the parts `leftOut` picks (a rescued attempt's own applied outputs): the groups
 * still to compact, as `remainingInputs` makes them. A batch with none of them is whole; a batch
 * all of whose parts are picked is left out; a batch with some keeps the runs without any (a
 * `runs` group, its len the sum of their parts' updates when known).
 */
export function withoutParts(inputs: readonly HollowBatch[], leftOut: (p: BatchPart) => boolean): RemainingGroup[] {
  const groups: RemainingGroup[] = []
  let whole: HollowBatch[] = []
  const close = (): void => {
    if (whole.some((b) => b.parts.length > 0)) groups.push({ kind: 'batches', inputs: whole })
    whole = []
  }
  for (const b of inputs) {
    if (!b.parts.some(leftOut)) {
      whole.push(b)
      continue
    }
    close()
    const left = runs(b).filter((r) => !r.parts.some(leftOut))
    if (left.length === 0) continue
    const known = left.every((r) => r.parts.every((p) => p.kind === 'hollow'))
    const len = known ? left.reduce((s, r) => s + r.parts.reduce((t, p) => t + (p.kind === 'hollow' ? p.stats.updates : 0), 0), 0) : b.len
    groups.push({ kind: 'runs', batch: withRuns(b, left, Math.min(len, b.len)) })
  }
  close()
  return groups
}
