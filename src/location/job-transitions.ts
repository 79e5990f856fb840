/**
 * The JobStore's state changes as pure functions over a table of jobs (sorted by id), for adapters
 * that apply them with a compare-and-set loop (`FileJobStore`). Each returns the table after (null:
 * unchanged, nothing to write) and the method's result; the rules are those of the port's state
 * table, as `MemJobStore` applies them in place.
 */
import { InvalidUsageError } from './errors.js'
import { isFinalJobStatus, type FinalJobStatus, type JobRecord } from './job-store.js'

/** Jobs sorted by id, each at most once. */
export type JobTable = readonly JobRecord[]

export interface Step<T> {
  /** The table after; null when nothing changed. */
  readonly jobs: JobTable | null
  readonly result: T
}

const unchanged = <T>(result: T): Step<T> => ({ jobs: null, result })

/** Refuses a job `insert` cannot take: one that is neither queued nor final. */
export function checkInsertable(job: JobRecord): void {
  if (job.status !== 'queued' && !isFinalJobStatus(job.status)) throw new InvalidUsageError(`a job is inserted queued or final, not ${job.status}`)
}

export function findJob(jobs: JobTable, id: string): JobRecord | null {
  const i = indexOf(jobs, id)
  return i < 0 ? null : (jobs[i] as JobRecord)
}

export function jobByKey(jobs: JobTable, shardId: string, key: string): JobRecord | null {
  return jobs.find((j) => j.shardId === shardId && j.idempotencyKey === key) ?? null
}

export function countStatus(jobs: JobTable, status: JobRecord['status']): number {
  let n = 0
  for (const j of jobs) if (j.status === status) n++
  return n
}

/**
 * Adds `job` unless the table has its idempotency key (`exists`) or, for a queued job, `capacity`
 * queued jobs (`full`). NB: jobs that left the table are the caller's to check, before this step.
 */
export function insertJob(jobs: JobTable, job: JobRecord, capacity: number): Step<{ kind: 'inserted' | 'exists'; job: JobRecord } | { kind: 'full'; queued: number }> {
  checkInsertable(job)
  if (indexOf(jobs, job.id) >= 0) throw new InvalidUsageError(`job ${job.id} exists already`)
  if (job.idempotencyKey !== null) {
    const earlier = jobByKey(jobs, job.shardId, job.idempotencyKey)
    if (earlier !== null) return unchanged({ kind: 'exists', job: earlier })
  }
  if (job.status === 'queued') {
    const queued = countStatus(jobs, 'queued')
    if (queued >= capacity) return unchanged({ kind: 'full', queued })
  }
  return { jobs: withJob(jobs, job), result: { kind: 'inserted', job } }
}

/** The oldest queued job becomes `owner`'s: attempt + 1, token + 1, a lease until `now + leaseMs`. */
export function claimOldest(jobs: JobTable, owner: string, now: number, leaseMs: number): Step<JobRecord | null> {
  const oldest = jobs.find((j) => j.status === 'queued')
  if (oldest === undefined) return unchanged(null)
  return put(jobs, { ...oldest, status: 'running', owner, attempt: oldest.attempt + 1, token: oldest.token + 1, leaseExpiresAt: now + leaseMs, cancelRequested: false, updatedAt: now })
}

export function renewJob(jobs: JobTable, id: string, token: number, now: number, leaseMs: number, data: unknown): Step<JobRecord | null> {
  const j = owned(jobs, id, token)
  return j === null ? unchanged(null) : put(jobs, { ...j, leaseExpiresAt: now + leaseMs, data, updatedAt: now })
}

export function finishJob(jobs: JobTable, id: string, token: number | null, status: FinalJobStatus, data: unknown, now: number): Step<JobRecord | null> {
  if (!isFinalJobStatus(status)) throw new InvalidUsageError(`finish with ${String(status)}, which is not a final status`)
  const found = findJob(jobs, id)
  const j = token === null ? (found?.status === 'queued' ? found : null) : owned(jobs, id, token)
  return j === null ? unchanged(null) : put(jobs, { ...j, status, owner: null, leaseExpiresAt: null, data, updatedAt: now, finishedAt: now })
}

