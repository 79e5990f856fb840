/**
 * Stage C for one compaction (docs/compaction.md): its merges planned from the shard's state,
 * each compacted by Stage D under its timeout and applied to the trace, with the metrics of every
 * branch; and `runMerge`, one merge's attempt, which `compactOnly` runs too (without the apply).
 *
 * A compaction of kind `merges` or `major` is planned again when it starts and whenever a merge did
 * not apply because the spine moved (persist's force-compaction retries the same way), at most
 * `MAX_ROUNDS` times; a `range` compaction runs its one merge once, and a later attempt of it
 * (its first owner was lost) runs only what of its inputs is left in the trace.
 *
 * Incremental compaction (`persist_enable_incremental_compaction`, docs/compaction.md#incremental-compaction):
 * Stage D hands each chunk's output over as soon as it is written, and `ChunkApplier` applies it at
 * once, so an abort keeps the chunks applied before it. Each output offered to the trace (a
 * merge's, or each chunk's) counts in the apply metrics and is recorded in the record's `merges`
 * (consecutive chunks of one merge that fared alike as one entry, compaction.ts `foldOutcome`);
 * the first chunk that does not apply stops its merge (the state it was planned against changed,
 * so the rest would likely not apply either): its outputs and the rest's are deleted, and a
 * `merges` or `major` compaction plans again from the new state.
 *
 * NB: outputs are deleted whenever a merge ends without its output in the trace (not applied,
 * failed, timed out, cancelled), EXCEPT when the apply itself failed: its outcome is unknown, the
 * output may be referenced, and GC collects it if it is not. Chunks applied stay: their parts are
 * referenced by state.
 */
import type { BatchPart, HollowBatch } from '../core/batch.js'
import type { PartialBatchKey } from '../core/paths.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import { LocationError } from '../location/errors.js'
import { applied as isApplied } from '../trace/apply-merge-res.js'
import { WHOLE_BATCHES, type CompactionInput } from '../trace/compaction-input.js'
import {
  inputStats,
  sumInputStats,
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
import type { ApplyOutcome, ChunkOutput, CompactorDeps, CompactorShards, Execute, Fence, Replanned, Rescue } from './compactor-port.js'
import { jobWriterKey } from './job-outputs.js'
import { fastPathEligible, selectSchema, timeoutMs } from './plan.js'
import { isTransientStoreFailure, toCompactionError, writtenParts } from './stage-d-failure.js'

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
  /** The attempt (1: the first; later ones rescue a job whose owner was lost). Default 1. */
  readonly attempt?: number
  /** Chunks the job's record says earlier attempts applied. Default 0. */
  readonly appliedBefore?: number
  /** A merge starts (Stage D) or its output is being applied (not cancellable). */
  phase(phase: 'executing' | 'applying'): void
  /** The plan changed: every merge's inputs, summed, and the timeout of the merge about to run. */
  planned(inputs: InputStats, timeoutMs: number, schemaSelection: ReturnType<typeof selectSchema>['selection']): void
  /** Running totals (over every merge so far). */
  progress(p: Partial<Progress>): void
  /** An output was offered to the trace (applied or not): a merge's, or one chunk's; `sameMerge`: a later chunk of the merge of the output before. */
  merged(outcome: MergeOutcome, sameMerge: boolean): void
}

/** How a compaction ended: its final status and the fields that go with it. */
export interface RunResult {
  readonly status: Extract<CompactionStatus, 'succeeded' | 'not_applied' | 'failed' | 'cancelled'>
  readonly result?: ApplyResult
  readonly output?: HollowBatch
  readonly reason?: Reason
  readonly error?: CompactionError
  /**
   * Failed because a store failed in a way that may pass (down, restarting: isTransientStoreFailure),
   * not because of the compaction itself: another attempt may well succeed.
   */
  readonly transient?: boolean
}

/** One merge's end. */
type MergeEnd =
  /** Every output it offered applied; `output`: all of them as one batch (with `apply` off: the output, not applied). */
  | { readonly kind: 'applied'; readonly output: HollowBatch }
  /** Its last output offered did not apply (earlier chunks' may have). */
  | { readonly kind: 'not_applied'; readonly outcome: MergeOutcome }
  | { readonly kind: 'failed'; readonly error: CompactionError; readonly transient: boolean }

