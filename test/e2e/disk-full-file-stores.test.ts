/**
 * compactd on its default stores (file blob, file consensus, file job store under its data dir)
 * on a small tmpfs that fills up, as a production disk does:
 * - tight: a filler file leaves a few hundred KiB, and appends, compactions (the operator's and
 *   maintenance's), since moves, shard creations, snapshots and GC run until the writes themselves
 *   fill it, so writes fail part-way through their files;
 * - full: not a byte free; writes are refused (but for the room that compactions and GC give back);
 * - space back: the filler is deleted and everything works again without a restart;
 * - restart on a full disk: the server starts (reads work, writes are refused), then space comes back.
 * Throughout: every answer is a success or 507 INSUFFICIENT_STORAGE (never another 5xx); a refused
 * append or since move changed nothing; /healthz and /metrics answer; /readyz says the stores have
 * no space while they have none; and every shard reads exactly as the model of acknowledged writes
 * (test/model/shard-model.ts) says. Refused writes leave no temp file behind (checked before GC
 * could take one); at the end, once compactions settled (any that failed, for space) and GC ran,
 * no blob is left that the state does not reference.
 *
 * Needs root to mount the tmpfs; skips, saying why, where mounting is not permitted.
 * Seeded (printed; DF_SEED replays the workload, whose interleaving also depends on timing).
 */
import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { mulberry32 } from '../../src/core/prng.js'
import { expected, valType, type Row } from '../model/shard-model.js'
import { eventually } from '../support/cluster.js'
import { startMain, WAIT_MS, type ServerProcess } from '../support/server-process.js'
import { filesUnder, fill, freeBytes, mountTmpfs } from '../support/tmpfs.js'

const SEED = process.env.DF_SEED !== undefined ? Number(process.env.DF_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`test/e2e/disk-full-file-stores.test.ts: DF_SEED=${SEED}`)

const DISK_MIB = 24
const SHARDS = 3
/** Times per batch: batch i of a shard is [i·WIDTH, (i+1)·WIDTH). */
const WIDTH = 4
/** Operations each writer makes in the tight phase, and in the full one. */
const TIGHT_OPS = 30
const FULL_OPS = 6

interface ModelShard {
  readonly id: string
  /** Rows of the batches acknowledged (all below `upper`). */
  readonly rows: Row[]
  upper: number
  since: number
}

interface Answer {
  readonly status: number
  readonly body: Record<string, unknown>
}

