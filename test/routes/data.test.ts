import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { ShardId } from '../../src/core/ids.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { ARROW, arrowRows, rowsOfArrow } from './data-support.js'

describe('data routes', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ settings: { workers: 1, gcGraceMs: 0 } })
    await t.services.dyncfg.start()
  })
  after(() => t.close())

  async function shard(): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    assert.equal(res.statusCode, 201)
    return res.json().shardId
  }
  const write = (id: string, body: object) => t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: body })
  const snapshot = (id: string, asOf: string, accept?: string) =>
    t.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=${encodeURIComponent(asOf)}`, headers: accept === undefined ? {} : { accept } })

  it('POST /batches (JSON) is 201 with the appended batch, its seqno and the new upper', async () => {
    const id = await shard()
    const res = await write(id, { lower: [0], upper: [5], updates: [{ key: 'b', val: 2, time: 1, diff: 1 }, { key: 'a', val: 1, time: 4, diff: '3' }] })
    assert.equal(res.statusCode, 201)
    const body = res.json()
    assert.equal(body.appended, true)
    assert.equal(body.seqno, 1)
    assert.deepEqual(body.upper, [5])
    assert.deepEqual(body.batch.desc, { lower: [0], upper: [5], since: [0] })
    assert.equal(body.batch.len, 2)
    assert.deepEqual(body.batch.runMeta, [{ order: 'structured', schemaId: 0 }])
  })

  it('POST /batches (Arrow) takes the frontiers as JSON query parameters', async () => {
    const id = await shard()
    const payload = arrowRows([
      { key: 'x', val: 5n, time: 2n, diff: 1n },
      { key: 'x', val: 5n, time: 2n, diff: 1n },
    ])
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches?lower=[0]&upper=[3]`, headers: { 'content-type': ARROW }, payload })
    assert.equal(res.statusCode, 201)
    assert.equal(res.json().batch.len, 1)
    const unappended = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches?lower=[3]&upper=[4]&append=false`, headers: { 'content-type': ARROW }, payload: arrowRows([]) })
    assert.equal(unappended.statusCode, 201)
    assert.equal(unappended.json().appended, false)
    const snap = await snapshot(id, '2')
    assert.deepEqual(snap.json(), { asOf: 2, updates: [{ key: 'x', val: 5, time: 2, diff: 2 }] })
  })

  it('POST /batches with append false, then POST /append; a wrong expectedUpper is 409 with currentUpper', async () => {
    const id = await shard()
    const w = await write(id, { lower: [0], upper: [2], updates: [{ key: 'k', val: 1, time: 1, diff: 1 }], append: false })
    assert.equal(w.statusCode, 201)
    assert.equal(w.json().appended, false)
    assert.equal(w.json().seqno, undefined)
    const batch = w.json().batch
    const wrong = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/append`, payload: { batch, expectedUpper: [1] } })
    assert.equal(wrong.statusCode, 409)
    assert.deepEqual({ code: wrong.json().code, currentUpper: wrong.json().currentUpper }, { code: 'UPPER_MISMATCH', currentUpper: [0] })
    const ok = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/append`, payload: { batch } })
    assert.equal(ok.statusCode, 201)
    assert.deepEqual(ok.json(), { appended: true, seqno: 1, upper: [2] })
    const mismatch = await write(id, { lower: [0], upper: [3], updates: [] })
    assert.equal(mismatch.statusCode, 409)
    assert.deepEqual(mismatch.json().currentUpper, [2])
  })

  it('a refused /append deletes the batch parts the shard does not reference, and only those', async () => {
    const id = await shard()
    assert.equal((await t.app.inject({ method: 'PATCH', url: '/v1/configs', payload: { persist_inline_writes_single_max_bytes: 0 } })).statusCode, 200)
    const part = async (batch: { parts: { key: string }[] }) => (await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/parts/${batch.parts[0]!.key}` })).statusCode
    const first = (await write(id, { lower: [0], upper: [2], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }], append: false })).json().batch
    const stray = (await write(id, { lower: [5], upper: [6], updates: [{ key: 'b', val: 1, time: 5, diff: 1 }], append: false })).json().batch
    assert.equal(first.parts[0].inline, undefined)
    assert.equal((await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/append`, payload: { batch: first } })).statusCode, 201)
    // Appending the same batch again is refused, and its parts (now the shard's) stay.
    assert.equal((await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/append`, payload: { batch: first } })).statusCode, 409)
    assert.equal(await part(first), 200)
    // A batch that does not fit is refused and its parts are deleted.
    assert.equal((await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/append`, payload: { batch: stray } })).statusCode, 409)
    assert.equal(await part(stray), 404)
  })

  it('GET /snapshot streams JSON or Arrow, consolidated and sorted, and releases its lease', async () => {
    const id = await shard()
    const rows = Array.from({ length: 3000 }, (_, i) => ({ key: `k${String(i % 1000).padStart(4, '0')}`, val: i % 7, time: i % 10, diff: 1 }))
    assert.equal((await write(id, { lower: [0], upper: [10], updates: rows })).statusCode, 201)
    const json = await snapshot(id, '9')
    assert.equal(json.statusCode, 200)
    assert.match(String(json.headers['content-type']), /^application\/json/)
    const got = json.json() as { asOf: number; updates: Array<{ key: string; val: number; time: number; diff: number }> }
    const expected = new Map<string, number>()
    for (const r of rows) expected.set(`${r.key}|${r.val}`, (expected.get(`${r.key}|${r.val}`) ?? 0) + 1)
    assert.equal(got.updates.length, expected.size)
    for (const u of got.updates) assert.equal(u.diff, expected.get(`${u.key}|${u.val}`))
    const order = got.updates.map((u) => `${u.key}|${String(u.val).padStart(2, '0')}`)
    assert.deepEqual(order, [...order].sort())
    const arrow = await snapshot(id, '9', ARROW)
    assert.equal(arrow.statusCode, 200)
    assert.equal(arrow.headers['content-type'], ARROW)
    const arrowRowsBack = rowsOfArrow(arrow.rawPayload)
    assert.equal(arrowRowsBack.length, got.updates.length)
    assert.deepEqual(arrowRowsBack[0], { k: got.updates[0]!.key, v: BigInt(got.updates[0]!.val), t: 9n, d: BigInt(got.updates[0]!.diff) })
    assert.equal(t.services.shards.leases.minSeqno(id as ShardId), null)
  })

  it('GET /snapshot outside [since, upper) is 400 AS_OF_NOT_AVAILABLE with both frontiers', async () => {
    const id = await shard()
    await write(id, { lower: [0], upper: [4], updates: [] })
    const res = await snapshot(id, '4')
    assert.equal(res.statusCode, 400)
    assert.deepEqual(res.json().since, [0])
    assert.deepEqual(res.json().upper, [4])
    assert.equal(res.json().code, 'AS_OF_NOT_AVAILABLE')
  })

  it('GET /snapshot that fails before its first row is an ordinary JSON error, and releases its lease', async () => {
    await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
    try {
      const id = await shard()
      const w = await write(id, { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] })
      // Storage lost a part behind the service's back.
      await t.services.blob.delete(`${id}/${w.json().batch.parts[0].key as string}`)
      for (const accept of [undefined, ARROW]) {
        const res = await snapshot(id, '4', accept)
        assert.equal(res.statusCode, 500)
        assert.match(String(res.headers['content-type']), /^application\/json/)
        assert.equal(res.json().code, 'DATA_LOSS')
        assert.match(res.json().message as string, /is in the shard's state but missing from blob storage/)
      }
      assert.equal(t.services.shards.leases.minSeqno(id as ShardId), null)
    } finally {
      await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 4096 })
    }
  })

  it('GET /parts/{writerKey}/{partId} shows a part as stored, JSON or Arrow; 404 PART_NOT_FOUND', async () => {
    await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
    try {
      const id = await shard()
      const w = await write(id, { lower: [0], upper: [5], updates: [{ key: 'b', val: 2, time: 1, diff: 1 }, { key: 'a', val: 1, time: 4, diff: -2 }] })
      const key: string = w.json().batch.parts[0].key
      const res = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/parts/${key}` })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json(), {
        key,
        desc: { lower: [0], upper: [5], since: [0] },
        order: 'structured',
        schemaId: 0,
        updates: [
          { key: 'a', val: 1, time: 4, diff: -2 },
          { key: 'b', val: 2, time: 1, diff: 1 },
        ],
      })
      const arrow = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/parts/${key}`, headers: { accept: ARROW } })
      assert.equal(arrow.statusCode, 200)
      assert.deepEqual(rowsOfArrow(arrow.rawPayload), [
        { k: 'a', v: 1n, t: 4n, d: -2n },
        { k: 'b', v: 2n, t: 1n, d: 1n },
      ])
      const missing = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/parts/${key.split('/')[0]}/p00000000-0000-4000-8000-000000000000` })
      assert.equal(missing.statusCode, 404)
      assert.equal(missing.json().code, 'PART_NOT_FOUND')
    } finally {
      await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 4096 })
    }
  })
})
