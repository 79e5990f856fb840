/**
 * The compactor: persist's Stages A–C (PERSIST_SEMANTICS.md §4.2–§4.4, [classic]) around an
 * injected Stage D, plus the operator controls of SPEC.md §4.
 *
 * - Stage A, `submit`: validation first (`shards.resolve`), idempotency, dry run, heuristic,
 *   `requested`, then a bounded FIFO queue (capacity `compaction_queue_size`, read at enqueue).
 * - Stage B, one scheduler (`#pump`): takes the oldest queued compaction into its hand, fails it at
 *   once when the kill switch is on, else holds it until a permit is free (`compaction_concurrency_limit`,
 *   read at every decision). While it holds one, later ones stay in the queue, so a busy compactor
 *   fills its queue and answers 429, as persist does.
 * - Stage C, `#run`: config snapshot, timeout, schema choice, Stage D under one AbortController
 *   (timeout, caller deadline, cancel, stop), then the apply and its five outcomes.
 *
 * The life of one compaction and the counters of each step are tabled in compaction.ts.
 *
 * NB: outputs are deleted whenever a compaction ends without its output in the trace (not applied,
 * failed, timed out, cancelled), EXCEPT when the apply itself failed: its outcome is unknown, the
 * output may be referenced, and GC collects it if it is not.
 */
import { EventEmitter } from 'node:events'
import type { HollowBatch } from '../core/batch.js'
import { isCompactionId, newCompactionId, type CompactionId, type ShardId } from '../core/ids.js'
import type { TimestampKind } from '../core/timestamp.js'
import { parseDuration } from '../dyncfg/duration.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError, isAppError } from '../errors.js'
import * as descs from '../core/description.js'
import {
  NO_PROGRESS,
  finishedProgress,
  inputStats,
  isFinished,
  nextProgress,
  nextStatus,
  requestDesc,
  type Compaction,
  type CompactionError,
  type CompactionRequest,
  type CompactionSource,
  type CompactionStatus,
  type DryRunPlan,
  type Progress,
  type Reason,
  type SubmitBody,
} from './compaction.js'
import { runCompaction, runMerge, type RunnerDeps, type RunResult } from './job-runner.js'
import { heuristic, selectSchema, timeoutMs } from './plan.js'
import type {
  CompactionEvent,
  CompactOnlyBody,
  CompactorDeps,
  CompactorEvents,
  CompactorShards,
  CompactorStatus,
  Execute,
  ListFilter,
  SubmitOptions,
  SubmitResult,
} from './compactor-port.js'

/** A `compactOnly` call in flight. */
interface Adhoc {
  abort(reason: AppError): void
  /** Resolves once the call is over, outputs deleted. */
  readonly settled: Promise<void>
}

type Phase = 'queued' | 'executing' | 'applying' | 'done'

interface Job {
  snapshot: Compaction
  phase: Phase
  readonly req: CompactionRequest
  /** ms since the epoch, from `now()`. */
  readonly enqueuedAt: number
  readonly deadlineMs: number | null
  deadlineTimer: NodeJS.Timeout | null
  readonly controller: AbortController
  /** Why the controller was aborted (the first reason wins). */
  abortReason: CompactionError | null
  /** Whether this job already bumped `concurrency_waits`. */
  countedWait: boolean
  readonly idempotencyKey: string | null
  readonly done: Promise<Compaction>
  resolveDone(c: Compaction): void
  /** Stage C in flight: settles after the job left `#running`. */
  run: Promise<void> | null
}

const DISABLED: CompactionError = { code: 'COMPACTION_DISABLED', message: 'compaction disabled' }
const DEFAULT_LIST_LIMIT = 100
/** Durations kept for the Retry-After hint. */
const RECENT_DURATIONS = 32
const MAX_RETRY_AFTER_SECONDS = 300