describe('compactd on file stores on a disk that fills up', () => {
  it('refuses writes with 507, loses nothing, keeps answering, and recovers when space comes back', { timeout: 300_000 }, async (t) => {
    const rand = mulberry32(SEED)
    const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))
    const tmpfs = await mountTmpfs(DISK_MIB)
    if (typeof tmpfs === 'string') {
      t.skip(`cannot mount a size-limited tmpfs: ${tmpfs}`)
      return
    }
    const disk = tmpfs.dir
    let server: ServerProcess | null = null
    // NB: one hook, in order: the server gone, then its file system.
    t.after(async () => {
      server?.kill()
      await server?.exited().catch(() => undefined)
      await tmpfs.close()
    })
    const dataDir = join(disk, 'data')
    const filler = join(disk, 'filler')
    let url = ''

    const start = async (): Promise<void> => {
      server = startMain([], {
        env: {
          HOME: tmpdir(),
          NODE_NO_WARNINGS: '1',
          COMPACTD_HOST: '127.0.0.1',
          COMPACTD_PORT: '0',
          COMPACTD_DATA_DIR: dataDir,
          COMPACTD_WORKERS: '2',
          // NB: longer than any compaction here: compactions do not lease their inputs, and one
          // whose inputs another replaced and GC deleted meanwhile fails DATA_LOSS (docs/compaction.md).
          COMPACTD_GC_GRACE: '3s',
        },
      })
      url = String((await server.logLine('compactd listening')).address)
    }
    const stop = async (): Promise<void> => {
      server!.proc.kill('SIGTERM')
      const { code } = await server!.exited()
      assert.equal(code, 0, `the server stopped with ${code}: ${server!.stderr()}`)
    }
    const request = async (method: string, path: string, body?: unknown): Promise<Answer> => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(WAIT_MS),
      })
      const text = await res.text()
      let parsed: Record<string, unknown>
      try {
        parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>)
      } catch {
        parsed = { text }
      }
      return { status: res.status, body: parsed }
    }
    const call = async (method: string, path: string, status: number, body?: unknown): Promise<Record<string, unknown>> => {
      const res = await request(method, path, body)
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.body)} (seed ${SEED})`)
      return res.body
    }
    /** A write's answer: `ok` when it landed, or 507 INSUFFICIENT_STORAGE (the store's word, or a compaction that failed for it). */
    const storedOrFull = (what: string, res: Answer, ok: readonly number[]): boolean => {
      if (ok.includes(res.status)) return true
      const code = res.body.code ?? (res.body.error as { code?: unknown } | undefined)?.code
      assert.ok(res.status === 507 && code === 'INSUFFICIENT_STORAGE', `${what}: ${res.status} ${JSON.stringify(res.body)} (seed ${SEED})`)
      return false
    }
    const shardState = async (m: ModelShard): Promise<{ since: number; upper: number }> => {
      const state = (await call('GET', `/v1/shards/${m.id}`, 200)) as { since: number[]; upper: number[] }
      return { since: state.since[0] ?? -1, upper: state.upper[0] ?? -1 }
    }
    /** Every shard at a few asOfs in [since, upper), checked against the model. */
    const checkAll = async (shards: readonly ModelShard[], where: string): Promise<void> => {
      for (const m of shards) {
        const state = await shardState(m)
        assert.deepEqual(state, { since: m.since, upper: m.upper }, `${where}: ${m.id}'s since and upper (seed ${SEED})`)
        const asOfs = new Set([m.since, m.upper - 1, int(m.since, m.upper - 1)])
        for (const asOf of [...asOfs].filter((a) => a >= m.since && a < m.upper)) {
          const body = (await call('GET', `/v1/shards/${m.id}/snapshot?asOf=${asOf}`, 200)) as { updates: { key: string; val: { a: number }; diff: number }[] }
          const got = body.updates.map((u) => JSON.stringify([u.key, { a: u.val.a }, u.diff])).sort()
          assert.deepEqual(got, expected({ rows: m.rows, fields: [] }, BigInt(asOf)), `${where}: ${m.id} at ${asOf} (seed ${SEED})`)
        }
      }
    }
    const readiness = async (): Promise<Answer> => request('GET', '/readyz')

    await start()
    await call('PATCH', '/v1/configs', 200, {
      // Parts in blob storage, and maintenance that compacts often.
      persist_inline_writes_single_max_bytes: 0,
      persist_compaction_heuristic_min_inputs: 2,
      persist_compaction_heuristic_min_updates: 4,
      compaction_lease_timeout: '3s',
      persist_reader_lease_duration: '3s',
    })
    const shards: ModelShard[] = []
    for (let i = 0; i < SHARDS; i++) {
      const created = await call('POST', '/v1/shards', 201, { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: valType([]) })
      shards.push({ id: String(created.shardId), rows: [], upper: 0, since: 0 })
    }
    /** Random keys (no two parts compress alike) of 40 characters: parts of a few to tens of KiB. */
    const key = (): string => Array.from({ length: 5 }, () => int(0, 2 ** 31).toString(36).padStart(8, '0')).join('')

    /** One append of `m`, checked: landed and modelled, or refused and absent. */
    const append = async (m: ModelShard, where: string): Promise<boolean> => {
      const lower = m.upper
      const rows: Row[] = Array.from({ length: int(20, 400) }, () => ({ key: key(), val: { a: int(0, 3) }, time: BigInt(lower + int(0, WIDTH - 1)), diff: BigInt(int(-2, 3)) }))
      const updates = rows.map((r) => ({ key: r.key, val: r.val, time: Number(r.time), diff: Number(r.diff) }))
      const res = await request('POST', `/v1/shards/${m.id}/batches`, { lower: [lower], upper: [lower + WIDTH], updates })
      if (storedOrFull(`${where}: append to ${m.id}`, res, [201])) {
        m.rows.push(...rows)
        m.upper = lower + WIDTH
        return true
      }
      assert.equal((await shardState(m)).upper, lower, `${where}: a refused append to ${m.id} must change nothing (seed ${SEED})`)
      return false
    }
    const operate = async (m: ModelShard, where: string, counts: Record<string, number>): Promise<void> => {
      const r = rand()
      const tally = (what: string, ok: boolean): void => void (counts[`${what} ${ok ? 'ok' : 'full'}`] = (counts[`${what} ${ok ? 'ok' : 'full'}`] ?? 0) + 1)
      if (r < 0.35) {
        const wait = rand() < 0.5
        const res = await request('POST', `/v1/shards/${m.id}/compactions`, { wait, ...(rand() < 0.5 ? { major: true } : {}) })
        tally('compaction', storedOrFull(`${where}: compaction of ${m.id}`, res, wait ? [200] : [200, 202]))
      } else if (r < 0.6) {
        const since = Math.min(m.upper, m.since + int(0, WIDTH))
        const res = await request('POST', `/v1/shards/${m.id}/since`, { since: [since] })
        const ok = storedOrFull(`${where}: since of ${m.id}`, res, [200])
        if (ok) m.since = Math.max(m.since, since)
        else assert.equal((await shardState(m)).since, m.since, `${where}: a refused since move of ${m.id} must change nothing (seed ${SEED})`)
        tally('since', ok)
      } else if (r < 0.75) {
        // GC only frees space: it works on a full disk.
        await call('POST', `/v1/shards/${m.id}/gc`, 200)
        tally('gc', true)
      } else if (r < 0.85) {
        const res = await request('POST', '/v1/shards', { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: valType([]) })
        const ok = storedOrFull(`${where}: shard creation`, res, [201])
        if (ok) shards.push({ id: String(res.body.shardId), rows: [], upper: 0, since: 0 })
        tally('create', ok)
      } else {
        const asOf = int(m.since, Math.max(m.since, m.upper - 1))
        if (asOf < m.upper) {
          const body = (await call('GET', `/v1/shards/${m.id}/snapshot?asOf=${asOf}`, 200)) as { updates: { key: string; val: { a: number }; diff: number }[] }
          const got = body.updates.map((u) => JSON.stringify([u.key, { a: u.val.a }, u.diff])).sort()
          assert.deepEqual(got, expected({ rows: m.rows, fields: [] }, BigInt(asOf)), `${where}: ${m.id} at ${asOf} (seed ${SEED})`)
        }
        await call('GET', '/healthz', 200)
        await call('GET', '/metrics', 200)
      }
    }
    /** Each first shard's writer appends `ops` times while an operator does `ops` other things. */
    const workload = async (where: string, ops: number): Promise<Record<string, number>> => {
      const counts: Record<string, number> = {}
      const writers = shards.slice(0, SHARDS).map(async (m) => {
        for (let i = 0; i < ops; i++) {
          const ok = await append(m, where)
          counts[`append ${ok ? 'ok' : 'full'}`] = (counts[`append ${ok ? 'ok' : 'full'}`] ?? 0) + 1
        }
      })
      const operator = (async () => {
        for (let i = 0; i < ops * 2; i++) await operate(shards[int(0, SHARDS - 1)] as ModelShard, where, counts)
      })()
      await Promise.all([...writers, operator])
      return counts
    }

    // Some data while there is room.
    for (let i = 0; i < 4; i++) for (const m of shards) assert.ok(await append(m, 'with room'))
    await checkAll(shards, 'with room')
    assert.equal((await readiness()).status, 200)

    // Tight: the workload's own writes fill the disk, cutting writes short mid-file.
    await fill(filler, 512 << 10)
    const tight = await workload('tight', TIGHT_OPS)
    t.diagnostic(`tight: ${JSON.stringify(tight)}`)
    assert.ok((tight['append full'] ?? 0) > 0, `the tight phase filled the disk: ${JSON.stringify(tight)} (seed ${SEED})`)
    await checkAll(shards, 'tight')

    // Full: nothing can be written (but what compactions and GC delete meanwhile).
    await fill(filler, 0)
    assert.ok((await freeBytes(disk)) < 4096 * 2, 'the disk is full')
    const full = await workload('full', FULL_OPS)
    t.diagnostic(`full: ${JSON.stringify(full)}`)
    assert.ok((full['append full'] ?? 0) > 0, `appends are refused on a full disk: ${JSON.stringify(full)}`)
    await fill(filler, 0)
    const notReady = await readiness()
    assert.equal(notReady.status, 503, `/readyz on a full disk: ${JSON.stringify(notReady.body)}`)
    const checks = notReady.body.checks as { blob: string; consensus: string }
    assert.match(checks.blob, /no space left/, `/readyz blob check: ${checks.blob}`)
    assert.match(checks.consensus, /no space left/, `/readyz consensus check: ${checks.consensus}`)
    const metrics = await (await fetch(`${url}/metrics`)).text()
    assert.match(metrics, /persist_blob_operation_seconds_count\{op="set",outcome="no_space"\} [1-9]/, 'the blob metric counts sets refused for space')
    await checkAll(shards, 'full')
    // Nothing a refused write started is left on disk (GC deletes leftovers only once the grace passed).
    // NB: a background write in flight has one for a moment; one left behind stays.
    let leftovers: string[] = []
    await eventually('no temp file left by refused writes', async () => {
      leftovers = (await filesUnder(dataDir)).filter((f) => f.includes('.tmp-'))
      return leftovers.length === 0 ? true : undefined
    }, 10_000).catch((err: unknown) => assert.fail(`${String(err)}: ${leftovers.join(', ')}`))

    // Space back: everything works again, without a restart.
    await rm(filler)
    await eventually('/readyz to say ready once space is back', async () => ((await readiness()).status === 200 ? true : undefined))
    for (const m of shards.slice(0, SHARDS)) assert.ok(await append(m, 'space back'), `an append once space is back (seed ${SEED})`)
    const back = await workload('space back', 4)
    assert.ok(Object.keys(back).every((k) => !k.endsWith('full')), `nothing refused once space is back: ${JSON.stringify(back)}`)
    await checkAll(shards, 'space back')

    // A restart on a full disk: it starts, reads work, writes are refused; then space comes back.
    await stop()
    await fill(filler, 0)
    await start()
    await checkAll(shards, 'restarted on a full disk')
    assert.equal((await readiness()).status, 503)
    assert.equal(await append(shards[0] as ModelShard, 'restarted on a full disk'), false)
    await rm(filler)
    await eventually('/readyz to say ready after the restart once space is back', async () => ((await readiness()).status === 200 ? true : undefined))
    for (const m of shards.slice(0, SHARDS)) assert.ok(await append(m, 'restarted, space back'))

    // Settle: every compaction ends; GC leaves only what the state references and no temp file.
    const settled = await eventually('every compaction to settle', async () => {
      const listed = (await call('GET', '/v1/compactions?limit=100', 200)) as { compactions: { status: string; error?: { code: string } }[] }
      return listed.compactions.every((c) => c.status !== 'queued' && c.status !== 'running') ? listed.compactions : undefined
    })
    // Those that failed, failed for space, and say so.
    const failedCodes = new Set(settled.flatMap((c) => (c.status === 'failed' ? [c.error?.code] : [])))
    assert.ok([...failedCodes].every((code) => code === 'INSUFFICIENT_STORAGE'), `failed compactions' codes: ${[...failedCodes].join(', ')}`)
    await checkAll(shards, 'settled')
    for (const m of shards) {
      const root = join(dataDir, 'blob', m.id)
      let last: { onDisk: string[]; referenced: string[] } | undefined
      await eventually(`GC to leave only what the state of ${m.id} references`, async () => {
        await call('POST', `/v1/shards/${m.id}/gc`, 200)
        const shard = (await call('GET', `/v1/shards/${m.id}`, 200)) as { trace: { batches: { batches: { parts: { key?: string }[] }[] }[] } }
        const referenced = shard.trace.batches.flatMap((sb) => sb.batches.flatMap((b) => b.parts.flatMap((p) => (p.key === undefined ? [] : [p.key])))).sort()
        const onDisk = await filesUnder(root)
        last = { onDisk, referenced }
        return JSON.stringify(onDisk) === JSON.stringify(referenced) ? true : undefined
      }).catch((err: unknown) => {
        throw new Error(`${String(err)}; on disk: ${JSON.stringify(last?.onDisk)}; referenced: ${JSON.stringify(last?.referenced)} (seed ${SEED})`)
      })
    }
    assert.deepEqual((await filesUnder(dataDir)).filter((f) => f.includes('.tmp-')), [], 'temp files left at the end')
    await call('GET', '/v1/compactions?limit=100', 200)
    await checkAll(shards, 'at the end')
  })
})
