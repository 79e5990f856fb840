/**
 * The compactor: persist's Stages A–C around an injected Stage D, on a job store the instances of
 * a cluster share, plus the operator controls. Every compaction is a durable job record, so any
 * instance accepts a submission, lists, shows and cancels any compaction, and runs what it claims.
 *
 * - Stage A, `submit`: validation first (`shards.resolve`), idempotency (cluster-wide, by the
 *   store), dry run, skip (nothing to do; heuristics for maintenance), `requested`, then the
 *   store's bounded queue (capacity `compaction_queue_size`, for the whole cluster).
 * - Stage B, the scheduler (`#pump`, on a poll timer and on store notifications): fails queued
 *   jobs at once while the kill switch is on, else claims the oldest queued job whenever this
 *   instance has a permit (`compaction_concurrency_limit`, per instance). A claim is a lease
 *   (`compaction_lease_timeout`) and a fencing token.
 * - Stage C, `#run`: claims the shard (compact/job-runner.ts fences every apply with the job's
 *   token), runs the merges, renews the lease while progress is made (and reads cancellations
 *   then), and finishes the record; an owner that lost its lease stops, deletes its unapplied
 *   outputs, and leaves the job to whoever claimed it.
 * - Sweeps on every instance: jobs whose lease expired go back to the queue (rescued; the next
 *   claim counts an attempt), queued jobs past their deadline fail, finished jobs older than
 *   `compaction_history_retention` are purged; and a heartbeat makes the instance visible.
 * - A job store with no space left (a full disk under file stores) refuses every claim, rescue and
 *   heartbeat: the sweeps and heartbeats then back off (1 s doubling to 30 s, until one of them or
 *   a scheduling pass succeeds) instead of failing twice a second, and a caller waiting on a queued
 *   compaction is answered INSUFFICIENT_STORAGE rather than kept waiting until space comes back.
 *
 * The life of one compaction and the counters of each step are tabled in compaction.ts.
 */
import { EventEmitter, once } from 'node:events'
import type { HollowBatch } from '../core/batch.js'
import { isCompactionId, newCompactionId, type ShardId } from '../core/ids.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError, isAppError } from '../errors.js'
import { LocationError, type Abortable } from '../location/errors.js'
import { isFinalJobStatus, type FinalJobStatus, type InstanceRecord, type JobRecord } from '../location/job-store.js'
import {
  NO_PROGRESS,
  inputStats,
  isFinished,
  requestDesc,
  toCompactionJson,
  type Compaction,
  type CompactionError,
  type CompactionRequest,
  type CompactionSource,
  type SubmitBody,
} from './compaction.js'
import type {
  CompactionEvent,
  CompactionPage,
  CompactOnlyBody,
  CompactorDeps,
  CompactorEvents,
  CompactorStatus,
  InstanceView,
  ListFilter,
  SubmitOptions,
  SubmitResult,
} from './compactor-port.js'
import { dryRun, parseDeadline, RecentDurations, skipReason } from './admission.js'
import { Attempt } from './attempt.js'
import { every } from './every.js'
import { followCompaction, type FollowSource } from './follow.js'
import { StatelessCompactions } from './stateless.js'
import { finalData, jobData, parseJob, type FinalPatch } from './job-record.js'
import { listJobs } from './listing.js'
import type { RunnerDeps } from './job-runner.js'

const DISABLED: CompactionError = { code: 'COMPACTION_DISABLED', message: 'compaction disabled' }
const DEFAULT_LIST_LIMIT = 100
/** Queued jobs looked at per pass when failing them for the kill switch or a passed deadline. */
const SWEEP_BATCH = 100
/** How often an instance records itself as live (`CompactorDeps.timers.heartbeatMs`). */
export const DEFAULT_HEARTBEAT_MS = 2_000

/** Backoff of the sweeps and heartbeats while the job store has no space left: first and longest. */
export const FULL_BACKOFF_MS = { first: 1_000, max: 30_000 } as const

