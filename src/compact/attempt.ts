/**
 * One attempt at a compaction on this instance: from the claim of its job to the record it leaves.
 * The attempt claims the shard (every apply is fenced by the job's token), runs the merges
 * (job-runner.ts), renews the job's lease while progress moves (reading cancellations then), and
 * ends the record, or, when it lost the lease or its instance stops, leaves the job to the queue.
 *
 * NB: a lease is renewed only while the compaction makes progress, so an owner stuck on a dead
 * store or a wedged worker loses its job to another instance instead of holding it forever. An
 * attempt that failed because a store is down gives its job up the same way (STORE_FAILURE_ATTEMPTS).
 */
import { AppError, isAppError } from '../errors.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { LocationError } from '../location/errors.js'
import type { JobRecord, JobStore } from '../location/job-store.js'
import { finishedProgress, foldOutcome, nextProgress, nextStatus, toCompactionJson, type Compaction, type CompactionError, type CompactionRequest, type Progress } from './compaction.js'
import { jobData } from './job-record.js'
import { runCompaction, type RunnerDeps } from './job-runner.js'
import { storeFailure } from './stage-d-failure.js'

export interface AttemptDeps {
  readonly store: JobStore
  readonly runner: RunnerDeps
  /** A snapshot changed (the compactor's `change` event). */
  readonly emit: (c: Compaction) => void
  /** The compaction a record holds. */
  readonly compactionOf: (record: JobRecord) => Compaction
}

type Phase = 'executing' | 'applying' | 'done'

/**
 * Attempts a compaction gets while stores fail under it in ways that may pass (RunResult.transient):
 * each but the last leaves the job to the rescue; the last records the failure (STORAGE_ERROR).
 */
export const STORE_FAILURE_ATTEMPTS = 5

/** The longest pause before the next attempt after a store failure. */
export const STORE_RETRY_MAX_PAUSE_MS = 10 * 60_000

/**
 * The pause before attempt `attempt + 1` after attempt `attempt` failed on a store: the lease
 * timeout, doubled per attempt, at most STORE_RETRY_MAX_PAUSE_MS. With the default 15 s lease the
 * pauses are 15 s, 30 s, 1 min and 2 min: an outage of nearly four minutes costs no compaction.
 */
export function storeRetryPauseMs(leaseMs: number, attempt: number): number {
  return Math.min(STORE_RETRY_MAX_PAUSE_MS, leaseMs * 2 ** Math.min(Math.max(0, attempt - 1), 20))
}

export class Attempt {
  readonly id: string
  readonly req: CompactionRequest
  /** The attempt's fencing token (the job's and the shard claim's). */
  readonly token: number
  /** When this attempt started (ms). */
  readonly startedAtMs: number
  /** Resolves with the snapshot the attempt leaves (final, or queued again). */
  readonly done: Promise<Compaction>

  readonly #deps: AttemptDeps
  readonly #record: JobRecord
  readonly #controller = new AbortController()
  #snapshot: Compaction
  /** Why the controller was aborted (the first reason wins). */
  #abortReason: CompactionError | null = null
  /** The lease was lost (another instance may own the job now): end without touching the record. */
  #lost = false
  /** Its instance stops: give the job back to the queue instead of finishing it. */
  #released = false
  #phase: Phase = 'executing'
  /** Progress at the last renewal. */
  #renewedAt = -1
  #resolveDone!: (c: Compaction) => void

  constructor(deps: AttemptDeps, record: JobRecord, parsed: { readonly request: CompactionRequest; readonly compaction: Compaction }, instanceId: string) {
    this.#deps = deps
    this.#record = record
    this.id = record.id
    this.req = parsed.request
    this.token = record.token
    this.startedAtMs = deps.runner.now().getTime()
    this.#snapshot = Object.freeze({ ...parsed.compaction, status: 'running', attempt: record.attempt, instance: instanceId, startedAt: new Date(this.startedAtMs) })
    this.done = new Promise<Compaction>((resolve) => {
      this.#resolveDone = resolve
    })
  }

  get snapshot(): Compaction {
    return this.#snapshot
  }

