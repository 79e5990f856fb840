/**
 * The compaction timeout (docs/compaction.md#timeout):
 * `max(persist_compaction_minimum_timeout, 1 s per whole MiB of input)`, as the dry run reports it,
 * and a real timeout on the real stack: a compaction held at its first input read past a 1 ms
 * timeout ends `failed` with TIMED_OUT, counted as both `timed_out` and `failed`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  GATED,
  RECENT,
  appendOneRowBatches,
  blobKeys,
  countDelta,
  createShard,
  dryRun,
  e2eApp,
  getShard,
  inject,
  patchConfigs,
  scrape,
  submit,
  writeBatch,
  type BatchJson,
  type CompactionJson,
} from './support.js'

const MIB = 1024 * 1024

describe('compaction timeout', () => {
  it('dry run: max(minimum timeout, 1 s per whole MiB of all inputs), following PATCHed minimums', async (t) => {
    const { app } = await e2eApp(t)
    const shardId = await createShard(app)
    // Blob parts: their declared sizes are what the timeout counts (inline sizes are recomputed).
    await patchConfigs(app, { persist_inline_writes_single_max_bytes: 0 })
    const b0 = await writeBatch(app, shardId, 0, 1, [{ key: 'a', val: 'v', time: 0, diff: 1 }], false)
    const b1 = await writeBatch(app, shardId, 1, 2, [{ key: 'b', val: 'v', time: 1, diff: 1 }], false)
    const sized = (b: BatchJson, bytes: number): BatchJson => ({ ...b, parts: b.parts.map((p) => ({ ...p, encodedSizeBytes: bytes })) })
    const timeout = async (sizes: readonly number[]): Promise<number> => {
      const inputs = [sized(b0, sizes[0] as number), ...(sizes.length > 1 ? [sized(b1, sizes[1] as number)] : [])]
      const plan = await dryRun(app, shardId, { desc: { lower: [0], upper: [inputs.length] }, inputs })
      return plan.timeoutMs
    }

    assert.equal(await timeout([1.5 * MIB, 1.5 * MIB]), 90_000, 'the default minimum, 90 s')
    await patchConfigs(app, { persist_compaction_minimum_timeout: '1s' })
    // Whole MiB of the sum (3), not the sum of each input's whole MiB (1 + 1).
    assert.equal(await timeout([1.5 * MIB, 1.5 * MIB]), 3000)
    assert.equal(await timeout([MIB - 1, 0]), 1000)
    assert.equal(await timeout([2 * MIB, MIB - 1]), 2000)
    assert.equal(await timeout([7 * MIB + 5, 0]), 7000)
    await patchConfigs(app, { persist_compaction_minimum_timeout: 5000 })
    const cfg = await inject(app, { method: 'GET', url: '/v1/configs/persist_compaction_minimum_timeout' }, 200)
    assert.equal(cfg.json().value, '5s')
    assert.equal(await timeout([1.5 * MIB, 1.5 * MIB]), 5000)
    assert.equal(await timeout([7 * MIB + 5, 0]), 7000)
    await patchConfigs(app, { persist_compaction_minimum_timeout: '1500ms' })
    assert.equal(await timeout([MIB - 1]), 1500)
    assert.equal(await timeout([2 * MIB]), 2000)
  })

  it('a compaction that cannot finish in time fails with TIMED_OUT: 504 when waited, timed_out and failed +1', GATED, async (t) => {
    const { app, services, blob } = await e2eApp(t)
    const shardId = await createShard(app)
    await patchConfigs(app, { persist_inline_writes_single_max_bytes: 0 })
    await appendOneRowBatches(app, shardId, 2)
    await patchConfigs(app, { persist_compaction_heuristic_min_inputs: 1, persist_compaction_minimum_timeout: '1ms' })
    const trace = (await getShard(app, shardId)).trace
    const keys = await blobKeys(services, shardId)
    blob.hold((key) => key.startsWith(`${shardId}/`))
    const before = await scrape(app)

    const res = await submit(app, shardId, { desc: { lower: [0], upper: [1] }, wait: true })
    assert.equal(res.statusCode, 504, res.body)
    const c = res.json() as CompactionJson
    assert.equal(c.status, 'failed')
    assert.equal(c.error?.code, 'TIMED_OUT')
    assert.equal(c.timeoutMs, 1)
    assert.equal(c.result, undefined)
    assert.equal(c.output, undefined)
    assert.deepEqual((await inject(app, { method: 'GET', url: `/v1/compactions/${c.id}` }, 200)).json(), c)

    // NB: whether Stage D entered its first chunk before the 1 ms timer fired is a race; the rest is exact.
    const { chunks_compacted: chunks = 0, runs_compacted: runs = 0, ...delta } = countDelta(before, await scrape(app))
    assert.deepEqual(delta, { requested: 1, started: 1, timed_out: 1, failed: 1, [RECENT]: 1 })
    assert.ok(chunks === 0 || chunks === 1, `chunks_compacted ${chunks}`)
    assert.equal(runs, chunks)
    assert.deepEqual(await blobKeys(services, shardId), keys, 'nothing written is left behind')
    assert.deepEqual((await getShard(app, shardId)).trace, trace)
  })
})
