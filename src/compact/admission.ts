/**
 * Stage A's decisions that need no state: whether a resolved request is skipped (and why), its
 * dry-run plan, and the caller's deadline. The compactor (compactor.ts) does the rest of Stage A.
 */
import * as descs from '../core/description.js'
import { parseDuration } from '../dyncfg/duration.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import type { CompactionRequest, CompactionSource, DryRunPlan, MergePlan, Reason, ResolvedRequest, SubmitBody } from './compaction.js'
import { heuristic } from './plan.js'

/**
 * Why a request is skipped: nothing to do (an operator request whose merges are all done), or,
 * for maintenance only (unless `heuristics` is false), below every heuristic (they exist to save
 * blob traffic on small merges while appends keep adding work).
 */
export function skipReason(req: CompactionRequest, source: CompactionSource, cfg: ConfigValues, heuristics = true): Reason | null {
  if (req.merges.length === 0) {
    return {
      code: 'NOTHING_TO_COMPACT',
      message:
        req.kind === 'major'
          ? "the range is already one batch of one run at the shard's since, or holds no updates"
          : 'the spine has no merge in progress: every spine batch is one batch of one run (send "major": true to merge the whole trace at the shard\'s since)',
    }
  }
  if (source !== 'maintenance' || !heuristics) return null
  const v = verdict(req, cfg)
  if (v.wouldCompact) return null
  return {
    code: 'BELOW_HEURISTICS',
    message:
      `${v.inputs} inputs, ${v.parts} parts and ${v.updates} updates are below every heuristic (persist_compaction_heuristic_min_inputs ${cfg.persist_compaction_heuristic_min_inputs}, ` +
      `_min_parts ${cfg.persist_compaction_heuristic_min_parts}, _min_updates ${cfg.persist_compaction_heuristic_min_updates}): maintenance waits until more work accumulates; an operator request compacts anyway`,
  }
}

/** The dry-run plan: each merge's plan, the first one's repeated at the top. */
export function dryRun(req: CompactionRequest, source: CompactionSource, cfg: ConfigValues, plan: (r: ResolvedRequest, cfg: ConfigValues) => MergePlan): DryRunPlan {
  const plans = req.merges.map((r) => ({ ...plan(r, cfg), desc: descs.toJson(req.tk, r.desc) }))
  const first = plans[0]
  const empty = { timeoutMs: 0, schemaSelection: 'no_schema' as const, schemaId: req.writerSchemaId, runs: [], chunks: [], memoryViolations: 0 }
  const { desc: _desc, heuristic: _h, ...fields } = first ?? { ...empty, desc: undefined, heuristic: undefined }
  return { ...fields, heuristic: { ...verdict(req, cfg), wouldCompact: skipReason(req, source, cfg) === null }, kind: req.kind, merges: plans }
}

/** The caller's deadline in milliseconds from now; null for none. Throws BAD_REQUEST naming `body.deadline`. */
export function parseDeadline(deadline: SubmitBody['deadline']): number | null {
  if (deadline === undefined) return null
  const parsed = parseDuration(deadline)
  if (!parsed.ok) throw new AppError('BAD_REQUEST', `deadline: ${parsed.error}`, { field: 'body.deadline' })
  if (parsed.value < 1) throw new AppError('BAD_REQUEST', 'deadline: must be at least 1ms', { field: 'body.deadline' })
  return parsed.value
}

function verdict(req: CompactionRequest, cfg: ConfigValues): ReturnType<typeof heuristic> {
  return heuristic(
    req.merges.flatMap((r) => r.inputs),
    { minInputs: cfg.persist_compaction_heuristic_min_inputs, minParts: cfg.persist_compaction_heuristic_min_parts, minUpdates: cfg.persist_compaction_heuristic_min_updates },
  )
}

const RECENT_DURATIONS = 32
const MAX_RETRY_AFTER_SECONDS = 300

/** The durations of the last compactions run here: what a full queue's `Retry-After` is estimated from. */
export class RecentDurations {
  readonly #seconds: number[] = []

  add(seconds: number): void {
    this.#seconds.push(Math.max(0, seconds))
    if (this.#seconds.length > RECENT_DURATIONS) this.#seconds.shift()
  }

  /** About when one of `queueDepth` queued jobs gets one of `concurrency` permits: 1 s to 5 min. */
  retryAfterSeconds(queueDepth: number, concurrency: number): number {
    if (this.#seconds.length === 0) return 1
    const mean = this.#seconds.reduce((s, d) => s + d, 0) / this.#seconds.length
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil((mean * Math.max(1, queueDepth)) / Math.max(1, concurrency))))
  }
}
