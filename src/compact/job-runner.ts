/**
 * Stage C for one compaction (docs/compaction.md): its merges planned from the shard's state,
 * each compacted by Stage D under its timeout and applied to the trace, with the metrics of every
 * branch; and `runMerge`, one merge's attempt, which `compactOnly` runs too (without the apply).
 *
 * A compaction of kind `merges` or `major` is planned again when it starts and whenever a merge did
 * not apply because the spine moved (persist's force-compaction retries the same way), at most
 * `MAX_ROUNDS` times; a `range` compaction runs its one merge once.
 *
 * NB: outputs are deleted whenever a merge ends without its output in the trace (not applied,
 * failed, timed out, cancelled), EXCEPT when the apply itself failed: its outcome is unknown, the
 * output may be referenced, and GC collects it if it is not.
 */
import type { HollowBatch } from '../core/batch.js'
import type { PartialBatchKey } from '../core/paths.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import {
  inputStats,
  type ApplyResult,
  type CompactionError,
  type CompactionRequest,
  type CompactionStatus,
  type InputStats,
  type MergeOutcome,
  type Progress,
  type Reason,
  type ResolvedRequest,
} from './compaction.js'
import type { ApplyOutcome, CompactorDeps, CompactorShards, Execute, Fence, Replanned } from './compactor-port.js'
import { fastPathEligible, selectSchema, timeoutMs } from './plan.js'
import { toCompactionError, writtenParts } from './stage-d-failure.js'

/** Plans a compaction of kind `merges` or `major` gets at most (the first, and re-plans after the spine moved). */
export const MAX_ROUNDS = 3

export interface RunnerDeps {
  readonly shards: CompactorShards
  readonly execute: Execute
  readonly metrics: CompactorDeps['metrics']
  /** Errors nobody awaits (failed deletes, unknown applies, INTERNAL errors). Must not throw. */
  readonly report: (err: unknown, context: string) => void
  /** The clock of the duration counters. */
  readonly now: () => Date
}

/** What a running compaction tells its record. */
export interface RunObserver {
  /** The job's own abort: cancel, caller deadline, stop. Its reason is `abortReason()`. */
  readonly signal: AbortSignal
  abortReason(): CompactionError | null
  /** A merge starts (Stage D) or its output is being applied (not cancellable). */
  phase(phase: 'executing' | 'applying'): void
  /** The plan changed: every merge's inputs, summed, and the timeout of the merge about to run. */
  planned(inputs: InputStats, timeoutMs: number, schemaSelection: ReturnType<typeof selectSchema>['selection']): void
  /** Running totals (over every merge so far). */
  progress(p: Partial<Progress>): void
  /** A merge ended (applied or not). */
  merged(outcome: MergeOutcome): void
}

/** How a compaction ended: its final status and the fields that go with it. */
export interface RunResult {
  readonly status: Extract<CompactionStatus, 'succeeded' | 'not_applied' | 'failed' | 'cancelled'>
  readonly result?: ApplyResult
  readonly output?: HollowBatch
  readonly reason?: Reason
  readonly error?: CompactionError
}

/** One merge's end. */
type MergeEnd =
  | { readonly kind: 'applied'; readonly outcome: MergeOutcome; readonly output: HollowBatch }
  | { readonly kind: 'not_applied'; readonly outcome: MergeOutcome }
  | { readonly kind: 'failed'; readonly error: CompactionError }

/** Runs every merge of `req` (Stage C); never throws. */
export async function runCompaction(deps: RunnerDeps, req: CompactionRequest, cfg: ConfigValues, fence: Fence | null, obs: RunObserver): Promise<RunResult> {
  const outcomes: MergeOutcome[] = []
  let lastRound: MergeEnd[] = []
  let planned: ResolvedRequest[] = []
  /** Totals of merges already finished, to add the running merge's counts to. */
  const done: Record<string, number> = { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 0, chunksTotal: 0, chunksApplied: 0 }
  let output: HollowBatch | undefined
  for (let round = 0; round < (req.kind === 'range' ? 1 : MAX_ROUNDS); round++) {
    const plan = req.kind === 'range' ? { merges: req.merges, problem: null } : await replan(deps, req)
    if (plan === null) return failed(obs, { code: 'STORAGE_ERROR', message: 'reading the shard to plan the compaction failed; see the server log' })
    if (plan.problem !== null) return end(outcomes, lastRound, plan.problem)
    if (plan.merges.length === 0) {
      if (round === 0) return { status: 'not_applied', reason: { code: 'NOTHING_TO_COMPACT', message: nothingToDo(req) } }
      break
    }
    planned = [...planned, ...plan.merges]
    lastRound = []
    let moved = false
    for (const merge of plan.merges) {
      if (obs.signal.aborted) return failed(obs, obs.abortReason() ?? { code: 'CANCELLED', message: 'cancelled' })
      const timeout = timeoutMs(merge.inputs, cfg.persist_compaction_minimum_timeout)
      const schema = selectSchema(merge.inputs, merge.knownSchemaIds, merge.writerSchemaId, cfg.persist_compaction_use_most_recent_schema)
      obs.planned(sumStats([...outcomes.map((o) => o.inputs), ...planned.slice(outcomes.length).map((m) => inputStats(m.inputs))]), timeout, schema.selection)
      // This merge's running totals (Stage D reports running totals of its own).
      const current: Record<string, number> = {}
      const r = await runMerge(deps, merge, cfg, fence, {
        signal: obs.signal,
        abortReason: () => obs.abortReason(),
        timeoutMs: timeout,
        schema,
        phase: (p) => obs.phase(p),
        progress: (p) => {
          for (const [k, v] of Object.entries(p)) if (typeof v === 'number') current[k] = v
          obs.progress(add(done, current))
        },
        apply: true,
      })
      if (r.kind === 'failed') return failed(obs, r.error)
      for (const k of Object.keys(done)) done[k] = (done[k] as number) + (current[k] ?? 0)
      // Without incremental compaction, a merge's chunks enter the trace together, when it applies.
      if (r.kind === 'applied') done['chunksApplied'] = (done['chunksApplied'] as number) + (current['chunksTotal'] ?? 0)
      obs.progress({ ...done })
      lastRound.push(r)
      outcomes.push(r.outcome)
      obs.merged(r.outcome)
      if (r.kind === 'applied') output = r.output
      if (r.kind === 'not_applied' && req.kind !== 'range' && (r.outcome.reason?.code === 'SPINE_MOVED' || r.outcome.reason?.code === 'TOO_MANY_UPDATES')) {
        moved = true
        break
      }
    }
    if (!moved) break
  }
  const result = end(outcomes, lastRound, null)
  return outcomes.length === 1 && result.status === 'succeeded' && output !== undefined ? { ...result, output } : result
}

