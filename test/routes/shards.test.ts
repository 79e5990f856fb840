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
        leases: [],
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

  it('POST /since?view=summary is 200 with the summary, not the whole shard; another view is 400', async () => {
    const id = (await create()).json().shardId
    for (let i = 0; i < 3; i++) {
      const w = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [i], upper: [i + 1], updates: [{ key: `k${i}`, val: 1, time: i, diff: 1 }] } })
      assert.equal(w.statusCode, 201, w.body)
    }
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/since?view=summary`, payload: { since: [2] } })
    assert.equal(res.statusCode, 200, res.body)
    const listed = (await t.app.inject({ method: 'GET', url: `/v1/shards?name=${encodeURIComponent(res.json().name)}` })).json().shards[0]
    assert.deepEqual(res.json(), listed)
    assert.deepEqual([res.json().since, res.json().stats.batches], [[2], 3])
    const whole = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/since?view=shard`, payload: { since: [2] } })
    assert.equal(whole.json().trace.batches.flatMap((b: { batches: unknown[] }) => b.batches).length, 3)
    const bad = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/since?view=all`, payload: { since: [2] } })
    assert.equal(bad.statusCode, 400)
    assert.match(bad.json().message, /view/)
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

  it('GET /v1/shards/{id}/spine is the Shard with each spine batch counted instead of listed, a small fraction of its size; 404, 410', async () => {
    const id = (await create({ ...U64_SHARD, name: 'spine' })).json().shardId
    const off = await t.app.inject({ method: 'PATCH', url: '/v1/configs', payload: { compaction_maintenance_enabled: false } })
    assert.equal(off.statusCode, 200, off.body)
    try {
      // 60 appends with nothing compacted: spine batches of many hollow batches, merges in progress.
      for (let i = 0; i < 60; i++) {
        const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [i], upper: [i + 1], updates: [{ key: `k${i}`, val: i, time: i, diff: 1 }, { key: 'x', val: 0, time: i, diff: 1 }] } })
        assert.equal(res.statusCode, 201, res.body)
      }
    } finally {
      await t.app.inject({ method: 'PATCH', url: '/v1/configs', payload: { compaction_maintenance_enabled: true } })
    }
    const whole = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}` })
    const spine = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/spine` })
    assert.equal(spine.statusCode, 200, spine.body)
    const w = whole.json()
    const sp = spine.json()
    assert.equal(sp.seqno, w.seqno, 'the same state version')
    // The same shard but for schemas and hollow batches; each spine batch's counts are its batches'.
    const { schemas: _schemas, trace, ...rest } = w
    assert.deepEqual({ ...sp, trace: undefined }, { ...rest, trace: undefined })
    assert.deepEqual(sp.trace.merges, trace.merges)
    type Hollow = { len: number; parts: { encodedSizeBytes?: number; inline?: { encodedSizeBytes: number } }[]; runMeta: unknown[] }
    const counted = trace.batches.map(({ batches, ...sb }: { batches: Hollow[] }) => ({
      ...sb,
      stats: {
        batches: batches.length,
        parts: batches.reduce((n, b) => n + b.parts.length, 0),
        runs: batches.reduce((n, b) => n + b.runMeta.length, 0),
        updates: batches.reduce((n, b) => n + b.len, 0),
        encodedBytes: batches.reduce((n, b) => n + b.parts.reduce((m, p) => m + (p.encodedSizeBytes ?? p.inline?.encodedSizeBytes ?? 0), 0), 0),
      },
    }))
    assert.deepEqual(sp.trace.batches, counted)
    assert.equal(counted.reduce((n: number, sb: { stats: { batches: number } }) => n + sb.stats.batches, 0), 60)
    assert.ok(sp.trace.batches.length < 10 && sp.trace.merges.length > 0, `a spine of a few batches: ${JSON.stringify(sp.trace.batches.map((b: { id: string }) => b.id))}`)
    assert.ok(spine.body.length * 10 < whole.body.length, `spine ${spine.body.length} B, whole shard ${whole.body.length} B`)

    const missing = await t.app.inject({ method: 'GET', url: '/v1/shards/s00000000-0000-4000-8000-000000000000/spine' })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().code, 'SHARD_NOT_FOUND')
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/v1/shards/${id}` })).statusCode, 200)
    const gone = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/spine` })
    assert.equal(gone.statusCode, 410)
    assert.equal(gone.json().code, 'SHARD_DELETED')
  })

  it('DELETE /v1/shards/{id} is 200 {shardId, deletedAt}; afterwards every route of the shard is 410 SHARD_DELETED', async () => {
    const id = (await create({ ...U64_SHARD, name: 'to-delete' })).json().shardId
    const written = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [0], upper: [2], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }], append: false } })
    assert.equal(written.statusCode, 201, written.body)
    const del = await t.app.inject({ method: 'DELETE', url: `/v1/shards/${id}` })
    assert.equal(del.statusCode, 200, del.body)
    const { shardId, deletedAt } = del.json()
    assert.equal(shardId, id)
    assert.ok(!Number.isNaN(Date.parse(deletedAt)))

    const calls: Array<[string, string, object?]> = [
      ['GET', `/v1/shards/${id}`],
      ['DELETE', `/v1/shards/${id}`],
      ['POST', `/v1/shards/${id}/batches`, { lower: [0], upper: [2], updates: [] }],
      ['POST', `/v1/shards/${id}/append`, { batch: written.json().batch }],
      ['GET', `/v1/shards/${id}/snapshot?asOf=0`],
      ['POST', `/v1/shards/${id}/schemas`, { keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }],
      ['POST', `/v1/shards/${id}/since`, { since: [1] }],
      ['POST', `/v1/shards/${id}/gc`],
      ['POST', `/v1/shards/${id}/compactions`, {}],
      ['POST', '/v1/compact', { shardId: id, desc: { lower: [0], upper: [2], since: [0] }, inputs: [written.json().batch] }],
    ]
    for (const [method, url, payload] of calls) {
      const res = await t.app.inject({ method: method as 'GET', url, ...(payload === undefined ? {} : { payload }) })
      assert.equal(res.statusCode, 410, `${method} ${url}: ${res.body}`)
      assert.deepEqual({ code: res.json().code, deletedAt: res.json().deletedAt }, { code: 'SHARD_DELETED', deletedAt }, `${method} ${url}`)
      assert.match(res.json().message, new RegExp(`^shard ${id} was deleted at ${deletedAt}; its data is being collected`))
    }
    const list = await t.app.inject({ method: 'GET', url: '/v1/shards?limit=1000' })
    assert.ok(!list.json().shards.some((s: { shardId: string }) => s.shardId === id))
    const byName = await t.app.inject({ method: 'GET', url: '/v1/shards?name=to-delete' })
    assert.deepEqual(byName.json(), { shards: [] })
    const unknown = await t.app.inject({ method: 'DELETE', url: '/v1/shards/s00000000-0000-4000-8000-000000000000' })
    assert.equal(unknown.statusCode, 404)
    assert.equal(unknown.json().code, 'SHARD_NOT_FOUND')
    const malformed = await t.app.inject({ method: 'DELETE', url: '/v1/shards/nope' })
    assert.equal(malformed.statusCode, 400)
    assert.match(malformed.json().message, /^params\.shardId/)
  })

  it('POST /v1/shards is 409 SHARD_NAME_TAKEN naming the holder; the name is free again once it is deleted', async () => {
    const holder = (await create({ ...U64_SHARD, name: 'unique' })).json().shardId
    const taken = await create({ ...U64_SHARD, name: 'unique' })
    assert.equal(taken.statusCode, 409)
    assert.deepEqual({ code: taken.json().code, shardId: taken.json().shardId }, { code: 'SHARD_NAME_TAKEN', shardId: holder })
    assert.match(taken.json().message, /^body\.name: "unique" is the name of shard/)
    const long = await create({ ...U64_SHARD, name: 'ü'.repeat(60) })
    assert.equal(long.statusCode, 400)
    assert.match(long.json().message, /^body\.name: must be at most 100 bytes of UTF-8; this one is 120$/)
    const tooLong = await create({ ...U64_SHARD, name: 'x'.repeat(101) })
    assert.equal(tooLong.statusCode, 400)
    assert.match(tooLong.json().message, /^body\.name/)
    assert.equal((await t.app.inject({ method: 'DELETE', url: `/v1/shards/${holder}` })).statusCode, 200)
    assert.equal((await create({ ...U64_SHARD, name: 'unique' })).statusCode, 201)
  })

  it('GET /v1/shards pages with limit and cursor, finds by name and by prefix; 400 naming the query field', async () => {
    const made: string[] = []
    for (const name of ['page-b', 'page-a', 'page-c']) made.push((await create({ ...U64_SHARD, name })).json().shardId)
    const all: string[] = []
    let url = '/v1/shards?limit=2'
    for (let i = 0; i < 1000; i++) {
      const res = await t.app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 200, res.body)
      const body = res.json() as { shards: { shardId: string }[]; nextCursor?: string }
      assert.ok(body.shards.length <= 2)
      all.push(...body.shards.map((s) => s.shardId))
      if (body.nextCursor === undefined) break
      assert.match(body.nextCursor, /^[A-Za-z0-9_-]+$/)
      url = `/v1/shards?limit=2&cursor=${body.nextCursor}`
    }
    assert.deepEqual(all, [...all].sort(), 'oldest first: ids are time-ordered')
    assert.deepEqual(all.slice(-3), made)
    const prefix = await t.app.inject({ method: 'GET', url: '/v1/shards?namePrefix=page-' })
    assert.deepEqual(prefix.json().shards.map((s: { name: string }) => s.name), ['page-a', 'page-b', 'page-c'])
    const exact = await t.app.inject({ method: 'GET', url: `/v1/shards?name=${encodeURIComponent('page-c')}` })
    assert.deepEqual(exact.json().shards.map((s: { shardId: string }) => s.shardId), [made[2]])
    const bad: Array<[string, RegExp]> = [
      // The route's schema checks these first, naming the part (query).
      ['limit=0', /^query\.limit/],
      ['limit=1001', /^query\.limit/],
      ['limit=two', /^query\.limit/],
      ['cursor=bm9wZQ', /^query\.cursor: not a cursor of this listing/],
      ['name=a&namePrefix=a', /^query\.name: give name \(exact\) or namePrefix \(search\), not both$/],
      ['name=', /^query\.name: must not be empty/],
      [`name=${'x'.repeat(101)}`, /^query\.name/],
    ]
    for (const [query, message] of bad) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/shards?${query}` })
      assert.equal(res.statusCode, 400, query)
      assert.equal(res.json().code, 'BAD_REQUEST', query)
      assert.match(res.json().message, message, query)
    }
  })

  it('documents every shard and data route with its error statuses', () => {
    const doc = JSON.parse(renderOpenApi(t.app)) as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
    const expect: Array<[string, string, string[]]> = [
      ['/v1/shards', 'post', ['201', '400', '409']],
      ['/v1/shards', 'get', ['200', '400']],
      ['/v1/shards/{shardId}', 'get', ['200', '404', '410']],
      ['/v1/shards/{shardId}/spine', 'get', ['200', '400', '404', '410']],
      ['/v1/shards/{shardId}', 'delete', ['200', '400', '404', '410']],
      ['/v1/shards/{shardId}/schemas', 'post', ['201', '400', '404', '410']],
      ['/v1/shards/{shardId}/since', 'post', ['200', '400', '404', '409', '410']],
      ['/v1/shards/{shardId}/gc', 'post', ['200', '404', '410']],
      ['/v1/shards/{shardId}/batches', 'post', ['201', '400', '404', '409', '410', '413', '415']],
      ['/v1/shards/{shardId}/append', 'post', ['201', '400', '404', '409', '410']],
      ['/v1/shards/{shardId}/snapshot', 'get', ['200', '400', '404', '410']],
      ['/v1/shards/{shardId}/parts/{writerKey}/{partId}', 'get', ['200', '404', '410']],
      ['/v1/shards/{shardId}/compactions', 'post', ['404', '410']],
      ['/v1/compact', 'post', ['404', '410']],
    ]
    for (const [path, method, statuses] of expect) {
      const op = doc.paths[path]?.[method]
      assert.ok(op, `${method} ${path} is documented`)
      for (const s of statuses) assert.ok(s in op.responses, `${method} ${path} documents ${s}`)
    }
  })
})
