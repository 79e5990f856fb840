/**
 * Every malformed request to the shard and data routes gets its 4xx code and leaves the shard as it
 * was: same seqno, same upper, same since, same blobs.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { shardPrefix } from '../../src/core/paths.js'
import type { ShardId } from '../../src/core/ids.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { ARROW, arrowRows } from './data-support.js'

const BODY_LIMIT = 64 * 1024
const OTHER_SHARD = 's00000000-0000-4000-8000-000000000000'

interface Case {
  readonly name: string
  readonly method: 'GET' | 'POST'
  /** Relative to `/v1/shards/<id>` unless it starts with `/v1/`. */
  readonly path: string
  readonly body?: unknown
  readonly raw?: { readonly contentType: string; readonly payload: string | Buffer }
  readonly status: number
  readonly code: string
  readonly message?: RegExp
  /** Blob keys the request deletes (docs/api.md#json-batches: a refused compare-and-append deletes the batch's parts). */
  readonly deletes?: readonly string[]
}

describe('malformed requests', () => {
  let t: TestApp
  let id: string
  /** A batch written with append false, as the API returns it. */
  let batch: { parts: Array<{ key: string }>; desc: { lower: unknown[]; upper: unknown[] } } & Record<string, unknown>

  before(async () => {
    t = await buildTestApp({ settings: { workers: 1, gcGraceMs: 0, bodyLimitBytes: BODY_LIMIT } })
    await t.services.dyncfg.start()
    await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
    const created = await t.app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    id = created.json().shardId
    const w = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [0], upper: [10], updates: [{ key: 'a', val: 1, time: 3, diff: 1 }] } })
    assert.equal(w.statusCode, 201)
    await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/since`, payload: { since: [2] } })
    const u = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [10], upper: [12], updates: [{ key: 'b', val: 1, time: 11, diff: 1 }], append: false } })
    batch = u.json().batch
  })
  after(() => t.close())

  const rows = (updates: unknown[], extra: object = {}) => ({ lower: [10], upper: [20], updates, ...extra })
  const row = { key: 'k', val: 1, time: 11, diff: 1 }
  let deep = '{"type":"utf8"}'
  for (let i = 0; i < 900; i++) deep = `{"type":"struct","fields":[{"name":"a","type":${deep},"nullable":false}]}`

  const cases = (): Case[] => [
    // shard creation and schemas
    { name: 'unknown timestamp kind', method: 'POST', path: '/v1/shards', body: { timestamp: 'u32', keySchema: { type: 'utf8' }, valSchema: { type: 'unit' } }, status: 400, code: 'BAD_REQUEST', message: /^body\.timestamp/ },
    { name: 'unknown type', method: 'POST', path: '/v1/shards', body: { timestamp: 'u64', keySchema: { type: 'varchar' }, valSchema: { type: 'unit' } }, status: 400, code: 'BAD_REQUEST', message: /^body\.keySchema\.type/ },
    { name: 'absurdly nested type', method: 'POST', path: '/v1/shards', raw: { contentType: 'application/json', payload: `{"timestamp":"u64","keySchema":${deep},"valSchema":{"type":"unit"}}` }, status: 400, code: 'BAD_REQUEST' },
    { name: 'incompatible schema', method: 'POST', path: '/schemas', body: { keySchema: { type: 'binary' }, valSchema: { type: 'int64' } }, status: 400, code: 'SCHEMA_INCOMPATIBLE' },
    { name: 'schema body with an unknown field', method: 'POST', path: '/schemas', body: { keySchema: { type: 'utf8' }, valSchema: { type: 'int64' }, extra: 1 }, status: 400, code: 'BAD_REQUEST' },
    // since
    { name: 'since regression', method: 'POST', path: '/since', body: { since: [1] }, status: 409, code: 'SINCE_REGRESSION' },
    { name: 'product since on a u64 shard', method: 'POST', path: '/since', body: { since: [[1, 2]] }, status: 400, code: 'BAD_REQUEST', message: /^body\.since/ },
    { name: 'since not an array', method: 'POST', path: '/since', body: { since: 5 }, status: 400, code: 'BAD_REQUEST', message: /^body\.since/ },
    { name: 'negative since', method: 'POST', path: '/since', body: { since: [-1] }, status: 400, code: 'BAD_REQUEST' },
    // JSON batches
    { name: 'updates not an array', method: 'POST', path: '/batches', body: { lower: [10], upper: [20], updates: {} }, status: 400, code: 'BAD_REQUEST', message: /^body\.updates/ },
    { name: 'value of the wrong type', method: 'POST', path: '/batches', body: rows([row, { ...row, val: 'one' }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[1\]\.val/ },
    { name: 'key missing', method: 'POST', path: '/batches', body: rows([{ val: 1, time: 11, diff: 1 }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[0\]\.key: missing/ },
    { name: 'unknown row field', method: 'POST', path: '/batches', body: rows([{ ...row, extra: 1 }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[0\]\.extra/ },
    { name: 'row before lower', method: 'POST', path: '/batches', body: rows([row, row, { ...row, time: 9 }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[2\]\.time 9 is not in/ },
    { name: 'row at upper', method: 'POST', path: '/batches', body: rows([{ ...row, time: 20 }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[0\]\.time/ },
    { name: 'fractional diff', method: 'POST', path: '/batches', body: rows([{ ...row, diff: 1.5 }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[0\]\.diff/ },
    { name: 'diff beyond i64', method: 'POST', path: '/batches', body: rows([{ ...row, diff: '9223372036854775808' }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[0\]\.diff/ },
    { name: 'time beyond u64', method: 'POST', path: '/batches', body: rows([{ ...row, time: '18446744073709551616' }]), status: 400, code: 'INVALID_BATCH', message: /^body\.updates\[0\]\.time/ },
    { name: 'product lower on a u64 shard', method: 'POST', path: '/batches', body: { lower: [[10, 0]], upper: [20], updates: [] }, status: 400, code: 'INVALID_BATCH', message: /^body\.lower/ },
    { name: 'lower not a frontier', method: 'POST', path: '/batches', body: { lower: '10', upper: [20], updates: [] }, status: 400, code: 'INVALID_BATCH', message: /^body\.lower/ },
    { name: 'lower missing', method: 'POST', path: '/batches', body: { upper: [20], updates: [] }, status: 400, code: 'INVALID_BATCH', message: /^body\.lower/ },
    { name: 'upper before lower', method: 'POST', path: '/batches', body: { lower: [10], upper: [5], updates: [] }, status: 400, code: 'INVALID_BATCH', message: /^body\.upper/ },
    { name: 'expectedUpper other than lower', method: 'POST', path: '/batches', body: rows([row], { expectedUpper: [12] }), status: 400, code: 'INVALID_BATCH', message: /^body\.expectedUpper/ },
    { name: 'lower that is not the upper', method: 'POST', path: '/batches', body: { lower: [11], upper: [20], updates: [{ ...row, time: 12 }] }, status: 409, code: 'UPPER_MISMATCH' },
    { name: 'unknown body field', method: 'POST', path: '/batches', body: rows([row], { apend: false }), status: 400, code: 'BAD_REQUEST' },
    { name: 'append not a boolean', method: 'POST', path: '/batches', body: rows([row], { append: 'no' }), status: 400, code: 'BAD_REQUEST', message: /^body\.append/ },
    { name: 'not JSON', method: 'POST', path: '/batches', raw: { contentType: 'application/json', payload: '{"lower": [10' }, status: 400, code: 'BAD_REQUEST' },
    { name: 'oversized body', method: 'POST', path: '/batches', raw: { contentType: 'application/json', payload: JSON.stringify(rows(Array.from({ length: 3000 }, () => row))) }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
    { name: 'oversized Arrow body', method: 'POST', path: '/batches?lower=[10]&upper=[20]', raw: { contentType: ARROW, payload: Buffer.alloc(BODY_LIMIT + 1) }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
    { name: 'unsupported content type', method: 'POST', path: '/batches', raw: { contentType: 'text/csv', payload: 'k,v,t,d' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    // Arrow batches
    { name: 'Arrow garbage', method: 'POST', path: '/batches?lower=[10]&upper=[20]', raw: { contentType: ARROW, payload: Buffer.from('not arrow at all') }, status: 400, code: 'INVALID_BATCH', message: /^body: invalid Arrow stream/ },
    { name: 'Arrow truncated', method: 'POST', path: '/batches?lower=[10]&upper=[20]', raw: { contentType: ARROW, payload: arrowRows([{ key: 'k', val: 1n, time: 11n, diff: 1n }]).subarray(0, 150) }, status: 400, code: 'INVALID_BATCH' },
    { name: 'Arrow row outside', method: 'POST', path: '/batches?lower=[10]&upper=[20]', raw: { contentType: ARROW, payload: arrowRows([{ key: 'k', val: 1n, time: 11n, diff: 1n }, { key: 'k', val: 1n, time: 25n, diff: 1n }]) }, status: 400, code: 'INVALID_BATCH', message: /^body: row 1: time 25/ },
    { name: 'Arrow without lower', method: 'POST', path: '/batches?upper=[20]', raw: { contentType: ARROW, payload: arrowRows([]) }, status: 400, code: 'INVALID_BATCH', message: /^query\.lower/ },
    { name: 'Arrow lower not JSON', method: 'POST', path: '/batches?lower=ten&upper=[20]', raw: { contentType: ARROW, payload: arrowRows([]) }, status: 400, code: 'INVALID_BATCH', message: /^query\.lower: must be JSON/ },
    { name: 'Arrow append not a boolean', method: 'POST', path: '/batches?lower=[10]&upper=[20]&append=maybe', raw: { contentType: ARROW, payload: arrowRows([]) }, status: 400, code: 'BAD_REQUEST', message: /^query\.append/ },
    { name: 'Arrow body to /append', method: 'POST', path: '/append', raw: { contentType: ARROW, payload: arrowRows([]) }, status: 400, code: 'BAD_REQUEST' },
    // append
    { name: 'append of a non-object', method: 'POST', path: '/append', body: { batch: 5 }, status: 400, code: 'INVALID_BATCH', message: /^body\.batch must be an object/ },
    { name: 'append with bad run splits', method: 'POST', path: '/append', body: { batch: { ...batch, runSplits: [0] } }, status: 400, code: 'INVALID_BATCH', message: /runSplits/ },
    { name: 'append of a foreign part key', method: 'POST', path: '/append', body: { batch: { ...batch, parts: [{ ...batch.parts[0], key: `${OTHER_SHARD}/${batch.parts[0]!.key}` }] } }, status: 400, code: 'INVALID_BATCH', message: /another shard/ },
    { name: 'append of a traversal key', method: 'POST', path: '/append', body: { batch: { ...batch, parts: [{ ...batch.parts[0], key: '../../etc/passwd' }] } }, status: 400, code: 'INVALID_BATCH', message: /^body\.batch\.parts\[0\]\.key/ },
    { name: 'append of a missing part', method: 'POST', path: '/append', body: { batch: { ...batch, parts: [{ ...batch.parts[0], key: batch.parts[0]!.key.replace(/\/p.*$/, '/p00000000-0000-4000-8000-000000000000') }] } }, status: 400, code: 'INVALID_BATCH', message: /does not exist/ },
    { name: 'append of a part under another description', method: 'POST', path: '/append', body: { batch: { ...batch, desc: { ...batch.desc, upper: [13] } } }, status: 400, code: 'INVALID_BATCH', message: /was written with desc/ },
    { name: 'append with an unknown schema id', method: 'POST', path: '/append', body: { batch: { ...batch, runMeta: [{ order: 'structured', schemaId: 7 }] } }, status: 400, code: 'INVALID_BATCH', message: /schemaId 7/ },
    { name: 'append with inline garbage', method: 'POST', path: '/append', body: { batch: { ...batch, parts: [{ inline: { encodedSizeBytes: 3, updates: 'AAAA' } }] } }, status: 400, code: 'INVALID_BATCH', message: /not a valid part/ },
    // Last of the cases that use `batch`: it deletes the batch's parts.
    { name: 'append at a wrong upper', method: 'POST', path: '/append', body: { batch, expectedUpper: [11] }, status: 409, code: 'UPPER_MISMATCH', deletes: batch.parts.map((p) => `${id}/${p.key}`) },
    // reads
    { name: 'snapshot before since', method: 'GET', path: '/snapshot?asOf=1', status: 400, code: 'AS_OF_NOT_AVAILABLE' },
    { name: 'snapshot at upper', method: 'GET', path: '/snapshot?asOf=10', status: 400, code: 'AS_OF_NOT_AVAILABLE' },
    { name: 'snapshot at a product time', method: 'GET', path: `/snapshot?asOf=${encodeURIComponent('[3,3]')}`, status: 400, code: 'BAD_REQUEST', message: /^query\.asOf/ },
    { name: 'snapshot without asOf', method: 'GET', path: '/snapshot', status: 400, code: 'BAD_REQUEST', message: /^query\.asOf/ },
    { name: 'part with a malformed writer key', method: 'GET', path: '/parts/x/p00000000-0000-4000-8000-000000000000', status: 400, code: 'BAD_REQUEST', message: /^params\.writerKey/ },
    { name: 'part with a malformed part id', method: 'GET', path: `/parts/${batch.parts[0]!.key.split('/')[0]}/p..%2F..%2Fx`, status: 400, code: 'BAD_REQUEST', message: /^params\.partId/ },
    { name: 'unknown part', method: 'GET', path: `/parts/${batch.parts[0]!.key.split('/')[0]}/p00000000-0000-4000-8000-000000000000`, status: 404, code: 'PART_NOT_FOUND' },
    // unknown and malformed shards
    { name: 'batches of an unknown shard', method: 'POST', path: `/v1/shards/${OTHER_SHARD}/batches`, body: rows([row]), status: 404, code: 'SHARD_NOT_FOUND' },
    { name: 'snapshot of an unknown shard', method: 'GET', path: `/v1/shards/${OTHER_SHARD}/snapshot?asOf=1`, status: 404, code: 'SHARD_NOT_FOUND' },
    { name: 'gc of an unknown shard', method: 'POST', path: `/v1/shards/${OTHER_SHARD}/gc`, status: 404, code: 'SHARD_NOT_FOUND' },
    { name: 'batches of a malformed shard id', method: 'POST', path: '/v1/shards/s..%2F..%2Fetc/batches', body: rows([row]), status: 400, code: 'BAD_REQUEST', message: /^params\.shardId/ },
  ]

  async function observe(): Promise<{ seqno: number; upper: unknown; since: unknown; blobs: string[] }> {
    const res = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}` })
    const blobs: string[] = []
    for await (const m of t.services.blob.list(shardPrefix(id as ShardId))) blobs.push(m.key)
    return { seqno: res.json().seqno, upper: res.json().upper, since: res.json().since, blobs: blobs.sort() }
  }

  it('answers each with its 4xx code and changes nothing', async () => {
    const all = cases()
    assert.ok(all.length >= 50)
    for (const c of all) {
      const before = await observe()
      const url = c.path.startsWith('/v1/') ? c.path : `/v1/shards/${id}${c.path}`
      const res = await t.app.inject({
        method: c.method,
        url,
        ...(c.raw !== undefined ? { headers: { 'content-type': c.raw.contentType }, payload: c.raw.payload } : c.body !== undefined ? { payload: c.body as object } : {}),
      })
      assert.equal(res.statusCode, c.status, `${c.name}: ${res.body.slice(0, 300)}`)
      const body = res.json() as { code: string; message: string }
      assert.equal(body.code, c.code, `${c.name}: ${body.message}`)
      if (c.message !== undefined) assert.match(body.message, c.message, c.name)
      const expected = { ...before, blobs: before.blobs.filter((k) => !(c.deletes ?? []).includes(k)) }
      assert.deepEqual(await observe(), expected, `${c.name} changed the shard`)
    }
  })

  it('still serves the shard afterwards', async () => {
    const res = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=9` })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { asOf: 9, updates: [{ key: 'a', val: 1, time: 9, diff: 1 }] })
  })
})