const ZERO_COUNTS = { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 0, chunksTotal: 0, chunksApplied: 0 }

/** Runs every merge of `req` (Stage C); never throws. */
export async function runCompaction(deps: RunnerDeps, req: CompactionRequest, cfg: ConfigValues, fence: Fence | null, obs: RunObserver): Promise<RunResult> {
  /** Every output offered to the trace, in order; `round`: those of the last round. */
  const outcomes: MergeOutcome[] = []
  let round: MergeOutcome[] = []
  /** The inputs of the merges that ran. */
  const ran: InputStats[] = []
  /** Totals of merges already finished, to add the running merge's counts to. */
  const done: Record<string, number> = { ...ZERO_COUNTS }
  const rescued = (obs.attempt ?? 1) > 1 && fence !== null
  let output: HollowBatch | undefined
  for (let r = 0; r < (req.kind === 'range' ? 1 : MAX_ROUNDS); r++) {
    const rescue = rescued && r === 0 && fence !== null ? { fence, appliedBefore: obs.appliedBefore ?? 0 } : null
    const plan = req.kind === 'range' && !rescued ? { merges: req.merges, problem: null } : await replan(deps, req, rescue)
    if ('failure' in plan) {
      return failed(obs, { code: 'STORAGE_ERROR', message: 'reading the shard to plan the compaction failed; see the server log' }, outcomes, isTransientStoreFailure(plan.failure))
    }
    if (r === 0) {
      // A rescued attempt counts on from what earlier attempts applied (the claim counts exactly;
      // the record, as of the last lease renewal, also when the claim was given back). NB: its
      // plan holds only what is left, so those chunks count as done and planned too: else the
      // chunks applied exceeded the chunks planned (3 applied of 2 after a kill -9 at 1 of 3).
      const earlier = rescued ? Math.max(obs.appliedBefore ?? 0, plan.appliedEarlier ?? 0) : 0
      done['chunksApplied'] = done['chunksDone'] = done['chunksTotal'] = earlier
      if (earlier > 0) obs.progress({ chunksApplied: earlier, chunksDone: earlier, chunksTotal: earlier })
    }
    if (plan.problem !== null) return end(outcomes, round, plan.problem)
    if (plan.merges.length === 0) {
      if (r > 0) break
      if (rescued && (done['chunksApplied'] ?? 0) > 0) return { status: 'succeeded', reason: { code: 'APPLIED_EARLIER', message: appliedEarlier(req, done['chunksApplied'] ?? 0) } }
      if (rescued && req.kind === 'range') return { status: 'not_applied', reason: { code: 'SPINE_MOVED', message: 'none of its inputs are left in the trace: another compaction replaced them' } }
      return { status: 'not_applied', reason: { code: 'NOTHING_TO_COMPACT', message: nothingToDo(req) } }
    }
    round = []
    let moved = false
    for (const [i, merge] of plan.merges.entries()) {
      if (obs.signal.aborted) return failed(obs, obs.abortReason() ?? { code: 'CANCELLED', message: 'cancelled' }, outcomes)
      const timeout = timeoutMs(merge.inputs, cfg.persist_compaction_minimum_timeout)
      const schema = selectSchema(merge.inputs, merge.knownSchemaIds, merge.writerSchemaId, cfg.persist_compaction_use_most_recent_schema)
      obs.planned(sumInputStats([...ran, ...plan.merges.slice(i).map((m) => inputStats(m.inputs))]), timeout, schema.selection)
      // This merge's running totals (Stage D and the applies report running totals of their own).
      const current: Record<string, number> = {}
      let offered = 0
      const ended = await runMerge(deps, merge, cfg, fence, {
        signal: obs.signal,
        abortReason: () => obs.abortReason(),
        timeoutMs: timeout,
        schema,
        phase: (p) => obs.phase(p),
        progress: (p) => {
          for (const [k, v] of Object.entries(p)) if (typeof v === 'number') current[k] = v
          obs.progress(add(done, current))
        },
        offered: (outcome) => {
          outcomes.push(outcome)
          round.push(outcome)
          obs.merged(outcome, offered++ > 0)
        },
        apply: true,
      })
      ran.push(inputStats(merge.inputs))
      for (const k of Object.keys(done)) done[k] = (done[k] as number) + (current[k] ?? 0)
      obs.progress({ ...done })
      if (ended.kind === 'failed') return failed(obs, ended.error, outcomes, ended.transient)
      if (ended.kind === 'applied') output = ended.output
      if (ended.kind === 'not_applied' && req.kind !== 'range' && (ended.outcome.reason?.code === 'SPINE_MOVED' || ended.outcome.reason?.code === 'TOO_MANY_UPDATES')) {
        moved = true
        break
      }
    }
    if (!moved) break
  }
  const result = end(outcomes, round, null)
  return outcomes.length === 1 && result.status === 'succeeded' && output !== undefined ? { ...result, output } : result
}

