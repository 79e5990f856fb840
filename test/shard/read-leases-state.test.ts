import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { newShardId } from '../../src/core/ids.js'
import { int64, utf8, type DataType } from '../../src/columnar/data-type.js'
import type { Transition } from '../../src/shard/machine.js'
import { dropExpiredLeases, holdReadLease, liveLeases, oldestLiveLeaseSeqno, releaseReadLease } from '../../src/shard/read-leases-state.js'
import {
  applyMergeRes,
  claimCompaction,
  compareAndAppend,
  completeMerges,
  deleteShard,
  downgradeSince,
  newShardState,
  registerSchema,
  releaseClaim,
  shardStateCodec,
  type ReadLease,
  type ShardState,
} from '../../src/shard/state.js'
import { f, hb } from '../trace/fixtures.js'

const T0 = Date.parse('2026-12-01T10:00:00.000Z')
const iso = (ms: number): string => new Date(ms).toISOString()
const lease = (id: string, seqno: number, expiresMs: number, instance = 'a'): ReadLease => ({ id, instance, seqno, expiresAt: iso(expiresMs) })

function written<R>(t: Transition<ShardState, R>): ShardState {
  assert.equal(t.kind, 'continue')
  if (t.kind !== 'continue') throw new Error('unreachable')
  return t.state
}

const V0: DataType = { type: 'struct', fields: [{ name: 'a', type: utf8, nullable: false }] }
const V1: DataType = { type: 'struct', fields: [{ name: 'a', type: utf8, nullable: false }, { name: 'b', type: int64, nullable: true }] }

function base(): ShardState {
  const s = newShardState(newShardId(), 'orders', 'u64', V0, int64, iso(T0))
  return written(compareAndAppend(s, hb(0, 2, 0, 1), f(0), 1 << 20))
}

const withLeases = (...leases: ReadLease[]): ShardState => ({ ...base(), leases })

