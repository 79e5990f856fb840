import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HollowBatch } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { product } from '../../src/core/timestamp.js'
import {
  APPLY_MERGE_RESULTS,
  applied,
  applyMergeRes,
  matched,
  type ApplyMergeResult,
} from '../../src/trace/apply-merge-res.js'
import { formatSpineId } from '../../src/trace/spine-id.js'
import { emptyTrace, pushBatch, spineBatches, validate, type Trace } from '../../src/trace/trace.js'
import { describeSpine, hb, pushAll, u64Trace } from './fixtures.js'

/** Eight len-1 batches `[0,2) … [14,16)` fueled into one spine batch, then `[16,18)` of 100 (fixture "compaction_apply_res"). */
function fixture(): Trace {
  const small = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => hb(2 * i, 2 * i + 2, 0, 1))
  const { trace } = pushAll(u64Trace(), [...small, hb(16, 18, 0, 100)])
  return trace
}

/** Hollow batches of the spine as `lower-upper:len`, per spine batch. */
const shape = (t: Trace): string[] =>
  spineBatches(t).map((sb) => `${formatSpineId(sb.id)} ` + sb.parts.map((p) => `${p.batch.desc.lower[0]}-${p.batch.desc.upper[0]}:${p.batch.len}`).join(' '))

describe('applyMergeRes, in sequence on one trace (fixture "compaction_apply_res")', () => {
  let trace = fixture()
  it('starts with the fueled spine batch', () => {
    assert.deepEqual(describeSpine(trace), ['[0-8][0][16][0] 8/8', '[8-9][16][18][0] 1/100'])
  })
  // [name, lower, upper, since, len, expected result, expected spine after (null: unchanged)]
  const steps: [string, number, number, number, number, ApplyMergeResult, string[] | null][] = [
    ['spans two spine batches exactly', 0, 18, 0, 2, 'not_applied_no_match', null],
    ['spans two spine batches, lower matching', 0, 17, 0, 2, 'not_applied_no_match', null],
    ['spans two spine batches, upper matching', 1, 18, 0, 2, 'not_applied_no_match', null],
    ['spans beyond every spine batch', 0, 20, 0, 2, 'not_applied_no_match', null],
    ['lower aligned with no hollow batch', 1, 6, 0, 2, 'not_applied_no_match', null],
    ['upper aligned with no hollow batch', 2, 7, 0, 2, 'not_applied_no_match', null],
    ['inside a compact spine batch', 16, 17, 0, 2, 'not_applied_no_match', null],
    ['more updates than the whole spine batch', 0, 16, 0, 9, 'not_applied_too_many_updates', null],
    ['more updates than the subset it replaces', 0, 4, 0, 3, 'not_applied_too_many_updates', null],
    ['a subset at the start', 0, 4, 0, 2, 'applied_subset', ['0-8 0-4:2 4-6:1 6-8:1 8-10:1 10-12:1 12-14:1 14-16:1', '8-9 16-18:100']],
    ['a subset at the end', 12, 16, 0, 2, 'applied_subset', ['0-8 0-4:2 4-6:1 6-8:1 8-10:1 10-12:1 12-16:2', '8-9 16-18:100']],
    ['a subset in the middle', 6, 10, 0, 2, 'applied_subset', ['0-8 0-4:2 4-6:1 6-10:2 10-12:1 12-16:2', '8-9 16-18:100']],
    ['a single hollow batch', 4, 6, 0, 1, 'applied_subset', ['0-8 0-4:2 4-6:1 6-10:2 10-12:1 12-16:2', '8-9 16-18:100']],
    ['a subset some of it already replaced', 4, 12, 0, 4, 'applied_subset', ['0-8 0-4:2 4-12:4 12-16:2', '8-9 16-18:100']],
    ['a since beyond the spine batch since', 0, 16, 1, 8, 'not_applied_invalid_since', null],
    ['a subset with a since beyond', 0, 12, 1, 2, 'not_applied_invalid_since', null],
    ['a since beyond, but matching nothing', 1, 12, 1, 2, 'not_applied_no_match', null],
    ['the whole spine batch', 0, 16, 0, 8, 'applied_exact', ['0-8 0-16:8', '8-9 16-18:100']],
  ]
  for (const [name, lower, upper, since, len, result, after] of steps) {
    it(`${name} ⇒ ${result}`, () => {
      const before = trace
      const r = applyMergeRes(trace, { output: hb(lower, upper, since, len, null) })
      assert.equal(r.result, result)
      if (after === null) assert.equal(r.trace, before, 'a result that does not apply returns the same trace')
      else assert.deepEqual(shape(r.trace), after)
      assert.equal(validate(r.trace), null)
      assert.deepEqual(describeSpine(r.trace).map((s) => s.split(' ')[0]), describeSpine(before).map((s) => s.split(' ')[0]))
      trace = r.trace
    })
  }
})