export class Compactor extends EventEmitter<CompactorEvents> {
  readonly #dyncfg: CompactorDeps['dyncfg']
  readonly #metrics: CompactorDeps['metrics']
  readonly #shards: CompactorShards
  readonly #execute: Execute
  readonly #plan: CompactorDeps['plan']
  readonly #now: () => Date
  readonly #historyLimit: number
  readonly #onError: (err: unknown, context: string) => void
  readonly #instanceId: string

  #state: 'new' | 'started' | 'stopped' = 'new'
  #stopping: Promise<void> | null = null
  #unsubscribe: (() => void) | null = null
  #pumpScheduled = false

  /** Every compaction still known: queued, running and the last `historyLimit` finished. */
  readonly #jobs = new Map<CompactionId, Job>()
  /** FIFO of queued compactions, excluding the one the scheduler holds. */
  readonly #queue: Job[] = []
  /** The compaction the scheduler took from the queue and holds until a permit is free. */
  #held: Job | null = null
  /** Compactions holding a permit (Stage C), in start order. */
  readonly #running = new Set<Job>()
  /** Finished compactions, newest first. */
  readonly #recent: Job[] = []
  /** `shardId \n key` → the submission that claimed it. */
  readonly #idempotent = new Map<string, Promise<Compaction>>()
  /** `compactOnly` calls in flight, for `stop`. */
  readonly #adhoc = new Set<Adhoc>()
  readonly #durations: number[] = []

  constructor(deps: CompactorDeps) {
    super()
    this.#dyncfg = deps.dyncfg
    this.#metrics = deps.metrics
    this.#shards = deps.shards
    this.#execute = deps.execute
    this.#plan = deps.plan
    this.#now = deps.now ?? (() => new Date())
    this.#historyLimit = Math.max(1, deps.historyLimit ?? 1000)
    this.#onError = deps.onError ?? defaultOnError
    this.#instanceId = deps.instanceId ?? 'local'
  }

  /** Starts scheduling; follows config changes. Idempotent. Throws after `stop`. */
  start(): void {
    if (this.#state === 'started') return
    if (this.#state === 'stopped') throw new Error('a stopped compactor cannot be started again')
    this.#state = 'started'
    this.#unsubscribe = this.#dyncfg.onChange((names) => {
      if (names.some((n) => n === 'compaction_concurrency_limit' || n === 'compaction_queue_size')) {
        this.#updateGauges()
        // NB: a raised limit takes effect now; a lowered one only stops new starts.
        this.#schedulePump()
      }
    })
    this.#updateGauges()
    this.#schedulePump()
  }

