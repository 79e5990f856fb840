import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { applyMergeRes } from '../../src/trace/apply-merge-res.js'
import { fuelFor, levelFor } from '../../src/trace/spine.js'
import {
  allHollowBatches,
  checkPush,
  downgradeSince,
  exert,
  leveledSpineBatches,
  nonCompactMergeReqs,
  pushBatch,
  validate,
} from '../../src/trace/trace.js'
import { describeReq, describeSpine, f, hb, pushAll, u64Trace } from './fixtures.js'

describe('level formula', () => {
  const cases: [number, number][] = [
    [0, 0], [1, 0], [2, 1], [3, 2], [4, 2], [5, 3], [100, 7], [500, 9], [1000, 10], [10000, 14], [2 ** 40, 40], [2 ** 40 + 1, 41],
  ]
  for (const [len, level] of cases) {
    it(`len ${len} ⇒ level ${level}`, () => assert.equal(levelFor(len), level))
  }
  it('fuel is 8 << level', () => {
    assert.equal(fuelFor(0), 8)
    assert.equal(fuelFor(7), 1024)
    assert.equal(fuelFor(40), 8 * 2 ** 40)
  })
  it('a pushed batch lands at its level when the spine is empty', () => {
    const { trace } = pushBatch(u64Trace(), hb(0, 1, 0, 100))
    assert.deepEqual(leveledSpineBatches(trace).map((x) => x.level), [7])
  })
})

describe('pushBatch', () => {
  it('merges eight len-1 batches like persist (fixture "compaction")', () => {
    const first = pushAll(u64Trace(), [hb(0, 1, 0, 1)])
    let trace = first.trace
    const reqs = first.reqs
    assert.deepEqual(describeSpine(trace), ['[0-1][0][1][0] 1/1'])
    assert.deepEqual(reqs, [])

    const more = pushAll(trace, [1, 2, 3, 4, 5, 6, 7].map((i) => hb(i, i + 1, 0, 1)))
    trace = more.trace
    assert.deepEqual(describeSpine(trace), ['[0-4][0][4][0] 4/4', '[4-6][4][6][0] 2/2', '[6-7][6][7][0] 1/1', '[7-8][7][8][0] 1/1'])
    assert.deepEqual(more.reqs.map(describeReq), ['[0][2][0] 2', '[0][4][0] 4', '[4][6][0] 2'])
    assert.equal(validate(trace), null)

    const big = pushBatch(trace, hb(8, 9, 0, 100))
    assert.deepEqual(describeSpine(big.trace), ['[0-8][0][8][0] 8/8', '[8-9][8][9][0] 1/100'])
    assert.deepEqual(big.mergeReqs.map(describeReq), ['[0][8][0] 8'])
    assert.deepEqual(big.mergeReqs[0]?.inputs.map((i) => i.batch), allHollowBatches(trace))

    const applied = applyMergeRes(big.trace, { output: hb(0, 8, 0, 5, 8n) })
    assert.equal(applied.result, 'applied_exact')
    assert.deepEqual(describeSpine(applied.trace), ['[0-8][0][8][0] 1/5', '[8-9][8][9][0] 1/100'])
  })

  it('does not change its argument', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 1)])
    const before = describeSpine(trace)
    pushBatch(trace, hb(2, 3, 0, 1))
    assert.deepEqual(describeSpine(trace), before)
    assert.ok(Object.isFrozen(trace) && Object.isFrozen(trace.levels))
  })

  it('merges with the spine since at merge start (fixture "compaction_apply_res_since")', () => {
    let { trace, reqs } = pushAll(u64Trace(), [0, 1, 2, 3].map((i) => hb(i, i + 1, 0, 1)))
    trace = downgradeSince(trace, f(4))
    const big = pushBatch(trace, hb(4, 5, 4, 100))
    reqs = [...reqs, ...big.mergeReqs]
    assert.deepEqual(describeSpine(big.trace), ['[0-4][0][4][4] 4/4', '[4-5][4][5][4] 1/100'])
    assert.deepEqual(reqs.map(describeReq), ['[0][2][0] 2', '[0][4][4] 4', '[2][4][0] 2'])
  })

  it('survives a merge whose inputs shrank (fixture "compaction_regression_size_reduction")', () => {
    const start = pushAll(u64Trace(), [hb(0, 1, 0, 500), hb(1, 2, 0, 500), hb(2, 3, 0, 1000)])
    let trace = start.trace
    const reqs = start.reqs
    assert.deepEqual(describeSpine(trace), ['[0-2][0][2][0] 2/1000', '[2-3][2][3][0] 1/1000'])
    assert.deepEqual(reqs.map(describeReq), ['[0][2][0] 2'])
    trace = pushBatch(trace, hb(3, 4, 0, 100)).trace
    const applied = applyMergeRes(trace, { output: hb(0, 2, 0, 1, null) })
    assert.equal(applied.result, 'applied_exact')
    const after = pushBatch(applied.trace, hb(4, 5, 0, 10000))
    assert.equal(validate(after.trace), null)
  })
})