export class Compactor extends EventEmitter<CompactorEvents> {
  readonly #deps: CompactorDeps
  readonly #now: () => Date
  readonly #onError: (err: unknown, context: string) => void
  readonly #instanceId: string
  readonly #timers: Required<NonNullable<CompactorDeps['timers']>>

  #state: 'new' | 'started' | 'stopped' = 'new'
  #startedAt = 0
  #stopping: Promise<void> | null = null
  /**
   * Aborted when the compactor stops: the job store calls of its own scheduling (claims, counts,
   * sweeps, heartbeats, purges) give up waiting, so a stop does not queue behind a job store busy
   * with a backlog (a file store's group commit of thousands of maintenance requests).
   */
  readonly #halt = new AbortController()
  readonly #cleanup: (() => void)[] = []
  /** Stops the background tasks (sweep, heartbeat, purge); each resolves once its run in progress ended. */
  readonly #background: (() => Promise<void>)[] = []
  #pumping: Promise<void> | null = null
  #pumpAgain = false
  /** Set while the job store refuses this instance's writes for lack of space: sweeps wait until `untilMs`. */
  #full: { readonly backoffMs: number; readonly untilMs: number } | null = null

  /** Compactions this instance runs, by id. */
  readonly #running = new Map<string, Attempt>()
  /** Runs in flight (settle after the job left `#running`). */
  readonly #runs = new Set<Promise<void>>()
  readonly #stateless = new StatelessCompactions()
  /** Queued jobs already counted in `concurrency_waits`. */
  #countedWaits = new Set<string>()
  readonly #durations = new RecentDurations()

  /** Queued jobs counted in `concurrency_waits` and remembered (for tests). */
  get countedWaits(): number {
    return this.#countedWaits.size
  }

  constructor(deps: CompactorDeps) {
    super()
    this.#deps = deps
    this.#now = deps.now ?? (() => new Date())
    this.#onError = deps.onError ?? defaultOnError
    this.#instanceId = deps.instanceId ?? 'local'
    this.#timers = { pollMs: 500, heartbeatMs: DEFAULT_HEARTBEAT_MS, remotePollMs: 250, purgeMs: 10 * 60_000, ...deps.timers }
  }

  get instanceId(): string {
    return this.#instanceId
  }

