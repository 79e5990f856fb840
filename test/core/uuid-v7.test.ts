import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ID_PATTERNS, isShardId, newShardId } from '../../src/core/ids.js'
import { UuidV7, uuidV7Millis } from '../../src/core/uuid-v7.js'

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('UuidV7', () => {
  it('carries its millisecond, version 7 and the RFC variant', () => {
    const gen = new UuidV7(() => 1_790_000_000_123)
    const id = gen.next()
    assert.match(id, V7)
    assert.equal(uuidV7Millis(id), 1_790_000_000_123)
    assert.equal(uuidV7Millis('0f6c0f6a-3c1e-4b0e-8f7e-7d6b7d8c9e0f'), null, 'a version-4 uuid carries no time')
  })

  it('is strictly increasing as text: within a millisecond, past the counter, and when the clock steps back', () => {
    // A clock that stays on one millisecond for 10,000 ids (the 12-bit counter overflows more than
    // once), then steps back a second, then moves on.
    let calls = 0
    const clock = (): number => {
      calls++
      if (calls <= 10_000) return 5_000
      if (calls <= 10_100) return 4_000
      return 5_000 + Math.floor(calls / 7)
    }
    const gen = new UuidV7(clock)
    let previous = gen.next()
    for (let i = 0; i < 12_000; i++) {
      const id = gen.next()
      assert.match(id, V7)
      assert.ok(id > previous, `id ${i}: ${id} is not after ${previous}`)
      previous = id
    }
    assert.ok((uuidV7Millis(previous) as number) > 5_000, 'an exhausted counter moved the time on')
  })

  it('makes shard ids that sort in creation order and match the shard id pattern', () => {
    const ids = Array.from({ length: 500 }, () => newShardId())
    for (const id of ids) {
      assert.ok(isShardId(id))
      assert.match(id, new RegExp(ID_PATTERNS.shardId))
    }
    assert.deepEqual([...ids].sort(), ids)
    const ms = uuidV7Millis(ids[0]!.slice(1)) as number
    assert.ok(Math.abs(ms - Date.now()) < 60_000, 'the id carries the current time')
  })
})