describe('empty-batch fusion', () => {
  it('fuses consecutive empty batches without merge requests (fixture "empty_batch_optimization")', () => {
    let { trace, reqs } = pushAll(u64Trace(), [hb(0, 1, 0, 0), hb(1, 2, 0, 0), hb(2, 3, 0, 0)])
    assert.deepEqual(allHollowBatches(trace).map((b) => `${b.desc.lower[0]}-${b.desc.upper[0]}:${b.len}`), ['0-3:0'])
    assert.deepEqual(describeSpine(trace), ['[0-3][0][3][0] 1/0'])

    const fence = pushAll(trace, [hb(3, 4, 0, 10)])
    const tail = pushAll(fence.trace, [hb(4, 5, 0, 0), hb(5, 6, 0, 0), hb(6, 7, 0, 0)])
    trace = tail.trace
    reqs = [...reqs, ...fence.reqs, ...tail.reqs]
    assert.deepEqual(allHollowBatches(trace).map((b) => `${b.desc.lower[0]}-${b.desc.upper[0]}:${b.len}`), ['0-3:0', '3-4:10', '4-7:0'])
    assert.deepEqual(reqs, [])
    assert.equal(validate(trace), null)
  })

  it('gives the fused batch the spine since', () => {
    const { trace } = pushAll(downgradeSince(u64Trace(), f(5)), [hb(0, 1, 0, 0), hb(1, 2, 3, 0)])
    assert.deepEqual(describeSpine(trace), ['[0-2][0][2][5] 1/0'])
  })

  it('does not fuse an empty batch into a non-empty one', () => {
    const { trace, reqs } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 0)])
    assert.deepEqual(describeSpine(trace), ['[0-1][0][1][0] 1/1', '[1-2][1][2][0] 1/0'])
    assert.deepEqual(reqs, [])
  })
})

describe('checkPush', () => {
  const { trace } = pushAll(u64Trace(), [hb(0, 5, 0, 1)])
  const cases: [string, ReturnType<typeof hb>, RegExp | null][] = [
    ['a batch at the upper', hb(5, 6, 0, 1), null],
    ['a gap', hb(6, 7, 0, 1), /does not match the trace upper \[5\]/],
    ['an empty interval', hb(5, 5, 0, 0), /empty-interval/],
    ['a since beyond the trace since', hb(5, 6, 1, 1), /since \[1\] is beyond the trace since \[0\]/],
  ]
  for (const [name, batch, expected] of cases) {
    it(name, () => {
      const problem = checkPush(trace, batch)
      if (expected === null) assert.equal(problem, null)
      else {
        assert.match(problem ?? '', expected)
        assert.throws(() => pushBatch(trace, batch), expected)
      }
    })
  }
})

