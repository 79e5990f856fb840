/**
 * JobStore: the cluster's durable compaction jobs and the instances that run them. Every instance
 * of a cluster shares one store (the same backend as its consensus store), so any instance accepts
 * a submission, lists and cancels any job, and runs whatever it claims.
 *
 * A job's life in the store (the compactor decides, the store makes each step atomic):
 *
 * | from      | to        | by                                                                 |
 * |-----------|-----------|--------------------------------------------------------------------|
 * | (new)     | `queued`  | `insert` (unless the shard already has the idempotency key, or the queue is full) |
 * | (new)     | final     | `insert` of a job that is final at once (skipped)                  |
 * | `queued`  | `running` | `claim` (oldest first): owner, attempt + 1, token + 1, a lease      |
 * | `queued`  | final     | `finish` with token null (cancelled, failed by the kill switch or its deadline) |
 * | `running` | `running` | `renew` by the owner's token: a new lease, new data                 |
 * | `running` | final     | `finish` by the owner's token                                       |
 * | `running` | `queued`  | `rescue` once its lease expired, or `release` by its owner's token  |
 *
 * Fencing: each claim gives the job a new `token`; `renew`, `finish` and `release` take effect
 * only with the current token, so an owner that lost its job (its lease expired and another
 * instance claimed it) can no longer change it. What the job did to shard state is fenced in the
 * shard's own state (compact/claims), not here.
 *
 * Every method's effect is atomic: two instances can never both claim one job, both insert one
 * idempotency key, or both finish one job. Times are milliseconds since the epoch, given by the
 * caller (the store never reads a clock), so tests control them.
 */
import type { Abortable } from './errors.js'

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'not_applied', 'failed', 'cancelled', 'skipped'] as const
export type JobStatus = (typeof JOB_STATUSES)[number]
export type FinalJobStatus = Exclude<JobStatus, 'queued' | 'running'>

export const isFinalJobStatus = (s: JobStatus): s is FinalJobStatus => s !== 'queued' && s !== 'running'

export interface JobRecord {
  /** `c<uuid>`, time-ordered: ids sort by creation. */
  readonly id: string
  readonly shardId: string
  /** Who asked (`request`, `maintenance`), for filters; the store does not interpret it. */
  readonly source: string
  readonly status: JobStatus
  /** Runs started so far: 0 until the first claim, + 1 at each claim. */
  readonly attempt: number
  /** The instance running it (null unless running). */
  readonly owner: string | null
  /** Increments at each claim; `renew`, `finish` and `release` need the current one. */
  readonly token: number
  /** While running: when the lease ends unless renewed. */
  readonly leaseExpiresAt: number | null
  /** Someone asked a running job to stop (`requestCancel`); its owner sees it at its next renewal. */
  readonly cancelRequested: boolean
  /** Unique per shard among every job the store holds (null: none). */
  readonly idempotencyKey: string | null
  /** A queued job whose deadline passed fails without running (`deadlinePassed`); null: none. */
  readonly deadlineAt: number | null
  readonly createdAt: number
  readonly updatedAt: number
  readonly finishedAt: number | null
  /** What the compactor records (the request, progress, outcome) as JSON; the store keeps it as is. */
  readonly data: unknown
}

export type InsertResult =
  | { readonly kind: 'inserted'; readonly job: JobRecord }
  /** The shard already has a job with this idempotency key: that job, unchanged. */
  | { readonly kind: 'exists'; readonly job: JobRecord }
  /** `capacity` jobs are queued already; nothing was written. */
  | { readonly kind: 'full'; readonly queued: number }

export interface JobFilter {
  readonly shardId?: string
  readonly status?: JobStatus
  readonly source?: string
  /** At most this many (≥ 1). */
  readonly limit: number
  /** The `nextCursor` of the page before. */
  readonly cursor?: string
}

