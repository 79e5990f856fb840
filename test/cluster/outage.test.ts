/**
 * Two instances on one real PostgreSQL and one s3rver, through an outage of each store in turn:
 * PostgreSQL stopped at once (`pg_ctl stop -m immediate`, every backend gone) for longer than a
 * lease and the instance list's heartbeat window, started again on the same port and data, then
 * stopped cleanly (`-m fast`) and started again; then s3rver killed and started again on the same
 * port and directory. Writers append to their shards all along; a multi-chunk compaction runs when
 * each store drops, and one is submitted while S3 is away.
 *
 * While a store is down: `/healthz` answers 200, `/readyz` 503 naming the failed check, `/metrics`
 * scrapes; requests that need the store answer 503 STORAGE_ERROR within seconds; what needs only the
 * other store still works; an instance that starts then stops start-up with one line naming the store.
 * Once it is back, without restarting anything: `/readyz` 200, writes, reads, since moves and new
 * compactions work, the compactions the outage caught succeed on a later attempt, every instance
 * sees both in `/v1/instances`, each job store LISTENs again. At the end every acknowledged write
 * is there, and every shard reads as the model says at every asOf on both instances.
 *
 * A write that failed may still have landed (its answer was lost with the store): its writer sends
 * the same batch again until it is answered 201 (it had not) or 409 UPPER_MISMATCH at its own upper
 * (it had), and the model counts it then. Each shard has one writer, so that answer is certain.
 *
 * OUTAGE_DEBUG=1 prints both instances' logs at the end. Skipped with DATABASE_URL (a PostgreSQL
 * this test cannot stop).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { bigShard, eventually, snapshotsOf, startCluster, type Cluster, type HttpAnswer, type Instance, type Json } from '../support/cluster.js'
import { expected, valType, type ClusterModelShard, type Row } from '../model/shard-model.js'

const LEASE_MS = 3_000
/** Most time a request needing a store that is down may take to fail (retries and backoff included). */
const FAIL_FAST_MS = 10_000
/** Bound on recovering once the store is back (the LISTEN connection's backoff is at most 10 s). */
const RECOVER_MS = 30_000

interface CompactionJson extends Json {
  id: string
  status: string
  attempt: number
  instance: string | null
  error?: { code: string; message: string }
  progress: { chunksApplied: number; chunksTotal: number }
}

type ModelShard = ClusterModelShard

/** What a writer saw, for the assertions. */
interface Tally {
  acked: number
  unavailable: number
  /** Longest time a 503 took to come back (ms). */
  slowestFailureMs: number
  /** Answers other than 201, 503 STORAGE_ERROR and the 409 of a batch that had landed. */
  unexpected: string[]
  /** The last answer that was not an acknowledgement. */
  last: string
}

/**
 * Appends one-tick batches to `m` through `inst` until `stop()`; a batch that failed is sent again
 * until its outcome is known. Paced (a write every `paceMs`), so an outage is not a busy loop.
 */