describe('exert', () => {
  it('does nothing with fewer than two hollow batches', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 7)])
    const r = exert(trace, 100)
    assert.equal(r.didWork, false)
    assert.deepEqual(r.mergeReqs, [])
    assert.deepEqual(describeSpine(r.trace), describeSpine(trace))
  })

  it('fuels a merge in progress to completion', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 100)])
    assert.deepEqual(describeSpine(trace), ['[0-1][0][1][0] 1/1', '[1-2][1][2][0] 1/100'])
    const partial = exert(trace, 100)
    assert.equal(partial.didWork, true)
    assert.deepEqual(partial.mergeReqs, [])
    const done = exert(partial.trace, 1)
    assert.deepEqual(done.mergeReqs.map(describeReq), ['[0][2][0] 2'])
    assert.deepEqual(describeSpine(done.trace), ['[0-2][0][2][0] 2/101'])
    assert.equal(validate(done.trace), null)
  })

  it('introduces an empty batch at the upper when nothing is merging', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 1), hb(2, 3, 0, 1)])
    assert.deepEqual(describeSpine(trace), ['[0-2][0][2][0] 2/2', '[2-3][2][3][0] 1/1'])
    const first = exert(trace, 1)
    assert.equal(first.didWork, true)
    assert.deepEqual(describeSpine(first.trace), ['[0-2][0][2][0] 2/2', '[2-3][2][3][0] 1/1', '[3-4][3][3][0] 1/0'])
    assert.equal(first.trace.nextId, 4)
    const second = exert(first.trace, 1)
    assert.deepEqual(second.mergeReqs.map(describeReq), ['[2][3][0] 2'])
    assert.equal(validate(second.trace), null)
  })

  it('refuses a negative or fractional effort', () => {
    assert.throws(() => exert(u64Trace(), -1), /non-negative integer/)
    assert.throws(() => exert(u64Trace(), 1.5), /non-negative integer/)
  })
})

describe('nonCompactMergeReqs', () => {
  it('lists spine batches holding several hollow batches or runs, oldest first', () => {
    const { trace } = pushAll(u64Trace(), [0, 1, 2, 3, 4, 5, 6, 7].map((i) => hb(i, i + 1, 0, 1)))
    assert.deepEqual(nonCompactMergeReqs(trace).map(describeReq), ['[0][4][0] 4', '[4][6][0] 2'])
    const split = { ...hb(8, 9, 0, 2), parts: [hb(0, 1, 0, 1).parts[0]!, hb(0, 1, 0, 1).parts[0]!], runSplits: [1], runMeta: [{ order: 'structured' as const, schemaId: 0 }, { order: 'structured' as const, schemaId: 0 }] }
    const more = pushBatch(trace, split).trace
    assert.deepEqual(nonCompactMergeReqs(more).map(describeReq).at(-1), '[8][9][0] 1')
  })
})

describe('validate', () => {
  const { trace } = pushAll(u64Trace(), [0, 1, 2, 3, 4].map((i) => hb(i, i + 1, 0, 1)))
  it('accepts a pushed trace', () => assert.equal(validate(trace), null))
  it('finds a since beyond the trace since', () => {
    const t = pushBatch(downgradeSince(trace, f(9)), hb(5, 6, 9, 1)).trace
    assert.match(validate(downgradeSince(t, f(2))) ?? '', /since \[9\] is beyond the trace since \[2\]/)
  })
  it('finds a wrong next id', () => assert.match(validate({ ...trace, nextId: 9 }) ?? '', /next id 9/))
  it('finds a wrong upper', () => assert.match(validate({ ...trace, upper: f(7) }) ?? '', /trace upper \[7\]/))
  it('finds a full level without a merge, and a merge without a full level', () => {
    const merging = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 1)]).trace
    assert.equal(merging.levels[0]?.batches.length, 2)
    const noMerge = merging.levels.map((l) => ({ ...l, merge: null }))
    assert.match(validate({ ...merging, levels: noMerge }) ?? '', /full without a merge/)
    const oneBatch = merging.levels.map((l) => ({ ...l, batches: l.batches.slice(0, 1) }))
    assert.match(validate({ ...merging, levels: oneBatch }) ?? '', /merging without being full/)
  })
  it('finds hollow batches that do not tile their spine batch', () => {
    const merged = pushAll(u64Trace(), [0, 1, 2].map((i) => hb(i, i + 1, 0, 1))).trace
    const levels = merged.levels.map((l) => ({ ...l, batches: l.batches.map((b) => (b.parts.length === 2 ? { ...b, parts: [b.parts[1]!, b.parts[0]!] } : b)) }))
    assert.match(validate({ ...merged, levels }) ?? '', /hollow batch 0 id 1-2 does not follow id 0/)
  })
  it('finds a spine batch whose len is not its parts sum', () => {
    const levels = trace.levels.map((l) => ({ ...l, batches: l.batches.map((b) => ({ ...b, len: b.len + 1 })) }))
    assert.match(validate({ ...trace, levels }) ?? '', /not the sum/)
  })
})
