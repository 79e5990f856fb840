/**
 * One compactd on its default stores (file blob and file consensus under its data dir), SIGKILLed
 * while appends, compactions (the operator's and maintenance's), since moves and GC are in flight,
 * then started again on the same data dir, a few times over. After each start:
 * - every acknowledged append and since move is there (the shard's upper and since are at least
 *   what was acknowledged), and nothing beyond what was sent;
 * - every shard reads, at asOfs from its since to its upper, exactly what the appended batches hold
 *   (the model in test/model/shard-model.ts, over the batches below the upper: an append in flight
 *   at the kill may or may not have landed, and the upper says which);
 * and at the end, once the compactions the kills interrupted have been rescued and settled and GC
 * has run, the same reads hold, no blob on disk is left that the state does not reference, and no
 * state version below a shard's floor is left whole (a truncation cut short by a kill included).
 *
 * Seeded (printed; FC_SEED replays the workload and the kill points, which also depend on timing).
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { mulberry32 } from '../../src/core/prng.js'
import { expected, valType, type Row } from '../model/shard-model.js'
import { eventually } from '../support/cluster.js'
import { startMain, WAIT_MS, type ServerProcess } from '../support/server-process.js'

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`test/e2e/crash-file-stores.test.ts: FC_SEED=${SEED}`)

const ROUNDS = 4
const SHARDS = 2
/** Times per batch: batch i of a shard is [i·WIDTH, (i+1)·WIDTH). */
const WIDTH = 4

interface ModelShard {
  readonly id: string
  /** Rows of the batches known appended (below `upper`). */
  rows: Row[]
  upper: number
  since: number
  /** Rows of every batch sent, by its lower: an append in flight at a kill is resolved by the upper after the restart. */
  readonly sent: Map<number, Row[]>
  /** Highest since sent (acknowledged or not). */
  sinceSent: number
}

interface Answer {
  readonly status: number
  readonly body: Record<string, unknown>
}

