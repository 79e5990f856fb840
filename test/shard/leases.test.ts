import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { newShardId } from '../../src/core/ids.js'
import { utf8, int64 } from '../../src/columnar/data-type.js'
import { Leases } from '../../src/shard/leases.js'
import { newShardState } from '../../src/shard/state.js'

describe('Leases', () => {
  const a = newShardId()
  const b = newShardId()
  const state = newShardState(a, 'x', 'u64', utf8, int64, '2026-01-01T00:00:00.000Z')

  it('reports the smallest leased seqno per shard, as a multiset', () => {
    const leases = new Leases()
    assert.equal(leases.minSeqno(a), null)
    const r5 = leases.acquire(a, 5, state)
    const r3 = leases.acquire(a, 3)
    const r3again = leases.acquire(a, 3)
    leases.acquire(b, 1)
    assert.equal(leases.minSeqno(a), 3)
    r3()
    assert.equal(leases.minSeqno(a), 3, 'the second lease at 3 still holds')
    r3again()
    assert.equal(leases.minSeqno(a), 5)
    assert.deepEqual(leases.states(a), [state])
    r5()
    r5()
    assert.equal(leases.minSeqno(a), null)
    assert.deepEqual(leases.states(a), [])
    assert.equal(leases.minSeqno(b), 1)
  })

  it('pins keys until every pin of them is released; releasing twice does nothing', () => {
    const leases = new Leases()
    const p1 = leases.pin(a, ['k1', 'k2'])
    const p2 = leases.pin(a, ['k2'])
    assert.deepEqual([...leases.pinned(a)].sort(), ['k1', 'k2'])
    p1()
    p1()
    assert.deepEqual([...leases.pinned(a)], ['k2'])
    p2()
    assert.deepEqual([...leases.pinned(a)], [])
    assert.deepEqual(leases.held(a), { leases: 0, pins: 0 })
  })
})
