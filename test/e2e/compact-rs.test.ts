/**
 * The three tests of persist's compact.rs, through HTTP on a fresh app with the real executor:
 * output keeps the request's since, partial orders, and the kill switch.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { buildTestApp } from '../helper.js'

type Inject = Awaited<ReturnType<typeof buildTestApp>>['app']

async function createShard(app: Inject, timestamp: 'u64' | 'product'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp, keySchema: { type: 'utf8' }, valSchema: { type: 'utf8' } } })
  assert.equal(res.statusCode, 201, res.body)
  return res.json().shardId as string
}

async function writeBatch(app: Inject, shardId: string, lower: unknown, upper: unknown, updates: unknown[], append: boolean): Promise<unknown> {
  const res = await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/batches`, payload: { lower, upper, updates, append } })
  assert.equal(res.statusCode, 201, res.body)
  return res.json().batch
}

async function partRows(app: Inject, shardId: string, output: { parts: { key: string }[] }): Promise<unknown[]> {
  const rows: unknown[] = []
  for (const part of output.parts) {
    const res = await app.inject({ method: 'GET', url: `/v1/shards/${shardId}/parts/${part.key}` })
    assert.equal(res.statusCode, 200, res.body)
    rows.push(...(res.json().updates as unknown[]))
  }
  return rows
}

async function fresh(t: TestContext) {
  const { app } = await buildTestApp({ t })
  const patch = await app.inject({ method: 'PATCH', url: '/v1/configs', payload: { persist_blob_target_size: 100, persist_compaction_memory_bound_bytes: 400 } })
  assert.equal(patch.statusCode, 200, patch.body)
  return app
}

describe("compact.rs through HTTP", () => {
  it('keeps the request since in the output rather than the minimum', async (t) => {
    const app = await fresh(t)
    const shardId = await createShard(app, 'u64')
    const b0 = await writeBatch(app, shardId, [0], [1], [{ key: '0', val: 'zero', time: 0, diff: 1 }], false)
    const b1 = await writeBatch(app, shardId, [1], [2], [{ key: '0', val: 'zero', time: 1, diff: -1 }, { key: '1', val: 'one', time: 1, diff: 1 }], false)
    const res = await app.inject({ method: 'POST', url: '/v1/compact', payload: { shardId, desc: { lower: [0], upper: [2], since: [10] }, inputs: [b0, b1] } })
    assert.equal(res.statusCode, 200, res.body)
    const output = res.json().output
    assert.deepEqual(output.desc, { lower: [0], upper: [2], since: [10] })
    assert.equal(output.len, 1)
    assert.equal(output.parts.length, 1)
    assert.deepEqual(await partRows(app, shardId, output), [{ key: '1', val: 'one', time: 10, diff: 1 }])
  })

  it('compacts product timestamps with a two-element frontier', async (t) => {
    const app = await fresh(t)
    const shardId = await createShard(app, 'product')
    const mid = [[0, 11], [10, 0]]
    const b0 = await writeBatch(app, shardId, [[0, 0]], mid, [{ key: '0', val: 'zero', time: [0, 10], diff: 1 }], false)
    const b1 = await writeBatch(app, shardId, mid, [[10, 1]], [{ key: '1', val: 'one', time: [10, 0], diff: 1 }], false)
    const res = await app.inject({ method: 'POST', url: '/v1/compact', payload: { shardId, desc: { lower: [[0, 0]], upper: [[10, 1]], since: [[10, 0]] }, inputs: [b0, b1] } })
    assert.equal(res.statusCode, 200, res.body)
    const output = res.json().output
    assert.deepEqual(output.desc.since, [[10, 0]])
    assert.equal(output.len, 2)
    assert.equal(output.parts.length, 1)
    assert.deepEqual(await partRows(app, shardId, output), [
      { key: '0', val: 'zero', time: [10, 10], diff: 1 },
      { key: '1', val: 'one', time: [10, 0], diff: 1 },
    ])
  })

  it('obeys the kill switch, and ignores it once the check flag is off', async (t) => {
    const app = await fresh(t)
    const shardId = await createShard(app, 'u64')
    await writeBatch(app, shardId, [0], [1], [{ key: '0', val: 'zero', time: 0, diff: 1 }], true)
    await writeBatch(app, shardId, [1], [2], [{ key: '0', val: 'zero', time: 1, diff: -1 }, { key: '1', val: 'one', time: 1, diff: 1 }], true)
    const configs = async (payload: Record<string, unknown>) => {
      const r = await app.inject({ method: 'PATCH', url: '/v1/configs', payload })
      assert.equal(r.statusCode, 200, r.body)
    }
    await configs({ persist_compaction_heuristic_min_inputs: 1 })
    await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/since`, payload: { since: [10] } })
    const submit = (upper: number, since: number) =>
      app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { desc: { lower: [0], upper: [upper], since: [since] }, major: true, wait: true } })

    await configs({ compaction_process_requests: false })
    const disabled = await submit(2, 10)
    assert.equal(disabled.statusCode, 503, disabled.body)
    assert.deepEqual(disabled.json().error, { code: 'COMPACTION_DISABLED', message: 'compaction disabled' })
    assert.equal(disabled.json().status, 'failed')

    await configs({ compaction_process_requests: true })
    const enabled = await submit(2, 10)
    assert.equal(enabled.statusCode, 200, enabled.body)
    assert.equal(enabled.json().status, 'succeeded')

    await writeBatch(app, shardId, [2], [3], [{ key: '2', val: 'two', time: 2, diff: 1 }], true)
    await writeBatch(app, shardId, [3], [4], [{ key: '2', val: 'two', time: 3, diff: -1 }, { key: '3', val: 'three', time: 3, diff: 1 }], true)
    await configs({ persist_compaction_check_process_flag: false, compaction_process_requests: false })
    await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/since`, payload: { since: [20] } })
    const ignored = await submit(4, 20)
    assert.equal(ignored.statusCode, 200, ignored.body)
    assert.equal(ignored.json().status, 'succeeded')

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
    assert.match(metrics, /^persist_compaction_disabled_total 1$/m)
    // Appends' merge requests also become (maintenance) compactions, so `started` is at least 2.
    assert.ok(Number(/^persist_compaction_started_total (\d+)$/m.exec(metrics)?.[1]) >= 2)
  })
})