describe('compactd on file stores, killed mid-work and restarted', () => {
  it(`keeps every acknowledged write and reads every shard as the model does (${ROUNDS} kills)`, { timeout: 600_000 }, async (t) => {
    const rand = mulberry32(SEED)
    const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
    const home = await mkdtemp(join(tmpdir(), 'compactd-crash-'))
    const dataDir = join(home, 'data')
    let server: ServerProcess | null = null
    // One hook, in this order: the server is gone before its data dir is removed. (Two hooks ran
    // the removal first, while the server still wrote its job store: ENOTEMPTY, and the server,
    // left running, kept the test process alive.)
    t.after(async () => {
      const last = server as ServerProcess | null
      last?.kill()
      await last?.exited().catch(() => undefined)
      await rm(home, { recursive: true, force: true })
    })
    let url = ''

    const start = async (): Promise<void> => {
      server = startMain([], {
        env: {
          HOME: home,
          NODE_NO_WARNINGS: '1',
          COMPACTD_HOST: '127.0.0.1',
          COMPACTD_PORT: '0',
          COMPACTD_DATA_DIR: dataDir,
          COMPACTD_WORKERS: '2',
          COMPACTD_GC_GRACE: '0s',
        },
      })
      url = String((await server.logLine('compactd listening')).address)
    }
    const request = async (method: string, path: string, body?: unknown): Promise<Answer> => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(WAIT_MS),
      })
      const text = await res.text()
      return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }
    }
    const call = async (method: string, path: string, status: number, body?: unknown): Promise<Record<string, unknown>> => {
      const res = await request(method, path, body)
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)} (seed ${SEED})`)
      return res.body
    }

    /** Every shard read at a few asOfs in [since, upper), checked against the model. */
    const checkAll = async (shards: readonly ModelShard[], where: string): Promise<void> => {
      for (const m of shards) {
        const asOfs = new Set([m.since, m.upper - 1, ...Array.from({ length: 3 }, () => int(m.since, m.upper - 1))])
        for (const asOf of [...asOfs].filter((a) => a >= m.since && a < m.upper)) {
          const body = (await call('GET', `/v1/shards/${m.id}/snapshot?asOf=${asOf}`, 200)) as { updates: { key: string; val: { a: number }; time: number; diff: number }[] }
          const got = body.updates.map((u) => JSON.stringify([u.key, { a: u.val.a }, u.diff])).sort()
          assert.deepEqual(got, expected({ rows: m.rows, fields: [] }, BigInt(asOf)), `${where}: ${m.id} at ${asOf} (seed ${SEED})`)
        }
      }
    }

    await start()
    await call('PATCH', '/v1/configs', 200, {
      // Parts in blob storage, and maintenance that compacts often, so kills land in both.
      persist_inline_writes_single_max_bytes: 0,
      persist_compaction_heuristic_min_inputs: 2,
      persist_compaction_heuristic_min_updates: 4,
      compaction_lease_timeout: '2s',
      // A killed process's read leases hold GC back until they expire: short ones, so the end can wait them out.
      persist_reader_lease_duration: '2s',
    })
    const shards: ModelShard[] = []
    for (let i = 0; i < SHARDS; i++) {
      const created = await call('POST', '/v1/shards', 201, { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: valType([]) })
      shards.push({ id: String(created.shardId), rows: [], upper: 0, since: 0, sent: new Map(), sinceSent: 0 })
    }

    for (let round = 0; round < ROUNDS; round++) {
      const where = `round ${round}`
      // Up to 60 appends a round: the shards pass several whole versions and truncations (every 64 versions).
      const killAfter = int(2, 60)
      let acked = 0
      let killed = false
      let kill: () => void = () => undefined
      const killing = new Promise<void>((resolve) => (kill = resolve))
      /** A request that may meet the kill: its failure to connect is expected then, and only then. */
      const attempt = async (method: string, path: string, body?: unknown): Promise<Answer | null> => {
        try {
          return await request(method, path, body)
        } catch (err) {
          if (killed) return null
          throw err
        }
      }

      const writer = async (m: ModelShard): Promise<void> => {
        while (!killed) {
          const lower = m.upper
          const rows: Row[] = Array.from({ length: int(0, 6) }, () => ({ key: `k${int(0, 5)}`, val: { a: int(0, 2) }, time: BigInt(lower + int(0, WIDTH - 1)), diff: BigInt(int(-2, 3)) }))
          m.sent.set(lower, rows)
          const updates = rows.map((r) => ({ key: r.key, val: r.val, time: Number(r.time), diff: Number(r.diff) }))
          const res = await attempt('POST', `/v1/shards/${m.id}/batches`, { lower: [lower], upper: [lower + WIDTH], updates })
          if (res === null) return
          assert.equal(res.status, 201, `${where}: append: ${JSON.stringify(res.body)} (seed ${SEED})`)
          m.rows.push(...rows)
          m.upper = lower + WIDTH
          if (++acked === killAfter) setTimeout(kill, int(0, 40))
        }
      }
      const operator = async (): Promise<void> => {
        while (!killed) {
          const m = shards[int(0, SHARDS - 1)] as ModelShard
          const r = rand()
          if (r < 0.5) {
            const res = await attempt('POST', `/v1/shards/${m.id}/compactions`, rand() < 0.5 ? { major: true } : {})
            if (res === null) return
            assert.ok(res.status < 500, `${where}: compaction: ${res.status} ${JSON.stringify(res.body)} (seed ${SEED})`)
          } else if (r < 0.8) {
            const since = Math.min(m.upper, m.since + int(0, WIDTH))
            m.sinceSent = Math.max(m.sinceSent, since)
            const res = await attempt('POST', `/v1/shards/${m.id}/since`, { since: [since] })
            if (res === null) return
            assert.equal(res.status, 200, `${where}: since: ${JSON.stringify(res.body)} (seed ${SEED})`)
            m.since = Math.max(m.since, since)
          } else {
            const res = await attempt('POST', `/v1/shards/${m.id}/gc`)
            if (res === null) return
            assert.equal(res.status, 200, `${where}: gc: ${JSON.stringify(res.body)} (seed ${SEED})`)
          }
        }
      }
      const work = Promise.all([...shards.map(writer), operator()])
      await Promise.race([killing, work.then(() => assert.fail(`${where}: the workload ended before the kill`))])
      killed = true
      server!.kill()
      await server!.exited()
      await work

      await start()
      for (const m of shards) {
        const state = (await call('GET', `/v1/shards/${m.id}`, 200)) as { since: number[]; upper: number[] }
        const [since = -1] = state.since
        const [upper = -1] = state.upper
        assert.ok(upper >= m.upper && upper <= m.upper + WIDTH, `${where}: ${m.id} upper ${upper}, acknowledged ${m.upper} (seed ${SEED})`)
        assert.ok(since >= m.since && since <= m.sinceSent, `${where}: ${m.id} since ${since}, acknowledged ${m.since}, sent at most ${m.sinceSent} (seed ${SEED})`)
        // The append in flight at the kill landed when the upper says so.
        if (upper > m.upper) m.rows.push(...(m.sent.get(m.upper) ?? []))
        m.upper = upper
        m.since = since
        m.sinceSent = since
      }
      await checkAll(shards, `${where}, after the restart`)
    }

    // The compactions the kills cut short are rescued (their leases expire) and settle.
    await eventually('every compaction to settle', async () => {
      const listed = (await call('GET', '/v1/compactions?limit=100', 200)) as { compactions: { status: string }[] }
      return listed.compactions.every((c) => c.status !== 'queued' && c.status !== 'running') ? true : undefined
    })
    await checkAll(shards, 'after the compactions settled')
    let last: { onDisk: string[]; referenced: string[] } | undefined
    for (const m of shards) {
      const root = join(dataDir, 'blob', m.id)
      // GC deletes a blob once a pass saw it unreferenced (by the head, or by a state a live read
      // lease holds) at least the grace (0 s) before: it takes two passes, after the dead
      // process's leases expired.
      await eventually(`GC to leave only what the state of ${m.id} references`, async () => {
        await call('POST', `/v1/shards/${m.id}/gc`, 200)
        const shard = (await call('GET', `/v1/shards/${m.id}`, 200)) as { trace: { batches: { batches: { parts: { key?: string }[] }[] }[] } }
        const referenced = shard.trace.batches.flatMap((sb) => sb.batches.flatMap((b) => b.parts.flatMap((p) => (p.key === undefined ? [] : [p.key])))).sort()
        const onDisk = (await readdir(root, { recursive: true, withFileTypes: true }))
          .filter((e) => e.isFile())
          .map((e) => relative(root, join(e.parentPath, e.name)))
          .sort()
        last = { onDisk, referenced }
        return JSON.stringify(onDisk) === JSON.stringify(referenced) ? true : undefined
      }).catch((err: unknown) => {
        throw new Error(`${String(err)}; on disk: ${JSON.stringify(last?.onDisk)}; referenced: ${JSON.stringify(last?.referenced)} (seed ${SEED})`)
      })
    }
    await checkAll(shards, 'after GC')
    // Consensus is bounded too: each shard keeps its live versions (at most 3 x KEEP_VERSIONS, 64)
    // and every version below its floor is an empty tombstone, a truncation the kill cut short included.
    for (const m of shards) {
      await call('POST', `/v1/shards/${m.id}/gc`, 200)
      const dir = join(dataDir, 'consensus', Buffer.from(m.id).toString('hex'))
      const floor = Math.max(0, ...(await readdir(join(dir, 'floor')).catch(() => [] as string[])).map(Number))
      const versions = (await readdir(dir)).filter((n) => /^[0-9]{20}$/.test(n)).map(Number)
      const whole: number[] = []
      for (const v of versions) if (v < floor && (await stat(join(dir, String(v).padStart(20, '0')))).size > 0) whole.push(v)
      assert.deepEqual(whole, [], `${m.id}: versions below the floor ${floor} still whole (seed ${SEED})`)
      assert.ok(versions.filter((v) => v >= floor).length <= 3 * 64, `${m.id}: ${versions.filter((v) => v >= floor).length} live versions (seed ${SEED})`)
    }
  })
})
