/**
 * The JobStore contract: one suite every adapter must pass (mem, file, PostgreSQL). `makeJobStore`
 * makes a fresh, empty store per test; `open` may be called many times for independent clients of
 * that store (separate pools, separate instances over one directory) to race each other.
 * Concurrency and the large listing are in job-store-contract-load.ts, which reuses the helpers here.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InvalidUsageError } from '../../src/location/errors.js'
import type { FinalJobStatus, InstanceRecord, JobFilter, JobRecord, JobStatus, JobStore } from '../../src/location/job-store.js'
import { allJobs, FINAL_STATUSES, finalJob, newJobId, put, queuedJob } from './job-store-records.js'

export interface JobStoreFixture {
  /** A client of this fixture's store; the suite closes what it opens. */
  open(): Promise<JobStore>
  /** Removes whatever the store holds; called once, after the test's clients are closed. */
  destroy(): Promise<void>
  /** Where the adapter can count them: the underlying reads (files and directories, rows) every client made so far. */
  readonly reads?: {
    count(): number
    /** The most reads one `list` call may make for a page of `limit`. */
    bound(limit: number, filtered: boolean): number
  }
}

export type MakeJobStore = () => Promise<JobStoreFixture>

/** Every page of `filter`, concatenated, checking cursors move on and (where countable) reads stay bounded. */
export async function pages(store: JobStore, filter: Omit<JobFilter, 'cursor'>, fixture?: JobStoreFixture): Promise<JobRecord[]> {
  const out: JobRecord[] = []
  let cursor: string | undefined
  const filtered = filter.shardId !== undefined || filter.status !== undefined || filter.source !== undefined
  for (let page = 0; page < 10_000; page++) {
    const before = fixture?.reads?.count() ?? 0
    const res = await store.list({ ...filter, ...(cursor === undefined ? {} : { cursor }) })
    if (fixture?.reads !== undefined) {
      const reads = fixture.reads.count() - before
      const bound = fixture.reads.bound(filter.limit, filtered)
      assert.ok(reads <= bound, `a page of ${filter.limit} (${JSON.stringify(filter)}) read ${reads} > ${bound}`)
    }
    assert.ok(res.jobs.length <= filter.limit)
    out.push(...res.jobs)
    if (res.nextCursor === null) return out
    assert.ok(cursor === undefined || res.nextCursor < cursor, 'a cursor moves on')
    cursor = res.nextCursor
  }
  assert.fail('paging did not end')
}

/** What `filter` should list from `jobs`: matching, newest first. */
export function expected(jobs: readonly JobRecord[], filter: Omit<JobFilter, 'cursor' | 'limit'>): string[] {
  return jobs
    .filter((j) => (filter.shardId === undefined || j.shardId === filter.shardId) && (filter.status === undefined || j.status === filter.status) && (filter.source === undefined || j.source === filter.source))
    .map((j) => j.id)
    .sort()
    .reverse()
}

/** Resolves when `listener`-style callbacks fire: `next()` before a change, await it after. */
export class Calls {
  count = 0
  #wake: (() => void) | null = null
  readonly listener = (): void => {
    this.count++
    this.#wake?.()
  }

  next(what: string): Promise<void> {
    return within(
      new Promise<void>((ok) => {
        this.#wake = ok
      }),
      10_000,
      what,
    )
  }
}