export interface JobPage {
  /** Newest first (by id). */
  readonly jobs: readonly JobRecord[]
  /** Set when there may be more after this page. NB: a page may be short and still have a cursor. */
  readonly nextCursor: string | null
}

export interface InstanceRecord {
  /** Unique in the cluster (`COMPACTD_INSTANCE_ID`, or generated). */
  readonly id: string
  readonly startedAt: number
  readonly heartbeatAt: number
  readonly version: string
  /** Jobs it runs now. */
  readonly running: number
  /**
   * The shard state version formats it reads (`v` of the envelope: 1 whole, 2 delta). Absent from
   * builds before state deltas, which read whole versions only.
   */
  readonly stateFormats?: readonly number[]
}

export interface JobStore {
  /**
   * Adds `job` (queued, or final at once) unless the shard already has a job with its idempotency
   * key (`exists`, that job) or, for a queued job, `capacity` jobs are queued already (`full`).
   */
  insert(job: JobRecord, capacity: number, opts?: Abortable): Promise<InsertResult>
  /** One job, or null. */
  get(id: string, opts?: Abortable): Promise<JobRecord | null>
  /** The job of `shardId` with `idempotencyKey`, or null. */
  byIdempotencyKey(shardId: string, idempotencyKey: string, opts?: Abortable): Promise<JobRecord | null>
  /** A page of jobs, newest first, filtered. */
  list(filter: JobFilter, opts?: Abortable): Promise<JobPage>
  /** How many jobs are queued and running now. */
  active(opts?: Abortable): Promise<{ readonly queued: number; readonly running: number }>
  /** Claims the oldest queued job for `owner` until `now + leaseMs`; null when none is queued. */
  claim(owner: string, now: number, leaseMs: number, opts?: Abortable): Promise<JobRecord | null>
  /** Extends the lease to `now + leaseMs` and replaces `data`, iff `token` holds the running job; null otherwise (fenced). */
  renew(id: string, token: number, now: number, leaseMs: number, data: unknown, opts?: Abortable): Promise<JobRecord | null>
  /**
   * Ends a job with `status` and `data`: a running one iff `token` holds it, a queued one iff
   * `token` is null and it is still queued. Null when it had moved on (fenced, claimed, or final).
   */
  finish(id: string, token: number | null, status: FinalJobStatus, data: unknown, now: number, opts?: Abortable): Promise<JobRecord | null>
  /** Marks a running job `cancelRequested`; the record after, or null when it is not running. */
  requestCancel(id: string, now: number, opts?: Abortable): Promise<JobRecord | null>
  /** Gives a running job back to the queue iff `token` holds it (its owner stops); the record after, or null. */
  release(id: string, token: number, now: number, opts?: Abortable): Promise<JobRecord | null>
  /** Requeues every running job whose lease ended before `now`; the jobs requeued. */
  rescue(now: number, opts?: Abortable): Promise<readonly JobRecord[]>
  /** Queued jobs whose deadline is before `now` (for someone to `finish` them); at most `limit`. */
  deadlinePassed(now: number, limit: number, opts?: Abortable): Promise<readonly JobRecord[]>
  /** Deletes final jobs that finished before `before`; how many. */
  purge(before: number, opts?: Abortable): Promise<number>
  /** Records an instance's heartbeat (creates or replaces its record). */
  heartbeat(instance: InstanceRecord, opts?: Abortable): Promise<void>
  /** Instances whose last heartbeat is at or after `since`. */
  instances(since: number, opts?: Abortable): Promise<readonly InstanceRecord[]>
  /** Forgets an instance (it stops cleanly). */
  leave(id: string, opts?: Abortable): Promise<void>
  /**
   * Calls `listener` when jobs may have changed, on any instance where the backend can tell
   * (PostgreSQL's LISTEN/NOTIFY), else at least for this process's own changes. Best effort:
   * callers still poll. Returns the unsubscribe.
   */
  subscribe(listener: () => void): () => void
  /** Releases connections and handles. Idempotent. */
  close(): Promise<void>
}