describe('applyMergeRes details', () => {
  it('an exact apply keeps the spine id and takes the output desc, a lower since included', () => {
    const { trace } = pushAll(u64Trace(), [0, 1, 2, 3].map((i) => hb(i, i + 1, 0, 1)))
    const withSince = pushBatch({ ...trace, since: [4n] }, hb(4, 5, 4, 100)).trace
    assert.deepEqual(describeSpine(withSince), ['[0-4][0][4][4] 4/4', '[4-5][4][5][4] 1/100'])
    const tooFar = applyMergeRes(withSince, { output: hb(0, 4, 5, 0, null) })
    assert.equal(tooFar.result, 'not_applied_invalid_since')
    const r = applyMergeRes(withSince, { output: hb(0, 4, 3, 2, null) })
    assert.equal(r.result, 'applied_exact')
    assert.deepEqual(describeSpine(r.trace), ['[0-4][0][4][3] 1/2', '[4-5][4][5][4] 1/100'])
    assert.equal(formatSpineId(spineBatches(r.trace)[0]!.parts[0]!.id), '0-4')
  })

  it('a subset apply keeps the spine batch desc and ids the part by what it replaced', () => {
    const { trace } = pushAll(u64Trace(), [0, 1, 2, 3].map((i) => hb(i, i + 1, 0, 1)))
    const withSince = pushBatch({ ...trace, since: [4n] }, hb(4, 5, 4, 100)).trace
    const r = applyMergeRes(withSince, { output: hb(1, 3, 2, 1, null) })
    assert.equal(r.result, 'applied_subset')
    const sb = spineBatches(r.trace)[0]!
    assert.deepEqual(sb.desc, description([0n], [4n], [4n]))
    assert.deepEqual(sb.parts.map((p) => formatSpineId(p.id)), ['0-1', '1-3', '3-4'])
    assert.equal(sb.len, 3)
  })

  it('an empty-interval result between two hollow batches matches nothing', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 3, 0, 1), hb(3, 6, 0, 1), hb(6, 7, 0, 1)])
    assert.deepEqual(shape(trace), ['0-2 0-3:1 3-6:1', '2-3 6-7:1'])
    assert.equal(applyMergeRes(trace, { output: hb(3, 3, 0, 0, null) }).result, 'not_applied_no_match')
  })

  it('works over product timestamps', () => {
    const tk = product
    const fr = (n: number) => (n === 0 ? [[0, 0] as const] : [[0, n] as const, [n, 0] as const])
    const batch = (lo: number, hi: number, len: number, diffs: bigint | null = BigInt(len)): HollowBatch => ({
      ...hb(0, 1, 0, len, diffs),
      desc: description(fr(lo), fr(hi), fr(0)),
    })
    let trace = emptyTrace(tk)
    for (let i = 0; i < 3; i++) trace = pushBatch(trace, batch(i, i + 1, 1)).trace
    assert.equal(spineBatches(trace)[0]!.parts.length, 2)
    const r = applyMergeRes(trace, { output: batch(0, 2, 1, 2n) })
    assert.equal(r.result, 'applied_exact')
    const beyond = applyMergeRes(trace, { output: { ...batch(0, 2, 1), desc: description(fr(0), fr(2), [[1, 1]]) } })
    assert.equal(beyond.result, 'not_applied_invalid_since')
    assert.equal(validate(r.trace), null)
  })
})

describe('diffs sums', () => {
  const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 2, 5n), hb(1, 2, 0, 2, -3n), hb(2, 3, 0, 1)])
  // spine: [0-2] holding [0,1) (diffs 5) and [1,2) (diffs -3); [2-3].
  it('agreeing sums apply', () => assert.equal(applyMergeRes(trace, { output: hb(0, 2, 0, 3, 2n) }).result, 'applied_exact'))
  it('an unknown output sum is not checked', () => assert.equal(applyMergeRes(trace, { output: hb(0, 2, 0, 3, null) }).result, 'applied_exact'))
  // A result whose diffs do not sum like what it would replace is not a compaction of it.
  const unchanged = (output: ReturnType<typeof hb>) => {
    const r = applyMergeRes(trace, { output })
    assert.equal(r.trace, trace)
    return r.result
  }
  it('an exact match with another sum does not match', () => assert.equal(unchanged(hb(0, 2, 0, 3, 3n)), 'not_applied_no_match'))
  it('a subset match with another sum does not match', () => assert.equal(unchanged(hb(1, 2, 0, 1, 0n)), 'not_applied_no_match'))
  it('a mismatch wins over too many updates', () => assert.equal(unchanged(hb(0, 2, 0, 9, 7n)), 'not_applied_no_match'))
  it('an unknown input sum is not checked', () => {
    const unknown = pushAll(u64Trace(), [hb(0, 1, 0, 2, null), hb(1, 2, 0, 2, 4n), hb(2, 3, 0, 1)]).trace
    assert.equal(applyMergeRes(unknown, { output: hb(0, 2, 0, 3, 99n) }).result, 'applied_exact')
  })
  it('a since mismatch is reported before sums are compared', () => {
    assert.equal(applyMergeRes(trace, { output: hb(0, 2, 1, 3, 99n) }).result, 'not_applied_invalid_since')
  })
})

describe('result predicates', () => {
  it('applied and matched', () => {
    const table = APPLY_MERGE_RESULTS.map((r) => [r, applied(r), matched(r)])
    assert.deepEqual(table, [
      ['applied_exact', true, true],
      ['applied_subset', true, true],
      ['not_applied_no_match', false, false],
      ['not_applied_invalid_since', false, false],
      ['not_applied_too_many_updates', false, true],
    ])
  })
})
