/**
 * The backlog totals (persist_backlog_*) of a process that just started, on shards an earlier
 * process wrote (file stores): a listing of every shard at start fills them, and listings keep
 * them current, without giving the listed shards per-shard series.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/app.js'
import { createServices, type Services } from '../../src/services.js'
import { parseSettings } from '../../src/settings.js'
import { until } from '../support/prometheus.js'

async function gauge(services: Services, name: string): Promise<number> {
  const line = (await services.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `))
  return Number(line?.split(' ')[1])
}

describe('backlog totals after a restart', () => {
  it('cover the shards an earlier process left merge work in, within one listing of the start', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-backlog-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const settings = parseSettings(['--data-dir', dataDir, '--log-level', 'silent', '--workers', '1'], {})
    const open = async (): Promise<{ services: Services; app: ReturnType<typeof buildApp>; close: () => Promise<void> }> => {
      const services = await createServices(settings, { gcIntervalMs: null })
      const app = buildApp(services, { logger: false })
      await services.start()
      await app.ready()
      return { services, app, close: async () => (await app.close(), await services.close()) }
    }

    // The first process: 5 shards, 3 of them with three appends each (merge work, maintenance off), one of those deleted.
    const first = await open()
    let expected = { shards: 0, batches: 0, bytes: 0 }
    try {
      await first.services.dyncfg.update({ compaction_maintenance_enabled: false })
      const ids: string[] = []
      for (let i = 0; i < 5; i++) {
        const r = await first.app.inject({ method: 'POST', url: '/v1/shards', payload: { name: `b${i}`, timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
        ids.push(r.json<{ shardId: string }>().shardId)
        for (let b = 0; b < (i < 3 ? 3 : 1); b++) {
          const w = await first.app.inject({ method: 'POST', url: `/v1/shards/${ids[i]!}/batches`, payload: { lower: [b * 10], upper: [b * 10 + 10], updates: [{ key: `k${b}`, val: 1, time: b * 10, diff: 1 }] } })
          assert.equal(w.statusCode, 201, w.body)
        }
      }
      assert.equal((await first.app.inject({ method: 'DELETE', url: `/v1/shards/${ids[2]!}` })).statusCode, 200)
      const listed = (await first.app.inject({ method: 'GET', url: '/v1/shards' })).json<{ shards: Array<{ stats: { backlogBatches: number; backlogBytes: number } }> }>().shards
      for (const { stats } of listed) {
        if (stats.backlogBatches === 0) continue
        expected = { shards: expected.shards + 1, batches: expected.batches + stats.backlogBatches, bytes: expected.bytes + stats.backlogBytes }
      }
      assert.equal(expected.shards, 2, JSON.stringify(listed))
    } finally {
      await first.close()
    }

    // The next process: nothing touched yet, the totals are those of the stores.
    const second = await open()
    try {
      const totals = async () => ({ shards: await gauge(second.services, 'persist_backlog_shards'), batches: await gauge(second.services, 'persist_backlog_batches'), bytes: await gauge(second.services, 'persist_backlog_bytes') })
      await until('the backlog totals', async () => ((await totals()).shards === expected.shards ? true : undefined), 20_000).catch(() => undefined)
      assert.deepEqual(await totals(), expected)
      // Listing shards gives none of them per-shard series.
      assert.equal(await gauge(second.services, 'persist_shard_series'), 0)
    } finally {
      await second.close()
    }
  })
})