  /** Starts scheduling, sweeping and heartbeats; follows config changes. Idempotent. Throws after `stop`. */
  start(): void {
    if (this.#state === 'started') return
    if (this.#state === 'stopped') throw new Error('a stopped compactor cannot be started again')
    this.#state = 'started'
    this.#startedAt = this.#nowMs()
    this.#cleanup.push(
      this.#deps.store.subscribe(() => {
        this.#full = null // a write landed: there is space again
        this.#schedulePump()
      }),
    )
    this.#cleanup.push(
      this.#deps.dyncfg.onChange((names) => {
        if (names.some((n) => n === 'compaction_concurrency_limit' || n === 'compaction_queue_size' || n === 'compaction_process_requests' || n === 'persist_compaction_check_process_flag')) {
          this.#updateLimits()
          this.#schedulePump()
        }
      }),
    )
    const background = (err: unknown): void => this.#report(err, 'a background task of the compactor failed; it runs again')
    this.#background.push(every(this.#timers.pollMs, () => this.sweep(), background))
    this.#background.push(every(this.#timers.heartbeatMs, () => this.heartbeat(), background))
    this.#background.push(every(this.#timers.purgeMs, () => this.purge(), background))
    this.#updateLimits()
    void this.heartbeat().catch((err: unknown) => this.#report(err, 'the first heartbeat failed; it is sent again'))
    this.#schedulePump()
  }

  /**
   * Stops claiming and refuses new submissions (SERVICE_UNAVAILABLE), abandoning the scheduler's
   * store calls in flight; lets running compactions finish for up to `graceMs` from this call,
   * then aborts the rest (their unapplied outputs deleted) and gives them back to the queue for
   * another instance (or this one after a restart). Queued jobs stay queued: they are the
   * cluster's. Idempotent.
   */
  stop(opts: { readonly graceMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(Math.max(0, opts.graceMs ?? 0))
    return this.#stopping
  }

  /** For /readyz: `paused` while the kill switch holds compaction back. */
  status(): CompactorStatus {
    if (this.#state !== 'started') return 'stopped'
    return killSwitchOn(this.#deps.dyncfg.snapshot()) ? 'paused' : 'running'
  }

  // ---- Stage A -------------------------------------------------------------------------------

  /**
   * Stage A for a submission. Throws AppError: BAD_REQUEST (deadline), INVALID_COMPACTION,
   * SHARD_NOT_FOUND, SHARD_DELETED, QUEUE_FULL (extras `queueDepth`, `retryAfterSeconds`),
   * SERVICE_UNAVAILABLE (not started or stopping). With `body.wait`, resolves once it is final.
   */
  async submit(shardId: ShardId, body: SubmitBody, opts: SubmitOptions = {}): Promise<SubmitResult> {
    this.#requireStarted()
    const deadlineMs = parseDeadline(body.deadline)
    const source = opts.source ?? 'request'
    const wait = body.wait === true
    if (opts.idempotencyKey !== undefined && body.dryRun !== true) {
      const earlier = await this.#deps.store.byIdempotencyKey(shardId, opts.idempotencyKey)
      if (earlier !== null) return this.#answer(this.#compactionOf(earlier), wait)
    }
    const req = await this.#resolve(shardId, body)
    this.#requireStarted()
    if (body.dryRun === true) return { kind: 'plan', plan: dryRun(req, source, this.#deps.dyncfg.snapshot(), this.#deps.plan) }
    return this.#answer(await this.#accept(req, source, deadlineMs, opts.idempotencyKey ?? null, opts.heuristics ?? true), wait)
  }

  /** Stage A for an already validated request (writer maintenance). Throws QUEUE_FULL or SERVICE_UNAVAILABLE. */
  async submitResolved(req: CompactionRequest, opts: { readonly source?: CompactionSource; readonly deadlineMs?: number; readonly idempotencyKey?: string } = {}): Promise<Compaction> {
    this.#requireStarted()
    return this.#accept(req, opts.source ?? 'maintenance', opts.deadlineMs ?? null, opts.idempotencyKey ?? null)
  }

  async #resolve(shardId: ShardId, body: SubmitBody): Promise<CompactionRequest> {
    try {
      return await this.#deps.shards.resolve(shardId, body)
    } catch (err) {
      if (isAppError(err) && err.code === 'INVALID_COMPACTION') this.#deps.metrics.compaction.rejected.inc()
      throw err
    }
  }

  /** Skip, `requested`, then the cluster's bounded queue (or the earlier job of the idempotency key). */
  async #accept(req: CompactionRequest, source: CompactionSource, deadlineMs: number | null, idempotencyKey: string | null, heuristics = true): Promise<Compaction> {
    const m = this.#deps.metrics.compaction
    const cfg = this.#deps.dyncfg.snapshot()
    const now = this.#nowMs()
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
      createdAt: new Date(now),
      progress: NO_PROGRESS,
      merges: [],
    }
    const skip = skipReason(req, source, cfg, heuristics)
    const snapshot: Compaction = skip === null ? base : { ...base, status: 'skipped', finishedAt: new Date(now), reason: skip }
    const record: JobRecord = {
      id: snapshot.id,
      shardId: snapshot.shardId,
      source,
      status: snapshot.status,
      attempt: 0,
      owner: null,
      token: 0,
      leaseExpiresAt: null,
      cancelRequested: false,
      idempotencyKey,
      deadlineAt: deadlineMs === null ? null : now + deadlineMs,
      createdAt: now,
      updatedAt: now,
      finishedAt: skip === null ? null : now,
      data: jobData(req, toCompactionJson(snapshot)),
    }
    // NB: an insert still waiting for the job store when the compactor stops is given up (nothing
    // was written): a stop does not wait out a backlog of maintenance requests.
    const r = await this.#deps.store.insert(record, skip === null ? cfg.compaction_queue_size : Number.MAX_SAFE_INTEGER, this.#halted)
    if (r.kind === 'exists') return this.#compactionOf(r.job)
    // NB: persist counts a dropped request as requested too.
    if (skip === null) m.requested.inc()
    if (r.kind === 'full') {
      m.dropped.inc()
      const retryAfterSeconds = this.#durations.retryAfterSeconds(r.queued, cfg.compaction_concurrency_limit)
      throw new AppError('QUEUE_FULL', `the compaction queue is full (${r.queued} of ${cfg.compaction_queue_size} waiting); retry after ${retryAfterSeconds} s`, {
        queueDepth: r.queued,
        retryAfterSeconds,
      })
    }
    if (skip !== null) m.skipped.inc()
    this.emit('change', snapshot)
    if (skip === null) {
      await this.#refreshQueueDepth()
      this.#schedulePump()
    }
    return snapshot
  }

  async #answer(c: Compaction, wait: boolean): Promise<SubmitResult> {
    if (!wait || isFinished(c.status)) return { kind: 'compaction', compaction: c, waited: wait }
    return { kind: 'compaction', compaction: await this.wait(c.id), waited: true }
  }

  // ---- the stateless compaction -------------------------------------------------------------

  /**
   * `POST /v1/compact`: validation and Stage D only, under the same timeout, on the same worker
   * pool; no heuristic, no queue, no permit, no apply, no record, no lifecycle counters. The caller
   * owns the output's parts. Obeys the kill switch (COMPACTION_DISABLED, 503). Throws
   * INVALID_COMPACTION, SHARD_NOT_FOUND, TIMED_OUT, SERVICE_UNAVAILABLE, or Stage D's error
   * (outputs it wrote deleted).
   */
  async compactOnly(body: CompactOnlyBody): Promise<{ readonly tk: TimestampKind; readonly output: HollowBatch }> {
    this.#requireStarted()
    const req = await this.#resolve(body.shardId, { desc: body.desc, inputs: body.inputs, writerSchemaId: body.writerSchemaId })
    const merge = req.merges[0]
    if (req.kind !== 'range' || merge === undefined) throw new Error('a request with inputs resolves to one merge')
    this.#requireStarted()
    const cfg = this.#deps.dyncfg.snapshot()
    if (killSwitchOn(cfg)) throw new AppError(DISABLED.code, DISABLED.message)
    return { tk: req.tk, output: await this.#stateless.run(this.#runnerDeps(), merge, cfg) }
  }

  // ---- operator controls ---------------------------------------------------------------------

  /** A page of the cluster's compactions: queued, then running, then finished, each newest first. */
  async list(filter: ListFilter = {}): Promise<CompactionPage> {
    const page = await listJobs(this.#deps.store, { ...filter, limit: filter.limit ?? DEFAULT_LIST_LIMIT })
    return { compactions: page.jobs.map((j) => this.#compactionOf(j)), nextCursor: page.nextCursor }
  }

  /** One compaction, wherever it runs. Throws COMPACTION_NOT_FOUND. */
  async get(id: string): Promise<Compaction> {
    const record = isCompactionId(id) ? await this.#deps.store.get(id) : null
    if (record === null) throw notFound(id)
    return this.#compactionOf(record)
  }

  /** Resolves with the final snapshot, wherever it runs. Throws COMPACTION_NOT_FOUND. */
  async wait(id: string): Promise<Compaction> {
    for await (const e of this.events(id)) if (e.type === 'done') return e.compaction
    throw notFound(id)
  }

  /**
   * Cancels a compaction: a queued one is cancelled at once; a running one is aborted by its owner
   * (this instance at once, another at its next renewal, within a second or so), its outputs
   * deleted, and the call resolves once it is final. Throws COMPACTION_NOT_FOUND, or
   * ALREADY_FINISHED for a final one or one applying its last result.
   */
  async cancel(id: string): Promise<Compaction> {
    const cancelled: CompactionError = { code: 'CANCELLED', message: 'cancelled while running; its outputs were deleted' }
    for (let attempt = 0; attempt < 8; attempt++) {
      const local = this.#running.get(id)
      if (local !== undefined) {
        if (!local.cancellable) {
          throw new AppError('ALREADY_FINISHED', `compaction ${id} has finished compacting and is applying its result; it can no longer be cancelled`, { status: local.snapshot.status })
        }
        local.abort(cancelled)
        return local.done
      }
      const record = isCompactionId(id) ? await this.#deps.store.get(id) : null
      if (record === null) throw notFound(id)
      const c = this.#compactionOf(record)
      if (isFinalJobStatus(record.status)) throw new AppError('ALREADY_FINISHED', `compaction ${id} already finished (${record.status})`, { status: c.status })
      if (record.status === 'queued') {
        const error: CompactionError = { code: 'CANCELLED', message: 'cancelled before it started' }
        const done = await this.#finishQueued(record, 'cancelled', { error })
        if (done !== null) return done
        continue
      }
      if ((await this.#deps.store.requestCancel(id, this.#nowMs())) === null) continue
      return this.wait(id)
    }
    throw new AppError('SERVICE_UNAVAILABLE', `compaction ${id} kept changing while it was being cancelled; retry`)
  }

  /**
   * The progress of one compaction: its current snapshot as `progress` (unless final), one
   * `progress` per change after that (coalesced: a slow reader sees the latest), then one `done`
   * with the final snapshot. A compaction another instance runs is read from the store every
   * `remotePollMs`. Ends early when `signal` aborts. The first `next()` throws COMPACTION_NOT_FOUND
   * for an unknown id; a later one SERVICE_UNAVAILABLE when this instance stops before the end.
   */
  events(id: string, opts: { readonly signal?: AbortSignal } = {}): AsyncGenerator<CompactionEvent, void, undefined> {
    const source: FollowSource = {
      get: (job) => this.get(job),
      onChange: (listener) => {
        this.on('change', listener)
        return () => this.off('change', listener)
      },
      runsHere: (job) => this.#running.has(job),
      givesUp: (c) => this.#state === 'stopped' && !this.#finishesHere(c),
      stalled: (c) => c.status === 'queued' && this.#full !== null,
      remotePollMs: this.#timers.remotePollMs,
    }
    return followCompaction(source, id, opts.signal)
  }

  /** True while this instance runs `c` and will record its end (also during a stop's grace). */
  #finishesHere(c: Compaction): boolean {
    return c.status === 'running' && c.instance === this.#instanceId && this.#running.has(c.id)
  }

  /** The live instances of the cluster (this one marked `self`). */
  async instances(): Promise<InstanceView[]> {
    const since = this.#nowMs() - 3 * this.#timers.heartbeatMs
    const all = await this.#deps.store.instances(since)
    this.#deps.metrics.cluster.instances.set(all.length)
    this.#deps.onMembership?.(all)
    return all.map((i) => ({ ...i, self: i.id === this.#instanceId }))
  }

  /** Resolves once this instance runs nothing and the cluster's queue is empty. */
  async idle(): Promise<void> {
    for (let i = 0; i < 10_000; i++) {
      if (this.#running.size === 0 && this.#runs.size === 0 && (await this.#deps.store.active()).queued === 0 && this.#running.size === 0) return
      // NB: the queue may empty on another instance: look again at least every remotePollMs.
      await once(this, 'idle', { signal: AbortSignal.timeout(this.#timers.remotePollMs) }).catch(() => undefined)
    }
  }

  // ---- Stage B -------------------------------------------------------------------------------

  #schedulePump(): void {
    if (this.#state !== 'started' || this.#stopping !== null) return
    if (this.#pumping !== null) {
      this.#pumpAgain = true
      return
    }
    this.#pumping = this.#pump()
      .catch((err: unknown) => {
        this.#noteFull(err)
        this.#report(err, 'scheduling compactions failed; retrying')
      })
      .finally(() => {
        this.#pumping = null
        if (this.#pumpAgain) {
          this.#pumpAgain = false
          this.#schedulePump()
        }
        if (this.#running.size === 0) this.emit('idle')
      })
  }

  /** Fails queued jobs while the kill switch is on; else claims the oldest while a permit is free. */
  async #pump(): Promise<void> {
    const store = this.#deps.store
    const cfg = this.#deps.dyncfg.snapshot()
    const leaseMs = cfg.compaction_lease_timeout
    if (killSwitchOn(cfg)) {
      for (let i = 0; i < SWEEP_BATCH && this.#stopping === null; i++) {
        const job = await store.claim(this.#instanceId, this.#nowMs(), leaseMs, this.#halted)
        if (job === null) break
        this.#deps.metrics.compaction.disabled.inc()
        await this.#finishOwned(job, 'failed', { error: DISABLED })
      }
      return
    }
    while (this.#stopping === null && this.#state === 'started' && this.#running.size < this.#deps.dyncfg.snapshot().compaction_concurrency_limit) {
      const job = await store.claim(this.#instanceId, this.#nowMs(), leaseMs, this.#halted)
      if (job === null) break
      this.#deps.metrics.cluster.claims.inc()
      this.#countedWaits.delete(job.id)
      this.#start(job)
    }
    const active = await this.#refreshQueueDepth(this.#halted)
    if (active.queued === 0) this.#countedWaits.clear()
    else if (this.#running.size >= cfg.compaction_concurrency_limit) {
      // No permit free: count each queued job once (persist's `concurrency_waits`). Only the jobs
      // queued now are remembered: one that left the queue otherwise (cancelled, failed by the kill
      // switch, claimed elsewhere) is not claimed here, and would stay counted for good.
      const queued = await store.list({ status: 'queued', limit: Math.max(1, cfg.compaction_queue_size) }, this.#halted)
      const counted = new Set<string>()
      for (const j of queued.jobs) {
        counted.add(j.id)
        if (!this.#countedWaits.has(j.id)) this.#deps.metrics.compaction.concurrencyWaits.inc()
      }
      this.#countedWaits = counted
    }
  }

  /** Sets the queue-depth gauge from the store (the cluster's queue); the counts read. */
  async #refreshQueueDepth(opts?: Abortable): Promise<{ readonly queued: number; readonly running: number }> {
    const active = await this.#deps.store.active(opts)
    this.#deps.metrics.compactor.queueDepth.set(active.queued)
    return active
  }

  // ---- Stage C -------------------------------------------------------------------------------

  #start(record: JobRecord): void {
    const parsed = parseJob(record)
    if (!parsed.ok) {
      this.#report(new Error(parsed.problem), 'a compaction record does not parse')
      void this.#deps.store.finish(record.id, record.token, 'failed', record.data, this.#nowMs()).catch((err: unknown) => this.#report(err, 'failing an unreadable record failed'))
      return
    }
    const attempt = new Attempt(
      { store: this.#deps.store, runner: this.#runnerDeps(), emit: (c) => this.emit('change', c), compactionOf: (r) => this.#compactionOf(r) },
      record,
      parsed,
      this.#instanceId,
    )
    this.#running.set(record.id, attempt)
    this.#updateGauges()
    const run = attempt.run(this.#deps.dyncfg.snapshot()).finally(() => {
      this.#durations.add((this.#nowMs() - attempt.startedAtMs) / 1000)
      this.#running.delete(record.id)
      this.#runs.delete(run)
      this.#updateGauges()
      this.#schedulePump()
    })
    this.#runs.add(run)
  }

  /** Ends a job this instance claimed without running it (the kill switch). */
  async #finishOwned(job: JobRecord, status: FinalJobStatus, patch: FinalPatch): Promise<void> {
    const written = await this.#deps.store.finish(job.id, job.token, status, finalData(job, status, patch, this.#now()), this.#nowMs())
    if (written !== null) this.emit('change', this.#compactionOf(written))
  }

  /** Ends a queued job (cancel, deadline); null when it was claimed meanwhile. */
  async #finishQueued(job: JobRecord, status: FinalJobStatus, patch: FinalPatch): Promise<Compaction | null> {
    const written = await this.#deps.store.finish(job.id, null, status, finalData(job, status, patch, this.#now()), this.#nowMs())
    if (written === null) return null
    const c = this.#compactionOf(written)
    this.emit('change', c)
    return c
  }

  // ---- sweeps --------------------------------------------------------------------------------

  /**
   * One pass of the background work any instance does: jobs whose lease expired go back to the
   * queue, queued jobs past their deadline fail, and the scheduler claims what it may; resolves
   * once that scheduling pass is done. Runs on the poll timer; tests call it to settle.
   */
  async sweep(): Promise<void> {
    if (this.#state !== 'started' || this.#stopping !== null) return
    const store = this.#deps.store
    const now = this.#nowMs()
    if (this.#backingOff(now)) return
    const rescued = await store.rescue(now, this.#halted).catch((err: unknown) => {
      this.#noteFull(err)
      throw err
    })
    if (rescued.length > 0) {
      this.#deps.metrics.cluster.rescued.inc(rescued.length)
      for (const j of rescued) this.emit('change', this.#compactionOf(j))
    }
    for (const j of await store.deadlinePassed(now, SWEEP_BATCH, this.#halted)) {
      if (this.#stopping !== null) break
      await this.#finishQueued(j, 'failed', { error: { code: 'DEADLINE_EXCEEDED', message: `the caller's deadline passed (${new Date(j.deadlineAt ?? now).toISOString()}) before it started` } })
    }
    this.#schedulePump()
    for (let i = 0; i < 100 && this.#pumping !== null; i++) await this.#pumping
  }

  /** Forgets finished compactions older than `compaction_history_retention`. Runs on a timer; tests call it. */
  async purge(): Promise<void> {
    const retention = this.#deps.dyncfg.snapshot().compaction_history_retention
    await this.#deps.store.purge(this.#nowMs() - retention, this.#halted)
  }

  /** Records this instance as live (on a timer; tests call it). */
  async heartbeat(): Promise<void> {
    if (this.#backingOff(this.#nowMs())) return
    const formats = this.#deps.stateFormats === undefined ? {} : { stateFormats: this.#deps.stateFormats }
    const instance: InstanceRecord = { id: this.#instanceId, startedAt: this.#startedAt, heartbeatAt: this.#nowMs(), version: this.#deps.version ?? 'unknown', running: this.#running.size, ...formats }
    try {
      await this.#deps.store.heartbeat(instance, this.#halted)
      this.#full = null // it wrote: there is space again
    } catch (err) {
      this.#noteFull(err)
      throw err
    }
    const counts = await this.#deps.store.active(this.#halted)
    this.#deps.metrics.cluster.jobs.set({ status: 'queued' }, counts.queued)
    this.#deps.metrics.cluster.jobs.set({ status: 'running' }, counts.running)
    // NB: sets persist_cluster_instances, which otherwise moves only when someone asks (GET /v1/instances, the idle sweep).
    await this.instances()
  }

  // ---- a full job store ----------------------------------------------------------------------

  /** Whether a sweep or heartbeat due at `now` waits: the job store had no space left, and its backoff runs. */
  #backingOff(now: number): boolean {
    return this.#full !== null && now < this.#full.untilMs
  }

  /**
   * After a job store call failed: a refusal for lack of space starts or doubles the backoff. NB:
   * only a write that lands ends it (a heartbeat, or any change the store notifies), not a call
   * that succeeds without writing (a sweep with nothing to rescue or claim).
   */
  #noteFull(err: unknown): void {
    if (!(err instanceof LocationError && err.noSpace)) return
    const backoffMs = this.#full === null ? FULL_BACKOFF_MS.first : Math.min(FULL_BACKOFF_MS.max, this.#full.backoffMs * 2)
    this.#full = { backoffMs, untilMs: this.#nowMs() + backoffMs }
  }

  // ---- records -------------------------------------------------------------------------------

  /** The compaction a record holds, with this instance's live snapshot when it runs it. */
  #compactionOf(record: JobRecord): Compaction {
    // NB: this instance's live snapshot only while its attempt still holds the job.
    const local = this.#running.get(record.id)
    if (local !== undefined && record.status === 'running' && record.token === local.token) return local.snapshot
    const parsed = parseJob(record)
    if (parsed.ok) return parsed.compaction
    this.#report(new Error(parsed.problem), 'a compaction record does not parse')
    throw new AppError('INTERNAL', `compaction ${record.id} has a record this version cannot read`)
  }

  #runnerDeps(): RunnerDeps {
    return { shards: this.#deps.shards, execute: this.#deps.execute, metrics: this.#deps.metrics, report: (err, context) => this.#report(err, context), now: this.#now }
  }

  #nowMs(): number {
    return this.#now().getTime()
  }

  /** The store options of this instance's own scheduling: aborted by the stop. */
  get #halted(): { readonly signal: AbortSignal } {
    return { signal: this.#halt.signal }
  }

  #report(err: unknown, context: string): void {
    // NB: a scheduling call the stop cut short is no failure.
    if (this.#halt.signal.aborted && err === this.#halt.signal.reason) return
    try {
      this.#onError(err, context)
    } catch (thrown) {
      defaultOnError(thrown, "the compactor's onError threw")
    }
  }

  #requireStarted(): void {
    if (this.#state === 'new') throw new AppError('SERVICE_UNAVAILABLE', 'the compactor is not started yet; retry shortly')
    if (this.#state === 'stopped' || this.#stopping !== null) throw new AppError('SERVICE_UNAVAILABLE', 'the compactor is stopping and accepts no new compactions')
  }

  #updateGauges(): void {
    this.#deps.metrics.compactor.running.set(this.#running.size)
  }

  #updateLimits(): void {
    const cfg = this.#deps.dyncfg.snapshot()
    const g = this.#deps.metrics.compactor
    g.queueSizeLimit.set(cfg.compaction_queue_size)
    g.concurrencyLimit.set(cfg.compaction_concurrency_limit)
  }

  // ---- stop ----------------------------------------------------------------------------------

  async #stop(graceMs: number): Promise<void> {
    const wasStarted = this.#state === 'started'
    this.#state = 'stopped'
    // NB: the grace counts from the stop (the signal), not from when the scheduling settled.
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs)
    })
    this.#halt.abort(new AppError('SERVICE_UNAVAILABLE', 'the compactor is stopping and accepts no new compactions'))
    for (const c of this.#cleanup.splice(0)) c()
    const background = Promise.all(this.#background.splice(0).map((stopTask) => stopTask()))
    const pending = (): Promise<unknown>[] => [...this.#runs, ...this.#stateless.settled()]
    try {
      if (!wasStarted) return
      // NB: a sweep or heartbeat in progress ends before the instance leaves the cluster (and before
      // its owner closes the stores): otherwise it failed on a closed store, or claimed after the
      // stop. Their store calls were aborted: they end after at most a write already under way.
      await this.#pumping
      await background
      if (pending().length > 0) await Promise.race([Promise.all(pending()), grace])
    } finally {
      clearTimeout(timer)
    }
    // A claim that committed as the stop came started its run: it is released like the others.
    for (const attempt of this.#running.values()) attempt.release()
    const gone = new AppError('SERVICE_UNAVAILABLE', 'the compactor stopped before the compaction finished; retry it')
    this.#stateless.abortAll(gone)
    await Promise.all(pending())
    await this.#deps.store.leave(this.#instanceId).catch((err: unknown) => this.#report(err, 'leaving the cluster failed; the instance expires from the list'))
    this.#updateGauges()
  }
}

function killSwitchOn(cfg: ConfigValues): boolean {
  return cfg.persist_compaction_check_process_flag && !cfg.compaction_process_requests
}

function notFound(id: string): AppError {
  return new AppError('COMPACTION_NOT_FOUND', `compaction ${id} does not exist (or is older than compaction_history_retention)`)
}

function defaultOnError(err: unknown, context: string): void {
  const error = err instanceof Error ? err : new Error(String(err))
  process.emitWarning(`${context}: ${error.message}`, { code: 'COMPACTD_COMPACTOR' })
}