describe('reader leases in shard state', () => {
  it('hold adds a lease, renews one in place, and drops the expired leases of others on the way', () => {
    const s = withLeases(lease('x', 3, T0 + 1000, 'b'), lease('dead', 1, T0 - 1, 'c'), lease('y', 4, T0 + 5000, 'b'))
    const added = holdReadLease(s, lease('mine', 7, T0 + 60_000), T0)
    assert.deepEqual(added.kind === 'continue' ? added.result : added, { kind: 'held', lease: lease('mine', 7, T0 + 60_000) })
    assert.deepEqual(written(added).leases?.map((l) => l.id), ['x', 'y', 'mine'])
    const renewed = written(holdReadLease(written(added), lease('x', 5, T0 + 90_000, 'b'), T0))
    assert.deepEqual(renewed.leases, [lease('x', 5, T0 + 90_000, 'b'), lease('y', 4, T0 + 5000, 'b'), lease('mine', 7, T0 + 60_000)])
    // The holder's own expired lease is renewed, not dropped.
    const own = written(holdReadLease(withLeases(lease('z', 2, T0 - 10)), lease('z', 2, T0 + 10), T0))
    assert.deepEqual(own.leases, [lease('z', 2, T0 + 10)])
  })

  it('release removes a lease by id (the field too when it was the last); an unknown id writes nothing', () => {
    const s = withLeases(lease('x', 3, T0 + 1000), lease('y', 4, T0 + 1000))
    assert.deepEqual(written(releaseReadLease(s, 'x')).leases, [lease('y', 4, T0 + 1000)])
    const none = written(releaseReadLease(withLeases(lease('x', 3, T0 + 1000)), 'x'))
    assert.equal('leases' in none, false)
    assert.deepEqual(releaseReadLease(s, 'nope'), { kind: 'break', result: false })
  })

  it('dropExpired removes only leases expired at now, writing nothing when none is', () => {
    const s = withLeases(lease('x', 3, T0), lease('y', 4, T0 + 1))
    const t = dropExpiredLeases(s, T0)
    assert.equal(t.kind === 'continue' ? t.result : -1, 1)
    assert.deepEqual(written(t).leases, [lease('y', 4, T0 + 1)])
    assert.deepEqual(dropExpiredLeases(s, T0 - 1), { kind: 'break', result: 0 })
    assert.deepEqual(dropExpiredLeases(base(), T0), { kind: 'break', result: 0 })
  })

  it('live leases and the oldest live seqno ignore expired leases', () => {
    const s = withLeases(lease('old', 1, T0), lease('x', 5, T0 + 10), lease('y', 3, T0 + 10))
    assert.deepEqual(liveLeases(s, T0).map((l) => l.id), ['x', 'y'])
    assert.equal(oldestLiveLeaseSeqno(s, T0), 3)
    assert.equal(oldestLiveLeaseSeqno(s, T0 - 1), 1)
    assert.equal(oldestLiveLeaseSeqno(s, T0 + 10), null)
    assert.equal(oldestLiveLeaseSeqno(base(), T0), null)
  })

  it('a tombstone takes no lease and keeps those it has', () => {
    const t = written(deleteShard(withLeases(lease('x', 3, T0 - 1)), iso(T0)))
    assert.deepEqual(t.leases, [lease('x', 3, T0 - 1)], 'deleteShard keeps the leases')
    assert.deepEqual(holdReadLease(t, lease('y', 4, T0 + 10), T0), { kind: 'break', result: { kind: 'deleted', deletedAt: iso(T0) } })
    assert.deepEqual(releaseReadLease(t, 'x'), { kind: 'break', result: false })
    assert.deepEqual(dropExpiredLeases(t, T0), { kind: 'break', result: 0 })
  })

  it('every other transition keeps the leases as they are', () => {
    const leases = [lease('x', 3, T0 + 1000, 'b')]
    const s = withLeases(...leases)
    const after: Array<[string, Transition<ShardState, unknown>]> = [
      ['compareAndAppend', compareAndAppend(s, hb(2, 4, 0, 1), f(2), 1 << 20)],
      ['registerSchema', registerSchema(s, V1, int64)],
      ['downgradeSince', downgradeSince(s, f(1))],
      ['applyMergeRes', applyMergeRes(s, hb(0, 2, 0, 1))],
      ['claimCompaction', claimCompaction(s, 'c1', 1, iso(T0))],
      ['deleteShard', deleteShard(s, iso(T0))],
    ]
    for (const [name, t] of after) assert.deepEqual(t.kind === 'continue' ? t.state.leases : name, leases, name)
    assert.deepEqual(written(releaseClaim(written(claimCompaction(s, 'c1', 1, iso(T0))), 'c1', 1)).leases, leases, 'releaseClaim')
    const merged = completeMerges(s)
    if (merged.kind === 'continue') assert.deepEqual(merged.state.leases, leases, 'completeMerges')
  })

  it('round-trips through the codec, and states from before leases load without them', () => {
    const s = withLeases(lease('x', 3, T0 + 1000, 'b'), lease('y', 9, T0 + 2000))
    const json = JSON.parse(JSON.stringify(shardStateCodec.encode(s))) as Record<string, unknown>
    assert.deepEqual(json.leases, [
      { id: 'x', instance: 'b', seqno: 3, expiresAt: iso(T0 + 1000) },
      { id: 'y', instance: 'a', seqno: 9, expiresAt: iso(T0 + 2000) },
    ])
    assert.deepEqual(shardStateCodec.decode(json).leases, s.leases)
    const old = JSON.parse(JSON.stringify(shardStateCodec.encode(base()))) as Record<string, unknown>
    assert.equal('leases' in old, false)
    const loaded = shardStateCodec.decode(old)
    assert.equal(loaded.leases, undefined)
    assert.equal(written(holdReadLease(loaded, lease('n', 1, T0 + 1), T0)).leases?.length, 1)
  })
})
