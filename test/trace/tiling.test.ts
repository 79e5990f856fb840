import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HollowBatch } from '../../src/core/batch.js'
import { batchesTiling, sinceForRange } from '../../src/trace/tiling.js'
import { downgradeSince, exert, pushBatch } from '../../src/trace/trace.js'
import { describeSpine, f, hb, pushAll, u64Trace } from './fixtures.js'

const ranges = (bs: HollowBatch[] | null): string[] | null => bs?.map((b) => `${b.desc.lower[0]}-${b.desc.upper[0]}`) ?? null

describe('batchesTiling', () => {
  // Spine: [0-4] holding [0,1) [1,2) [2,3) [3,4); [4-6] holding [4,5) [5,6).
  const { trace } = pushAll(u64Trace(), [0, 1, 2, 3, 4, 5].map((i) => hb(i, i + 1, 0, 1)))
  const cases: [string, number, number, string[] | null][] = [
    ['one spine batch', 0, 4, ['0-1', '1-2', '2-3', '3-4']],
    ['inside a spine batch', 1, 3, ['1-2', '2-3']],
    ['a single hollow batch', 5, 6, ['5-6']],
    ['across spine batches', 2, 6, ['2-3', '3-4', '4-5', '5-6']],
    ['the whole trace', 0, 6, ['0-1', '1-2', '2-3', '3-4', '4-5', '5-6']],
    ['a lower on no boundary', 7, 8, null],
    ['an upper on no boundary', 0, 9, null],
    ['an upper before the lower', 3, 1, null],
    ['an empty range', 2, 2, null],
  ]
  for (const [name, lower, upper, expected] of cases) {
    it(name, () => assert.deepEqual(ranges(batchesTiling(trace, f(lower), f(upper))), expected))
  }
  it('an empty trace has no tiling for its whole range', () => assert.equal(batchesTiling(u64Trace(), f(0), f(0)), null))
  it('includes empty-interval batches inside the range', () => {
    const withEmpty = exert(pushAll(u64Trace(), [0, 1, 2].map((i) => hb(i, i + 1, 0, 1))).trace, 1).trace
    const extended = pushBatch(withEmpty, hb(3, 4, 0, 1)).trace
    assert.deepEqual(ranges(batchesTiling(extended, f(2), f(4))), ['2-3', '3-3', '3-4'])
  })
})

describe('sinceForRange', () => {
  const { trace } = pushAll(u64Trace(), [0, 1, 2, 3].map((i) => hb(i, i + 1, 0, 1)))
  const later = pushBatch(downgradeSince(trace, f(4)), hb(4, 5, 4, 100)).trace
  const last = pushBatch(downgradeSince(later, f(7)), hb(5, 6, 7, 1)).trace
  it('has the expected spine', () => {
    assert.deepEqual(describeSpine(last), ['[0-4][0][4][4] 4/4', '[4-5][4][5][4] 1/100', '[5-6][5][6][7] 1/1'])
  })
  const cases: [string, number, number, bigint[] | null][] = [
    ['one spine batch', 0, 4, [4n]],
    ['inside one spine batch', 1, 3, [4n]],
    ['two spine batches', 3, 5, [4n]],
    ['touching the last', 4, 6, [7n]],
    ['the whole trace', 0, 6, [7n]],
    ['beyond the upper', 6, 9, null],
  ]
  for (const [name, lower, upper, expected] of cases) {
    it(name, () => assert.deepEqual(sinceForRange(last, f(lower), f(upper)), expected))
  }
})
