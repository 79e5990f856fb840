/**
 * `GET /v1/shards/{id}` shows the reader leases in the shard's state: the lease a snapshot read in
 * flight holds (held at its part read by the GatedBlob), with this instance's id.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createShard, e2eApp, GATED, inject, partKeys, patchConfigs, writeBatch } from '../e2e/support.js'

interface LeaseJson {
  id: string
  instance: string
  seqno: number
  expiresAt: string
}

describe('GET /v1/shards/{id} leases', () => {
  it('shows the lease of a snapshot read in flight, with this instance, the version it reads and its expiry', GATED, async (t) => {
    const { app, services, blob } = await e2eApp(t)
    await patchConfigs(app, { persist_inline_writes_single_max_bytes: 0, persist_reader_lease_duration: '2m' })
    const id = await createShard(app)
    const batch = await writeBatch(app, id, 0, 2, [{ key: 'a', val: 'x', time: 1, diff: 1 }])
    const before = (await inject(app, { method: 'GET', url: `/v1/shards/${id}` }, 200)).json() as { seqno: number; leases: LeaseJson[] }
    assert.deepEqual(before.leases, [])

    const [part] = partKeys(id, batch)
    const hold = blob.hold((key) => key === part)
    const read = app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=1` })
    await hold.reached
    const during = (await inject(app, { method: 'GET', url: `/v1/shards/${id}` }, 200)).json() as { seqno: number; leases: LeaseJson[] }
    assert.equal(during.seqno, before.seqno + 1, 'the read committed its lease')
    assert.equal(during.leases.length, 1)
    const [lease] = during.leases
    assert.deepEqual({ instance: lease?.instance, seqno: lease?.seqno }, { instance: services.settings.instanceId, seqno: during.seqno })
    assert.match(lease?.id ?? '', /^r[0-9a-f-]{36}$/)
    const left = Date.parse(lease?.expiresAt ?? '') - Date.now()
    assert.ok(left > 60_000 && left <= 120_000, `expires within the duration, got ${left} ms`)

    hold.release()
    const res = await read
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual((res.json() as { updates: unknown[] }).updates, [{ key: 'a', val: 'x', time: 1, diff: 1 }])
  })
})
