/**
 * The README's operator walkthrough, over HTTP on the embedded file stores: ten batches written
 * (maintenance compacts what passes its heuristics), the since downgraded, a default operator
 * compaction completes the spine's merges in progress, and a major compaction leaves one batch of
 * one run whose stored times all equal the since and whose rows are exactly the consolidated
 * snapshot's. Every snapshot at or after the since stays the same throughout.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, it } from 'node:test'
import { buildApp, type App } from '../../src/app.js'
import { createServices, type Services } from '../../src/services.js'
import { testSettings } from '../helper.js'
import type { BatchJson, CompactionJson, RowJson, ShardJson } from './support.js'

async function start(dir: string): Promise<{ app: App; services: Services; stop(): Promise<void> }> {
  const settings = testSettings({ dataDir: dir, blobUrl: pathToFileURL(join(dir, 'blob')).href, consensusUrl: pathToFileURL(join(dir, 'consensus')).href, workers: 2 })
  const services = await createServices(settings, { gcIntervalMs: null })
  const app = buildApp(services, { logger: false })
  await services.start()
  await app.ready()
  return {
    app,
    services,
    stop: async () => {
      await app.close()
      await services.close()
    },
  }
}

async function call(app: App, method: 'GET' | 'POST', url: string, payload?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) })
  return { status: res.statusCode, json: res.json() as unknown }
}

/** Ten batches [i, i+1) of 40 rows each over 25 keys; every third row of a batch cancels one written before. */
function batches(): RowJson[][] {
  const out: RowJson[][] = []
  for (let i = 0; i < 10; i++) {
    const rows: RowJson[] = []
    for (let r = 0; r < 40; r++) {
      const key = `k${String((i * 7 + r) % 25).padStart(2, '0')}`
      rows.push({ key, val: String(r % 4), time: i, diff: r % 3 === 2 && i > 0 ? -1 : 1 })
    }
    out.push(rows)
  }
  return out
}

interface StoredPart {
  readonly updates: { time: number }[]
}

describe('operator walkthrough', () => {
  it('default completes the merges in progress; major leaves one batch of one run at the since', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-walkthrough-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const s = await start(dir)
    t.after(() => s.stop())
    const { app } = s

    const created = await call(app, 'POST', '/v1/shards', { name: 'walkthrough', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'utf8' } })
    assert.equal(created.status, 201)
    const shardId = (created.json as { shardId: string }).shardId
    for (const [i, updates] of batches().entries()) {
      const w = await call(app, 'POST', `/v1/shards/${shardId}/batches`, { lower: [i], upper: [i + 1], updates })
      assert.equal(w.status, 201, JSON.stringify(w.json))
    }
    // Maintenance runs in the background: wait until it is idle before looking at the spine.
    await s.services.compactor.idle()

    const snapshotsAt = async (asOfs: readonly number[]): Promise<unknown[]> =>
      Promise.all(asOfs.map(async (asOf) => (await call(app, 'GET', `/v1/shards/${shardId}/snapshot?asOf=${asOf}`)).json))
    const since = 9
    assert.equal((await call(app, 'POST', `/v1/shards/${shardId}/since`, { since: [since] })).status, 200)
    const before = await snapshotsAt([9])
    type Detail = ShardJson & { stats: { parts: number; updates: number; batches: number; backlogBatches: number }; trace: { merges: unknown[] } }
    const shard = async (): Promise<Detail> => (await call(app, 'GET', `/v1/shards/${shardId}`)).json as Detail
    const start0 = await shard()
    assert.ok(start0.trace.merges.length + start0.stats.backlogBatches > 0, 'ten small batches leave merges in progress')

    // The default request: complete every merge in progress, each applied exactly.
    const merges = await call(app, 'POST', `/v1/shards/${shardId}/compactions`, { wait: true })
    assert.equal(merges.status, 200, JSON.stringify(merges.json))
    const m = merges.json as CompactionJson & { kind: string; merges: { result: string }[]; reason?: unknown; progress: { fraction: number } }
    assert.equal(m.kind, 'merges')
    assert.equal(m.status, 'succeeded', JSON.stringify(m))
    assert.ok(m.merges.length >= 1 && m.merges.every((x) => x.result === 'applied_exact'), JSON.stringify(m.merges))
    assert.equal(m.progress.fraction, 1)
    const afterMerges = await shard()
    assert.equal(afterMerges.stats.backlogBatches, 0, 'no merge is left in progress')
    assert.ok(afterMerges.stats.parts < start0.stats.parts, `parts ${start0.stats.parts} → ${afterMerges.stats.parts}`)
    assert.deepEqual(await snapshotsAt([9]), before)
    // Nothing left to do: the same request is skipped, and says why.
    const again = await call(app, 'POST', `/v1/shards/${shardId}/compactions`, { wait: true })
    assert.equal((again.json as CompactionJson).status, 'skipped')
    assert.equal((again.json as { reason: { code: string } }).reason.code, 'NOTHING_TO_COMPACT')
    // It names the range it looked at (the whole trace at the since), not an empty one.
    assert.deepEqual((again.json as CompactionJson).desc, { lower: [0], upper: afterMerges.upper, since: afterMerges.since })

    // Major: the whole trace into one batch at the shard's since.
    const major = await call(app, 'POST', `/v1/shards/${shardId}/compactions`, { major: true, wait: true })
    assert.equal(major.status, 200, JSON.stringify(major.json))
    const mj = major.json as CompactionJson & { kind: string }
    assert.equal(mj.kind, 'major')
    assert.equal(mj.status, 'succeeded', JSON.stringify(mj))
    assert.equal(mj.result, 'applied_exact')
    const end = await shard()
    assert.equal(end.trace.batches.length, 1, 'one spine batch')
    const only = end.trace.batches[0] as ShardJson['trace']['batches'][number]
    assert.equal(only.batches.length, 1, 'one hollow batch')
    const batch = only.batches[0] as BatchJson & { runSplits: number[] }
    assert.deepEqual(batch.runSplits, [], 'one run')
    assert.deepEqual(batch.desc.since, [since])
    const snapshot = (await snapshotsAt([9]))[0] as { updates: RowJson[] }
    assert.equal(batch.len, snapshot.updates.length, 'as many rows stored as the consolidated snapshot has')
    const stored: { time: number }[] = []
    for (const p of batch.parts) {
      const part = (await call(app, 'GET', `/v1/shards/${shardId}/parts/${p.key}`)).json as StoredPart
      stored.push(...part.updates)
    }
    assert.equal(stored.length, snapshot.updates.length)
    assert.ok(stored.every((u) => Number(u.time) === since), 'every stored time is the since')
    assert.ok(end.stats.updates < start0.stats.updates, `updates ${start0.stats.updates} → ${end.stats.updates}`)
    assert.deepEqual(await snapshotsAt([9]), before)
    // And again: nothing to do.
    const majorAgain = (await call(app, 'POST', `/v1/shards/${shardId}/compactions`, { major: true, wait: true })).json as CompactionJson & { reason: { code: string } }
    assert.deepEqual([majorAgain.status, majorAgain.reason.code, majorAgain.desc], ['skipped', 'NOTHING_TO_COMPACT', batch.desc], 'the range it looked at')
  })
})