export function requestCancelJob(jobs: JobTable, id: string, now: number): Step<JobRecord | null> {
  const j = findJob(jobs, id)
  if (j === null || j.status !== 'running') return unchanged(null)
  return j.cancelRequested ? unchanged(j) : put(jobs, { ...j, cancelRequested: true, updatedAt: now })
}

export function releaseJob(jobs: JobTable, id: string, token: number, now: number): Step<JobRecord | null> {
  const j = owned(jobs, id, token)
  return j === null ? unchanged(null) : put(jobs, { ...j, status: 'queued', owner: null, leaseExpiresAt: null, updatedAt: now })
}

/** Requeues running jobs whose lease ended before `now`; their attempt stays until the next claim. */
export function rescueExpired(jobs: JobTable, now: number): Step<readonly JobRecord[]> {
  const rescued: JobRecord[] = []
  const after = jobs.map((j) => {
    if (j.status !== 'running' || j.leaseExpiresAt === null || j.leaseExpiresAt >= now) return j
    const requeued: JobRecord = { ...j, status: 'queued', owner: null, leaseExpiresAt: null, updatedAt: now }
    rescued.push(requeued)
    return requeued
  })
  return rescued.length === 0 ? unchanged(rescued) : { jobs: after, result: rescued }
}

export function deadlinePassedJobs(jobs: JobTable, now: number, limit: number): JobRecord[] {
  return jobs.filter((j) => j.status === 'queued' && j.deadlineAt !== null && j.deadlineAt < now).slice(0, Math.max(0, limit))
}

/** The table without its final jobs (they moved elsewhere), and those jobs. */
export function withoutFinal(jobs: JobTable): { readonly kept: JobTable; readonly final: JobTable } {
  return { kept: jobs.filter((j) => !isFinalJobStatus(j.status)), final: jobs.filter((j) => isFinalJobStatus(j.status)) }
}

function owned(jobs: JobTable, id: string, token: number): JobRecord | null {
  const j = findJob(jobs, id)
  return j !== null && j.status === 'running' && j.token === token ? j : null
}

function put(jobs: JobTable, job: JobRecord): Step<JobRecord> {
  return { jobs: withJob(jobs, job), result: job }
}

/** The table with `job` added or replacing the job of its id. */
function withJob(jobs: JobTable, job: JobRecord): JobTable {
  const i = indexOf(jobs, job.id)
  if (i >= 0) return jobs.map((j, k) => (k === i ? job : j))
  const at = insertionPoint(jobs, job.id)
  return [...jobs.slice(0, at), job, ...jobs.slice(at)]
}

function indexOf(jobs: JobTable, id: string): number {
  const i = insertionPoint(jobs, id)
  return jobs[i]?.id === id ? i : -1
}

/** The first index whose id is ≥ `id` (binary search). */
function insertionPoint(jobs: JobTable, id: string): number {
  let lo = 0
  let hi = jobs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((jobs[mid] as JobRecord).id < id) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * `value` as the store keeps it: a JSON copy (undefined becomes null), so the caller's later
 * changes to its object never reach the store, and every adapter returns the same thing.
 */
export function jsonCopy(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value ?? null)) as unknown
}

/** `job` as the store keeps it: a frozen copy of the record's fields, `data` a JSON copy. */
export function storedJob(job: JobRecord): JobRecord {
  return Object.freeze({
    id: job.id,
    shardId: job.shardId,
    source: job.source,
    status: job.status,
    attempt: job.attempt,
    owner: job.owner,
    token: job.token,
    leaseExpiresAt: job.leaseExpiresAt,
    cancelRequested: job.cancelRequested,
    idempotencyKey: job.idempotencyKey,
    deadlineAt: job.deadlineAt,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt,
    data: jsonCopy(job.data),
  })
}
