/**
 * SnapshotReader on its own, over the stores of a real Shards harness (which writes the data): what
 * it does with the recent states it is handed. Every read runs on a real worker pool.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { ShardId } from '../../src/core/ids.js'
import { WorkerPool } from '../../src/engine/worker-pool.js'
import type { Versioned } from '../../src/shard/machine.js'
import { RecentStates } from '../../src/shard/recent-states.js'
import { SnapshotReader } from '../../src/shard/snapshot-reader.js'
import type { ShardState } from '../../src/shard/state.js'
import { makeHarness, snapshotDocument, type Harness } from './harness.js'

describe('SnapshotReader', () => {
  let h: Harness
  let pool: WorkerPool
  before(async () => {
    h = await makeHarness()
    pool = new WorkerPool(1)
  })
  after(async () => {
    await h.close()
    await pool.close()
  })

  /** A reader over the harness's stores with its own recent states (on a clock the test moves), counting its head reads. */
  function setup(): { reader: SnapshotReader; recent: RecentStates; heads: () => number; errors: unknown[]; advance: (ms: number) => void } {
    let clock = 0
    let heads = 0
    const errors: unknown[] = []
    const recent = new RecentStates({ maxAgeMs: 1_000, gcGraceMs: 60_000, now: () => clock })
    const head = async (shardId: ShardId): Promise<Versioned<ShardState>> => {
      heads++
      const v = await h.machine.head(shardId)
      if (v === null) throw new Error(`no shard ${shardId}`)
      recent.saw(shardId, v)
      return v
    }
    const reader = new SnapshotReader({
      blob: h.blob,
      pool: () => pool,
      dyncfg: h.dyncfg,
      head,
      recent,
      leases: h.leases,
      commit: (shardId, cmd, transition) => h.machine.apply(shardId, cmd, transition),
      instance: 'unit',
      now: h.now,
      onError: (err) => errors.push(err),
    })
    return { reader, recent, heads: () => heads, errors, advance: (ms) => void (clock += ms) }
  }

  const document = async (reader: SnapshotReader, id: ShardId, asOf: number): Promise<unknown> => {
    const read = await reader.read(id, asOf, { format: 'json' })
    try {
      return await snapshotDocument(read.body)
    } finally {
      read.release()
    }
  }

  const newShard = async (name: string): Promise<ShardId> => {
    const id = (await h.shards.create({ name, timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [10], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] })
    return id
  }

  it('reads that find no recent state share one head read; a recent state needs none; once it ages out, one again', async () => {
    const id = await newShard('shared-head')
    const { reader, heads, errors, advance } = setup()
    const expected = { asOf: 5, updates: [{ key: 'a', val: 1, time: 5, diff: 1 }] }
    try {
      for (const doc of await Promise.all(Array.from({ length: 5 }, () => document(reader, id, 5)))) assert.deepEqual(doc, expected)
      assert.equal(heads(), 1, 'five reads arriving together read the head once')
      assert.deepEqual(await document(reader, id, 6), { asOf: 6, updates: [{ key: 'a', val: 1, time: 6, diff: 1 }] })
      assert.equal(heads(), 1, 'a state seen a moment ago serves without a head read')
      advance(1_000)
      for (const doc of await Promise.all(Array.from({ length: 3 }, () => document(reader, id, 5)))) assert.deepEqual(doc, expected)
      assert.equal(heads(), 2, 'aged out: the reads arriving together share one head read again')
    } finally {
      await reader.stop()
    }
    assert.deepEqual(errors, [])
  })

  it('a recent state that cannot serve the asOf is not the answer: the head is read, and answers', async () => {
    const id = await newShard('behind-head')
    const { reader, recent, heads, errors } = setup()
    const old = await h.machine.head(id)
    assert.ok(old !== null)
    recent.saw(id, old)
    // The shard moves on after the state remembered: asOf 15 is beyond that state's upper (10).
    await h.shards.writeBatch(id, { kind: 'json', lower: [10], upper: [20], updates: [{ key: 'b', val: 2, time: 11, diff: 1 }] })
    try {
      assert.deepEqual(await document(reader, id, 15), {
        asOf: 15,
        updates: [
          { key: 'a', val: 1, time: 15, diff: 1 },
          { key: 'b', val: 2, time: 15, diff: 1 },
        ],
      })
      assert.equal(heads(), 1)
      // The state that head read saw is recent now: it serves the next read with no head read.
      assert.deepEqual(await document(reader, id, 5), { asOf: 5, updates: [{ key: 'a', val: 1, time: 5, diff: 1 }] })
      assert.equal(heads(), 1)
    } finally {
      await reader.stop()
    }
    assert.deepEqual(errors, [])
  })
})
