/**
 * MemJobStore: the JobStore in one process's memory (tests, and `mem://` servers). Every method
 * runs synchronously to its end, so each is atomic; results are frozen copies, and `data` is copied
 * as JSON going in and coming out (what the other adapters do by storing it), so neither the
 * caller's later changes to its objects nor changes to a returned record's data reach the store.
 */
import { InvalidUsageError, closedError, type Abortable } from './errors.js'
import { isFinalJobStatus, type FinalJobStatus, type InsertResult, type InstanceRecord, type JobFilter, type JobPage, type JobRecord, type JobStore } from './job-store.js'
import { storedJob } from './job-transitions.js'

export class MemJobStore implements JobStore {
  readonly #jobs = new Map<string, JobRecord>()
  readonly #instances = new Map<string, InstanceRecord>()
  readonly #listeners = new Set<() => void>()
  #closed = false

  async insert(job: JobRecord, capacity: number, opts?: Abortable): Promise<InsertResult> {
    this.#check(opts)
    if (this.#jobs.has(job.id)) throw new InvalidUsageError(`job ${job.id} exists already`)
    if (job.idempotencyKey !== null) {
      const earlier = this.#byKey(job.shardId, job.idempotencyKey)
      if (earlier !== null) return { kind: 'exists', job: storedJob(earlier) }
    }
    if (job.status === 'queued') {
      const queued = this.#count('queued')
      if (queued >= capacity) return { kind: 'full', queued }
    } else if (!isFinalJobStatus(job.status)) {
      throw new InvalidUsageError(`a job is inserted queued or final, not ${job.status}`)
    }
    return { kind: 'inserted', job: this.#put(job) }
  }

  async get(id: string, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    const j = this.#jobs.get(id)
    return j === undefined ? null : storedJob(j)
  }

  async byIdempotencyKey(shardId: string, idempotencyKey: string, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    const j = this.#byKey(shardId, idempotencyKey)
    return j === null ? null : storedJob(j)
  }

  async list(filter: JobFilter, opts?: Abortable): Promise<JobPage> {
    this.#check(opts)
    const matching = [...this.#jobs.values()]
      .filter((j) => (filter.cursor === undefined || j.id < filter.cursor) && (filter.shardId === undefined || j.shardId === filter.shardId) && (filter.status === undefined || j.status === filter.status) && (filter.source === undefined || j.source === filter.source))
      .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    const jobs = matching.slice(0, Math.max(1, filter.limit)).map(storedJob)
    return { jobs, nextCursor: matching.length > jobs.length ? (jobs[jobs.length - 1] as JobRecord).id : null }
  }

  async active(opts?: Abortable): Promise<{ readonly queued: number; readonly running: number }> {
    this.#check(opts)
    return { queued: this.#count('queued'), running: this.#count('running') }
  }

  async claim(owner: string, now: number, leaseMs: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    let oldest: JobRecord | null = null
    for (const j of this.#jobs.values()) if (j.status === 'queued' && (oldest === null || j.id < oldest.id)) oldest = j
    if (oldest === null) return null
    return this.#put({ ...oldest, status: 'running', owner, attempt: oldest.attempt + 1, token: oldest.token + 1, leaseExpiresAt: now + leaseMs, cancelRequested: false, updatedAt: now })
  }

  async renew(id: string, token: number, now: number, leaseMs: number, data: unknown, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    const j = this.#owned(id, token)
    return j === null ? null : this.#put({ ...j, leaseExpiresAt: now + leaseMs, data, updatedAt: now })
  }

  async finish(id: string, token: number | null, status: FinalJobStatus, data: unknown, now: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    if (!isFinalJobStatus(status)) throw new InvalidUsageError(`finish with ${String(status)}, which is not a final status`)
    const j = token === null ? this.#queued(id) : this.#owned(id, token)
    return j === null ? null : this.#put({ ...j, status, owner: null, leaseExpiresAt: null, data, updatedAt: now, finishedAt: now })
  }

  async requestCancel(id: string, now: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    const j = this.#jobs.get(id)
    if (j === undefined || j.status !== 'running') return null
    return j.cancelRequested ? storedJob(j) : this.#put({ ...j, cancelRequested: true, updatedAt: now })
  }

  async release(id: string, token: number, now: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    const j = this.#owned(id, token)
    return j === null ? null : this.#put({ ...j, status: 'queued', owner: null, leaseExpiresAt: null, updatedAt: now })
  }

  async rescue(now: number, opts?: Abortable): Promise<readonly JobRecord[]> {
    this.#check(opts)
    const out: JobRecord[] = []
    for (const j of [...this.#jobs.values()]) {
      if (j.status === 'running' && j.leaseExpiresAt !== null && j.leaseExpiresAt < now) {
        out.push(this.#put({ ...j, status: 'queued', owner: null, leaseExpiresAt: null, updatedAt: now }))
      }
    }
    return out
  }

  async deadlinePassed(now: number, limit: number, opts?: Abortable): Promise<readonly JobRecord[]> {
    this.#check(opts)
    return [...this.#jobs.values()]
      .filter((j) => j.status === 'queued' && j.deadlineAt !== null && j.deadlineAt < now)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, limit)
      .map(storedJob)
  }

  async purge(before: number, opts?: Abortable): Promise<number> {
    this.#check(opts)
    let n = 0
    for (const j of [...this.#jobs.values()]) {
      if (isFinalJobStatus(j.status) && j.finishedAt !== null && j.finishedAt < before) {
        this.#jobs.delete(j.id)
        n++
      }
    }
    if (n > 0) this.#notify()
    return n
  }

  async heartbeat(instance: InstanceRecord, opts?: Abortable): Promise<void> {
    this.#check(opts)
    this.#instances.set(instance.id, Object.freeze({ ...instance }))
  }

  async instances(since: number, opts?: Abortable): Promise<readonly InstanceRecord[]> {
    this.#check(opts)
    return [...this.#instances.values()].filter((i) => i.heartbeatAt >= since).sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  async leave(id: string, opts?: Abortable): Promise<void> {
    this.#check(opts)
    this.#instances.delete(id)
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#listeners.clear()
  }

  #put(job: JobRecord): JobRecord {
    const stored = storedJob(job)
    this.#jobs.set(job.id, stored)
    this.#notify()
    return storedJob(stored)
  }

  #notify(): void {
    for (const l of this.#listeners) queueMicrotask(l)
  }

  #owned(id: string, token: number): JobRecord | null {
    const j = this.#jobs.get(id)
    return j !== undefined && j.status === 'running' && j.token === token ? j : null
  }

  #queued(id: string): JobRecord | null {
    const j = this.#jobs.get(id)
    return j !== undefined && j.status === 'queued' ? j : null
  }

  #byKey(shardId: string, key: string): JobRecord | null {
    for (const j of this.#jobs.values()) if (j.shardId === shardId && j.idempotencyKey === key) return j
    return null
  }

  #count(status: JobRecord['status']): number {
    let n = 0
    for (const j of this.#jobs.values()) if (j.status === status) n++
    return n
  }

  #check(opts?: Abortable): void {
    if (this.#closed) throw closedError('job store')
    opts?.signal?.throwIfAborted()
  }
}