/** `promise`, or a failure naming `what` after `ms` (a bound on a wait for an event, not a sleep). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export function jobStoreContract(name: string, makeJobStore: MakeJobStore): void {
  const withStore = (fn: (s: JobStore, fixture: JobStoreFixture) => Promise<void>) => async () => {
    const fixture = await makeJobStore()
    const s = await fixture.open()
    try {
      await fn(s, fixture)
    } finally {
      await s.close()
      await fixture.destroy()
    }
  }

  /** A running job: inserted and claimed by `owner` at `now` (the store must hold no older queued job). */
  const running = async (s: JobStore, over: Partial<JobRecord> = {}, owner = 'i-1', now = 2_000, leaseMs = 1_000): Promise<JobRecord> => {
    const job = await put(s, queuedJob(over))
    const claimed = await s.claim(owner, now, leaseMs)
    assert.equal(claimed?.id, job.id, 'claimed the job just inserted')
    return claimed as JobRecord
  }

  describe(`JobStore contract: ${name}`, () => {
    it(
      'insert keeps a job as given; get, byIdempotencyKey, list and active find it',
      withStore(async (s) => {
        const job = queuedJob({ idempotencyKey: 'k1', deadlineAt: 9_000 })
        assert.deepEqual(await s.insert(job, 10), { kind: 'inserted', job })
        assert.deepEqual(await s.get(job.id), job)
        assert.equal(await s.get(newJobId()), null)
        assert.deepEqual(await s.byIdempotencyKey('s-one', 'k1'), job)
        assert.equal(await s.byIdempotencyKey('s-one', 'k2'), null)
        assert.equal(await s.byIdempotencyKey('s-two', 'k1'), null)
        assert.deepEqual(await s.list({ limit: 10 }), { jobs: [job], nextCursor: null })
        assert.deepEqual(await s.active(), { queued: 1, running: 0 })
      }),
    )

    it(
      'insert refuses a running job, a duplicate id and finishing with a status that is not final, writing nothing',
      withStore(async (s) => {
        const job = await put(s, queuedJob())
        await assert.rejects(s.insert(queuedJob({ status: 'running', owner: 'i-1', token: 1 }), 10), InvalidUsageError)
        await assert.rejects(s.insert({ ...queuedJob(), id: job.id, shardId: 's-two' }, 10), InvalidUsageError)
        await assert.rejects(s.finish(job.id, null, 'queued' as FinalJobStatus, {}, 3_000), InvalidUsageError)
        assert.deepEqual(await allJobs(s), [job])
      }),
    )

    it(
      'a job inserted final at once is kept as given and takes no queue capacity',
      withStore(async (s) => {
        await put(s, queuedJob(), 1)
        for (const status of FINAL_STATUSES) {
          const job = finalJob({ status, finishedAt: 1_500 })
          assert.deepEqual(await s.insert(job, 1), { kind: 'inserted', job })
          assert.deepEqual(await s.get(job.id), job)
        }
        assert.deepEqual(await s.active(), { queued: 1, running: 0 })
        assert.equal(await s.claim('i-1', 2_000, 100).then((j) => j?.status), 'running')
        assert.equal(await s.claim('i-1', 2_000, 100), null, 'final jobs are never claimed')
      }),
    )

    it(
      'idempotency keys are unique per shard: exists returns the earlier job unchanged, also once it is final',
      withStore(async (s) => {
        const first = await put(s, queuedJob({ idempotencyKey: 'k' }))
        const again = queuedJob({ idempotencyKey: 'k', source: 'maintenance', data: { other: true } })
        assert.deepEqual(await s.insert(again, 10), { kind: 'exists', job: first })
        assert.equal(await s.get(again.id), null, 'the second job was not written')
        const elsewhere = await put(s, queuedJob({ idempotencyKey: 'k', shardId: 's-two' }))
        assert.deepEqual(await s.byIdempotencyKey('s-two', 'k'), elsewhere)
        // Once final, and after more writes (adapters may move final jobs elsewhere meanwhile).
        const claimed = await s.claim('i-1', 2_000, 500)
        assert.equal(claimed?.id, first.id)
        const done = await s.finish(first.id, claimed?.token ?? -1, 'succeeded', { out: 1 }, 2_100)
        assert.ok(done !== null)
        for (let i = 0; i < 3; i++) await put(s, finalJob())
        assert.deepEqual(await s.insert(queuedJob({ idempotencyKey: 'k' }), 10), { kind: 'exists', job: done })
        assert.deepEqual(await s.insert(finalJob({ idempotencyKey: 'k' }), 10), { kind: 'exists', job: done })
        assert.deepEqual(await s.byIdempotencyKey('s-one', 'k'), done)
        // A final job inserted at once holds its key too.
        const skipped = await put(s, finalJob({ idempotencyKey: 'skip' }))
        await put(s, finalJob())
        assert.deepEqual(await s.insert(queuedJob({ idempotencyKey: 'skip' }), 10), { kind: 'exists', job: skipped })
      }),
    )

    it(
      'exists wins over full; capacity counts queued jobs only; full writes nothing',
      withStore(async (s) => {
        const a = await put(s, queuedJob({ idempotencyKey: 'a' }), 2)
        await put(s, queuedJob(), 2)
        assert.deepEqual(await s.insert(queuedJob({ idempotencyKey: 'a' }), 2), { kind: 'exists', job: a })
        const refused = queuedJob()
        assert.deepEqual(await s.insert(refused, 2), { kind: 'full', queued: 2 })
        assert.equal(await s.get(refused.id), null)
        assert.deepEqual(await s.insert(queuedJob(), 0), { kind: 'full', queued: 2 })
        await s.claim('i-1', 2_000, 100)
        assert.deepEqual(await s.active(), { queued: 1, running: 1 })
        await put(s, queuedJob(), 2)
        assert.deepEqual(await s.insert(queuedJob(), 2), { kind: 'full', queued: 2 })
        await put(s, finalJob(), 2)
        assert.deepEqual(await s.active(), { queued: 2, running: 1 })
      }),
    )

    it(
      'claim takes the oldest queued job by id, for an owner with a lease and a new token; null when none is queued',
      withStore(async (s) => {
        assert.equal(await s.claim('i-1', 2_000, 100), null)
        const [a, b, c] = [queuedJob(), queuedJob(), queuedJob()]
        for (const job of [c, a, b]) await put(s, job)
        const first = await s.claim('i-1', 2_000, 100)
        assert.deepEqual(first, { ...a, status: 'running', owner: 'i-1', attempt: 1, token: 1, leaseExpiresAt: 2_100, updatedAt: 2_000 })
        assert.deepEqual(await s.get(a.id), first)
        assert.equal((await s.claim('i-2', 2_001, 100))?.id, b.id)
        assert.equal((await s.claim('i-1', 2_002, 100))?.id, c.id)
        assert.equal(await s.claim('i-1', 2_003, 100), null)
        assert.deepEqual(await s.active(), { queued: 0, running: 3 })
      }),
    )

    it(
      'renew extends the lease and replaces data only with the current token of a running job',
      withStore(async (s) => {
        const job = await running(s)
        const renewed = await s.renew(job.id, job.token, 2_500, 1_000, { progress: 0.5 })
        assert.deepEqual(renewed, { ...job, leaseExpiresAt: 3_500, updatedAt: 2_500, data: { progress: 0.5 } })
        assert.equal(await s.renew(job.id, job.token + 1, 2_600, 1_000, { stale: true }), null)
        assert.equal(await s.renew(job.id, job.token - 1, 2_600, 1_000, { stale: true }), null)
        assert.equal(await s.renew(newJobId(), 1, 2_600, 1_000, {}), null)
        assert.deepEqual(await s.get(job.id), renewed)
      }),
    )

    it(
      'finish ends a running job by its token, a queued one with token null; refused once claimed, stale or final',
      withStore(async (s) => {
        const queued = await put(s, queuedJob({ idempotencyKey: 'q' }))
        assert.equal(await s.finish(queued.id, 0, 'cancelled', {}, 2_000), null, 'a queued job is finished with token null')
        const cancelled = await s.finish(queued.id, null, 'cancelled', { why: 'asked' }, 2_000)
        assert.deepEqual(cancelled, { ...queued, status: 'cancelled', updatedAt: 2_000, finishedAt: 2_000, data: { why: 'asked' } })
        assert.equal(await s.finish(queued.id, null, 'failed', {}, 2_001), null, 'final stays final')
        const job = await running(s, {}, 'i-1', 3_000)
        assert.equal(await s.finish(job.id, null, 'cancelled', {}, 3_100), null, 'refused once claimed')
        assert.equal(await s.finish(job.id, job.token + 1, 'succeeded', {}, 3_100), null, 'a stale token is fenced')
        assert.deepEqual(await s.get(job.id), job)
        const done = await s.finish(job.id, job.token, 'succeeded', { merged: 2 }, 3_200)
        assert.deepEqual(done, { ...job, status: 'succeeded', owner: null, leaseExpiresAt: null, updatedAt: 3_200, finishedAt: 3_200, data: { merged: 2 } })
        assert.equal(await s.finish(job.id, job.token, 'failed', {}, 3_300), null)
        assert.equal(await s.finish(newJobId(), null, 'failed', {}, 3_300), null)
        assert.deepEqual(await s.get(job.id), done)
        assert.deepEqual(await s.get(queued.id), cancelled)
        assert.deepEqual(await s.active(), { queued: 0, running: 0 })
      }),
    )

    it(
      'requestCancel marks running jobs only, once; the owner sees it at its next renewal',
      withStore(async (s) => {
        const queued = await put(s, queuedJob({ createdAt: 5 }))
        assert.equal(await s.requestCancel(queued.id, 2_000), null)
        const job = (await s.claim('i-1', 2_000, 1_000)) as JobRecord
        const marked = await s.requestCancel(job.id, 2_100)
        assert.deepEqual(marked, { ...job, cancelRequested: true, updatedAt: 2_100 })
        assert.deepEqual(await s.requestCancel(job.id, 2_200), marked, 'asking again changes nothing')
        assert.equal((await s.renew(job.id, job.token, 2_300, 1_000, {}))?.cancelRequested, true)
        await s.finish(job.id, job.token, 'cancelled', {}, 2_400)
        assert.equal(await s.requestCancel(job.id, 2_500), null)
        assert.equal(await s.requestCancel(newJobId(), 2_500), null)
      }),
    )

    it(
      'release gives a running job back by its token; the next claim gets a new token and attempt',
      withStore(async (s) => {
        const job = await running(s)
        assert.equal(await s.release(job.id, job.token + 1, 2_100), null)
        const released = await s.release(job.id, job.token, 2_100)
        assert.deepEqual(released, { ...job, status: 'queued', owner: null, leaseExpiresAt: null, updatedAt: 2_100 })
        assert.equal(await s.release(job.id, job.token, 2_200), null, 'a queued job is not released')
        assert.equal(await s.renew(job.id, job.token, 2_200, 100, {}), null, 'the old token no longer holds it')
        const again = await s.claim('i-2', 2_300, 100)
        assert.deepEqual(again, { ...job, owner: 'i-2', attempt: 2, token: 2, leaseExpiresAt: 2_400, updatedAt: 2_300 })
      }),
    )

    it(
      'rescue requeues only leases that ended before now, keeping the attempt; after a new claim only the new token works',
      withStore(async (s) => {
        const a = await running(s, {}, 'i-1', 2_000, 1_000) // lease to 3000
        const b = await running(s, {}, 'i-1', 2_000, 2_000) // lease to 4000
        await put(s, queuedJob())
        assert.deepEqual(await s.rescue(3_000), [], 'a lease ending at now has not ended before it')
        const rescued = await s.rescue(3_001)
        assert.deepEqual(rescued, [{ ...a, status: 'queued', owner: null, leaseExpiresAt: null, updatedAt: 3_001 }])
        assert.deepEqual(await s.rescue(3_002), [])
        assert.equal((await s.get(b.id))?.status, 'running')
        assert.equal(await s.renew(a.id, a.token, 3_010, 100, {}), null)
        const again = (await s.claim('i-2', 3_100, 1_000)) as JobRecord
        assert.deepEqual(again, { ...a, owner: 'i-2', attempt: 2, token: 2, leaseExpiresAt: 4_100, updatedAt: 3_100 })
        for (const stale of [s.renew(a.id, a.token, 3_200, 100, {}), s.finish(a.id, a.token, 'succeeded', {}, 3_200), s.release(a.id, a.token, 3_200)]) {
          assert.equal(await stale, null)
        }
        assert.deepEqual(await s.get(a.id), again)
        assert.equal((await s.finish(a.id, again.token, 'succeeded', {}, 3_300))?.status, 'succeeded')
        const both = await s.rescue(10_000)
        assert.deepEqual(
          both.map((j) => j.id),
          [b.id],
        )
      }),
    )

    it(
      'deadlinePassed lists queued jobs whose deadline is before now, oldest first, at most limit',
      withStore(async (s) => {
        const ids = (jobs: readonly JobRecord[]): string[] => jobs.map((j) => j.id)
        await running(s, { deadlineAt: 1_000 }, 'i-1', 1_600)
        const late = await put(s, queuedJob({ deadlineAt: 1_500 }))
        const later = await put(s, queuedJob({ deadlineAt: 1_800 }))
        await put(s, queuedJob({ deadlineAt: null }))
        await put(s, queuedJob({ deadlineAt: 5_000 }))
        await put(s, finalJob({ deadlineAt: 1_000 }))
        assert.deepEqual(ids(await s.deadlinePassed(2_000, 10)), [late.id, later.id])
        assert.deepEqual(await s.deadlinePassed(1_500, 10), [], 'a deadline at now has not passed')
        assert.deepEqual(ids(await s.deadlinePassed(1_501, 10)), [late.id])
        assert.deepEqual(await s.deadlinePassed(2_000, 1), [late])
      }),
    )

    it(
      'purge deletes only final jobs finished before the cutoff, never queued or running ones',
      withStore(async (s) => {
        const job = await running(s, { createdAt: 1, updatedAt: 1 }, 'i-1', 2)
        const old = await put(s, finalJob({ status: 'succeeded', finishedAt: 100, idempotencyKey: 'old', createdAt: 1 }))
        const boundary = await put(s, finalJob({ status: 'failed', finishedAt: 500 }))
        const oldRunning = await running(s, { createdAt: 1, updatedAt: 1 }, 'i-1', 3)
        const oldQueued = await put(s, queuedJob({ createdAt: 1, updatedAt: 1 }))
        const finished = await s.finish(job.id, job.token, 'cancelled', {}, 300)
        assert.ok(finished !== null)
        assert.equal(await s.purge(100), 0)
        assert.equal(await s.purge(500), 2)
        assert.equal(await s.get(old.id), null)
        assert.equal(await s.get(job.id), null)
        assert.equal(await s.byIdempotencyKey('s-one', 'old'), null)
        assert.deepEqual(
          (await allJobs(s)).map((j) => j.id),
          [oldQueued.id, oldRunning.id, boundary.id],
        )
        assert.equal(await s.purge(1_000_000), 1)
        assert.deepEqual(await allJobs(s), [oldQueued, oldRunning])
        // A purged key is free again.
        assert.equal((await s.insert(queuedJob({ idempotencyKey: 'old' }), 10)).kind, 'inserted')
        assert.equal(await s.purge(Number.MAX_SAFE_INTEGER), 0)
      }),
    )

    it(
      'list: newest first, every filter, and cursor pages that visit every job exactly once',
      withStore(async (s) => {
        const jobs: JobRecord[] = []
        for (let i = 0; i < 30; i++) {
          const over = { shardId: `s-${i % 3}`, source: i % 4 === 0 ? 'maintenance' : 'request' }
          jobs.push(await put(s, i % 5 === 0 ? queuedJob(over) : finalJob({ ...over, status: FINAL_STATUSES[i % FINAL_STATUSES.length] as FinalJobStatus })))
        }
        // Some running and some finished through the queue: the stored records, as they are now.
        for (let i = 0; i < 3; i++) {
          const job = await s.claim('i-1', 2_000, 100)
          if (i === 0 && job !== null) await s.finish(job.id, job.token, 'succeeded', {}, 2_100)
        }
        const now = await Promise.all(jobs.map(async (j) => (await s.get(j.id)) as JobRecord))
        assert.deepEqual(
          (await s.list({ limit: 100 })).jobs.map((j) => j.id),
          expected(now, {}),
        )
        const filters: Array<Omit<JobFilter, 'cursor' | 'limit'>> = [
          {},
          { shardId: 's-1' },
          { status: 'queued' },
          { status: 'running' },
          { status: 'succeeded' },
          { source: 'maintenance' },
          { shardId: 's-0', source: 'request' },
          { shardId: 's-2', status: 'skipped', source: 'request' },
          { shardId: 's-none' },
        ]
        for (const filter of filters) {
          for (const limit of [1, 4, 30, 100]) {
            const listed = await pages(s, { ...filter, limit })
            assert.deepEqual(
              listed.map((j) => j.id),
              expected(now, filter),
              `${JSON.stringify(filter)} by ${limit}`,
            )
            for (const j of listed) assert.deepEqual(j, now.find((x) => x.id === j.id))
          }
        }
        const first = await s.list({ limit: 4 })
        assert.equal(first.jobs.length, 4)
        assert.ok(first.nextCursor !== null)
        const second = await s.list({ limit: 4, cursor: first.nextCursor })
        assert.ok(second.jobs.every((j) => j.id < (first.jobs.at(-1) as JobRecord).id))
        assert.deepEqual(await s.list({ limit: 10, cursor: '' }), { jobs: [], nextCursor: null }, 'nothing sorts before the empty string')
      }),
    )

    it(
      'instances: heartbeat creates and replaces, instances(since) filters, leave forgets',
      withStore(async (s) => {
        const a: InstanceRecord = { id: 'host-a:1', startedAt: 100, heartbeatAt: 1_000, version: '0.1.0', running: 0 }
        const b: InstanceRecord = { id: 'host-b:🙂/x', startedAt: 200, heartbeatAt: 1_500, version: '0.1.0', running: 2, stateFormats: [1, 2] }
        assert.deepEqual(await s.instances(0), [])
        await s.heartbeat(a)
        await s.heartbeat(b)
        const byId = (list: readonly InstanceRecord[]): InstanceRecord[] => [...list].sort((x, y) => (x.id < y.id ? -1 : 1))
        assert.deepEqual(byId(await s.instances(0)), [a, b])
        assert.deepEqual(await s.instances(1_200), [b])
        assert.deepEqual(await s.instances(1_500), [b], 'a heartbeat at `since` counts')
        const a2 = { ...a, heartbeatAt: 2_000, running: 3 }
        await s.heartbeat(a2)
        assert.deepEqual(byId(await s.instances(1_200)), [a2, b])
        // The same id from a build that does not advertise its state formats: none are left.
        const { stateFormats: _, ...bOlder } = { ...b, startedAt: 300, heartbeatAt: 1_600 }
        await s.heartbeat(bOlder)
        assert.deepEqual(byId(await s.instances(1_200)), [a2, bOlder])
        await s.heartbeat(b)
        await s.leave(b.id)
        await s.leave('never-seen')
        assert.deepEqual(await s.instances(0), [a2])
        await s.leave(a.id)
        assert.deepEqual(await s.instances(0), [])
      }),
    )

    it(
      "subscribe fires after this process's own changes; unsubscribe stops it",
      withStore(async (s) => {
        const calls = new Calls()
        const unsubscribe = s.subscribe(calls.listener)
        const change = async (what: string, op: () => Promise<unknown>): Promise<void> => {
          const fired = calls.next(what)
          await op()
          await fired
        }
        let job = queuedJob()
        await change('insert', () => s.insert(job, 10))
        await change('claim', async () => {
          job = (await s.claim('i-1', 2_000, 100)) as JobRecord
        })
        await change('renew', () => s.renew(job.id, job.token, 2_010, 100, { p: 1 }))
        await change('requestCancel', () => s.requestCancel(job.id, 2_020))
        await change('release', () => s.release(job.id, job.token, 2_030))
        await change('claim again', async () => {
          job = (await s.claim('i-1', 2_040, 10)) as JobRecord
        })
        await change('rescue', () => s.rescue(5_000))
        await change('finish', () => s.finish(job.id, null, 'cancelled', {}, 5_010))
        await change('purge', () => s.purge(6_000))
        assert.ok(calls.count >= 9)
        unsubscribe()
        const before = calls.count
        const other = new Calls()
        s.subscribe(other.listener)
        const fired = other.next('insert after unsubscribe')
        await s.insert(queuedJob(), 10)
        await fired
        assert.equal(calls.count, before, 'an unsubscribed listener is not called')
      }),
    )

    it(
      "data is the store's own copy: changing the caller's objects later changes nothing",
      withStore(async (s) => {
        const data = { list: [1, 2], nested: { a: 'x' } }
        const job = await put(s, queuedJob({ data }))
        data.list.push(3)
        data.nested.a = 'changed'
        const got = (await s.get(job.id)) as JobRecord
        assert.deepEqual(got.data, { list: [1, 2], nested: { a: 'x' } })
        ;(got.data as { list: number[] }).list.push(4)
        assert.deepEqual(((await s.get(job.id)) as JobRecord).data, { list: [1, 2], nested: { a: 'x' } })
        const claimed = (await s.claim('i-1', 2_000, 100)) as JobRecord
        const progress = { done: [1] }
        await s.renew(job.id, claimed.token, 2_010, 100, progress)
        progress.done.push(2)
        assert.deepEqual(((await s.get(job.id)) as JobRecord).data, { done: [1] })
      }),
    )

    it(
      'honours an aborted signal and writes nothing',
      withStore(async (s) => {
        const job = await put(s, queuedJob())
        const signal = AbortSignal.abort()
        const calls: Array<Promise<unknown>> = [
          s.insert(queuedJob(), 10, { signal }),
          s.get(job.id, { signal }),
          s.byIdempotencyKey('s-one', 'k', { signal }),
          s.list({ limit: 1 }, { signal }),
          s.active({ signal }),
          s.claim('i-1', 2_000, 100, { signal }),
          s.finish(job.id, null, 'cancelled', {}, 2_000, { signal }),
          s.rescue(2_000, { signal }),
          s.deadlinePassed(2_000, 1, { signal }),
          s.purge(10_000, { signal }),
          s.heartbeat({ id: 'i', startedAt: 0, heartbeatAt: 0, version: 'v', running: 0 }, { signal }),
          s.instances(0, { signal }),
        ]
        for (const call of calls) await assert.rejects(call, { name: 'AbortError' })
        assert.deepEqual(await allJobs(s), [job])
        assert.deepEqual(await s.instances(0), [])
      }),
    )

    it('close is idempotent and later calls fail', async () => {
      const fixture = await makeJobStore()
      const s = await fixture.open()
      try {
        const job = await put(s, queuedJob())
        await s.close()
        await s.close()
        const calls: Array<Promise<unknown>> = [
          s.insert(queuedJob(), 10),
          s.get(job.id),
          s.byIdempotencyKey('s-one', 'k'),
          s.list({ limit: 1 }),
          s.active(),
          s.claim('i-1', 2_000, 100),
          s.renew(job.id, 1, 2_000, 100, {}),
          s.finish(job.id, null, 'cancelled', {}, 2_000),
          s.requestCancel(job.id, 2_000),
          s.release(job.id, 1, 2_000),
          s.rescue(2_000),
          s.deadlinePassed(2_000, 1),
          s.purge(10_000),
          s.heartbeat({ id: 'i', startedAt: 0, heartbeatAt: 0, version: 'v', running: 0 }),
          s.instances(0),
          s.leave('i'),
        ]
        for (const call of calls) await assert.rejects(call, InvalidUsageError)
      } finally {
        await fixture.destroy()
      }
    })

    stateTable(makeJobStore)
  })
}

