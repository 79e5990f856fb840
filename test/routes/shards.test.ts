import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { renderOpenApi } from '../../src/http/openapi.js'
import { buildTestApp, type TestApp } from '../helper.js'

const U64_SHARD = { name: 'orders', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

describe('shard routes', () => {
  let t: TestApp
  before(async () => {
    t = await buildTestApp({ settings: { workers: 1, gcGraceMs: 0 } })
  })
  after(() => t.close())

  // Names are unique: each shard of these tests gets its own unless the test names it.
  let named = 0
  const create = async (body: unknown = { ...U64_SHARD, name: `orders-${named++}` }) => t.app.inject({ method: 'POST', url: '/v1/shards', payload: body as object })

  it('POST /v1/shards is 201 with the Shard', async () => {
    const res = await create()
    assert.equal(res.statusCode, 201)
    const shard = res.json()
    assert.match(shard.shardId, /^s[0-9a-f-]{36}$/)
    assert.deepEqual(
      { ...shard, shardId: undefined },
      {
        shardId: undefined,
        name: 'orders-0',
        timestamp: 'u64',
        seqno: 0,
        since: [0],
        upper: [0],
        schemas: [{ id: 0, keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }],
        trace: { batches: [], merges: [] },
        stats: { spineBatches: 0, batches: 0, parts: 0, runs: 0, updates: 0, encodedBytes: 0, backlogBatches: 0, backlogBytes: 0 },
      },
    )
  })

  it('POST /v1/shards refuses bad bodies with 400 naming the field, deep nesting included', async () => {
    const bad = await create({ ...U64_SHARD, timestamp: 'u32' })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().code, 'BAD_REQUEST')
    assert.match(bad.json().message, /^body\.timestamp/)
    const type = await create({ ...U64_SHARD, valSchema: { type: 'struct', fields: [{ name: '', type: { type: 'utf8' }, nullable: false }] } })
    assert.equal(type.statusCode, 400)
    assert.match(type.json().message, /^body\.valSchema\.fields\[0\]\.name: must not be empty/)
    let deep = '{"type":"utf8"}'
    for (let i = 0; i < 5000; i++) deep = `{"type":"struct","fields":[{"name":"a","type":${deep},"nullable":false}]}`
    const nested = await t.app.inject({
      method: 'POST',
      url: '/v1/shards',
      headers: { 'content-type': 'application/json' },
      payload: `{"timestamp":"u64","keySchema":${deep},"valSchema":{"type":"unit"}}`,
    })
    assert.equal(nested.statusCode, 400)
    assert.match(nested.json().message, /^body\.keySchema\.fields\[0\]\.type.*: structs nest deeper than 32 levels$/)
  })

  it('GET /v1/shards lists summaries; GET /v1/shards/{id} is the Shard or 404', async () => {
    const id = (await create({ ...U64_SHARD, name: 'listed' })).json().shardId
    const list = await t.app.inject({ method: 'GET', url: '/v1/shards' })
    assert.equal(list.statusCode, 200)
    const summary = list.json().shards.find((s: { shardId: string }) => s.shardId === id)
    assert.deepEqual(summary, { shardId: id, name: 'listed', timestamp: 'u64', seqno: 0, since: [0], upper: [0], stats: { spineBatches: 0, batches: 0, parts: 0, runs: 0, updates: 0, encodedBytes: 0, backlogBatches: 0, backlogBytes: 0 } })
    const one = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}` })
    assert.equal(one.statusCode, 200)
    assert.equal(one.json().shardId, id)
    const missing = await t.app.inject({ method: 'GET', url: '/v1/shards/s00000000-0000-4000-8000-000000000000' })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().code, 'SHARD_NOT_FOUND')
    const malformed = await t.app.inject({ method: 'GET', url: '/v1/shards/nope' })
    assert.equal(malformed.statusCode, 400)
    assert.match(malformed.json().message, /^params\.shardId/)
  })

  it('POST /schemas is 201 {id}, 400 SCHEMA_INCOMPATIBLE for a forbidden evolution', async () => {
    const val = (fields: object[]) => ({ type: 'struct', fields })
    const id = (await create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: val([{ name: 'a', type: { type: 'int64' }, nullable: false }]) })).json().shardId
    const next = val([
      { name: 'a', type: { type: 'int64' }, nullable: true },
      { name: 'b', type: { type: 'bool' }, nullable: true },
    ])
    const ok = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/schemas`, payload: { keySchema: { type: 'utf8' }, valSchema: next } })
    assert.equal(ok.statusCode, 201)
    assert.deepEqual(ok.json(), { id: 1 })
    const bad = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/schemas`, payload: { keySchema: { type: 'utf8' }, valSchema: val([{ name: 'a', type: { type: 'int64' }, nullable: false }]) } })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().code, 'SCHEMA_INCOMPATIBLE')
    const shard = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}` })
    assert.equal(shard.json().schemas.length, 2)
  })

  it('POST /since is 200 with the Shard, 409 SINCE_REGRESSION with the current since', async () => {
    const id = (await create()).json().shardId
    const ok = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/since`, payload: { since: ['18446744073709551615'] } })
    assert.equal(ok.statusCode, 200)
    assert.deepEqual(ok.json().since, ['18446744073709551615'])
    const back = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/since`, payload: { since: [3] } })
    assert.equal(back.statusCode, 409)
    assert.equal(back.json().code, 'SINCE_REGRESSION')
    assert.deepEqual(back.json().since, ['18446744073709551615'])
  })

  it('POST /gc is 200 with what the pass did', async () => {
    const id = (await create()).json().shardId
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/gc` })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { deletedParts: 0, deletedBytes: 0, truncatedBelowSeqno: 0 })
    const missing = await t.app.inject({ method: 'POST', url: '/v1/shards/s00000000-0000-4000-8000-000000000000/gc' })
    assert.equal(missing.statusCode, 404)
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' })
    assert.match(metrics.body, /persist_gc_started_total [1-9]/)
  })

  it('documents every shard and data route with its error statuses', () => {
    const doc = JSON.parse(renderOpenApi(t.app)) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
    const expect: Array<[string, string, string[]]> = [
      ['/v1/shards', 'post', ['201', '400']],
      ['/v1/shards', 'get', ['200']],
      ['/v1/shards/{shardId}', 'get', ['200', '404']],
      ['/v1/shards/{shardId}/schemas', 'post', ['201', '400', '404']],
      ['/v1/shards/{shardId}/since', 'post', ['200', '400', '404', '409']],
      ['/v1/shards/{shardId}/gc', 'post', ['200', '404']],
      ['/v1/shards/{shardId}/batches', 'post', ['201', '400', '404', '409', '413', '415']],
      ['/v1/shards/{shardId}/append', 'post', ['201', '400', '404', '409']],
      ['/v1/shards/{shardId}/snapshot', 'get', ['200', '400', '404']],
      ['/v1/shards/{shardId}/parts/{writerKey}/{partId}', 'get', ['200', '404']],
    ]
    for (const [path, method, statuses] of expect) {
      const op = doc.paths[path]?.[method]
      assert.ok(op, `${method} ${path} is documented`)
      for (const s of statuses) assert.ok(s in op.responses, `${method} ${path} documents ${s}`)
    }
  })
})
