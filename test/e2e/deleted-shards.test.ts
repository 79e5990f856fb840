/**
 * A server whose clients create, write, read and delete shards for as long as it runs keeps nothing
 * per deleted shard in its metrics: a tombstone's trace still lists batches, but no merge work is
 * left (compactions of it are refused), so it counted in the backlog totals, and kept per-shard
 * series, for good.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { appendOneRowBatches, createShard, e2eApp, inject } from './support.js'

/** `name`'s samples in a /metrics text: label set ('' for none) → value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m?.[1] === name) out.set(m[2] ?? '', Number(m[3]))
  }
  return out
}

describe('deleted shards', () => {
  it('leave the backlog totals and their per-shard series', async (t) => {
    const { app } = await e2eApp(t)
    const ids: string[] = []
    for (let i = 0; i < 6; i++) {
      const id = await createShard(app)
      await appendOneRowBatches(app, id, 3)
      await inject(app, { method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=2` }, 200)
      ids.push(id)
    }
    const before = (await inject(app, { method: 'GET', url: '/metrics' }, 200)).body
    assert.equal(samples(before, 'persist_backlog_shards').get(''), 6, 'the shards have merge work before they are deleted')
    for (const id of ids) await inject(app, { method: 'DELETE', url: `/v1/shards/${id}` }, 200)
    const text = (await inject(app, { method: 'GET', url: '/metrics' }, 200)).body
    assert.equal(samples(text, 'persist_backlog_shards').get(''), 0)
    assert.equal(samples(text, 'persist_backlog_batches').get(''), 0)
    assert.equal(samples(text, 'persist_backlog_bytes').get(''), 0)
    assert.equal(samples(text, 'persist_shard_series').get(''), 0)
    assert.deepEqual([...samples(text, 'persist_shard_backlog_batches').keys()], [])
  })
})
