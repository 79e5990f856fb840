/**
 * A compaction this instance ends `failed` leaves one log line naming it, its shard and its error,
 * whether a request waited for it or not; at error level for a fault (a part missing from blob
 * storage: DATA_LOSS), at warn for the rest (the kill switch's COMPACTION_DISABLED).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTestApp } from '../helper.js'
import { whenCompaction } from '../support/when-compaction.js'

type Line = Record<string, unknown>

describe('compaction logs', () => {
  it('log each failed compaction once, with its id, shard and error', async (t) => {
    const lines: Line[] = []
    const { app, services } = await buildTestApp({ t, log: { level: 'info', lines }, services: { gcIntervalMs: null } })
    await services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0, compaction_maintenance_enabled: false })
    const created = await app.inject({ method: 'POST', url: '/v1/shards', payload: { name: 'broken', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    const shardId = created.json<{ shardId: string }>().shardId
    const keys: string[] = []
    for (let b = 0; b < 2; b++) {
      const w = await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/batches`, payload: { lower: [b * 10], upper: [b * 10 + 10], updates: [{ key: `k${b}`, val: 1, time: b * 10, diff: 1 }] } })
      assert.equal(w.statusCode, 201, w.body)
      keys.push(w.json<{ batch: { parts: Array<{ key: string }> } }>().batch.parts[0]!.key)
    }
    // Storage lost a part behind the service's back: a compaction of the shard fails with DATA_LOSS.
    await services.blob.delete(`${shardId}/${keys[0]!}`)
    const submitted = await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { major: true } })
    assert.equal(submitted.statusCode, 202, submitted.body)
    const id = submitted.json<{ id: string }>().id
    const failed = await whenCompaction(services.compactor, id, (c) => c.status === 'failed', 'failed')
    assert.equal(failed.error?.code, 'DATA_LOSS')

    // The kill switch fails the next one: a state of the server, not a fault.
    await services.dyncfg.update({ compaction_process_requests: false })
    const paused = await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { major: true, wait: true } })
    const pausedBody = paused.json<{ id: string; status: string; error?: { code: string; message: string } }>()
    assert.equal(pausedBody.status, 'failed', paused.body)
    assert.equal(pausedBody.error?.code, 'COMPACTION_DISABLED')

    const logged = lines.filter((l) => l.msg === 'compaction failed')
    assert.deepEqual(
      logged.map(({ level, compactionId, shardId: s, source, kind, attempt, code, message }) => ({ level, compactionId, shardId: s, source, kind, attempt, code, message })),
      [
        { level: 50, compactionId: id, shardId, source: 'request', kind: 'major', attempt: 1, code: 'DATA_LOSS', message: failed.error?.message },
        { level: 40, compactionId: pausedBody.id, shardId, source: 'request', kind: 'major', attempt: 1, code: 'COMPACTION_DISABLED', message: pausedBody.error?.message },
      ],
    )
  })
})
