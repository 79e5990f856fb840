/**
 * Applying any compaction output to the trace: how it applies (`merge`, as persist does; `major`,
 * over whole spine batches) and what it replaces (compaction-input.ts) pick the transition.
 *
 * | mode | input | transition |
 * |---|---|---|
 * | `merge` | `batches` | `applyMergeRes`: one spine batch exactly, or hollow batches inside one |
 * | `merge` | `runs` | `replaceRuns`: runs of one hollow batch |
 * | `major` | `batches` | `replaceSpineBatches` when the output spans whole spine batches; otherwise (a chunk of an incremental major compaction) the spine batches it touches are gathered into one (`gatherSpineBatches`, raising their since to the output's) and the output replaces its hollow batches inside it |
 * | `major` | `runs` | the spine batch holding the hollow batch is gathered alone (its since raised to the output's), then `replaceRuns` |
 *
 * A gather is part of the transition: when the output then does not apply, the trace is returned
 * unchanged, gather included.
 */
import type { HollowBatch } from '../core/batch.js'
import { applied, applyMergeRes } from './apply-merge-res.js'
import type { CompactionInput } from './compaction-input.js'
import { gatherSpineBatches } from './gather-spine-batches.js'
import { replaceRuns } from './replace-runs.js'
import { replaceSpineBatches, type ReplaceResult } from './replace-spine-batches.js'
import type { Trace } from './trace.js'

export const APPLY_MODES = ['merge', 'major'] as const
export type ApplyMode = (typeof APPLY_MODES)[number]

/** Applies `output` as `mode` and `input` say (see the table above). */
export function applyResult(trace: Trace, output: HollowBatch, mode: ApplyMode, input: CompactionInput): ReplaceResult {
  const inside = (t: Trace): ReplaceResult => (input.kind === 'runs' ? replaceRuns(t, output, input.parts) : applyMergeRes(t, { output }))
  if (mode === 'merge') return inside(trace)
  if (input.kind === 'batches') {
    const whole = replaceSpineBatches(trace, output)
    if (whole.result !== 'not_applied_no_match' || whole.detail?.why !== 'range') return whole
  }
  const gathered = gatherSpineBatches(trace, output.desc.lower, output.desc.upper, output.desc.since)
  if (!gathered.ok) return { trace, result: gathered.result, detail: gathered.detail }
  const r = inside(gathered.trace)
  return applied(r.result) ? r : { trace, result: r.result, detail: r.detail }
}
