/** PostgresJobStore beyond the contract: processes sharing it, NOTIFY across instances, a LISTEN connection that drops. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { openJobStore } from '../../src/location/open.js'
import { PostgresJobStore } from '../../src/location/postgres-job-store.js'
import { PostgresListener } from '../../src/location/postgres-listener.js'
import { freePort } from '../support/free-port.js'
import { startPostgres, type PostgresServer } from '../support/postgres.js'
import { Calls } from './job-store-contract.js'
import { put, queuedJob } from './job-store-records.js'
import { claimsAcrossProcesses } from './job-store-processes.js'

let server: PostgresServer
before(async () => {
  server = await startPostgres()
})
after(async () => {
  await server.stop()
})

describe('PostgresJobStore', () => {
  claimsAcrossProcesses(() => server.schemaUrl())

  it('opens by the consensus URL; creating the tables from many instances at once is safe', async () => {
    const url = await server.schemaUrl()
    const stores = await Promise.all(Array.from({ length: 6 }, () => openJobStore(url)))
    try {
      assert.ok(stores.every((s) => s instanceof PostgresJobStore))
      const job = await put(stores[0] as PostgresJobStore, queuedJob())
      assert.deepEqual(await stores[5]?.get(job.id), job)
    } finally {
      await Promise.all(stores.map((s) => s.close()))
    }
  })

  it('an unreachable server is a determinate error at open', async () => {
    const url = `postgres://postgres@127.0.0.1:${await freePort()}/none`
    await assert.rejects(PostgresJobStore.open({ connectionString: url, connectTimeoutMs: 2_000 }), { name: 'LocationError', kind: 'determinate' })
  })

  it("subscribers hear other instances' changes through NOTIFY, and again after their LISTEN connection is terminated", async () => {
    const url = await server.schemaUrl()
    const errors: unknown[] = []
    const a = await PostgresJobStore.open({ connectionString: url, listenRetryMs: 20, onListenError: (err) => errors.push(err) })
    const b = await PostgresJobStore.open({ connectionString: url })
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      const calls = new Calls()
      let heard = calls.next('LISTEN in effect')
      a.subscribe(calls.listener)
      await heard
      heard = calls.next("b's insert")
      const job = await put(b, queuedJob())
      await heard
      heard = calls.next("b's claim")
      const claimed = await b.claim('i-b', 2_000, 100)
      await heard
      assert.equal(claimed?.id, job.id)

      // Kill a's LISTEN session: it reconnects (and tells its subscribers), then hears b again.
      heard = calls.next('LISTEN in effect again')
      const killed = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'compactd-jobs-listen' AND query LIKE 'LISTEN %'")
      assert.equal(killed.rowCount, 1)
      await heard
      assert.ok(errors.length >= 1, 'the lost connection was reported')
      heard = calls.next("b's finish")
      await b.finish(job.id, claimed?.token ?? -1, 'succeeded', {}, 2_100)
      await heard
    } finally {
      await admin.end()
      await a.close()
      await b.close()
    }
  })

  it('a LISTEN connection that cannot connect keeps retrying, reporting errors, without crashing; close stops it', async () => {
    const errors: unknown[] = []
    let wake: (() => void) | null = null
    const threeErrors = new Promise<void>((ok) => {
      wake = ok
    })
    const listener = new PostgresListener({
      connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
      channel: 'compactd_jobs_test',
      onNotify: () => assert.fail('nothing to hear'),
      onError: (err) => {
        errors.push(err)
        if (errors.length === 3) wake?.()
      },
      ownSessions: new Set(),
      firstRetryMs: 5,
      maxRetryMs: 20,
    })
    listener.start()
    await threeErrors
    await listener.close()
    const after = errors.length
    await listener.close()
    assert.ok(errors.every((e) => e instanceof Error && /ECONNREFUSED|connect/.test(e.message)), String(errors[0]))
    assert.equal(errors.length, after, 'no attempt after close')
  })
})