type Op = 'claim' | 'renew' | 'finish(token)' | 'finish(null)' | 'requestCancel' | 'release' | 'rescue'
const OPS: readonly Op[] = ['claim', 'renew', 'finish(token)', 'finish(null)', 'requestCancel', 'release', 'rescue']
type From = 'queued' | 'queued after a release' | 'running' | FinalJobStatus

/**
 * The port's state table, cell by cell: every operation from every state, with what it must
 * return and leave behind (null: refused, the job unchanged).
 */
function stateTable(makeJobStore: MakeJobStore): void {
  const NOW = 10_000
  const LEASE = 100
  const after = (job: JobRecord, op: Op): JobRecord | null => {
    const running = job.status === 'running'
    const queued = job.status === 'queued'
    switch (op) {
      case 'claim':
        return queued ? { ...job, status: 'running', owner: 'i-9', attempt: job.attempt + 1, token: job.token + 1, leaseExpiresAt: NOW + LEASE, cancelRequested: false, updatedAt: NOW } : null
      case 'renew':
        return running ? { ...job, leaseExpiresAt: NOW + LEASE, data: { renewed: true }, updatedAt: NOW } : null
      case 'finish(token)':
        return running ? { ...job, status: 'failed', owner: null, leaseExpiresAt: null, data: { finished: true }, updatedAt: NOW, finishedAt: NOW } : null
      case 'finish(null)':
        return queued ? { ...job, status: 'cancelled', owner: null, leaseExpiresAt: null, data: { finished: true }, updatedAt: NOW, finishedAt: NOW } : null
      case 'requestCancel':
        return running ? { ...job, cancelRequested: true, updatedAt: NOW } : null
      case 'release':
      case 'rescue':
        return running ? { ...job, status: 'queued', owner: null, leaseExpiresAt: null, updatedAt: NOW } : null
    }
  }
  const apply = async (s: JobStore, job: JobRecord, op: Op): Promise<JobRecord | null> => {
    switch (op) {
      case 'claim':
        return s.claim('i-9', NOW, LEASE)
      case 'renew':
        return s.renew(job.id, job.token, NOW, LEASE, { renewed: true })
      case 'finish(token)':
        return s.finish(job.id, job.token, 'failed', { finished: true }, NOW)
      case 'finish(null)':
        return s.finish(job.id, null, 'cancelled', { finished: true }, NOW)
      case 'requestCancel':
        return s.requestCancel(job.id, NOW)
      case 'release':
        return s.release(job.id, job.token, NOW)
      case 'rescue':
        return (await s.rescue(NOW)).find((j) => j.id === job.id) ?? null
    }
  }
  /** One job in state `from`, alone in its store (so `claim` and `rescue` can only touch it). */
  const make = async (s: JobStore, from: From): Promise<JobRecord> => {
    const job = await put(s, queuedJob({ deadlineAt: 50_000 }))
    if (from === 'queued') return job
    const claimed = (await s.claim('i-1', 1_000, 500)) as JobRecord // lease to 1500, expired at NOW
    if (from === 'running') return claimed
    if (from === 'queued after a release') return (await s.release(job.id, claimed.token, 1_100)) as JobRecord
    return (await s.finish(job.id, claimed.token, from, { outcome: from }, 1_200)) as JobRecord
  }
  const froms: readonly From[] = ['queued', 'queued after a release', 'running', ...FINAL_STATUSES]
  describe('the state table, every operation from every state', () => {
    for (const from of froms) {
      it(`from ${from}`, async () => {
        const fixture = await makeJobStore()
        const s = await fixture.open()
        try {
          for (const op of OPS) {
            const job = await make(s, from)
            const want = after(job, op)
            assert.deepEqual(await apply(s, job, op), want, `${op} from ${from}`)
            assert.deepEqual(await s.get(job.id), want ?? job, `${op} from ${from}: the job after`)
            // Clear the stage for the next operation: only final jobs stay, and they are out of reach.
            const now = (await s.get(job.id)) as JobRecord
            if (now.status === 'queued') await s.finish(job.id, null, 'cancelled', {}, NOW)
            if (now.status === 'running') await s.finish(job.id, now.token, 'cancelled', {}, NOW)
          }
          const statuses = new Set<JobStatus>((await allJobs(s)).map((j) => j.status))
          assert.ok(!statuses.has('queued') && !statuses.has('running'))
        } finally {
          await s.close()
          await fixture.destroy()
        }
      })
    }
  })
}
