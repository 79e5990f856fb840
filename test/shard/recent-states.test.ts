import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { newShardId } from '../../src/core/ids.js'
import type { Versioned } from '../../src/shard/machine.js'
import { RecentStates } from '../../src/shard/recent-states.js'
import type { ShardState } from '../../src/shard/state.js'

/** A stand-in state version: RecentStates never looks inside one. */
const version = (seqno: number): Versioned<ShardState> => ({ seqno, state: { seqno } as unknown as ShardState })

/** A read the test finishes (or fails) by hand, counting how often it was started. */
function gatedRead(): { read: () => Promise<Versioned<ShardState>>; started: () => number; finish: (v: Versioned<ShardState>) => void; fail: (err: Error) => void } {
  let started = 0
  let finish: (v: Versioned<ShardState>) => void = () => undefined
  let fail: (err: Error) => void = () => undefined
  return {
    read: () => {
      started++
      return new Promise((resolve, reject) => {
        finish = resolve
        fail = reject
      })
    },
    started: () => started,
    finish: (v) => finish(v),
    fail: (err) => fail(err),
  }
}

describe('RecentStates', () => {
  it('lets go of states too old to serve when another is stored, not only when their shard is read again', () => {
    // A shard read once and never again (deleted, say) kept its whole state until 4096 others came.
    let now = 0
    const r = new RecentStates({ maxAgeMs: 1_000, gcGraceMs: 10_000, now: () => now })
    for (let i = 0; i < 100; i++) {
      now = i * 100
      r.saw(newShardId(), version(i))
    }
    // At 9_900 the ones stored at 9_000..9_900 are younger than 1 s; the 90 before them are gone.
    assert.equal(r.size, 10)
  })

  const shardId = newShardId()

  it('serves a state seen less than its age ago, and forgets it after', () => {
    let now = 0
    const r = new RecentStates({ maxAgeMs: 1_000, gcGraceMs: 10_000, now: () => now })
    r.saw(shardId, version(3))
    r.saw(shardId, version(2))
    assert.equal(r.get(shardId)?.seqno, 3, 'an older seqno does not replace a newer one')
    now = 999
    assert.equal(r.get(shardId)?.seqno, 3)
    now = 1_000
    assert.equal(r.get(shardId), null)
  })

  it('getOrRead: concurrent misses share one read; the next miss after it reads again', async () => {
    const r = new RecentStates({ maxAgeMs: 1_000, gcGraceMs: 10_000, now: () => 0 })
    const g = gatedRead()
    const reads = Array.from({ length: 5 }, () => r.getOrRead(shardId, g.read))
    assert.equal(g.started(), 1)
    g.finish(version(7))
    assert.deepEqual((await Promise.all(reads)).map((v) => v.seqno), [7, 7, 7, 7, 7])
    // The read's state is not remembered by getOrRead itself (its caller does that): a new read.
    const next = r.getOrRead(shardId, g.read)
    assert.equal(g.started(), 2)
    g.finish(version(8))
    assert.equal((await next).seqno, 8)
    r.saw(shardId, version(8))
    assert.equal((await r.getOrRead(shardId, g.read)).seqno, 8)
    assert.equal(g.started(), 2, 'a recent state needs no read')
  })

  it('getOrRead: a failed read fails every sharer and is not kept', async () => {
    const r = new RecentStates({ maxAgeMs: 1_000, gcGraceMs: 10_000, now: () => 0 })
    const g = gatedRead()
    const reads = [r.getOrRead(shardId, g.read), r.getOrRead(shardId, g.read)]
    g.fail(new Error('store down'))
    for (const p of reads) await assert.rejects(p, /store down/)
    const again = r.getOrRead(shardId, g.read)
    assert.equal(g.started(), 2)
    g.finish(version(1))
    assert.equal((await again).seqno, 1)
  })

  it('getOrRead with no GC grace shares nothing: every call reads', async () => {
    const r = new RecentStates({ maxAgeMs: 1_000, gcGraceMs: 0, now: () => 0 })
    const g = gatedRead()
    const a = r.getOrRead(shardId, g.read)
    g.finish(version(1))
    const b = r.getOrRead(shardId, g.read)
    g.finish(version(2))
    assert.equal(g.started(), 2)
    assert.deepEqual([(await a).seqno, (await b).seqno], [1, 2])
  })
})