  /** False once a range compaction applies its result: cancelling it then would undo nothing. */
  get cancellable(): boolean {
    return !(this.#phase === 'applying' && this.req.kind === 'range')
  }

  /** Aborts the work (cancel, deadline, lost lease); the first reason is the one recorded. */
  abort(reason: CompactionError): void {
    if (this.#phase === 'done' || this.#abortReason !== null) return
    this.#abortReason = reason
    this.#controller.abort(new AppError(reason.code, reason.message))
  }

  /** Its instance stops: abort, delete unapplied outputs, and queue the job again. */
  release(): void {
    this.#released = true
    this.abort({ code: 'CANCELLED', message: 'this instance stopped before the compaction finished; its outputs were deleted and it is queued again' })
  }

  /** Runs the attempt to its end; never throws (failures end the record, or are reported). */
  async run(cfg: ConfigValues): Promise<void> {
    const { runner, store } = this.#deps
    const m = runner.metrics.compaction
    m.queuedSeconds.inc(Math.max(0, this.startedAtMs - this.#record.createdAt) / 1000)
    this.#deps.emit(this.#snapshot)
    const timers = this.#timers(cfg)
    let end: Awaited<ReturnType<typeof runCompaction>>
    try {
      const claim = await this.#claimShard()
      if (claim === 'fenced') {
        this.#settle(this.#snapshot)
        return
      }
      end =
        claim === 'deleted'
          ? { status: 'not_applied', reason: { code: 'SHARD_DELETED', message: `shard ${this.req.shardId} was deleted` } }
          : await runCompaction(runner, this.req, cfg, { job: this.id, token: this.token }, {
              signal: this.#controller.signal,
              abortReason: () => this.#abortReason,
              attempt: this.#record.attempt,
              appliedBefore: this.#snapshot.progress.chunksApplied,
              phase: (phase) => {
                if (this.#phase !== 'done') this.#phase = phase
              },
              planned: (inputs, timeout, schemaSelection) => this.#update({ inputs, timeoutMs: timeout, schemaSelection }),
              progress: (p) => this.#progress(p),
              merged: (outcome, sameMerge) => this.#update({ merges: foldOutcome(this.req.tk, this.#snapshot.merges, outcome, sameMerge) }),
            })
    } catch (err) {
      runner.report(err, `compaction ${this.id} failed unexpectedly`)
      m.failed.inc()
      end = { status: 'failed', error: unexpected(err) }
    } finally {
      for (const t of timers) clearTimeout(t)
    }
    await runner.shards.releaseClaim(this.req.shardId, this.id, this.token).catch((err: unknown) => runner.report(err, `releasing compaction ${this.id}'s claim failed`))
    if (this.#lost) {
      this.#settle(this.#snapshot)
      return
    }
    if (this.#released) {
      const back = await store.release(this.id, this.token, this.#now()).catch((err: unknown) => {
        runner.report(err, `giving compaction ${this.id} back to the queue failed; its lease will expire`)
        return null
      })
      this.#settle(back === null ? this.#snapshot : this.#deps.compactionOf(back))
      return
    }
    if (end.status === 'failed' && end.transient === true && this.#record.attempt < STORE_FAILURE_ATTEMPTS) {
      // NB: a store failed under it and may come back (an outage, a restart): the job is not failed
      // but left to the rescue, as if this instance had died. Its lease is set to lapse after a
      // pause that doubles with each attempt (storeRetryPauseMs), any instance's sweep then queues
      // it again, and the next claim is attempt + 1, which plans from the shard as it is then. With
      // the job store down too, that renewal fails and the lease lapses where it was.
      const pauseMs = storeRetryPauseMs(cfg.compaction_lease_timeout, this.#record.attempt)
      await store.renew(this.id, this.token, this.#now(), pauseMs, jobData(this.req, toCompactionJson(this.#snapshot))).catch((err: unknown) => {
        runner.report(err, `setting the pause before compaction ${this.id} runs again failed; it runs again once its lease expires`)
      })
      runner.report(
        new Error(`${end.error?.code ?? 'STORAGE_ERROR'}: ${end.error?.message ?? ''}`),
        `compaction ${this.id} (attempt ${this.#record.attempt} of at most ${STORE_FAILURE_ATTEMPTS}) failed on a store; it runs again in ${Math.round(pauseMs / 1000)} s`,
      )
      runner.metrics.cluster.storeRetries.inc()
      this.#settle(this.#snapshot)
      return
    }
    const { status, ...fields } = end
    const ranToEnd = status === 'succeeded' || status === 'not_applied'
    const final: Compaction = Object.freeze({
      ...this.#snapshot,
      ...fields,
      progress: ranToEnd ? finishedProgress(this.#snapshot.progress) : this.#snapshot.progress,
      status: nextStatus(this.#snapshot.status, status),
      finishedAt: runner.now(),
    })
    const written = await store.finish(this.id, this.token, status, jobData(this.req, toCompactionJson(final)), this.#now()).catch((err: unknown) => {
      runner.report(err, `recording the end of compaction ${this.id} failed; its lease will expire and another attempt runs it`)
      return null
    })
    if (written === null) runner.metrics.cluster.fenced.inc()
    this.#settle(written === null ? final : this.#deps.compactionOf(written))
  }

  /** Claims the shard: `fenced` when a newer attempt holds it, `deleted` when the shard is gone. */
  async #claimShard(): Promise<'claimed' | 'fenced' | 'deleted'> {
    try {
      const r = await this.#deps.runner.shards.claimCompaction(this.req.shardId, this.id, this.token)
      if (r === 'fenced') {
        this.#lost = true
        this.#deps.runner.metrics.cluster.fenced.inc()
      }
      return r
    } catch (err) {
      if (isAppError(err) && (err.code === 'SHARD_DELETED' || err.code === 'SHARD_NOT_FOUND')) return 'deleted'
      throw err
    }
  }

  /** A lease renewal every third of the lease, and the caller's deadline. */
  #timers(cfg: ConfigValues): NodeJS.Timeout[] {
    const leaseMs = cfg.compaction_lease_timeout
    const timers = [setInterval(() => void this.#renew(leaseMs), Math.max(50, Math.floor(leaseMs / 3)))]
    const deadlineAt = this.#record.deadlineAt
    if (deadlineAt !== null) {
      const message = `the caller's deadline passed (${new Date(deadlineAt).toISOString()})`
      timers.push(setTimeout(() => this.abort({ code: 'DEADLINE_EXCEEDED', message }), Math.max(0, deadlineAt - this.#now())))
    }
    return timers
  }

  async #renew(leaseMs: number): Promise<void> {
    if (this.#phase === 'done' || this.#lost) return
    const moved = this.#snapshot.progress.updatesRead + (this.#snapshot.merges.length + this.#snapshot.progress.chunksApplied) * 1e15
    if (moved === this.#renewedAt && this.#phase !== 'applying') return
    this.#renewedAt = moved
    const { store, runner } = this.#deps
    try {
      const r = await store.renew(this.id, this.token, this.#now(), leaseMs, jobData(this.req, toCompactionJson(this.#snapshot)))
      if (r === null) {
        this.#lost = true
        runner.metrics.cluster.fenced.inc()
        this.abort({ code: 'CANCELLED', message: 'this instance lost the compaction (its lease expired); another instance runs it' })
        return
      }
      runner.metrics.cluster.leaseRenewals.inc()
      if (r.cancelRequested) this.abort({ code: 'CANCELLED', message: 'cancelled while running; its outputs were deleted' })
    } catch (err) {
      // NB: forget what this renewal was for, so the next tick tries again whether or not progress
      // moves meanwhile (else the lease lapsed after a blip of the job store with a merge still going).
      this.#renewedAt = -1
      runner.report(err, `renewing the lease of compaction ${this.id} failed; retrying at the next renewal`)
    }
  }

  #progress(p: Partial<Progress>): void {
    if (this.#phase === 'done') return
    const elapsed = Math.max(0, this.#now() - this.startedAtMs) / 1000
    const next = nextProgress(this.#snapshot.progress, p, this.#snapshot.inputs.updates, elapsed)
    if (next !== null) this.#update({ progress: next })
  }

  #update(patch: Partial<Compaction>): void {
    this.#snapshot = Object.freeze({ ...this.#snapshot, ...patch })
    this.#deps.emit(this.#snapshot)
  }

  #settle(c: Compaction): void {
    this.#phase = 'done'
    this.#snapshot = c
    this.#resolveDone(c)
    this.#deps.emit(c)
  }

  #now(): number {
    return this.#deps.runner.now().getTime()
  }
}

/** What an error that escaped the run (claiming the shard, say) leaves on the record: a store's failure says so, anything else is a bug. */
function unexpected(err: unknown): CompactionError {
  if (err instanceof LocationError) return storeFailure(err, ' to claim the shard; nothing was written')
  return { code: 'INTERNAL', message: 'internal error; see the server log' }
}
