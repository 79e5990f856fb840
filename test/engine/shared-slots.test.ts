import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Worker } from 'node:worker_threads'
import { isLentHere, MAX_POOLED_SLOTS, releaseSlot, retainSlot, SharedSlots } from '../../src/engine/shared-slots.js'
import { isPageAlignedView } from '../../src/location/direct-io.js'

describe('SharedSlots', () => {
  it('lends 8-byte-aligned views of exactly the size asked, in shared memory', () => {
    const slots = new SharedSlots()
    const a = slots.acquire(1000)
    assert.ok(a.buffer instanceof SharedArrayBuffer)
    assert.equal(a.byteLength, 1000)
    assert.equal(a.byteOffset % 8, 0)
    assert.ok(isLentHere(a))
    assert.ok(!isLentHere(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)), 'only the lent view itself')
    assert.equal(slots.lent, 1)
  })

  it('a page-aligned pool lends views at a page offset of WebAssembly memory, and says so; a plain pool does not', () => {
    const aligned = new SharedSlots({ pageAligned: true })
    const a = aligned.acquire(100_000)
    assert.ok(a.buffer instanceof SharedArrayBuffer)
    assert.equal(a.byteOffset, 4096)
    assert.equal(a.buffer.byteLength % 65536, 0, 'whole WebAssembly pages')
    assert.ok(isPageAlignedView(a))
    assert.ok(!isPageAlignedView(a.subarray(1)), 'not at a page offset')
    // The holds live in the header page as in any slot.
    retainSlot(a)
    releaseSlot(a)
    assert.equal(aligned.lent, 1)
    releaseSlot(a)
    assert.equal(aligned.acquire(90_000).buffer, a.buffer, 'reused')
    const plain = new SharedSlots().acquire(100_000)
    assert.equal(plain.byteOffset, 8)
    assert.ok(!isPageAlignedView(plain))
  })

  it('pools at most MAX_POOLED_SLOTS slots: a merge holding thousands of parts at once gets the rest unpooled', () => {
    // Finding a free slot scans the pool: a pool of every part of a 5000-run merge made that quadratic.
    const slots = new SharedSlots()
    const views = Array.from({ length: 5000 }, (_, i) => slots.acquire(100 + (i % 7)))
    assert.equal(slots.size, MAX_POOLED_SLOTS)
    assert.equal(slots.lent, MAX_POOLED_SLOTS)
    assert.ok(views.every((v, i) => v.byteLength === 100 + (i % 7) && isLentHere(v)))
    assert.equal(new Set(views.map((v) => v.buffer)).size, 5000, 'no two parts share a slot')
    for (const v of views) releaseSlot(v)
    assert.equal(slots.lent, 0)
    const again = slots.acquire(100)
    assert.ok(views.slice(0, MAX_POOLED_SLOTS).some((v) => v.buffer === again.buffer), 'a pooled slot is reused')
  })

  it('reuses a released slot, the smallest free one that fits, and never one still held', () => {
    const slots = new SharedSlots()
    const big = slots.acquire(1000)
    const small = slots.acquire(100)
    assert.notEqual(big.buffer, small.buffer)
    releaseSlot(big)
    releaseSlot(small)
    assert.equal(slots.lent, 0)
    assert.equal(slots.acquire(90).buffer, small.buffer, 'best fit')
    assert.equal(slots.acquire(90).buffer, big.buffer, 'the other free one')
    const fresh = slots.acquire(90)
    assert.notEqual(fresh.buffer, small.buffer)
    assert.notEqual(fresh.buffer, big.buffer)
    assert.equal(slots.size, 3)
  })

  it('frees a slot only when every hold is released', () => {
    const slots = new SharedSlots()
    const a = slots.acquire(64)
    retainSlot(a)
    releaseSlot(a)
    assert.equal(slots.lent, 1)
    assert.notEqual(slots.acquire(64).buffer, a.buffer)
    releaseSlot(a)
    assert.equal(slots.acquire(64).buffer, a.buffer)
  })

  it('replaces a free slot too small for the request instead of growing the pool', () => {
    const slots = new SharedSlots()
    const small = slots.acquire(100)
    releaseSlot(small)
    const big = slots.acquire(10_000)
    assert.notEqual(big.buffer, small.buffer)
    assert.equal(slots.size, 1)
  })

  it('forgets the slots an owner never released, and only those', () => {
    const slots = new SharedSlots()
    const mine = {}
    const theirs = {}
    const leaked = slots.acquire(64, mine)
    const released = slots.acquire(64, mine)
    const other = slots.acquire(64, theirs)
    releaseSlot(released)
    slots.dropLent(mine)
    assert.equal(slots.size, 2)
    assert.equal(slots.lent, 1)
    assert.notEqual(slots.acquire(64).buffer, leaked.buffer)
    releaseSlot(other)
  })

  it('lends an owner whose lending ended outside the pool: a late borrow never counts as lent', () => {
    const slots = new SharedSlots()
    const mine = {}
    releaseSlot(slots.acquire(64, mine))
    slots.dropLent(mine)
    const size = slots.size
    // A fetch that began before the drop borrows after it, and nobody will release it.
    const late = slots.acquire(64, mine)
    late.set([7, 8])
    assert.deepEqual([...late.subarray(0, 2)], [7, 8])
    assert.equal(slots.lent, 0)
    assert.equal(slots.size, size)
    releaseSlot(late)
  })

  it('sees a release made on another thread', async () => {
    const slots = new SharedSlots()
    const a = slots.acquire(64)
    a.set([1, 2, 3])
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads')
       const v = workerData
       Atomics.sub(new Int32Array(v.buffer, 0, 1), 0, 1)
       parentPort.postMessage(v[0] + v[1] + v[2])`,
      { eval: true, workerData: a },
    )
    try {
      const sum = await new Promise((resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
      })
      assert.equal(sum, 6)
      assert.equal(slots.lent, 0)
      assert.equal(slots.acquire(64).buffer, a.buffer)
    } finally {
      await worker.terminate()
    }
  })
})
