/**
 * Job records for the JobStore tests, and a full listing: shared by the contract suite and the
 * child processes (which must not import node:test).
 */
import assert from 'node:assert/strict'
import { UuidV7 } from '../../src/core/uuid-v7.js'
import { JOB_STATUSES, type FinalJobStatus, type JobRecord, type JobStore } from '../../src/location/job-store.js'

const uuids = new UuidV7()
/** A new time-ordered job id: each one sorts after every id made before it. */
export const newJobId = (): string => `c${uuids.next()}`

/** A queued job as the compactor would insert it; `over` replaces fields. */
export function queuedJob(over: Partial<JobRecord> = {}): JobRecord {
  return {
    id: newJobId(),
    shardId: 's-one',
    source: 'request',
    status: 'queued',
    attempt: 0,
    owner: null,
    token: 0,
    leaseExpiresAt: null,
    cancelRequested: false,
    idempotencyKey: null,
    deadlineAt: null,
    createdAt: 1_000,
    updatedAt: 1_000,
    finishedAt: null,
    data: { request: { kind: 'major', inputs: ['p1', 'p2'] }, note: 'ünïcödé 🙂', n: 1.5, flag: true, nothing: null },
    ...over,
  }
}

/** A job inserted final at once (skipped, say). */
export const finalJob = (over: Partial<JobRecord> = {}): JobRecord => queuedJob({ status: 'skipped', finishedAt: 1_000, ...over })

export const FINAL_STATUSES = JOB_STATUSES.filter((s): s is FinalJobStatus => s !== 'queued' && s !== 'running')

/** Every job the store holds, by paging an unfiltered listing (newest first). */
export async function allJobs(store: JobStore, limit = 7): Promise<JobRecord[]> {
  const out: JobRecord[] = []
  let cursor: string | undefined
  for (let page = 0; page < 10_000; page++) {
    const res = await store.list({ limit, ...(cursor === undefined ? {} : { cursor }) })
    out.push(...res.jobs)
    if (res.nextCursor === null) return out
    assert.ok(cursor === undefined || res.nextCursor < cursor, 'a cursor moves on')
    cursor = res.nextCursor
  }
  assert.fail('listing did not end')
}


/** Inserts `job` and returns it as stored, asserting it was inserted. */
export async function put(store: JobStore, job: JobRecord, capacity = 1_000): Promise<JobRecord> {
  const res = await store.insert(job, capacity)
  assert.equal(res.kind, 'inserted', `insert ${job.id}`)
  return res.kind === 'inserted' ? res.job : job
}
