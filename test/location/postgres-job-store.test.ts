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

  it("an older build's heartbeat on a row that advertised state formats (its instance id restarted with that build) leaves none advertised", async () => {
    const url = await server.schemaUrl()
    const store = await PostgresJobStore.open({ connectionString: url })
    const older = new pg.Client({ connectionString: url })
    await older.connect()
    try {
      await store.heartbeat({ id: 'a', startedAt: 100, heartbeatAt: 1_000, version: '1', running: 0, stateFormats: [1, 2] })
      assert.deepEqual((await store.instances(0))[0]?.stateFormats, [1, 2])
      // The statement of a build from before state formats, word for word: it leaves the new columns alone.
      await older.query(
        `INSERT INTO compactd_instances (id, started_at, heartbeat_at, version, running) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, version = excluded.version, running = excluded.running`,
        ['a', 200, 2_000, '0', 0],
      )
      assert.deepEqual(await store.instances(0), [{ id: 'a', startedAt: 200, heartbeatAt: 2_000, version: '0', running: 0 }])
    } finally {
      await older.end()
      await store.close()
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

  it('a session the server ends while a call holds it (a restart, a failover) fails that call, not the process; the next call reconnects', async () => {
    const url = await server.schemaUrl()
    const store = await PostgresJobStore.open({ connectionString: url })
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      await put(store, queuedJob())
      // The insert lock held elsewhere: the next insert waits for it on a checked-out session.
      const oid = Number((await admin.query<{ oid: string }>("SELECT 'compactd_jobs'::regclass::oid::bigint AS oid")).rows[0]?.oid)
      await admin.query('SELECT pg_advisory_lock($1, $2)', [0x636f6d70, oid | 0])
      // The server's answer to the statement: it did not run (its transaction went with the session).
      const insert = assert.rejects(store.insert(queuedJob(), 1_000), { name: 'LocationError', kind: 'determinate' })
      let waiting: number | undefined
      for (let i = 0; i < 200 && waiting === undefined; i++) {
        const { rows } = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'")
        waiting = rows[0]?.pid
        if (waiting === undefined) await new Promise((resolve) => setTimeout(resolve, 25))
      }
      assert.ok(waiting !== undefined, 'the insert waits for the lock')
      // What a server restart does to each session: FATAL 57P01, then the socket closes.
      await admin.query('SELECT pg_terminate_backend($1)', [waiting])
      await insert
      await admin.query('SELECT pg_advisory_unlock_all()')
      await put(store, queuedJob())
      assert.equal((await store.active()).queued, 2)
    } finally {
      await admin.end()
      await store.close()
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
