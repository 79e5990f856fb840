/**
 * The engine's pools keep free memory for the thread's reuse hold (reuse-idle.ts) and drop it
 * once the hold has passed without a use; a use within the hold starts it again. Timers are mocked:
 * nothing waits for real time.
 */
import assert from 'node:assert/strict'
import { afterEach, beforeEach, describe, it, mock } from 'node:test'
import { BufferPool } from '../../src/engine/buffer-pool.js'
import { DEFAULT_REUSE_IDLE_MS, reuseIdleMs, setReuseIdleMs } from '../../src/engine/reuse-idle.js'
import { releaseSlot, SharedSlots } from '../../src/engine/shared-slots.js'

describe('reuse hold', () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] })
  })
  afterEach(() => {
    mock.timers.reset()
    setReuseIdleMs(DEFAULT_REUSE_IDLE_MS)
  })

  it('defaults to a minute and refuses what is not a duration', () => {
    assert.equal(reuseIdleMs(), 60_000)
    assert.throws(() => setReuseIdleMs(-1), RangeError)
    assert.throws(() => setReuseIdleMs(Number.NaN), RangeError)
  })

  it('shared slots stay free for reuse through the hold, and go after it', () => {
    setReuseIdleMs(30_000)
    const slots = new SharedSlots()
    const a = slots.acquire(1000)
    releaseSlot(a)
    mock.timers.tick(29_999)
    assert.equal(slots.size, 1)
    // A use within the hold reuses the slot and starts the hold again.
    const b = slots.acquire(900)
    assert.equal(b.buffer, a.buffer)
    releaseSlot(b)
    mock.timers.tick(29_999)
    assert.equal(slots.size, 1)
    mock.timers.tick(1)
    assert.equal(slots.size, 0)
  })

  it('a lent slot outlives the hold', () => {
    setReuseIdleMs(10)
    const slots = new SharedSlots()
    const a = slots.acquire(64)
    mock.timers.tick(1_000)
    assert.equal(slots.size, 1)
    assert.equal(slots.lent, 1)
    releaseSlot(a)
  })

  it('the buffer pool hands the same buffer out within the hold, a new one after it', () => {
    setReuseIdleMs(5_000)
    const pool = new BufferPool()
    const a = pool.take(4096)
    pool.give(a)
    mock.timers.tick(4_999)
    const b = pool.take(4000)
    assert.equal(b.buffer, a.buffer)
    pool.give(b)
    mock.timers.tick(5_000)
    assert.notEqual(pool.take(4000).buffer, a.buffer)
  })

  it('a hold of 0 drops free memory as soon as the pool is idle', () => {
    setReuseIdleMs(0)
    const pool = new BufferPool()
    const a = pool.take(4096)
    pool.give(a)
    mock.timers.tick(0)
    assert.notEqual(pool.take(4096).buffer, a.buffer)
  })
})
