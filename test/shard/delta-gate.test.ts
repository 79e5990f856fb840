/** StateDeltaGate (shard/delta-gate.ts): deltas only while enabled and every live instance, as last read and not long ago, reads them. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { InstanceRecord } from '../../src/location/job-store.js'
import { StateDeltaGate } from '../../src/shard/delta-gate.js'

const instance = (id: string, stateFormats?: number[]): InstanceRecord => ({ id, startedAt: 0, heartbeatAt: 0, version: '1', running: 0, ...(stateFormats === undefined ? {} : { stateFormats }) })

describe('StateDeltaGate', () => {
  it('whole until the membership is read; deltas while every live instance reads them; whole again once the read is stale', () => {
    let now = 1_000
    let enabled = true
    const gate = new StateDeltaGate({ enabled: () => enabled, now: () => now, staleMs: 6_000 })
    assert.equal(gate.writeDeltas(), false, 'nothing known yet')
    gate.observe([instance('a', [1, 2]), instance('b', [1, 2])])
    assert.equal(gate.writeDeltas(), true)
    gate.observe([instance('a', [1, 2]), instance('old')])
    assert.equal(gate.writeDeltas(), false, 'an instance without stateFormats reads whole versions only')
    gate.observe([instance('a', [1, 2]), instance('whole', [1])])
    assert.equal(gate.writeDeltas(), false)
    gate.observe([instance('a', [1, 2, 3])])
    assert.equal(gate.writeDeltas(), true)
    enabled = false
    assert.equal(gate.writeDeltas(), false, 'persist_state_deltas_enabled false')
    enabled = true
    now += 6_000
    assert.equal(gate.writeDeltas(), true)
    now += 1
    assert.equal(gate.writeDeltas(), false, 'a read older than staleMs knows nothing of who joined since')
  })
})
