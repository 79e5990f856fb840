/**
 * The JobStore contract under load: many clients of one store racing (claims, inserts against the
 * capacity and one idempotency key, fenced writes against each other), and a listing of 2,000 jobs
 * whose pages must stay correct and, where the adapter counts its reads, bounded.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FinalJobStatus, JobFilter, JobRecord, JobStore } from '../../src/location/job-store.js'
import { expected, type JobStoreFixture, type MakeJobStore, pages } from './job-store-contract.js'
import { FINAL_STATUSES, finalJob, put, queuedJob } from './job-store-records.js'

const CLIENTS = 8

export function jobStoreLoadContract(name: string, makeJobStore: MakeJobStore): void {
  /** `fn` with CLIENTS clients of one fresh store (the first is `clients[0]`). */
  const withClients = (fn: (clients: readonly JobStore[], fixture: JobStoreFixture) => Promise<void>) => async () => {
    const fixture = await makeJobStore()
    const clients: JobStore[] = []
    try {
      for (let i = 0; i < CLIENTS; i++) clients.push(await fixture.open())
      await fn(clients, fixture)
    } finally {
      for (const c of clients) await c.close()
      await fixture.destroy()
    }
  }

  describe(`JobStore contract under load: ${name}`, () => {
    it(
      'concurrent claimers on many clients: every job is claimed exactly once, by the owner the store records',
      withClients(async (clients) => {
        const jobs = 48
        const ids: string[] = []
        for (let i = 0; i < jobs; i++) ids.push((await put(clients[0] as JobStore, queuedJob())).id)
        const claims = await Promise.all(
          clients.map(async (c, k) => {
            const mine: JobRecord[] = []
            for (let i = 0; i <= jobs; i++) {
              const job = await c.claim(`i-${k}`, 2_000 + i, 60_000)
              if (job === null) return mine
              mine.push(job)
              // Half of them finish at once: writes interleave with the claims.
              if (i % 2 === 0) assert.equal((await c.finish(job.id, job.token, 'succeeded', { by: k }, 2_500))?.status, 'succeeded')
            }
            assert.fail(`client ${k} claimed more jobs than there are`)
          }),
        )
        const claimed = claims.flat().map((j) => j.id)
        assert.deepEqual([...claimed].sort(), ids, 'each job claimed exactly once')
        for (const [k, mine] of claims.entries()) {
          for (const job of mine) {
            assert.equal(job.owner, `i-${k}`)
            assert.equal(job.token, 1)
            const now = (await clients[(k + 1) % CLIENTS]?.get(job.id)) as JobRecord
            assert.ok(now.status === 'succeeded' || now.owner === `i-${k}`, `${job.id} is still i-${k}'s`)
          }
        }
        assert.equal(await clients[3]?.claim('i-x', 9_000, 100), null)
      }),
    )

    it(
      'concurrent inserts: the queue capacity holds exactly, and each idempotency key is inserted once',
      withClients(async (clients) => {
        const capacity = 12
        const results = await Promise.all(clients.flatMap((c) => Array.from({ length: 5 }, () => c.insert(queuedJob(), capacity))))
        assert.equal(results.filter((r) => r.kind === 'inserted').length, capacity)
        for (const r of results) if (r.kind === 'full') assert.equal(r.queued, capacity)
        assert.deepEqual(await clients[1]?.active(), { queued: capacity, running: 0 })
        for (let round = 0; round < 5; round++) {
          const key = `same-${round}`
          const tries = clients.map((c, k) => c.insert(k % 3 === 0 ? finalJob({ idempotencyKey: key }) : queuedJob({ idempotencyKey: key, shardId: 's-keys' }), 1_000))
          const other = (clients[0] as JobStore).insert(queuedJob({ idempotencyKey: key, shardId: 's-other' }), 1_000)
          const settled = await Promise.all(tries)
          assert.equal((await other).kind, 'inserted', 'the same key on another shard is another key')
          // Final-at-once tries use shard s-one, the others s-keys: one winner per shard.
          for (const shard of ['s-one', 's-keys']) {
            const mine = settled.filter((r) => r.kind !== 'full' && r.job.shardId === shard)
            const won = mine.filter((r) => r.kind === 'inserted')
            assert.equal(won.length, 1, `round ${round}, ${shard}: ${won.length} inserted`)
            const winner = won[0]?.kind === 'inserted' ? won[0].job : null
            for (const r of mine) assert.deepEqual(r.kind === 'full' ? null : r.job, winner)
            assert.deepEqual(await clients[5]?.byIdempotencyKey(shard, key), winner)
          }
        }
      }),
    )

    it(
      'fenced writes racing each other: exactly one of the competing finishes and releases lands',
      withClients(async (clients) => {
        const c0 = clients[0] as JobStore
        for (let round = 0; round < 6; round++) {
          await put(c0, queuedJob())
          const job = (await c0.claim('i-0', 1_000, 100)) as JobRecord
          const outcomes = await Promise.all(
            clients.map((c, k): Promise<JobRecord | null> => {
              if (k === 0) return c.release(job.id, job.token, 1_050)
              if (k < 3) return c.renew(job.id, job.token, 1_050, 100, { renewedBy: k })
              return c.finish(job.id, job.token, FINAL_STATUSES[k % FINAL_STATUSES.length] as FinalJobStatus, { by: k }, 1_050)
            }),
          )
          const ended = outcomes.flatMap((r, k) => (r !== null && (k === 0 || k >= 3) ? [{ k, r }] : []))
          assert.equal(ended.length, 1, `round ${round}: ${ended.length} of the finishes and releases landed`)
          const winner = ended[0] as { k: number; r: JobRecord }
          const now = await clients[2]?.get(job.id)
          assert.deepEqual(now, winner.r, 'nothing changed the job after the winner')
          if (winner.k === 0) assert.equal(now?.status, 'queued')
          else assert.deepEqual(now?.data, { by: winner.k })
          if (now?.status === 'queued') await c0.finish(job.id, null, 'cancelled', {}, 1_060)
        }
        // A renewal racing several rescuers of an expired lease: the job is rescued at most once,
        // and then only if the renewal lost.
        for (let round = 0; round < 6; round++) {
          await put(c0, queuedJob())
          const job = (await c0.claim('i-0', 1_000, 100)) as JobRecord
          const [renewed, ...rescues] = await Promise.all([c0.renew(job.id, job.token, 1_200, 1_000, {}), ...clients.slice(1).map((c) => c.rescue(1_150))])
          const rescued = rescues.flat().filter((j) => j.id === job.id)
          assert.ok(rescued.length <= 1, `round ${round}: rescued ${rescued.length} times`)
          assert.equal(renewed === null, rescued.length === 1, 'either the renewal or one rescue landed')
          const now = (await c0.get(job.id)) as JobRecord
          assert.equal(now.status, rescued.length === 1 ? 'queued' : 'running')
          if (now.status === 'queued') await c0.finish(job.id, null, 'cancelled', {}, 1_300)
          else await c0.finish(job.id, now.token, 'cancelled', {}, 1_300)
        }
      }),
    )

    it(
      '2,000 jobs: every filter pages through each job exactly once, and each page reads a bounded amount',
      withClients(async (clients, fixture) => {
        const store = clients[0] as JobStore
        const now = new Map<string, JobRecord>()
        for (let i = 0; i < 2_000; i++) {
          const over = { shardId: `s-${i % 4}`, source: i % 3 === 0 ? 'maintenance' : 'request' }
          const job = i % 40 === 0 ? queuedJob(over) : finalJob({ ...over, status: FINAL_STATUSES[i % FINAL_STATUSES.length] as FinalJobStatus })
          now.set(job.id, await put(store, job, 1_000))
        }
        for (let i = 0; i < 30; i++) {
          const job = (await store.claim('i-1', 2_000, 100)) as JobRecord
          now.set(job.id, i % 2 === 0 ? ((await store.finish(job.id, job.token, 'succeeded', { i }, 2_100)) as JobRecord) : job)
        }
        const jobs = [...now.values()]
        // Narrow filters first, each on a client that has listed nothing yet (an adapter may remember what it read).
        const filters: Array<Omit<JobFilter, 'cursor'>> = [
          { limit: 10, shardId: 's-nowhere' },
          { limit: 20, status: 'queued' },
          { limit: 20, status: 'running' },
          { limit: 10, shardId: 's-3', status: 'failed', source: 'request' },
          { limit: 40, source: 'maintenance', shardId: 's-1' },
          { limit: 100, status: 'succeeded' },
          { limit: 30, shardId: 's-2' },
          { limit: 50 },
          { limit: 500 },
        ]
        for (const [i, filter] of filters.entries()) {
          const listed = await pages(clients[(i + 1) % CLIENTS] as JobStore, filter, fixture)
          const { limit: _, ...only } = filter
          assert.deepEqual(
            listed.map((j) => j.id),
            expected(jobs, only),
            JSON.stringify(filter),
          )
          for (const j of listed) assert.deepEqual(j, now.get(j.id))
        }
      }),
    )
  })
}
