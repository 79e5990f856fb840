/**
 * Validation first (docs/compaction.md#submission-and-validation): every invalid request is 422
 * INVALID_COMPACTION with nothing queued and only `persist_compaction_rejected_total` moving, on
 * the queued endpoint, its dry run and `POST /v1/compact` alike; an unknown shard is 404 and a
 * malformed body 400, moving no counter at all.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, it, type TestContext } from 'node:test'
import type { InjectOptions } from 'fastify'
import { countDelta, createShard, e2eApp, patchConfigs, scrape, writeBatch, type BatchJson, type Json } from './support.js'

/** An appended shard `[0, 3)` of three one-part blob batches, and the same ranges written unappended. */
async function setup(t: TestContext) {
  const e = await e2eApp(t)
  const shardId = await createShard(e.app)
  await patchConfigs(e.app, { persist_inline_writes_single_max_bytes: 0 })
  const b: BatchJson[] = []
  for (let i = 0; i < 3; i++) b.push(await writeBatch(e.app, shardId, i, i + 1, [{ key: `k${i}`, val: 'v', time: i, diff: 1 }], false))
  for (const batch of b) {
    const res = await e.app.inject({ method: 'POST', url: `/v1/shards/${shardId}/append`, payload: { batch } })
    assert.equal(res.statusCode, 201, res.body)
  }
  await patchConfigs(e.app, { persist_compaction_heuristic_min_inputs: 1 })
  return { ...e, shardId, b: b as [BatchJson, BatchJson, BatchJson] }
}

const clone = <T>(v: T): T => structuredClone(v)

