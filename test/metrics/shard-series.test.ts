import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Registry } from 'prom-client'
import { createMetrics } from '../../src/metrics/metrics.js'

/** Every sample of `name` in the registry's text output, keyed by its label set (`{shard="a"}` or ''). */
async function samples(registry: Registry, name: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const line of (await registry.metrics()).split('\n')) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m?.[1] === name) out.set(m[2] ?? '', Number(m[3]))
  }
  return out
}

const shardLabel = (id: string) => `{shard="${id}"}`

describe('per-shard series', () => {
  it('drop a deleted shard from the totals and its series, and keep nothing for shards without backlog', async () => {
    const registry = new Registry()
    const m = createMetrics(registry, { shardSeriesLimit: 3 })
    for (let i = 0; i < 20; i++) m.shard.backlog(`s${i}`, { batches: 2, bytes: 10 })
    for (let i = 0; i < 20; i++) m.shard.forget(`s${i}`)
    m.shard.backlog('idle', { batches: 0, bytes: 0 })
    assert.equal(m.shard.series.withBacklogKept, 0)
    assert.deepEqual(m.shard.series.shards(), ['idle'])
    assert.equal((await samples(registry, 'persist_backlog_batches')).get(''), 0)
    assert.equal((await samples(registry, 'persist_backlog_bytes')).get(''), 0)
    assert.equal((await samples(registry, 'persist_backlog_shards')).get(''), 0)
    assert.equal((await samples(registry, 'persist_shard_series')).get(''), 1)
    assert.deepEqual([...(await samples(registry, 'persist_shard_backlog_batches')).keys()], [shardLabel('idle')])
    // Forgetting is not evicting: 17 of the 20 were evicted to make room, none by their deletion.
    assert.equal((await samples(registry, 'persist_shard_series_evicted_total')).get(''), 17)
  })

  it('keep at most the limit of shards, evicting the least recently updated, while totals cover every shard', async () => {
    const registry = new Registry()
    const m = createMetrics(registry, { shardSeriesLimit: 3 })
    for (const [i, id] of ['a', 'b', 'c'].entries()) m.shard.backlog(id, { batches: i + 1, bytes: 100 * (i + 1) })
    m.shard.compactionApplied.inc({ shard: 'a' }) // a is now the most recent: b is the least
    m.shard.backlog('d', { batches: 4, bytes: 400 }) // evicts b
    m.shard.backlog('e', { batches: 5, bytes: 500 }) // evicts c

    assert.deepEqual(m.shard.series.shards(), ['a', 'd', 'e'])
    for (const family of ['persist_shard_backlog_batches', 'persist_shard_backlog_bytes', 'persist_shard_compaction_applied_total']) {
      assert.deepEqual([...(await samples(registry, family)).keys()].sort(), ['a', 'd', 'e'].map(shardLabel), family)
    }
    assert.equal((await samples(registry, 'persist_shard_backlog_batches')).get(shardLabel('e')), 5)
    assert.equal((await samples(registry, 'persist_shard_compaction_applied_total')).get(shardLabel('a')), 1)
    assert.equal((await samples(registry, 'persist_shard_series')).get(''), 3)
    assert.equal((await samples(registry, 'persist_shard_series_limit')).get(''), 3)
    assert.equal((await samples(registry, 'persist_shard_series_evicted_total')).get(''), 2)
    assert.equal((await samples(registry, 'persist_backlog_batches')).get(''), 1 + 2 + 3 + 4 + 5)
    assert.equal((await samples(registry, 'persist_backlog_bytes')).get(''), 1500)
    assert.equal((await samples(registry, 'persist_backlog_shards')).get(''), 5)
  })

  it('stays within the limit however many shards report (seeded)', async () => {
    const registry = new Registry()
    const m = createMetrics(registry, { shardSeriesLimit: 10 })
    let seed = 12345
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    for (let i = 0; i < 2000; i++) {
      const id = `s${next() % 500}`
      if (next() % 2 === 0) m.shard.backlog(id, { batches: next() % 4, bytes: next() % 1000 })
      else m.shard.compactionApplied.inc({ shard: id })
    }
    for (const family of ['persist_shard_backlog_batches', 'persist_shard_compaction_applied_total']) {
      assert.ok((await samples(registry, family)).size <= 10, `${family} has more than 10 series`)
    }
    assert.equal(m.shard.series.shards().length, 10)
  })

  it('moves the totals by the difference when a shard reports again', async () => {
    const registry = new Registry()
    const m = createMetrics(registry, { shardSeriesLimit: 1 })
    m.shard.backlog('a', { batches: 3, bytes: 300 })
    m.shard.backlog('b', { batches: 2, bytes: 200 })
    m.shard.backlog('a', { batches: 0, bytes: 0 })
    assert.equal((await samples(registry, 'persist_backlog_batches')).get(''), 2)
    assert.equal((await samples(registry, 'persist_backlog_bytes')).get(''), 200)
    assert.equal((await samples(registry, 'persist_backlog_shards')).get(''), 1)
    assert.deepEqual([...(await samples(registry, 'persist_shard_backlog_batches')).entries()], [[shardLabel('a'), 0]])
  })

  it('exposes a tracked shard\'s applied counter from 0, so increase() sees its first result', async () => {
    const registry = new Registry()
    const m = createMetrics(registry)
    m.shard.backlog('a', { batches: 1, bytes: 10 })
    assert.equal((await samples(registry, 'persist_shard_compaction_applied_total')).get(shardLabel('a')), 0)
  })

  it('with a limit of 0 has no per-shard series, only totals', async () => {
    const registry = new Registry()
    const m = createMetrics(registry, { shardSeriesLimit: 0 })
    m.shard.backlog('a', { batches: 2, bytes: 20 })
    m.shard.compactionApplied.inc({ shard: 'a' })
    assert.equal((await samples(registry, 'persist_shard_backlog_batches')).size, 0)
    assert.equal((await samples(registry, 'persist_shard_compaction_applied_total')).size, 0)
    assert.equal((await samples(registry, 'persist_backlog_batches')).get(''), 2)
  })

  it('refuses a limit that is not a non-negative integer', () => {
    assert.throws(() => createMetrics(new Registry(), { shardSeriesLimit: -1 }), /non-negative integer/)
  })
})
