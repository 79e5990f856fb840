/**
 * Snapshot reads read parts and record batch windows into reused shared slots (snapshot.ts): a
 * read gives back every slot it was lent once its merge is over, whether its body was read to
 * the end or abandoned after the first chunk; the next read reuses them; and the rows are the
 * shard's.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import type { ShardId } from '../../src/core/ids.js'
import { snapshotInputSlots } from '../../src/shard/snapshot.js'
import { collect, makeHarness, snapshotDocument, until, type Harness } from './harness.js'

const RUNS = 3
const ROWS = 100_000

describe('snapshot reads into reused slots', () => {
  let h: Harness
  let id: ShardId
  const expected = new Map<string, number>()
  before(async () => {
    // Every part in blob storage, and read in windows where it has several record batches.
    h = await makeHarness({ service: { snapshotTuning: { windowMinBytes: 0 } } })
    // Small parts: many per run, so that a read abandoned early leaves parts read ahead untaken.
    await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0, persist_blob_target_size: 32 * 1024 })
    id = (await h.shards.create({ name: 'slots', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    // Runs whose keys interleave (so the read merges them), with some updates that cancel.
    for (let r = 0; r < RUNS; r++) {
      const updates = Array.from({ length: ROWS }, (_, i) => ({ key: `key-${String(i * RUNS + (r % 2 === 0 ? r : 0)).padStart(8, '0')}`, val: 1, time: r, diff: r === 1 && i % 3 === 0 ? -1 : 1 }))
      for (const u of updates) expected.set(u.key, (expected.get(u.key) ?? 0) + u.diff)
      await h.shards.writeBatch(id, { kind: 'json', lower: [r], upper: [r + 1], updates })
    }
    for (const [k, d] of [...expected]) if (d === 0) expected.delete(k)
  })
  after(async () => {
    await h.close()
  })

  it('a read to the end gives its slots back, and the next read reuses them', async () => {
    const read = await h.shards.snapshot(id, RUNS - 1, { format: 'json' })
    const doc = await snapshotDocument(read.body)
    const rows = doc.updates as { key: string; diff: number | string }[]
    assert.equal(rows.length, expected.size)
    for (const r of rows) assert.equal(Number(r.diff), expected.get(r.key), r.key)
    await until('every slot given back', () => snapshotInputSlots().lent === 0)
    const kept = snapshotInputSlots().size
    assert.ok(kept > 0, 'the read borrowed slots')
    const again = await h.shards.snapshot(id, RUNS - 1, { format: 'arrow' })
    const table = arrow.tableFromIPC((await collect(again.body)).map((c) => c.bytes))
    assert.equal(table.numRows, expected.size)
    await until('every slot given back', () => snapshotInputSlots().lent === 0)
    assert.equal(snapshotInputSlots().size, kept, 'the same slots, reused')
  })

  it('an abandoned read gives its slots back too', async () => {
    const read = await h.shards.snapshot(id, RUNS - 1, { format: 'json' })
    const body = read.body[Symbol.asyncIterator]()
    const first = await body.next()
    assert.equal(first.done, false)
    assert.ok(first.value.last === false, 'the body has more than one chunk')
    await body.return?.(undefined)
    await until('every slot given back or forgotten', () => snapshotInputSlots().lent === 0)
    // The slots it still held when it stopped are forgotten, the others kept for the next read.
    const next = await h.shards.snapshot(id, RUNS - 1, { format: 'json' })
    assert.equal((await snapshotDocument(next.body)).updates.length, expected.size)
    await until('every slot given back', () => snapshotInputSlots().lent === 0)
  })
})