describe('validation', () => {
  it('every invalid request is 422 INVALID_COMPACTION on all three entry points, and only rejected moves', async (t) => {
    const { app, services, shardId, b } = await setup(t)
    const other = await createShard(app)
    const [b0, b1, b2] = b
    const key = b0.parts[0]?.key as string
    assert.match(key, /^w[^/]+\/p/)

    const sinceAhead = clone(b1)
    sinceAhead.desc.since = [5]
    const foreignKey = clone(b0)
    ;(foreignKey.parts[0] as { key: string }).key = `${other}/${key}`
    const unknownSchema = clone(b0)
    unknownSchema.runMeta = [{ order: 'structured', schemaId: 7 }]
    const missingPart = clone(b0)
    const missingKey = key.replace(/\/p[0-9a-f]{8}/, '/p00000000')
    ;(missingPart.parts[0] as { key: string }).key = missingKey

    const cases: [string, Json, RegExp][] = [
      ['non-consecutive inputs', { desc: { lower: [0], upper: [3] }, inputs: [b0, b2] }, /non-consecutive/],
      ['inputs short of desc.upper', { desc: { lower: [0], upper: [3] }, inputs: [b0, b1] }, /non-consecutive/],
      ['since behind an input since', { desc: { lower: [0], upper: [3], since: [3] }, inputs: [b0, sinceAhead, b2] }, /since/],
      ['a part key of another shard', { desc: { lower: [0], upper: [1] }, inputs: [foreignKey] }, /another shard/],
      ['an unknown schema id in runMeta', { desc: { lower: [0], upper: [1] }, inputs: [unknownSchema] }, /schemaId 7/],
      ['an unknown writerSchemaId', { desc: { lower: [0], upper: [1] }, inputs: [b0], writerSchemaId: 7 }, /writerSchemaId 7/],
      ['no inputs', { desc: { lower: [0], upper: [1] }, inputs: [] }, /at least one input/],
      ['a part the shard does not have', { desc: { lower: [0], upper: [1] }, inputs: [missingPart] }, new RegExp(`inputs\\[0\\]\\.parts\\[0\\]: part ${missingKey} is not in the blob storage`)],
      ['no exact tiling (beyond the upper)', { desc: { lower: [0], upper: [5] } }, /tile/],
      ['no exact tiling (an empty range)', { desc: { lower: [1], upper: [1] } }, /tile/],
    ]
    const recorded = (await services.compactor.list()).compactions.length
    const before = await scrape(app)
    let rejected = 0
    for (const [name, body, message] of cases) {
      const entries: InjectOptions[] = [
        { method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: body },
        { method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { ...body, dryRun: true } },
        { method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { ...body, wait: true } },
      ]
      if (body.inputs !== undefined) entries.push({ method: 'POST', url: '/v1/compact', payload: { shardId, ...body, desc: { since: [0], ...(body.desc as Json) } } })
      for (const opts of entries) {
        const res = await app.inject(opts)
        assert.equal(res.statusCode, 422, `${name} (${opts.url as string}): ${res.body}`)
        assert.equal(res.json().code, 'INVALID_COMPACTION', name)
        assert.match(res.json().message as string, message, name)
        rejected++
      }
    }
    assert.deepEqual(countDelta(before, await scrape(app)), { rejected })
    assert.equal((await services.compactor.list()).compactions.length, recorded, 'nothing queued or recorded')
  })

  it('a part lost from blob storage fails a compaction of the trace with DATA_LOSS, not INTERNAL', async (t) => {
    const { app, services, shardId, b } = await setup(t)
    const key = b[1].parts[0]?.key as string
    await services.blob.delete(`${shardId}/${key}`)
    const res = await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { major: true, wait: true } })
    assert.ok(res.statusCode < 600)
    const c = res.json() as { status: string; error?: { code: string; message: string } }
    assert.equal(c.status, 'failed', res.body)
    assert.equal(c.error?.code, 'DATA_LOSS')
    assert.match(c.error?.message ?? '', new RegExp(`part ${key} of shard ${shardId} is in the shard's state but missing from blob storage`))
  })

  it('404 for an unknown shard, 400 for malformed bodies; no counter moves', async (t) => {
    const { app, services, shardId, b } = await setup(t)
    const unknown = `s${randomUUID()}`
    const recorded = (await services.compactor.list()).compactions
    const before = await scrape(app)
    const notFound: InjectOptions[] = [
      { method: 'POST', url: `/v1/shards/${unknown}/compactions`, payload: {} },
      { method: 'POST', url: `/v1/shards/${unknown}/compactions`, payload: { dryRun: true } },
      { method: 'POST', url: '/v1/compact', payload: { shardId: unknown, desc: b[0].desc, inputs: [b[0]] } },
    ]
    for (const opts of notFound) {
      const res = await app.inject(opts)
      assert.equal(res.statusCode, 404, res.body)
      assert.equal(res.json().code, 'SHARD_NOT_FOUND')
    }
    const url = `/v1/shards/${shardId}/compactions`
    const malformed: [string, InjectOptions][] = [
      ['unknown field', { method: 'POST', url, payload: { foo: 1 } }],
      ['inputs not an array', { method: 'POST', url, payload: { inputs: 'x' } }],
      ['desc.lower not an antichain', { method: 'POST', url, payload: { desc: { lower: 5, upper: [1] } } }],
      ['a product time on a u64 shard', { method: 'POST', url, payload: { desc: { lower: [[0, 1]], upper: [1] } } }],
      ['wait not a boolean', { method: 'POST', url, payload: { wait: 'yes' } }],
      ['a bad deadline', { method: 'POST', url, payload: { deadline: '1.5s' } }],
      ['a batch without len', { method: 'POST', url, payload: { desc: { lower: [0], upper: [1] }, inputs: [{ ...b[0], len: undefined }] } }],
      ['a bad run order', { method: 'POST', url, payload: { inputs: [{ ...b[0], runMeta: [{ order: 'sorted' }] }] } }],
      ['not JSON', { method: 'POST', url, payload: '{"desc":', headers: { 'content-type': 'application/json' } }],
      ['a malformed shard id', { method: 'POST', url: '/v1/shards/not-a-shard/compactions', payload: {} }],
      ['compact without desc', { method: 'POST', url: '/v1/compact', payload: { shardId, inputs: [b[0]] } }],
    ]
    for (const [name, opts] of malformed) {
      const res = await app.inject(opts)
      assert.equal(res.statusCode, 400, `${name}: ${res.body}`)
      assert.equal(res.json().code, 'BAD_REQUEST', name)
    }
    assert.deepEqual(countDelta(before, await scrape(app)), {})
    assert.deepEqual((await services.compactor.list()).compactions, recorded, 'nothing queued or recorded')
  })
})
