/**
 * Which batches a snapshot reads (snapshot.ts `snapshotBatches`): those whose lower is at or below
 * the asOf, for totally and partially ordered times; and snapshots that skip later batches still
 * answer every update at or before the asOf.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { ShardId } from '../../src/core/ids.js'
import { snapshotBatches } from '../../src/shard/snapshot.js'
import { makeHarness, type Harness } from './harness.js'

describe('snapshotBatches', () => {
  let h: Harness
  before(async () => {
    h = await makeHarness()
  })
  after(async () => {
    await h.close()
  })

  const state = async (id: ShardId) => {
    const v = await h.machine.head(id)
    assert.ok(v !== null)
    return v.state
  }
  const lowers = (batches: ReturnType<typeof snapshotBatches>): string[] => batches.map((b) => JSON.stringify(b.desc.lower, (_, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)))

  it('u64: reads the batches whose lower is ≤ asOf, never those appended after it', async () => {
    const id = (await h.shards.create({ name: 'later-batches', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    for (const [lower, key] of [[0, 'a'], [10, 'b'], [20, 'c']] as const) {
      await h.shards.writeBatch(id, { kind: 'json', lower: [lower], upper: [lower + 10], updates: [{ key, val: 1, time: lower + 1, diff: 1 }] })
    }
    const s = await state(id)
    assert.deepEqual(lowers(snapshotBatches(s, 5n)), ['[0]'])
    assert.deepEqual(lowers(snapshotBatches(s, 9n)), ['[0]'])
    assert.deepEqual(lowers(snapshotBatches(s, 10n)), ['[0]', '[10]'], 'a lower equal to the asOf counts')
    assert.deepEqual(lowers(snapshotBatches(s, 29n)), ['[0]', '[10]', '[20]'])
    // The answers: every update at or before the asOf, advanced to it.
    const rows = async (asOf: number): Promise<unknown> => {
      const read = await h.shards.snapshot(id, asOf, { format: 'json' })
      try {
        let text = ''
        for await (const c of read.body) text += Buffer.from(c.bytes).toString('utf8')
        return (JSON.parse(text) as { updates: unknown[] }).updates
      } finally {
        read.release()
      }
    }
    assert.deepEqual(await rows(5), [{ key: 'a', val: 1, time: 5, diff: 1 }])
    assert.deepEqual(await rows(11), [
      { key: 'a', val: 1, time: 11, diff: 1 },
      { key: 'b', val: 1, time: 11, diff: 1 },
    ])
  })

  it('product: reads a batch when some element of its lower is ≤ asOf in the partial order', async () => {
    const id = (await h.shards.create({ name: 'product-batches', timestamp: 'product', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await h.shards.writeBatch(id, { kind: 'json', lower: [[0, 0]], upper: [[5, 0]], updates: [{ key: 'a', val: 1, time: [1, 7], diff: 1 }] })
    await h.shards.writeBatch(id, { kind: 'json', lower: [[5, 0]], upper: [[9, 0]], updates: [{ key: 'b', val: 1, time: [6, 1], diff: 1 }] })
    const s = await state(id)
    assert.deepEqual(lowers(snapshotBatches(s, [3, 10])), ['[[0,0]]'], '(5,0) is not ≤ (3,10)')
    assert.deepEqual(lowers(snapshotBatches(s, [6, 0])), ['[[0,0]]', '[[5,0]]'])
  })
})
