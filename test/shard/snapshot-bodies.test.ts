import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { newShardId, type ShardId } from '../../src/core/ids.js'
import type { BodyChunk } from '../../src/engine/read-task.js'
import type { TransferListItem } from 'node:worker_threads'
import type { TaskStart } from '../../src/engine/protocol.js'
import { WorkerPool, type TaskHandlers } from '../../src/engine/worker-pool.js'
import { SnapshotBodies, type SnapshotBodyKey } from '../../src/shard/snapshot-bodies.js'
import { collect, makeHarness, snapshotDocument, type Harness } from './harness.js'

const chunk = (text: string, last = true): BodyChunk => ({ bytes: new TextEncoder().encode(text), rows: 1, last })

async function* chunks(...cs: BodyChunk[]): AsyncGenerator<BodyChunk> {
  for (const c of cs) yield c
}

const text = (c: BodyChunk | null): string | null => (c === null ? null : new TextDecoder().decode(c.bytes))

describe('SnapshotBodies', () => {
  const shardId = newShardId()
  const key: SnapshotBodyKey = { shardId, seqno: 3, asOf: '5', format: 'json', order: 'structured' }

  it('keeps a body of one chunk under exactly its key, once it was read to its end', async () => {
    const b = new SnapshotBodies()
    assert.equal(b.get(key), null)
    const read = b.remember(key, chunks(chunk('{"one"}')))
    assert.equal(b.get(key), null, 'nothing before the worker finished the chunk')
    assert.deepEqual((await collect(read)).map(text), ['{"one"}'])
    assert.equal(text(b.get(key)), '{"one"}')
    for (const other of [{ seqno: 4 }, { asOf: '6' }, { format: 'arrow' as const }, { order: 'codec' as const }, { shardId: newShardId() }]) {
      assert.equal(b.get({ ...key, ...other }), null, JSON.stringify(other))
    }
  })

  it('begin/inFlight: waiters get what the read kept, or null when it kept nothing', async () => {
    const b = new SnapshotBodies({ maxBodyBytes: 4 })
    assert.equal(b.inFlight(key), null)
    const settle = b.begin(key)
    const waiting = b.inFlight(key)
    assert.ok(waiting !== null)
    assert.deepEqual(await collect(b.remember(key, chunks(chunk('ab')), settle)).then((cs) => cs.map(text)), ['ab'])
    assert.equal(text(await waiting), 'ab')
    assert.equal(b.inFlight(key), null, 'settled: no longer in flight')
    const other = { ...key, seqno: 9 }
    const settleBig = b.begin(other)
    const waitingBig = b.inFlight(other)
    await collect(b.remember(other, chunks(chunk('abcdef')), settleBig))
    assert.equal(await waitingBig, null, 'too big: the waiters read themselves')
    const third = { ...key, seqno: 10 }
    const settleAbandoned = b.begin(third)
    const waitingAbandoned = b.inFlight(third)
    const it = b.remember(third, chunks(chunk('a', false), chunk('b')), settleAbandoned)
    await it.next()
    await it.return(undefined)
    assert.equal(await waitingAbandoned, null)
    assert.equal(new SnapshotBodies({ maxBytes: 0 }).begin(key) !== null && new SnapshotBodies({ maxBytes: 0 }).inFlight(key), null)
  })

  it('keeps a copy: the chunk handed on may be reused without changing what is kept', async () => {
    const b = new SnapshotBodies()
    const c = chunk('abc')
    await collect(b.remember(key, chunks(c)))
    c.bytes.fill(0)
    assert.equal(text(b.get(key)), 'abc')
  })

  it('keeps no body of several chunks, none over the body bound, none of a failed read', async () => {
    const b = new SnapshotBodies({ maxBodyBytes: 4 })
    await collect(b.remember(key, chunks(chunk('ab', false), chunk('cd'))))
    assert.equal(b.get(key), null)
    await collect(b.remember(key, chunks(chunk('abcde'))))
    assert.equal(b.get(key), null)
    async function* failing(): AsyncGenerator<BodyChunk> {
      yield await Promise.reject(new Error('store down'))
    }
    await assert.rejects(collect(b.remember(key, failing())), /store down/)
    assert.equal(b.get(key), null)
    assert.equal(b.bytes, 0)
  })

  it('stays within its bytes, dropping the least recently used first', async () => {
    const b = new SnapshotBodies({ maxBodyBytes: 4, maxBytes: 8 })
    const k = (seqno: number): SnapshotBodyKey => ({ ...key, seqno })
    for (const s of [1, 2]) await collect(b.remember(k(s), chunks(chunk('xxxx'))))
    assert.ok(b.get(k(1)) !== null, 'used: now the most recent')
    await collect(b.remember(k(3), chunks(chunk('yyyy'))))
    assert.equal(b.bytes, 8)
    assert.equal(b.get(k(2)), null)
    assert.ok(b.get(k(1)) !== null && b.get(k(3)) !== null)
    assert.equal(new SnapshotBodies({ maxBytes: 0 }).bytes, 0)
    const none = new SnapshotBodies({ maxBytes: 0 })
    await collect(none.remember(key, chunks(chunk('a'))))
    assert.equal(none.get(key), null)
  })
})