  /**
   * Refuses new work (SERVICE_UNAVAILABLE), cancels queued compactions, lets running ones finish
   * for up to `graceMs`, then aborts the rest (their outputs deleted) and waits for them.
   * Idempotent: later calls return the first call's promise.
   */
  stop(opts: { readonly graceMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(Math.max(0, opts.graceMs ?? 0))
    return this.#stopping
  }

  /** For /readyz: `paused` while the kill switch holds compaction back. */
  status(): CompactorStatus {
    if (this.#state !== 'started') return 'stopped'
    return killSwitchOn(this.#dyncfg.snapshot()) ? 'paused' : 'running'
  }

  /**
   * Stage A for a submission. Throws AppError: BAD_REQUEST (deadline), INVALID_COMPACTION,
   * SHARD_NOT_FOUND, QUEUE_FULL (extras `queueDepth`, `retryAfterSeconds`), SERVICE_UNAVAILABLE
   * (not started or stopping). With `body.wait`, resolves once the compaction is final.
   */
  async submit(shardId: ShardId, body: SubmitBody, opts: SubmitOptions = {}): Promise<SubmitResult> {
    this.#requireStarted()
    const deadlineMs = parseDeadline(body.deadline)
    const source = opts.source ?? 'request'
    const wait = body.wait === true
    if (body.dryRun === true) {
      const req = await this.#resolve(shardId, body)
      this.#requireStarted()
      return { kind: 'plan', plan: this.#dryRun(req, source) }
    }
    if (opts.idempotencyKey === undefined) {
      const req = await this.#resolve(shardId, body)
      return this.#answer(this.#accept(req, source, deadlineMs, null), wait)
    }
    const key = `${shardId}\n${opts.idempotencyKey}`
    const earlier = this.#idempotent.get(key)
    if (earlier !== undefined) {
      const first = await earlier
      return this.#answer(this.#jobs.get(first.id)?.snapshot ?? first, wait)
    }
    const claim = this.#resolve(shardId, body).then((req) => this.#accept(req, source, deadlineMs, key))
    this.#idempotent.set(key, claim)
    try {
      return this.#answer(await claim, wait)
    } catch (err) {
      // Nothing was recorded: the key is free for a retry.
      if (this.#idempotent.get(key) === claim) this.#idempotent.delete(key)
      throw err
    }
  }

  /**
   * Stage A for an already validated request (writer maintenance): heuristic, `requested`, queue.
   * Throws QUEUE_FULL or SERVICE_UNAVAILABLE.
   */
  submitResolved(req: CompactionRequest, opts: { readonly source?: CompactionSource; readonly deadlineMs?: number } = {}): Compaction {
    this.#requireStarted()
    return this.#accept(req, opts.source ?? 'maintenance', opts.deadlineMs ?? null, null)
  }

  /**
   * `POST /v1/compact`: validation and Stage D only, under the same timeout, on the same worker
   * pool; no heuristic, no queue, no permit, no apply, no lifecycle counters. The caller owns the
   * output's parts. Obeys the kill switch (COMPACTION_DISABLED, 503). Throws INVALID_COMPACTION,
   * SHARD_NOT_FOUND, TIMED_OUT, SERVICE_UNAVAILABLE, or Stage D's error (outputs it wrote deleted).
   */
  async compactOnly(body: CompactOnlyBody): Promise<{ readonly tk: TimestampKind; readonly output: HollowBatch }> {
    this.#requireStarted()
    const req = await this.#resolve(body.shardId, { desc: body.desc, inputs: body.inputs, writerSchemaId: body.writerSchemaId })
    const merge = req.merges[0]
    if (req.kind !== 'range' || merge === undefined) throw new Error('a request with inputs resolves to one merge')
    this.#requireStarted()
    const cfg = this.#dyncfg.snapshot()
    if (killSwitchOn(cfg)) throw new AppError(DISABLED.code, DISABLED.message)
    const controller = new AbortController()
    const aborted: { reason: AppError | null } = { reason: null }
    let settle!: () => void
    const entry: Adhoc = {
      abort: (reason) => {
        if (aborted.reason !== null) return
        aborted.reason = reason
        controller.abort(reason)
      },
      settled: new Promise<void>((resolve) => {
        settle = resolve
      }),
    }
    this.#adhoc.add(entry)
    try {
      const r = await runMerge(this.#runnerDeps(), merge, cfg, {
        signal: controller.signal,
        abortReason: () => (aborted.reason === null ? null : { code: 'CANCELLED', message: aborted.reason.message }),
        timeoutMs: timeoutMs(merge.inputs, cfg.persist_compaction_minimum_timeout),
        schema: selectSchema(merge.inputs, merge.knownSchemaIds, merge.writerSchemaId, cfg.persist_compaction_use_most_recent_schema),
        apply: false,
      })
      if (aborted.reason !== null) throw aborted.reason
      if (r.kind === 'failed') throw new AppError(r.error.code, r.error.message)
      if (r.kind !== 'applied') throw new Error('a merge run without apply hands its output over')
      return { tk: req.tk, output: r.output }
    } finally {
      this.#adhoc.delete(entry)
      settle()
    }
  }

  /** Queued (in queue order), then running (in start order), then finished (newest first). */
  list(filter: ListFilter = {}): Compaction[] {
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT
    const out: Compaction[] = []
    const ordered = [...(this.#held === null ? [] : [this.#held]), ...this.#queue, ...this.#running, ...this.#recent]
    for (const job of ordered) {
      if (out.length >= limit) break
      const c = job.snapshot
      if (filter.shardId !== undefined && c.shardId !== filter.shardId) continue
      if (filter.status !== undefined && c.status !== filter.status) continue
      out.push(c)
    }
    return out
  }

  /** Throws COMPACTION_NOT_FOUND. */
  get(id: string): Compaction {
    return this.#job(id).snapshot
  }

  /** Resolves once nothing is queued or running (at once when that is already so). */
  async idle(): Promise<void> {
    while (this.#busy()) await new Promise<void>((resolve) => this.once('idle', resolve))
  }

  #busy(): boolean {
    return this.#held !== null || this.#queue.length > 0 || this.#running.size > 0
  }

  /** Resolves with the final snapshot. Throws COMPACTION_NOT_FOUND. */
  wait(id: string): Promise<Compaction> {
    return this.#job(id).done
  }

  /**
   * Cancels a compaction: a queued one is removed; a running one is aborted and resolves once its
   * outputs are deleted. Throws COMPACTION_NOT_FOUND, or ALREADY_FINISHED for a final one or one
   * already applying its result.
   */
  async cancel(id: string): Promise<Compaction> {
    const job = this.#job(id)
    switch (job.phase) {
      case 'queued':
        this.#dequeue(job)
        this.#finish(job, 'cancelled', { error: { code: 'CANCELLED', message: 'cancelled before it started' } })
        this.#schedulePump()
        return job.snapshot
      case 'executing':
        this.#abort(job, { code: 'CANCELLED', message: 'cancelled while running; its outputs were deleted' })
        return job.done
      case 'applying':
        throw new AppError('ALREADY_FINISHED', `compaction ${id} has finished compacting and is applying its result; it can no longer be cancelled`, {
          status: job.snapshot.status,
        })
      case 'done':
        throw new AppError('ALREADY_FINISHED', `compaction ${id} already finished (${job.snapshot.status})`, { status: job.snapshot.status })
    }
  }

  /**
   * The progress of one compaction: its current snapshot as `progress` (unless final), one
   * `progress` per change after that (coalesced: a slow reader sees the latest), then one `done`
   * with the final snapshot. Ends early when `signal` aborts. Throws COMPACTION_NOT_FOUND at once.
   */
  events(id: string, opts: { readonly signal?: AbortSignal } = {}): AsyncGenerator<CompactionEvent, void, undefined> {
    return this.#events(this.#job(id), opts.signal)
  }

  async *#events(job: Job, signal: AbortSignal | undefined): AsyncGenerator<CompactionEvent, void, undefined> {
    const id = job.snapshot.id
    let latest = job.snapshot
    let changed = true
    let wake: (() => void) | null = null
    const onChange = (c: Compaction): void => {
      if (c.id !== id) return
      latest = c
      changed = true
      wake?.()
    }
    const onAbort = (): void => wake?.()
    this.on('change', onChange)
    signal?.addEventListener('abort', onAbort)
    try {
      for (;;) {
        if (signal?.aborted === true) return
        if (isFinished(latest.status)) {
          yield { type: 'done', compaction: latest }
          return
        }
        if (changed) {
          changed = false
          yield { type: 'progress', compaction: latest }
          continue
        }
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = null
      }
    } finally {
      this.off('change', onChange)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  // ---- Stage A -------------------------------------------------------------------------------

  async #resolve(shardId: ShardId, body: SubmitBody): Promise<CompactionRequest> {
    try {
      return await this.#shards.resolve(shardId, body)
    } catch (err) {
      if (isAppError(err) && err.code === 'INVALID_COMPACTION') this.#metrics.compaction.rejected.inc()
      throw err
    }
  }

  /**
   * Heuristic (maintenance only), nothing to do, `requested`, queue. Synchronous, so capacity is
   * judged and taken in one step.
   */
  #accept(req: CompactionRequest, source: CompactionSource, deadlineMs: number | null, idempotencyKey: string | null): Compaction {
    this.#requireStarted()
    const m = this.#metrics.compaction
    const cfg = this.#dyncfg.snapshot()
    const createdAt = this.#now()
    const base: Compaction = {
      id: newCompactionId(),
      shardId: req.shardId,
      source,
      kind: req.kind,
      status: 'queued',
      tk: req.tk,
      desc: requestDesc(req),
      inputs: inputStats(req.merges.flatMap((r) => r.inputs)),
      attempt: 1,
      instance: null,
      writerSchemaId: req.writerSchemaId,
      createdAt,
      progress: NO_PROGRESS,
      merges: [],
    }
    const skip = this.#skipReason(req, source, cfg)
    if (skip !== null) {
      m.skipped.inc()
      const job = this.#newJob({ ...base, status: 'skipped', finishedAt: createdAt, reason: skip }, req, deadlineMs, idempotencyKey)
      job.phase = 'done'
      job.resolveDone(job.snapshot)
      this.#remember(job)
      this.emit('change', job.snapshot)
      return job.snapshot
    }
    m.requested.inc()
    const capacity = cfg.compaction_queue_size
    if (this.#queue.length >= capacity) {
      m.dropped.inc()
      const queueDepth = this.#queue.length
      const retryAfterSeconds = this.#retryAfterSeconds(queueDepth, cfg.compaction_concurrency_limit)
      throw new AppError(
        'QUEUE_FULL',
        `the compaction queue is full (${queueDepth} of ${capacity} waiting); retry after ${retryAfterSeconds} s`,
        { queueDepth, retryAfterSeconds },
      )
    }
    const job = this.#newJob(base, req, deadlineMs, idempotencyKey)
    this.#jobs.set(base.id, job)
    this.#queue.push(job)
    if (deadlineMs !== null) {
      job.deadlineTimer = setTimeout(() => this.#deadlinePassed(job), deadlineMs)
    }
    this.emit('change', job.snapshot)
    this.#updateGauges()
    this.#schedulePump()
    return job.snapshot
  }

  /**
   * Why a request is skipped: nothing to do (an operator request whose merges are all done), or, for
   * maintenance only, below every heuristic (they exist to save blob traffic on small merges).
   */
  #skipReason(req: CompactionRequest, source: CompactionSource, cfg: ConfigValues): Reason | null {
    if (req.merges.length === 0) {
      return {
        code: 'NOTHING_TO_COMPACT',
        message:
          req.kind === 'major'
            ? "the range is already one batch of one run at the shard's since, or holds no updates"
            : 'the spine has no merge in progress: every spine batch is one batch of one run (send "major": true to merge the whole trace at the shard\'s since)',
      }
    }
    if (source !== 'maintenance') return null
    const v = heuristic(
      req.merges.flatMap((r) => r.inputs),
      {
        minInputs: cfg.persist_compaction_heuristic_min_inputs,
        minParts: cfg.persist_compaction_heuristic_min_parts,
        minUpdates: cfg.persist_compaction_heuristic_min_updates,
      },
    )
    if (v.wouldCompact) return null
    return {
      code: 'BELOW_HEURISTICS',
      message:
        `${v.inputs} inputs, ${v.parts} parts and ${v.updates} updates are below every heuristic (persist_compaction_heuristic_min_inputs ${cfg.persist_compaction_heuristic_min_inputs}, ` +
        `_min_parts ${cfg.persist_compaction_heuristic_min_parts}, _min_updates ${cfg.persist_compaction_heuristic_min_updates}): maintenance waits until more work accumulates; an operator request compacts anyway`,
    }
  }

  /** The dry-run plan: each merge's plan, the first one's repeated at the top. */
  #dryRun(req: CompactionRequest, source: CompactionSource): DryRunPlan {
    const cfg = this.#dyncfg.snapshot()
    const plans = req.merges.map((r) => ({ ...this.#plan(r, cfg), desc: descs.toJson(req.tk, r.desc) }))
    const all = req.merges.flatMap((r) => r.inputs)
    const heuristicCfg = {
      minInputs: cfg.persist_compaction_heuristic_min_inputs,
      minParts: cfg.persist_compaction_heuristic_min_parts,
      minUpdates: cfg.persist_compaction_heuristic_min_updates,
    }
    const verdict = heuristic(all, heuristicCfg)
    const first = plans[0]
    const top = first === undefined ? { timeoutMs: 0, schemaSelection: 'no_schema' as const, schemaId: req.writerSchemaId, runs: [], chunks: [], memoryViolations: 0 } : first
    const { desc: _desc, ...fields } = top as typeof top & { desc?: unknown }
    return {
      ...fields,
      heuristic: { ...verdict, wouldCompact: this.#skipReason(req, source, cfg) === null },
      kind: req.kind,
      merges: plans,
    }
  }

  #newJob(snapshot: Compaction, req: CompactionRequest, deadlineMs: number | null, idempotencyKey: string | null): Job {
    let resolveDone!: (c: Compaction) => void
    const done = new Promise<Compaction>((resolve) => {
      resolveDone = resolve
    })
    return {
      snapshot: Object.freeze(snapshot),
      phase: 'queued',
      req,
      enqueuedAt: snapshot.createdAt.getTime(),
      deadlineMs,
      deadlineTimer: null,
      controller: new AbortController(),
      abortReason: null,
      countedWait: false,
      idempotencyKey,
      done,
      resolveDone,
      run: null,
    }
  }

  async #answer(c: Compaction, wait: boolean): Promise<SubmitResult> {
    if (!wait || isFinished(c.status)) return { kind: 'compaction', compaction: c, waited: wait }
    return { kind: 'compaction', compaction: await this.wait(c.id), waited: true }
  }

  #retryAfterSeconds(queueDepth: number, concurrency: number): number {
    if (this.#durations.length === 0) return 1
    const mean = this.#durations.reduce((s, d) => s + d, 0) / this.#durations.length
    return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil((mean * Math.max(1, queueDepth)) / Math.max(1, concurrency))))
  }

  // ---- Stage B -------------------------------------------------------------------------------

  #schedulePump(): void {
    if (this.#pumpScheduled) return
    this.#pumpScheduled = true
    queueMicrotask(() => this.#pump())
  }

  /**
   * The scheduler: dequeue in FIFO order, kill switch, permit. NB: only ever runs from a microtask
   * (`#schedulePump`), never inside another compactor call, so no call observes a half-made step.
   */
  #pump(): void {
    this.#pumpScheduled = false
    if (this.#state !== 'started') return
    for (;;) {
      let job = this.#held
      if (job === null) {
        job = this.#queue.shift() ?? null
        if (job === null) break
        if (killSwitchOn(this.#dyncfg.snapshot())) {
          this.#metrics.compaction.disabled.inc()
          this.#finish(job, 'failed', { error: DISABLED })
          continue
        }
        this.#held = job
      }
      if (this.#running.size >= this.#dyncfg.snapshot().compaction_concurrency_limit) {
        if (!job.countedWait) {
          job.countedWait = true
          this.#metrics.compaction.concurrencyWaits.inc()
        }
        break
      }
      this.#held = null
      this.#running.add(job)
      job.run = this.#run(job)
    }
    this.#updateGauges()
    if (!this.#busy()) this.emit('idle')
  }

  /** Takes a queued job out of the queue or the scheduler's hand. */
  #dequeue(job: Job): void {
    if (this.#held === job) {
      this.#held = null
    } else {
      const i = this.#queue.indexOf(job)
      if (i >= 0) this.#queue.splice(i, 1)
    }
    this.#updateGauges()
  }

  #deadlinePassed(job: Job): void {
    const error: CompactionError = { code: 'DEADLINE_EXCEEDED', message: `the caller's deadline of ${job.deadlineMs} ms passed` }
    if (job.phase === 'queued') {
      this.#dequeue(job)
      this.#finish(job, 'failed', { error })
      this.#schedulePump()
    } else if (job.phase === 'executing') {
      this.#abort(job, error)
    }
  }

  // ---- Stage C -------------------------------------------------------------------------------

  async #run(job: Job): Promise<void> {
    try {
      await this.#stageC(job)
    } catch (err) {
      // A bug in the compactor itself: never leave a compaction running forever.
      this.#report(err, `compaction ${job.snapshot.id} failed unexpectedly`)
      if (job.phase !== 'done') {
        this.#metrics.compaction.failed.inc()
        this.#finish(job, 'failed', { error: { code: 'INTERNAL', message: 'internal error; see the server log' } })
      }
    } finally {
      this.#running.delete(job)
      this.#updateGauges()
      this.#schedulePump()
    }
  }

  async #stageC(job: Job): Promise<void> {
    const m = this.#metrics.compaction
    const startedAt = this.#now()
    m.queuedSeconds.inc(secondsBetween(job.enqueuedAt, startedAt.getTime()))
    const cfg = this.#dyncfg.snapshot()
    job.phase = 'executing'
    this.#update(job, { status: nextStatus(job.snapshot.status, 'running'), startedAt, instance: this.#instanceId })
    let end: RunResult
    try {
      end = await runCompaction(this.#runnerDeps(), job.req, cfg, {
        signal: job.controller.signal,
        abortReason: () => job.abortReason,
        phase: (phase) => {
          if (job.phase !== 'done') job.phase = phase
        },
        planned: (inputs, timeout, schemaSelection) => this.#update(job, { inputs, timeoutMs: timeout, schemaSelection }),
        progress: (p) => this.#progress(job, p),
        merged: (outcome) => this.#update(job, { merges: [...job.snapshot.merges, outcome] }),
      })
    } finally {
      this.#clearDeadline(job)
    }
    const seconds = secondsBetween(startedAt.getTime(), this.#now().getTime())
    this.#durations.push(seconds)
    if (this.#durations.length > RECENT_DURATIONS) this.#durations.shift()
    const { status, ...fields } = end
    this.#finish(job, status, fields)
  }

  #abort(job: Job, reason: CompactionError): void {
    if (job.phase !== 'executing' || job.abortReason !== null) return
    job.abortReason = reason
    job.controller.abort(new AppError(reason.code, reason.message))
  }

  #progress(job: Job, p: Partial<Progress>): void {
    if (job.phase === 'done') return
    const elapsed = job.snapshot.startedAt === undefined ? 0 : secondsBetween(job.snapshot.startedAt.getTime(), this.#now().getTime())
    const next = nextProgress(job.snapshot.progress, p, job.snapshot.inputs.updates, elapsed)
    if (next !== null) this.#update(job, { progress: next })
  }

  #runnerDeps(): RunnerDeps {
    return { shards: this.#shards, execute: this.#execute, metrics: this.#metrics, report: (err, context) => this.#report(err, context), now: this.#now }
  }

  // ---- records -------------------------------------------------------------------------------

  #update(job: Job, patch: Partial<Compaction>): void {
    job.snapshot = Object.freeze({ ...job.snapshot, ...patch })
    this.emit('change', job.snapshot)
  }

  #finish(job: Job, status: CompactionStatus, patch: Pick<Partial<Compaction>, 'error' | 'result' | 'output' | 'reason'>): void {
    this.#clearDeadline(job)
    job.phase = 'done'
    const ranToEnd = status === 'succeeded' || status === 'not_applied'
    const progress = ranToEnd ? finishedProgress(job.snapshot.progress) : job.snapshot.progress
    job.snapshot = Object.freeze({ ...job.snapshot, ...patch, progress, status: nextStatus(job.snapshot.status, status), finishedAt: this.#now() })
    this.#remember(job)
    job.resolveDone(job.snapshot)
    this.emit('change', job.snapshot)
  }

  /** Adds a final job to the history, evicting the oldest beyond the limit (and their keys). */
  #remember(job: Job): void {
    this.#jobs.set(job.snapshot.id, job)
    this.#recent.unshift(job)
    while (this.#recent.length > this.#historyLimit) {
      const old = this.#recent.pop() as Job
      this.#jobs.delete(old.snapshot.id)
      if (old.idempotencyKey !== null) this.#idempotent.delete(old.idempotencyKey)
    }
  }

  #clearDeadline(job: Job): void {
    if (job.deadlineTimer !== null) clearTimeout(job.deadlineTimer)
    job.deadlineTimer = null
  }

  #job(id: string): Job {
    const job = isCompactionId(id) ? this.#jobs.get(id) : undefined
    if (job === undefined) throw new AppError('COMPACTION_NOT_FOUND', `compaction ${id} does not exist (or is too old to be remembered)`)
    return job
  }