/** The final status from the merges' outcomes (see the state table in compaction.ts). */
function end(outcomes: readonly MergeOutcome[], lastRound: readonly MergeEnd[], problem: Reason | null): RunResult {
  const applied = outcomes.filter((o) => o.result === 'applied_exact' || o.result === 'applied_subset')
  const single = outcomes.length === 1 ? { result: (outcomes[0] as MergeOutcome).result } : {}
  if (applied.length === 0) {
    const last = outcomes[outcomes.length - 1]
    return { status: 'not_applied', ...single, reason: problem ?? last?.reason ?? { code: 'NOTHING_TO_COMPACT', message: 'nothing was compacted' } }
  }
  const missed = lastRound.filter((r) => r.kind === 'not_applied')
  if (problem === null && missed.length === 0) return { status: 'succeeded', ...single }
  const why = problem ?? (missed[missed.length - 1] as { outcome: MergeOutcome }).outcome.reason
  return {
    status: 'succeeded',
    ...single,
    reason: {
      code: 'PARTIALLY_APPLIED',
      message: `${applied.length} of ${outcomes.length} merges applied; the last that did not: ${why?.message ?? 'see merges'}`,
    },
  }
}

async function replan(deps: RunnerDeps, req: CompactionRequest): Promise<Replanned | null> {
  try {
    return await deps.shards.replan(req)
  } catch (err) {
    if (err instanceof AppError && (err.code === 'SHARD_NOT_FOUND' || err.code === 'SHARD_DELETED')) return { merges: [], problem: { code: 'SHARD_DELETED', message: err.message } }
    deps.report(err, `planning compaction of shard ${req.shardId} failed`)
    return null
  }
}

function failed(obs: RunObserver, error: CompactionError): RunResult {
  const reason = obs.abortReason() ?? error
  return { status: reason.code === 'CANCELLED' ? 'cancelled' : 'failed', error: reason }
}

function nothingToDo(req: CompactionRequest): string {
  switch (req.kind) {
    case 'merges':
      return 'the spine has no merge in progress any more: every spine batch is one batch of one run (send "major": true to merge the whole trace at the shard\'s since)'
    case 'major':
      return 'the range is already one batch of one run at the shard\'s since, or holds no updates'
    case 'range':
      return 'nothing to compact'
  }
}

export interface MergeRun {
  /** The job's abort (cancel, deadline, stop); the merge adds its own timeout. */
  readonly signal: AbortSignal
  abortReason(): CompactionError | null
  readonly timeoutMs: number
  readonly schema: ReturnType<typeof selectSchema>
  phase?(p: 'executing' | 'applying'): void
  progress?(p: Partial<Progress>): void
  /** Offer the output to the trace (compaction), or hand it to the caller (`compactOnly`). */
  readonly apply: boolean
}

/**
 * One merge: Stage D under its timeout, then (with `apply`) the apply and its outcome. Counts
 * persist's per-request metrics (started, seconds, applied/noop/failed...). Outputs not applied are
 * deleted. Never throws.
 */