function writer(cluster: Cluster, inst: Instance, m: ModelShard, seed: number, paceMs = 50): { tally: Tally; stop(): Promise<void> } {
  const tally: Tally = { acked: 0, unavailable: 0, slowestFailureMs: 0, unexpected: [], last: '' }
  let stopping = false
  let n = seed
  const loop = (async () => {
    while (!stopping) {
      const lower = m.upper
      const upper = lower + 1n
      const rows: Row[] = [0, 1, 2].map((i) => ({ key: `k${(n + i) % 7}`, val: { a: (n * 3 + i) % 4 }, time: lower, diff: BigInt(1 + ((n + i) % 2)) }))
      n++
      const body = { lower: [Number(lower)], upper: [Number(upper)], updates: rows.map((r) => ({ key: r.key, val: r.val, time: Number(r.time), diff: Number(r.diff) })) }
      // The same batch until its outcome is known.
      for (;;) {
        const started = Date.now()
        let res: HttpAnswer
        try {
          res = await cluster.request(inst, 'POST', `/v1/shards/${m.id}/batches`, body)
        } catch (err) {
          tally.unexpected.push(`no answer: ${err instanceof Error ? err.message : String(err)}`)
          break
        }
        const landed = res.status === 201 || (res.status === 409 && res.body.code === 'UPPER_MISMATCH' && JSON.stringify(res.body.currentUpper) === JSON.stringify([Number(upper)]))
        if (landed) {
          m.rows.push(...rows)
          m.upper = upper
          tally.acked++
          break
        }
        tally.last = `${res.status} ${JSON.stringify(res.body)}`
        if (res.status === 503 && res.body.code === 'STORAGE_ERROR') {
          tally.unavailable++
          tally.slowestFailureMs = Math.max(tally.slowestFailureMs, Date.now() - started)
        } else {
          tally.unexpected.push(`${res.status} ${JSON.stringify(res.body)}`)
        }
        if (stopping) {
          tally.unexpected.push(`stopped before the outcome of [${lower}, ${upper}) was known`)
          break
        }
        await pause(paceMs)
      }
      await pause(paceMs)
    }
  })()
  return {
    tally,
    async stop() {
      stopping = true
      await loop
    },
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('a cluster through PostgreSQL and S3 outages', { skip: process.env['DATABASE_URL'] ? 'needs a PostgreSQL of its own to stop (DATABASE_URL is set)' : false }, () => {
  let cluster: Cluster
  let a: Instance
  let b: Instance
  const shards: ModelShard[] = []
  before(async () => {
    cluster = await startCluster({
      ids: ['a', 'b'],
      configs: {
        // Writer maintenance always skipped: the only jobs are the test's.
        persist_compaction_heuristic_min_inputs: 1_000_000,
        persist_compaction_heuristic_min_parts: 1_000_000,
        persist_compaction_heuristic_min_updates: 1_000_000_000,
        // Tiny parts in many chunks: a compaction runs for seconds, applying chunk after chunk.
        persist_blob_target_size: 1024,
        persist_compaction_memory_bound_bytes: 4096,
        // Every batch in blob storage, so reads need S3.
        persist_inline_writes_single_max_bytes: 0,
        compaction_lease_timeout: `${LEASE_MS / 1000}s`,
        compaction_idle_sweep_interval: '0s',
      },
    })
    ;[a, b] = cluster.instances as [Instance, Instance]
    for (const inst of [a, b]) {
      const created = await cluster.call(inst, 'POST', '/v1/shards', 201, { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: valType([]) })
      shards.push({ id: String(created.shardId), since: 0n, upper: 0n, rows: [], fields: [] })
    }
  })
  after(async () => {
    for (const inst of cluster?.instances ?? []) if (process.env['OUTAGE_DEBUG']) console.log(`--- ${inst.id} stderr:\n${inst.process?.stderr()}\n--- stdout:\n${inst.process?.lines().map((l) => JSON.stringify(l)).join('\n')}`)
    await cluster?.close()
  })

  const compaction = async (inst: Instance, id: string): Promise<CompactionJson> => (await cluster.call(inst, 'GET', `/v1/compactions/${id}`, 200)) as CompactionJson

  /** Every snapshot of `m` from since (at most `span` asOfs) on `inst` is the model's. */
  const checkModel = async (inst: Instance, m: ModelShard, where: string, span = 40n): Promise<void> => {
    for (let asOf = m.since; asOf < m.upper && asOf < m.since + span; asOf++) {
      const body = (await cluster.call(inst, 'GET', `/v1/shards/${m.id}/snapshot?asOf=${asOf}`, 200)) as { updates: Array<{ key: string; val: { a: number }; time: number; diff: number }> }
      const got = body.updates.map((u) => JSON.stringify([u.key, { a: u.val.a }, u.diff])).sort()
      assert.deepEqual(got, expected(m, asOf), `${where}: snapshot of ${m.id} at ${asOf} on ${inst.id}`)
    }
  }

  /** Waits until `/readyz` of `inst` answers `status`; the answer. */
  const readyz = (inst: Instance, status: 200 | 503, timeoutMs = RECOVER_MS): Promise<HttpAnswer> =>
    eventually(`/readyz of ${inst.id} answers ${status}`, async () => {
      const res = await cluster.request(inst, 'GET', '/readyz')
      return res.status === status ? res : undefined
    }, timeoutMs)

  /** The control plane while a store is down: healthz, readyz naming `failed`, metrics. */
  const controlPlaneDown = async (inst: Instance, failed: 'blob' | 'consensus', other: 'blob' | 'consensus'): Promise<void> => {
    assert.equal((await cluster.request(inst, 'GET', '/healthz')).status, 200)
    const ready = await readyz(inst, 503, FAIL_FAST_MS)
    const checks = ready.body.checks as Record<string, string>
    assert.notEqual(checks[failed], 'ok', JSON.stringify(ready.body))
    assert.equal(checks[other], 'ok', JSON.stringify(ready.body))
    const metrics = await fetch(`${inst.url}/metrics`, { signal: AbortSignal.timeout(FAIL_FAST_MS) })
    assert.equal(metrics.status, 200)
    assert.match(await metrics.text(), /persist_compaction_started/)
  }

  /** `method path` on `inst` answers 503 STORAGE_ERROR, within FAIL_FAST_MS. */
  const failsFast = async (inst: Instance, method: string, path: string, body?: unknown): Promise<void> => {
    const started = Date.now()
    const res = await cluster.request(inst, method, path, body)
    const ms = Date.now() - started
    assert.deepEqual([res.status, res.body.code], [503, 'STORAGE_ERROR'], `${method} ${path} on ${inst.id}: ${JSON.stringify(res.body)}`)
    assert.ok(ms < FAIL_FAST_MS, `${method} ${path} on ${inst.id} took ${ms} ms to fail`)
    slowestRefusalMs = Math.max(slowestRefusalMs, ms)
  }
  let slowestRefusalMs = 0

  /** Starting one more instance now stops start-up with one line naming `store`. */
  const startupRefused = async (store: RegExp): Promise<void> => {
    const extra = cluster.startExtra('c')
    const { code } = await extra.exited()
    assert.equal(code, 1, extra.stderr())
    const lines = extra.stderr().trim().split('\n')
    assert.equal(lines.length, 1, extra.stderr())
    assert.match(lines[0] ?? '', /^compactd: failed to start: /)
    assert.match(lines[0] ?? '', store)
  }

  /**
   * A major compaction of a new big shard, submitted on `a`, running with a chunk applied and chunks
   * left, and held there: S3 is frozen (the compaction reads and writes parts), so it cannot end
   * before the outage that the caller starts (then `cluster.s3.thaw()` if S3 is not the one to go).
   * It may end between being seen running and the freeze: then S3 thaws and another is tried.
   */
  const runningCompaction = async (): Promise<{ id: string; shardId: string; before: Record<number, unknown> }> => {
    for (let tries = 1; ; tries++) {
      const shardId = await bigShard(cluster, [a, b], 16, 500)
      const before = await snapshotsOf(cluster, b, shardId, [0, 5, 10, 15])
      const submitted = (await cluster.call(a, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true })) as CompactionJson
      const seen = await eventually('the compaction runs and applies a chunk, or ends', async () => {
        const c = await compaction(a, submitted.id)
        if (c.status !== 'queued' && c.status !== 'running') return c
        return c.status === 'running' && c.progress.chunksApplied > 0 ? c : undefined
      })
      if (seen.status === 'running') {
        cluster.s3.freeze()
        if ((await compaction(a, submitted.id)).status === 'running') return { id: submitted.id, shardId, before }
        cluster.s3.thaw()
      }
      assert.ok(tries < 5, `five compactions in a row ended before they could be held (the last: ${JSON.stringify(seen)})`)
    }
  }

  /** After the outage: the compaction caught by it ends, and the shard reads as before. */
  const compactionSettles = async (caught: { id: string; shardId: string; before: Record<number, unknown> }): Promise<CompactionJson> => {
    const final = await eventually(
      'the compaction caught by the outage ends',
      async () => {
        const seen = await compaction(b, caught.id)
        return seen.status === 'running' || seen.status === 'queued' ? undefined : seen
      },
      RECOVER_MS + 2 * LEASE_MS,
    )
    for (const inst of [a, b]) assert.deepEqual(await snapshotsOf(cluster, inst, caught.shardId, [0, 5, 10, 15]), caught.before, `snapshots of ${caught.shardId} on ${inst.id}`)
    return final
  }

  /** Everything works again on both instances. */
  const recovered = async (what: string, writers: ReadonlyArray<{ tally: Tally }>): Promise<void> => {
    const back = Date.now()
    for (const inst of [a, b]) await readyz(inst, 200)
    console.log(`${what} back: /readyz 200 on both after ${Date.now() - back} ms`)
    const acked = writers.map((w) => w.tally.acked)
    await eventually(`the writers append again after the ${what} outage`, async () => {
      if (writers.every((w, i) => w.tally.acked >= (acked[i] ?? 0) + 3)) return true
      throw new Error(`acked ${writers.map((w) => w.tally.acked).join()}; last answers: ${writers.map((w) => w.tally.last).join(' | ')}`)
    }, RECOVER_MS)
    // Both instances see both (heartbeats resumed) from either.
    for (const inst of [a, b]) {
      await eventually(`${inst.id} lists both instances`, async () => {
        const { instances } = (await cluster.call(inst, 'GET', '/v1/instances', 200)) as { instances: Array<{ id: string }> }
        return instances.map((i) => i.id).sort().join() === 'a,b' ? true : undefined
      }, RECOVER_MS)
    }
    // A since move, and a compaction run to its end, through either instance.
    for (const [i, inst] of [a, b].entries()) {
      const m = shards[i] as ModelShard
      const since = m.since + 2n < m.upper ? m.since + 2n : m.since
      await cluster.call(inst, 'POST', `/v1/shards/${m.id}/since`, 200, { since: [Number(since)] })
      m.since = since
      const done = (await cluster.call(inst, 'POST', `/v1/shards/${m.id}/compactions`, 200, { major: true, wait: true })) as CompactionJson
      assert.ok(['succeeded', 'not_applied'].includes(done.status), `a compaction after the ${what} outage: ${JSON.stringify(done)}`)
    }
  }

  /** Once an outage is over: no writer saw anything but successes and quick refusals, and every shard reads as its model. */
  const afterOutage = async (writers: readonly ReturnType<typeof writer>[], label: string, where: string): Promise<void> => {
    for (const w of writers) {
      assert.deepEqual(w.tally.unexpected, [])
      assert.ok(w.tally.slowestFailureMs < FAIL_FAST_MS, `a refused write took ${w.tally.slowestFailureMs} ms`)
    }
    console.log(`${label}: writes acknowledged ${writers.map((w) => w.tally.acked).join(', ')}, refused ${writers.map((w) => w.tally.unavailable).join(', ')}, slowest refusal ${Math.max(...writers.map((w) => w.tally.slowestFailureMs))} ms`)
    for (const inst of [a, b]) for (const m of shards) await checkModel(inst, m, where)
  }

  it('PostgreSQL stops at once (then cleanly) and comes back: 503s meanwhile, then everything recovers without a restart', { timeout: 150_000 }, async () => {
    const writers = [writer(cluster, a, shards[0] as ModelShard, 1), writer(cluster, b, shards[1] as ModelShard, 2)]
    try {
      await eventually('the writers append', async () => (writers.every((w) => w.tally.acked >= 3) ? true : undefined))
      const caught = await runningCompaction()

      await cluster.pg.down('immediate')
      cluster.s3.thaw()
      await controlPlaneDown(a, 'consensus', 'blob')
      await controlPlaneDown(b, 'consensus', 'blob')
      await failsFast(a, 'GET', `/v1/shards/${(shards[0] as ModelShard).id}`)
      await failsFast(b, 'POST', `/v1/shards/${(shards[1] as ModelShard).id}/compactions`, { major: true })
      await failsFast(b, 'GET', `/v1/compactions/${caught.id}`)
      await failsFast(a, 'GET', '/v1/compactions')
      await eventually('both writers are refused', async () => (writers.every((w) => w.tally.unavailable > 0) ? true : undefined), FAIL_FAST_MS)
      await startupRefused(/consensus store URL .*cannot be opened/)
      // A long outage: past the caught compaction's lease and the 6 s an instance stays listed
      // without a heartbeat (about 30 paced refusals of each writer).
      await eventually('the writers are refused for a while', async () => (writers.every((w) => w.tally.unavailable >= 30) ? true : undefined))

      await cluster.pg.up()
      await recovered('PostgreSQL', writers)
      // Its owner could neither apply nor record: its lease lapsed, and it was rescued.
      const final = await compactionSettles(caught)
      assert.deepEqual([final.status, final.attempt > 1], ['succeeded', true], JSON.stringify(final))

      // Each instance's job store LISTENs again (a new connection after the restart).
      await eventually('both job stores LISTEN again', async () => {
        const client = new pg.Client({ connectionString: cluster.pg.url })
        await client.connect()
        try {
          const { rows } = await client.query<{ n: number }>("SELECT count(*)::integer AS n FROM pg_stat_activity WHERE application_name = 'compactd-jobs-listen' AND query LIKE 'LISTEN%'")
          return rows[0]?.n === 2 ? true : undefined
        } finally {
          await client.end()
        }
      }, RECOVER_MS)

      // A clean restart too (pg_ctl stop -m fast: every session is told 57P01, then the server stops).
      await cluster.pg.down('fast')
      for (const inst of [a, b]) await readyz(inst, 503, FAIL_FAST_MS)
      await cluster.pg.up()
      await recovered('PostgreSQL (fast stop)', writers)
      console.log(`PostgreSQL outages: slowest 503 of a request needing it ${slowestRefusalMs} ms`)
    } finally {
      for (const w of writers) await w.stop()
    }
    await afterOutage(writers, 'PostgreSQL outages', 'after the PostgreSQL outage')
  })

  it('S3 stops at once and comes back: what needs blobs answers 503 meanwhile, the rest works; then everything recovers', { timeout: 150_000 }, async () => {
    const writers = [writer(cluster, a, shards[0] as ModelShard, 3), writer(cluster, b, shards[1] as ModelShard, 4)]
    let submitted: CompactionJson
    try {
      await eventually('the writers append', async () => (writers.every((w) => w.tally.acked >= 3) ? true : undefined))
      const caught = await runningCompaction()

      await cluster.s3.down()
      await controlPlaneDown(a, 'blob', 'consensus')
      await controlPlaneDown(b, 'blob', 'consensus')
      const m0 = shards[0] as ModelShard
      await failsFast(a, 'GET', `/v1/shards/${m0.id}/snapshot?asOf=${m0.since}`)
      await eventually('both writers are refused', async () => (writers.every((w) => w.tally.unavailable > 0) ? true : undefined), FAIL_FAST_MS)
      // What needs only PostgreSQL works: the shard's state, a since move, a submission.
      await cluster.call(b, 'GET', `/v1/shards/${m0.id}`, 200)
      const since = m0.since + 1n < m0.upper ? m0.since + 1n : m0.since
      await cluster.call(b, 'POST', `/v1/shards/${m0.id}/since`, 200, { since: [Number(since)] })
      m0.since = since
      submitted = (await cluster.call(a, 'POST', `/v1/shards/${(shards[1] as ModelShard).id}/compactions`, 202, { major: true })) as CompactionJson
      await startupRefused(/blob store /)
      // Long enough for the compactions' first attempts to fail and pause (about 20 paced refusals).
      await eventually('the writers are refused for a while', async () => (writers.every((w) => w.tally.unavailable >= 20) ? true : undefined))

      await cluster.s3.up()
      await recovered('S3', writers)
      // Its attempt failed on S3 and gave the job up to the rescue; a later attempt finished it. So
      // did the one submitted during the outage.
      const final = await compactionSettles(caught)
      assert.deepEqual([final.status, final.attempt > 1], ['succeeded', true], JSON.stringify(final))
      const during = await eventually('the compaction submitted during the outage ends', async () => {
        const seen = await compaction(a, submitted.id)
        return seen.status === 'running' || seen.status === 'queued' ? undefined : seen
      }, RECOVER_MS + 2 * LEASE_MS)
      assert.equal(during.status, 'succeeded', JSON.stringify(during))
    } finally {
      for (const w of writers) await w.stop()
    }
    await afterOutage(writers, 'S3 outage', 'after the S3 outage')
  })
})
