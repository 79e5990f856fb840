/**
 * Snapshot reads split by key between two workers (snapshot.ts `splitRead`), on file storage with
 * parts read in windows, as on a machine of 8 cores: the body is the shard's rows once each,
 * sorted, in either format; the budget of chunks read ahead is taken while the read runs and given
 * back when it ends, is abandoned, or fails because a worker died; and the slots are given back
 * too. With no core to spare (2 cores, 2 workers) the same read is not split.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import type { ShardId } from '../../src/core/ids.js'
import { isAppError } from '../../src/errors.js'
import { WorkerPool } from '../../src/engine/worker-pool.js'
import { FileBlob } from '../../src/location/file-blob.js'
import { snapshotAheadBytes, snapshotInputSlots } from '../../src/shard/snapshot.js'
import { makeHarness, until, type Harness } from './harness.js'

/** A body's bytes, and the most of the split reads' budget reserved while it was read. */
async function readAll(body: AsyncIterable<{ readonly bytes: Uint8Array }>): Promise<{ bytes: Buffer; held: number }> {
  const chunks: Uint8Array[] = []
  let held = 0
  for await (const c of body) {
    held = Math.max(held, snapshotAheadBytes())
    chunks.push(c.bytes)
  }
  return { bytes: Buffer.concat(chunks), held }
}

const RUNS = 4
// Enough rows that each key range is several chunks: a range cannot finish before its body is read.
const ROWS = 120_000

describe('snapshot reads split by key', () => {
  let dir: string
  let pool: WorkerPool
  let h: Harness
  let id: ShardId
  const expected = new Map<string, number>()
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'snapshot-split-'))
    pool = new WorkerPool(2)
    await pool.loaded()
    h = await makeHarness({ blob: new FileBlob(join(dir, 'blob')), service: { pool: () => pool, snapshotTuning: { windowMinBytes: 0, splitMinBytes: 0, cores: 8 } } })
    await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0, persist_blob_target_size: 256 * 1024 })
    id = (await h.shards.create({ name: 'split', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    // Runs whose keys interleave, with updates that cancel, some of them across the runs.
    for (let r = 0; r < RUNS; r++) {
      const updates = Array.from({ length: ROWS }, (_, i) => ({ key: `key-${String(i * 2 + (r % 2)).padStart(8, '0')}`, val: 1, time: r, diff: r >= 2 && i % 3 === 0 ? -1 : 1 }))
      for (const u of updates) expected.set(u.key, (expected.get(u.key) ?? 0) + u.diff)
      await h.shards.writeBatch(id, { kind: 'json', lower: [r], upper: [r + 1], updates })
    }
    for (const [k, d] of [...expected]) if (d === 0) expected.delete(k)
  })
  after(async () => {
    await h?.close()
    await pool?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('a JSON body: every row once, sorted, the budget held while it runs and given back', async () => {
    const { bytes, held } = await readAll((await h.shards.snapshot(id, RUNS - 1, { format: 'json' })).body)
    assert.ok(held > 0, 'the read was split')
    const doc = JSON.parse(bytes.toString('utf8')) as { asOf: unknown; updates: { key: string; diff: string | number }[] }
    assert.equal(doc.asOf, RUNS - 1)
    assert.equal(doc.updates.length, expected.size)
    for (let i = 0; i < doc.updates.length; i++) {
      const u = doc.updates[i]!
      assert.equal(Number(u.diff), expected.get(u.key), u.key)
      if (i > 0) assert.ok(doc.updates[i - 1]!.key < u.key, `sorted at ${i}`)
    }
    await until('the budget given back', () => snapshotAheadBytes() === 0)
    await until('every slot given back', () => snapshotInputSlots().lent === 0)
  })

  it('an Arrow body: one stream of every row once, sorted', async () => {
    const { bytes, held } = await readAll((await h.shards.snapshot(id, RUNS - 1, { format: 'arrow' })).body)
    assert.ok(held > 0, 'the read was split')
    const messages = new arrow.MessageReader(bytes)
    let schemas = 0
    for (let m = messages.readMessage(); m !== null; m = messages.readMessage()) {
      if (m.isSchema()) schemas++
      messages.readMessageBody(m.bodyLength)
    }
    assert.equal(schemas, 1, 'one schema message')
    const table = arrow.tableFromIPC(bytes)
    assert.equal(table.numRows, expected.size)
    const keys = table.getChild('k')!.toArray() as string[]
    const diffs = table.getChild('d')!.toArray() as BigInt64Array
    for (let i = 0; i < keys.length; i++) {
      assert.equal(Number(diffs[i]), expected.get(keys[i]!), keys[i])
      if (i > 0) assert.ok(keys[i - 1]! < keys[i]!, `sorted at ${i}`)
    }
    await until('the budget given back', () => snapshotAheadBytes() === 0)
  })

  it('an abandoned split read gives back its budget and its slots', async () => {
    const read = await h.shards.snapshot(id, RUNS - 1, { format: 'json' })
    const body = read.body[Symbol.asyncIterator]()
    const first = await body.next()
    assert.equal(first.done, false)
    assert.ok(snapshotAheadBytes() > 0, 'the read was split')
    await body.return?.(undefined)
    await givenBackAndWhole()
  })

  it('is not split when both workers would leave no core to spare', async () => {
    const two = await makeHarness({ blob: h.blob, consensus: h.consensus, service: { pool: () => pool, snapshotTuning: { windowMinBytes: 0, splitMinBytes: 0, cores: 2 } } })
    try {
      const read = await two.shards.snapshot(id, RUNS - 1, { format: 'json' })
      let rows = 0
      for await (const c of read.body) {
        assert.equal(snapshotAheadBytes(), 0, 'not split')
        rows += c.rows
      }
      assert.equal(rows, expected.size)
    } finally {
      await two.shards.stop()
      await two.dyncfg.stop()
    }
  })

  it('a split read whose worker dies fails as INTERNAL, and gives back its budget', async () => {
    const read = await h.shards.snapshot(id, RUNS - 1, { format: 'arrow' })
    const body = read.body[Symbol.asyncIterator]()
    assert.equal((await body.next()).done, false)
    // NB: the lower range cannot have finished: it waits for this body to take its chunks.
    assert.ok(pool.crashBusyWorker(), 'a worker was running the read')
    await assert.rejects(
      (async () => {
        for (let c = await body.next(); c.done !== true; c = await body.next());
      })(),
      (err: unknown) => isAppError(err) && err.code === 'INTERNAL' && /worker thread serving this read stopped/.test(err.message),
    )
    await givenBackAndWhole()
  })

  /** After a read that did not end well: its budget and slots are given back, and the next read is complete. */
  async function givenBackAndWhole(): Promise<void> {
    await until('the budget given back', () => snapshotAheadBytes() === 0)
    await until('every slot given back or forgotten', () => snapshotInputSlots().lent === 0)
    const next = await h.shards.snapshot(id, RUNS - 1, { format: 'json' })
    let rows = 0
    for await (const c of next.body) rows += c.rows
    assert.equal(rows, expected.size)
  }
})