export async function runMerge(deps: RunnerDeps, req: ResolvedRequest, cfg: ConfigValues, fence: Fence | null, run: MergeRun): Promise<MergeEnd> {
  const m = deps.metrics.compaction
  const started = deps.now().getTime()
  if (run.apply) {
    m.started.inc()
    m.schemaSelection.inc({ selection: run.schema.selection })
    if (fastPathEligible(req.tk, req.inputs)) m.fastPathEligible.inc()
  }
  run.phase?.('executing')
  const timeout = new AbortController()
  let timedOut: CompactionError | null = null
  const timer = setTimeout(() => {
    timedOut = { code: 'TIMED_OUT', message: `the compaction timed out after ${run.timeoutMs} ms` }
    timeout.abort(new AppError('TIMED_OUT', timedOut.message))
  }, run.timeoutMs)
  const aborted = (): CompactionError | null => run.abortReason() ?? timedOut
  let output: HollowBatch | null = null
  let failure: { readonly err: unknown } | null = null
  try {
    ;({ output } = await deps.execute(req, cfg, {
      signal: AbortSignal.any([run.signal, timeout.signal]),
      schema: run.schema,
      onProgress: (p) => run.progress?.(p),
    }))
  } catch (err) {
    failure = { err }
  } finally {
    clearTimeout(timer)
  }
  if (run.apply) m.seconds.inc(Math.max(0, deps.now().getTime() - started) / 1000)

  // NB: once aborted, the abort reason is the outcome, whatever Stage D returned afterwards.
  const reason = aborted()
  if (reason !== null || failure !== null || output === null) {
    const written = output ?? writtenParts(failure?.err)
    if (!Array.isArray(written) || written.length > 0) await deleteOutputs(deps, req, written)
    const error = reason ?? toCompactionError(failure?.err ?? new Error('Stage D returned no output'), (e) => deps.report(e, `compaction of shard ${req.shardId} failed`))
    if (run.apply) {
      if (error.code === 'TIMED_OUT') m.timedOut.inc()
      if (error.code !== 'CANCELLED') m.failed.inc()
    }
    return { kind: 'failed', error }
  }
  const inputs = inputStats(req.inputs)
  if (!run.apply) return { kind: 'applied', outcome: { desc: req.desc, inputs, result: 'applied_exact' }, output }

  run.phase?.('applying')
  let applied: ApplyOutcome
  try {
    applied = await deps.shards.applyMergeRes(req.shardId, output, req.apply, fence)
  } catch (err) {
    // NB: the outcome is unknown; the output may be referenced now, so it is left to GC.
    deps.report(err, `applying a compaction to shard ${req.shardId} failed; its outputs are left to GC`)
    m.failed.inc()
    return {
      kind: 'failed',
      error: { code: 'STORAGE_ERROR', message: 'applying the result to the shard failed and may or may not have taken effect; its outputs are left to GC' },
    }
  }
  const { result } = applied
  if (result === 'applied_exact' || result === 'applied_subset') {
    m.applied.inc()
    if (result === 'applied_exact') m.appliedExactMatch.inc()
    else m.appliedSubsetMatch.inc()
    deps.metrics.shard.compactionApplied.inc({ shard: req.shardId })
    return { kind: 'applied', outcome: { desc: req.desc, inputs, result }, output }
  }
  if (result === 'not_applied_too_many_updates') m.notAppliedTooManyUpdates.inc()
  m.noop.inc()
  await deleteOutputs(deps, req, output)
  return { kind: 'not_applied', outcome: { desc: req.desc, inputs, result, reason: reasonOf(applied) } }
}

/** The reason an apply outcome gives an operator. */
export function reasonOf(outcome: ApplyOutcome): Reason {
  const message = outcome.detail?.message ?? outcome.result
  switch (outcome.detail?.why) {
    case 'diffs':
      return { code: 'NOT_A_COMPACTION', message }
    case 'since':
      return { code: 'INVALID_SINCE', message }
    case 'updates':
      return { code: 'TOO_MANY_UPDATES', message }
    case 'deleted':
      return { code: 'SHARD_DELETED', message }
    case 'fenced':
      return { code: 'SUPERSEDED', message }
    default:
      if (outcome.result === 'not_applied_invalid_since') return { code: 'INVALID_SINCE', message }
      if (outcome.result === 'not_applied_too_many_updates') return { code: 'TOO_MANY_UPDATES', message }
      return { code: 'SPINE_MOVED', message }
  }
}

/** Deletes outputs; a failure is reported and left to GC. */
async function deleteOutputs(deps: RunnerDeps, req: ResolvedRequest, output: HollowBatch | readonly PartialBatchKey[]): Promise<void> {
  try {
    await deps.shards.deleteOutputParts(req.shardId, output)
  } catch (err) {
    deps.report(err, `deleting compaction outputs of shard ${req.shardId} failed; GC will collect them`)
  }
}

function sumStats(all: readonly InputStats[]): InputStats {
  return all.reduce((s, x) => ({ batches: s.batches + x.batches, parts: s.parts + x.parts, runs: s.runs + x.runs, updates: s.updates + x.updates, encodedBytes: s.encodedBytes + x.encodedBytes }), {
    batches: 0,
    parts: 0,
    runs: 0,
    updates: 0,
    encodedBytes: 0,
  })
}

/** Totals: the finished merges' counts plus the running merge's own running totals. */
function add(done: Record<string, number>, current: Record<string, number>): Partial<Progress> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(current)) if (k in done) out[k] = (done[k] as number) + v
  return out
}
