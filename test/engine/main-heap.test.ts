/**
 * The main thread's young-generation collections (engine/main-heap.ts), observed through V8's
 * own statistics: how much of the young generation is in use before and after body bytes are
 * noted. Each test file runs in a process of its own, so tuning here changes no other test.
 */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import { getHeapSpaceStatistics } from 'node:v8'
import { noteShortLivedBytes, tuneMainThreadHeap, YOUNG_GC_EVERY_BYTES } from '../../src/engine/main-heap.js'

/** Bytes in use in the young generation's allocation space. */
function youngUsed(): number {
  const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
  assert.ok(space !== undefined, 'V8 reports a new_space')
  return space.space_used_size
}

/**
 * Fills about a quarter of what is left of the young generation with objects that die at once;
 * returns the bytes in use after, and how many of them are that garbage.
 */
function youngGarbage(): { used: number; garbage: number } {
  const space = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
  assert.ok(space !== undefined)
  // Small arrays (~64 bytes each with their elements) that live for 16 iterations: short-lived
  // objects, as the owners of the parser's buffers are, and ones that escape, so V8 allocates them.
  const ring = new Array<number[]>(16)
  for (let i = 0; i < space.space_available_size / 4 / 64; i++) ring[i % ring.length] = [i, i]
  ring.fill([])
  const used = youngUsed()
  const garbage = used - space.space_used_size
  assert.ok(garbage > 64 * 1024, `the garbage is measurable (${garbage} bytes)`)
  return { used, garbage }
}

/** Whether most of `g`'s garbage is gone from the young generation. */
const collected = (g: { used: number; garbage: number }): boolean => youngUsed() < g.used - g.garbage / 2

it('untuned, noting body bytes collects nothing', () => {
  const g = youngGarbage()
  noteShortLivedBytes(YOUNG_GC_EVERY_BYTES * 2)
  assert.equal(collected(g), false)
})

it('tuned, the young generation is collected once every YOUNG_GC_EVERY_BYTES of body, and no global gc appears', () => {
  tuneMainThreadHeap()
  tuneMainThreadHeap() // a second call changes nothing
  assert.equal('gc' in globalThis, false)

  // The count starts at the first note after tuning: a chunk short of the mark collects nothing,
  // and the byte that reaches it does.
  const first = youngGarbage()
  noteShortLivedBytes(YOUNG_GC_EVERY_BYTES - 1)
  assert.equal(collected(first), false, 'no collection below the mark')
  noteShortLivedBytes(1)
  assert.equal(collected(first), true, 'a collection at the mark')

  // The count starts again.
  const second = youngGarbage()
  noteShortLivedBytes(YOUNG_GC_EVERY_BYTES / 2)
  assert.equal(collected(second), false, 'half the mark collects nothing')
  noteShortLivedBytes(YOUNG_GC_EVERY_BYTES / 2)
  assert.equal(collected(second), true, 'the other half does')
})