  /** Hands `err` to `onError`. NB: a throwing `onError` must not turn into an unhandled rejection. */
  #report(err: unknown, context: string): void {
    try {
      this.#onError(err, context)
    } catch (thrown) {
      defaultOnError(thrown, 'the compactor\'s onError threw')
    }
  }

  #requireStarted(): void {
    if (this.#state === 'new') throw new AppError('SERVICE_UNAVAILABLE', 'the compactor is not started yet; retry shortly')
    if (this.#state === 'stopped') throw new AppError('SERVICE_UNAVAILABLE', 'the compactor is stopping and accepts no new compactions')
  }

  #updateGauges(): void {
    const g = this.#metrics.compactor
    g.queueDepth.set(this.#queue.length)
    g.running.set(this.#running.size)
    if (this.#state === 'started') {
      const cfg = this.#dyncfg.snapshot()
      g.queueSizeLimit.set(cfg.compaction_queue_size)
      g.concurrencyLimit.set(cfg.compaction_concurrency_limit)
    }
  }

  // ---- stop ----------------------------------------------------------------------------------

  async #stop(graceMs: number): Promise<void> {
    const wasStarted = this.#state === 'started'
    this.#state = 'stopped'
    this.#unsubscribe?.()
    this.#unsubscribe = null
    if (!wasStarted) return
    const queued = [...(this.#held === null ? [] : [this.#held]), ...this.#queue]
    this.#held = null
    this.#queue.length = 0
    for (const job of queued) {
      this.#finish(job, 'cancelled', { error: { code: 'CANCELLED', message: 'the compactor stopped before the compaction started' } })
    }
    this.#updateGauges()
    const pending = (): Promise<unknown>[] => [...[...this.#running].map((j) => j.run ?? j.done), ...[...this.#adhoc].map((a) => a.settled)]
    if (pending().length > 0) {
      let timer: NodeJS.Timeout | undefined
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs)
      })
      try {
        await Promise.race([Promise.all(pending()), grace])
      } finally {
        clearTimeout(timer)
      }
    }
    const stopped: CompactionError = { code: 'CANCELLED', message: 'the compactor stopped before the compaction finished; its outputs were deleted' }
    for (const job of this.#running) this.#abort(job, stopped)
    const gone = new AppError('SERVICE_UNAVAILABLE', 'the compactor stopped before the compaction finished; retry it')
    for (const a of this.#adhoc) a.abort(gone)
    await Promise.all(pending())
    this.#updateGauges()
  }
}

function killSwitchOn(cfg: ConfigValues): boolean {
  return cfg.persist_compaction_check_process_flag && !cfg.compaction_process_requests
}

function parseDeadline(deadline: SubmitBody['deadline']): number | null {
  if (deadline === undefined) return null
  const parsed = parseDuration(deadline)
  if (!parsed.ok) throw new AppError('BAD_REQUEST', `deadline: ${parsed.error}`, { field: 'body.deadline' })
  if (parsed.value < 1) throw new AppError('BAD_REQUEST', 'deadline: must be at least 1ms', { field: 'body.deadline' })
  return parsed.value
}

function secondsBetween(fromMs: number, toMs: number): number {
  return Math.max(0, toMs - fromMs) / 1000
}

function defaultOnError(err: unknown, context: string): void {
  const error = err instanceof Error ? err : new Error(String(err))
  process.emitWarning(`${context}: ${error.message}`, { code: 'COMPACTD_COMPACTOR' })
}