/** The final status from the outputs' outcomes (see the state table in compaction.ts). */
function end(outcomes: readonly MergeOutcome[], lastRound: readonly MergeOutcome[], problem: Reason | null): RunResult {
  const applied = outcomes.filter((o) => isApplied(o.result))
  const single = outcomes.length === 1 ? { result: (outcomes[0] as MergeOutcome).result } : {}
  if (applied.length === 0) {
    const last = outcomes[outcomes.length - 1]
    return { status: 'not_applied', ...single, reason: problem ?? last?.reason ?? { code: 'NOTHING_TO_COMPACT', message: 'nothing was compacted' } }
  }
  const missed = lastRound.filter((o) => !isApplied(o.result))
  if (problem === null && missed.length === 0) return { status: 'succeeded', ...single }
  const why = problem ?? (missed[missed.length - 1] as MergeOutcome).reason
  return {
    status: 'succeeded',
    ...single,
    reason: {
      code: 'PARTIALLY_APPLIED',
      message: `${applied.length} of the ${outcomes.length} outputs it offered applied; the last that did not: ${why?.message ?? 'see merges'}`,
    },
  }
}

/** The plan of the request as the shard is now; `failure` when reading the shard failed. */
async function replan(deps: RunnerDeps, req: CompactionRequest, rescue: Rescue | null): Promise<Replanned | { readonly failure: unknown }> {
  try {
    return await deps.shards.replan(req, rescue)
  } catch (err) {
    if (err instanceof AppError && (err.code === 'SHARD_NOT_FOUND' || err.code === 'SHARD_DELETED')) return { merges: [], problem: { code: 'SHARD_DELETED', message: err.message } }
    deps.report(err, `planning compaction of shard ${req.shardId} failed`)
    return { failure: err }
  }
}

/**
 * The end of a compaction that failed or was cancelled; the outputs it applied before stay, and its
 * reason says so. `transient`: the failure was a store's that may pass (never once the job was aborted).
 */