/** A worker pool that counts the tasks it is given. */
class CountingPool extends WorkerPool {
  tasks = 0
  override run<R>(task: TaskStart, handlers: TaskHandlers<R>, opts?: { transfer?: TransferListItem[]; signal?: AbortSignal }): Promise<R> {
    this.tasks++
    return super.run(task, handlers, opts)
  }
}

describe('Shards.snapshot with kept bodies', () => {
  let h: Harness
  const pool = new CountingPool(1)
  before(async () => {
    h = await makeHarness({ service: { pool } })
  })
  after(async () => {
    await h.close()
    await pool.close()
  })

  const rows = async (id: ShardId, asOf: unknown, format: 'json' | 'arrow' = 'json'): Promise<{ text: string; seqno: number }> => {
    const read = await h.shards.snapshot(id, asOf, { format })
    const parts = await collect(read.body)
    read.release()
    return { text: Buffer.concat(parts.map((p) => p.bytes)).toString(format === 'json' ? 'utf8' : 'base64'), seqno: read.seqno }
  }

  it('answers a read of the same version and asOf from the body of the last, without a task, byte for byte', async () => {
    const id = (await h.shards.create({ name: 'kept', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [10], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] })
    const first = await rows(id, 5)
    const tasks = pool.tasks
    const again = await rows(id, 5)
    assert.equal(pool.tasks, tasks, 'the second read ran no worker task')
    assert.deepEqual(again, first)
    assert.deepEqual(JSON.parse(again.text), { asOf: 5, updates: [{ key: 'a', val: 1, time: 5, diff: 1 }] })

    // Another asOf or format is another body: a task each.
    assert.deepEqual(JSON.parse((await rows(id, 6)).text).updates, [{ key: 'a', val: 1, time: 6, diff: 1 }])
    await rows(id, 5, 'arrow')
    assert.equal(pool.tasks, tasks + 2)

    // A write makes a new version: its reads see the new row, never the body kept for the old one.
    await h.shards.writeBatch(id, { kind: 'json', lower: [10], upper: [20], updates: [{ key: 'b', val: 2, time: 11, diff: 1 }] })
    const afterWrite = pool.tasks
    const later = await rows(id, 15)
    assert.deepEqual(JSON.parse(later.text).updates, [
      { key: 'a', val: 1, time: 15, diff: 1 },
      { key: 'b', val: 2, time: 15, diff: 1 },
    ])
    const sameAsOf = await rows(id, 5)
    assert.notEqual(sameAsOf.seqno, first.seqno)
    assert.equal(sameAsOf.text, first.text, 'asOf 5 is the same snapshot from the newer version')
    assert.equal(pool.tasks, afterWrite + 2, 'the newer version was read by a task of its own')
    assert.deepEqual(await snapshotDocument((await h.shards.snapshot(id, 15, { format: 'json' })).body), JSON.parse(later.text))
  })

  it('reads of one key that come while it is read wait for that read: one task for them all', async () => {
    const id = (await h.shards.create({ name: 'burst', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [10], updates: [{ key: 'z', val: 9, time: 2, diff: 3 }] })
    // NB: the first read of a shard commits this instance's lease and reads the version that made,
    // which is not the one its waiters waited for (they then read themselves): take it first.
    await rows(id, 3)
    const tasks = pool.tasks
    const all = await Promise.all(Array.from({ length: 8 }, () => rows(id, 4)))
    assert.equal(pool.tasks, tasks + 1)
    for (const r of all) assert.deepEqual(JSON.parse(r.text), { asOf: 4, updates: [{ key: 'z', val: 9, time: 4, diff: 3 }] })
  })

  it('a new schema is a new version: the same asOf is read again, in the new shape', async () => {
    const v0 = { type: 'struct', fields: [{ name: 'a', type: { type: 'int64' }, nullable: false }] }
    const v1 = { type: 'struct', fields: [{ name: 'a', type: { type: 'int64' }, nullable: false }, { name: 'b', type: { type: 'utf8' }, nullable: true }] }
    const id = (await h.shards.create({ name: 'evolving', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: v0 })).state.shardId
    await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [10], updates: [{ key: 'k', val: { a: 1 }, time: 1, diff: 1 }] })
    assert.deepEqual(JSON.parse((await rows(id, 5)).text).updates, [{ key: 'k', val: { a: 1 }, time: 5, diff: 1 }])
    await h.shards.registerSchema(id, { type: 'utf8' }, v1)
    assert.deepEqual(JSON.parse((await rows(id, 5)).text).updates, [{ key: 'k', val: { a: 1, b: null }, time: 5, diff: 1 }])
  })
})