function failed(obs: RunObserver, error: CompactionError, outcomes: readonly MergeOutcome[], transient = false): RunResult {
  const aborted = obs.abortReason()
  const reason = aborted ?? error
  const status = reason.code === 'CANCELLED' ? 'cancelled' : 'failed'
  const retry = transient && aborted === null ? { transient: true } : {}
  const applied = outcomes.filter((o) => isApplied(o.result)).length
  if (applied === 0) return { status, error: reason, ...retry }
  const message = `${applied} ${applied === 1 ? 'output it applied' : 'outputs it applied'} before it ${status === 'cancelled' ? 'was cancelled' : 'failed'} stay in the trace (see merges and progress.chunksApplied); the rest was not compacted and its written outputs were deleted`
  return { status, error: reason, reason: { code: 'PARTIALLY_APPLIED', message }, ...retry }
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

function appliedEarlier(req: CompactionRequest, chunks: number): string {
  const what = req.kind === 'range' ? 'none of its inputs are left in the trace' : 'the shard holds nothing left for it to compact'
  return `${what}: earlier attempts of this compaction applied ${chunks} ${chunks === 1 ? 'output' : 'outputs'} before their instance was lost`
}

export interface MergeRun {
  /** The job's abort (cancel, deadline, stop); the merge adds its own timeout. */
  readonly signal: AbortSignal
  abortReason(): CompactionError | null
  readonly timeoutMs: number
  readonly schema: ReturnType<typeof selectSchema>
  phase?(p: 'executing' | 'applying'): void
  /** Running totals of this merge (Stage D's, and `chunksApplied`). */
  progress?(p: Partial<Progress>): void
  /** Each output offered to the trace, once its outcome is known: the merge's, or each chunk's. */
  offered?(outcome: MergeOutcome): void
  /** Offer the output to the trace (compaction), or hand it to the caller (`compactOnly`). */
  readonly apply: boolean
}

/**
 * One merge: Stage D under its timeout, and (with `apply`) the applies and their outcomes: each
 * chunk's as Stage D hands it over (incremental compaction), or the whole output once. Counts
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
  const chunks = new ChunkApplier(deps, req, fence, run, aborted)
  const writerKey = fence === null ? null : jobWriterKey(fence.job)
  let chunksTotal = 0
  let output: HollowBatch | null = null
  let failure: { readonly err: unknown } | null = null
  try {
    ;({ output } = await deps.execute(req, cfg, {
      signal: AbortSignal.any([run.signal, timeout.signal]),
      schema: run.schema,
      onProgress: (p) => {
        if (typeof p.chunksTotal === 'number') chunksTotal = p.chunksTotal
        run.progress?.(p)
      },
      ...(run.apply && cfg.persist_enable_incremental_compaction ? { applyChunk: (c: ChunkOutput) => chunks.apply(c) } : {}),
      ...(writerKey === null ? {} : { writerKey }),
    }))
  } catch (err) {
    failure = { err }
  } finally {
    clearTimeout(timer)
  }
  if (run.apply) m.seconds.inc(Math.max(0, deps.now().getTime() - started) / 1000)

  // NB: once aborted, the abort reason is the outcome, whatever Stage D returned afterwards.
  const reason = aborted()
  if (reason !== null || failure !== null || output === null || chunks.unknown || chunks.noSpace || chunks.refused !== null) {
    // What Stage D wrote and did not hand over (handed chunks were applied, deleted, or left to GC).
    const written = failure === null ? output : writtenParts(failure.err)
    if (written !== null && (!Array.isArray(written) || written.length > 0)) await deleteOutputs(deps, req, written)
    if (reason === null && chunks.refused !== null && !chunks.unknown) return { kind: 'not_applied', outcome: chunks.refused }
    if (reason === null && run.apply && !chunks.unknown && !chunks.noSpace && failure !== null && (await overtaken(deps, req, failure.err))) {
      const outcome: MergeOutcome = {
        desc: req.desc,
        inputs: inputStats(req.inputs),
        result: 'not_applied_no_match',
        reason: { code: 'SPINE_MOVED', message: 'a part of its inputs was gone when it read it: another compaction had replaced them and GC collected them' },
      }
      run.offered?.(outcome)
      return { kind: 'not_applied', outcome }
    }
    const error =
      reason ??
      (chunks.unknown
        ? { code: 'STORAGE_ERROR' as const, message: 'applying a chunk to the shard failed and may or may not have taken effect; its outputs are left to GC' }
        : chunks.noSpace
          ? { code: 'INSUFFICIENT_STORAGE' as const, message: 'the storage has no space left to record a chunk; its outputs were deleted; see the server log' }
          : toCompactionError(failure?.err ?? new Error('Stage D returned no output'), (e) => deps.report(e, `compaction of shard ${req.shardId} failed`)))
    if (run.apply) {
      if (error.code === 'TIMED_OUT') m.timedOut.inc()
      if (error.code !== 'CANCELLED') m.failed.inc()
    }
    const transient = reason === null && (chunks.unknown ? chunks.transient : failure !== null && isTransientStoreFailure(failure.err))
    return { kind: 'failed', error, transient }
  }
  if (!run.apply) return { kind: 'applied', output }
  if (chunks.handed > 0) {
    if (output.parts.length === 0) return { kind: 'applied', output: chunks.combined(req) }
    // NB: Stage D hands every chunk over or none; parts it kept back are not a compaction of anything.
    await deleteOutputs(deps, req, output)
    deps.report(new Error('Stage D returned parts besides the chunks it handed over'), `compaction of shard ${req.shardId}`)
    m.failed.inc()
    return { kind: 'failed', error: { code: 'INTERNAL', message: 'internal error; see the server log' }, transient: false }
  }

  run.phase?.('applying')
  const input: CompactionInput = req.scope === 'runs' ? { kind: 'runs', parts: req.inputs.flatMap((b) => b.parts) } : WHOLE_BATCHES
  let applied: ApplyOutcome
  try {
    applied = await deps.shards.applyMergeRes(req.shardId, output, req.apply, fence, input)
  } catch (err) {
    if (err instanceof LocationError && err.noSpace) {
      // Determinate: the state was not written, so nothing references the output: free its space now.
      deps.report(err, `applying a compaction to shard ${req.shardId} failed: no space left; its outputs were deleted`)
      await deleteOutputs(deps, req, output)
      m.failed.inc()
      return { kind: 'failed', error: { code: 'INSUFFICIENT_STORAGE', message: 'the storage has no space left to record the result; its outputs were deleted; see the server log' }, transient: false }
    }
    // NB: the outcome is unknown; the output may be referenced now, so it is left to GC.
    deps.report(err, `applying a compaction to shard ${req.shardId} failed; its outputs are left to GC`)
    m.failed.inc()
    return {
      kind: 'failed',
      error: { code: 'STORAGE_ERROR', message: 'applying the result to the shard failed and may or may not have taken effect; its outputs are left to GC' },
      transient: isTransientStoreFailure(err),
    }
  }
  const inputs = inputStats(req.inputs)
  const outcome = countApply(deps, req, applied)
  if (isApplied(outcome.result)) {
    // Without incremental compaction, a merge's chunks enter the trace together, when it applies.
    run.progress?.({ chunksApplied: chunksTotal })
    run.offered?.({ desc: req.desc, inputs, result: outcome.result })
    return { kind: 'applied', output }
  }
  await deleteOutputs(deps, req, output)
  const notApplied: MergeOutcome = { desc: req.desc, inputs, result: outcome.result, reason: reasonOf(applied) }
  run.offered?.(notApplied)
  return { kind: 'not_applied', outcome: notApplied }
}

/** Counts an apply's outcome in persist's metrics (applied and how, or noop and why). */
function countApply(deps: RunnerDeps, req: ResolvedRequest, outcome: ApplyOutcome): ApplyOutcome {
  const m = deps.metrics.compaction
  const { result } = outcome
  if (result === 'applied_exact' || result === 'applied_subset') {
    m.applied.inc()
    if (result === 'applied_exact') m.appliedExactMatch.inc()
    else m.appliedSubsetMatch.inc()
    deps.metrics.shard.compactionApplied.inc({ shard: req.shardId })
    return outcome
  }
  if (result === 'not_applied_too_many_updates') m.notAppliedTooManyUpdates.inc()
  m.noop.inc()
  return outcome
}

/**
 * Stage C's half of incremental compaction: applies each chunk output Stage D hands over, at once,
 * fenced like any apply. The first that does not apply is deleted and stops the merge (`refused`);
 * an apply whose outcome is unknown stops it too (`unknown`), its outputs left to GC.
 */
class ChunkApplier {
  /** Chunks handed over. */
  handed = 0
  /** The first chunk output that did not apply. */
  refused: MergeOutcome | null = null
  /** An apply failed in the store: its outcome is unknown. */
  unknown = false
  /** That failure was a store's that may pass (isTransientStoreFailure). */
  transient = false
  /** An apply was refused for lack of space (determinate: nothing written); its chunk was deleted. */
  noSpace = false
  readonly #applied: HollowBatch[] = []
  readonly #deps: RunnerDeps
  readonly #req: ResolvedRequest
  readonly #fence: Fence | null
  readonly #run: MergeRun
  readonly #aborted: () => CompactionError | null

  constructor(deps: RunnerDeps, req: ResolvedRequest, fence: Fence | null, run: MergeRun, aborted: () => CompactionError | null) {
    this.#deps = deps
    this.#req = req
    this.#fence = fence
    this.#run = run
    this.#aborted = aborted
  }

  async apply(chunk: ChunkOutput): Promise<'continue' | 'stop'> {
    const deps = this.#deps
    const req = this.#req
    this.handed++
    if (this.#aborted() !== null) {
      await deleteOutputs(deps, req, chunk.output)
      return 'stop'
    }
    // NB: only the last chunk's apply makes the compaction uncancellable (a cancel during an
    // earlier one takes effect once it has landed, keeping it).
    if (chunk.index === chunk.count - 1) this.#run.phase?.('applying')
    let outcome: ApplyOutcome
    try {
      outcome = await deps.shards.applyMergeRes(req.shardId, chunk.output, req.apply, this.#fence, chunk.input)
    } catch (err) {
      if (err instanceof LocationError && err.noSpace) {
        deps.report(err, `applying chunk ${chunk.index + 1} of ${chunk.count} of a compaction to shard ${req.shardId} failed: no space left; its outputs were deleted`)
        await deleteOutputs(deps, req, chunk.output)
        this.noSpace = true
        return 'stop'
      }
      deps.report(err, `applying chunk ${chunk.index + 1} of ${chunk.count} of a compaction to shard ${req.shardId} failed; its outputs are left to GC`)
      this.unknown = true
      this.transient = isTransientStoreFailure(err)
      return 'stop'
    }
    countApply(deps, req, outcome)
    if (isApplied(outcome.result)) {
      deps.metrics.cluster.chunksApplied.inc()
      this.#applied.push(chunk.output)
      this.#run.progress?.({ chunksApplied: this.#applied.length })
      this.#run.offered?.({ desc: chunk.output.desc, inputs: chunk.inputs, result: outcome.result })
      return 'continue'
    }
    await deleteOutputs(deps, req, chunk.output)
    this.refused = { desc: chunk.output.desc, inputs: chunk.inputs, result: outcome.result, reason: reasonOf(outcome) }
    this.#run.offered?.(this.refused)
    return 'stop'
  }

  /** Every applied chunk's output as one batch (one run per chunk), for the record; the chunk's own when only one applied. */
  combined(req: ResolvedRequest): HollowBatch {
    if (this.#applied.length === 1) return this.#applied[0] as HollowBatch
    const parts: BatchPart[] = []
    const runSplits: number[] = []
    for (const o of this.#applied) {
      for (const [i, p] of o.parts.entries()) {
        if (parts.length > 0 && (i === 0 || o.runSplits.includes(i))) runSplits.push(parts.length)
        parts.push(p)
      }
    }
    return { desc: req.desc, len: this.#applied.reduce((s, o) => s + o.len, 0), parts, runSplits, runMeta: this.#applied.flatMap((o) => o.runMeta) }
  }
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

/**
 * Whether Stage D failed for a part missing from blob storage (DATA_LOSS) that the shard no longer
 * references: its inputs were replaced by another compaction (and collected) while this one was
 * queued or running. False when they are all still referenced (the data is lost) or the state
 * cannot be read (the failure stands).
 */
async function overtaken(deps: RunnerDeps, req: ResolvedRequest, err: unknown): Promise<boolean> {
  if (toCompactionError(err, () => undefined).code !== 'DATA_LOSS') return false
  try {
    return !(await deps.shards.inputsHeld(req.shardId, req.inputs))
  } catch (readFailed) {
    deps.report(readFailed, `checking the inputs of a compaction of shard ${req.shardId} failed`)
    return false
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

/** Totals: the finished merges' counts plus the running merge's own running totals. */
function add(done: Record<string, number>, current: Record<string, number>): Partial<Progress> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(current)) if (k in done) out[k] = (done[k] as number) + v
  return out
}
