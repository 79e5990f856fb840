/**
 * Chunk results of incremental compaction on the trace: `replaceRuns` (persist's PartialBatch),
 * `applyResult` over both modes (a major compaction's chunks gather spine batches), and
 * `remainingInputs` (what a rescued attempt has left to do).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runs, type BatchPart, type HollowBatch } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { applyResult } from '../../src/trace/apply-result.js'
import { WHOLE_BATCHES } from '../../src/trace/compaction-input.js'
import { remainingInputs, withoutParts } from '../../src/trace/remaining-inputs.js'
import { replaceRuns } from '../../src/trace/replace-runs.js'
import { formatSpineId } from '../../src/trace/spine-id.js'
import { allHollowBatches, downgradeSince, spineBatches, validate, type Trace } from '../../src/trace/trace.js'
import { f, hb, hollowPart, pushAll, u64Trace } from './fixtures.js'

/** A u64 batch `[lo, hi)` at since 0 with one part per run, `lens[i]` updates in run i. */
function multiRun(lo: number, hi: number, lens: number[]): HollowBatch {
  const parts = lens.map((l) => hollowPart(l))
  return {
    desc: description(f(lo), f(hi), f(0)),
    len: lens.reduce((a, b) => a + b, 0),
    parts,
    runSplits: lens.slice(1).map((_, i) => i + 1),
    runMeta: lens.map(() => ({ order: 'structured' as const, schemaId: 0 })),
  }
}

/** A one-run output `[lo, hi)` at `since` of `len` updates whose diffs sum to `diffs`. */
function output(lo: number, hi: number, since: number, len: number, diffs: bigint | null = BigInt(len)): HollowBatch {
  return hb(lo, hi, since, len, diffs)
}

/** Spine batches `[0,6)` (hollow batches 0-1, the three-run 1-2, 2-3 … 5-6), `[6,8)`, `[8,9)`. */
function fixture(): { trace: Trace; big: HollowBatch } {
  const big = multiRun(1, 2, [1, 1, 1])
  const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), big, ...[2, 3, 4, 5, 6, 7, 8].map((i) => hb(i, i + 1, 0, 1))])
  return { trace, big }
}

const runsOf = (b: HollowBatch): BatchPart[][] => runs(b).map((r) => [...r.parts])
const batchAt = (t: Trace, lo: number): HollowBatch => allHollowBatches(t).find((b) => b.desc.lower[0] === BigInt(lo)) as HollowBatch
const shape = (t: Trace): string[] => spineBatches(t).map((sb) => `${formatSpineId(sb.id)} [${sb.desc.lower[0]},${sb.desc.upper[0]}) since ${sb.desc.since[0]} ${sb.parts.length}/${sb.len}`)

describe('replaceRuns', () => {
  it('replaces the named runs by the output, keeps the others, and counts updates', () => {
    const { trace, big } = fixture()
    const [r0, r1, r2] = runsOf(big) as [BatchPart[], BatchPart[], BatchPart[]]
    assert.deepEqual(shape(trace), ['0-6 [0,6) since 0 6/8', '6-8 [6,8) since 0 2/2', '8-9 [8,9) since 0 1/1'])
    const out = output(1, 2, 0, 1, 2n)
    const r = replaceRuns(trace, out, [...r0, ...r1])
    assert.equal(r.result, 'applied_subset')
    assert.equal(validate(r.trace), null)
    const after = batchAt(r.trace, 1)
    assert.deepEqual(runsOf(after), [r2, out.parts])
    assert.equal(after.len, 3 - 2 + 1)
    assert.deepEqual(after.desc, big.desc)
    assert.equal(spineBatches(r.trace)[0]?.len, (spineBatches(trace)[0]?.len ?? 0) - 1)
    const structure = (t: Trace): string[] => shape(t).map((x) => x.replace(/ [0-9]+\/[0-9]+$/, ''))
    assert.deepEqual(structure(r.trace), structure(trace), 'the spine keeps its structure')
    assert.deepEqual(shape(r.trace)[0], '0-6 [0,6) since 0 6/7')
    assert.equal(batchAt(trace, 1), big, 'the argument is not changed')

    // The last run in turn: the batch is left with the two outputs.
    const out2 = output(1, 2, 0, 1)
    const again = replaceRuns(r.trace, out2, r2)
    assert.equal(again.result, 'applied_subset')
    assert.deepEqual(runsOf(batchAt(again.trace, 1)), [out.parts, out2.parts])
    assert.equal(batchAt(again.trace, 1).len, 2)
  })

  it('a run that is gone (another result replaced it) does not match, and says so', () => {
    const { trace, big } = fixture()
    const [r0] = runsOf(big) as [BatchPart[]]
    const first = replaceRuns(trace, output(1, 2, 0, 1), r0)
    assert.equal(first.result, 'applied_subset')
    const twice = replaceRuns(first.trace, output(1, 2, 0, 1), r0)
    assert.equal(twice.result, 'not_applied_no_match')
    assert.equal(twice.trace, first.trace)
    assert.equal(twice.detail?.why, 'range')
    assert.match(twice.detail?.message ?? '', /1 of the 1 parts it replaces are no longer in the hollow batch from \[1\] to \[2\]/)
  })

  it('bounds that are no hollow batch, an empty list of parts: no match', () => {
    const { trace, big } = fixture()
    const parts = big.parts.slice(0, 1)
    assert.equal(replaceRuns(trace, output(1, 3, 0, 1), parts).result, 'not_applied_no_match')
    assert.match(replaceRuns(trace, output(1, 3, 0, 1), parts).detail?.message ?? '', /no hollow batch spans exactly \[1\] to \[3\]/)
    assert.equal(replaceRuns(trace, output(1, 2, 0, 1), []).result, 'not_applied_no_match')
  })

  it('checks the since against the spine batch, the diff sums and the update count', () => {
    const { trace, big } = fixture()
    const [r0] = runsOf(big) as [BatchPart[]]
    const beyond = replaceRuns(trace, output(1, 2, 1, 1), r0)
    assert.deepEqual([beyond.result, beyond.detail?.why], ['not_applied_invalid_since', 'since'])
    const later = downgradeSince(trace, f(5))
    assert.equal(replaceRuns(later, output(1, 2, 1, 1), r0).result, 'not_applied_invalid_since', 'the spine batch since, not the trace since, bounds it')
    const wrongSum = replaceRuns(trace, output(1, 2, 0, 1, 2n), r0)
    assert.deepEqual([wrongSum.result, wrongSum.detail?.why], ['not_applied_no_match', 'diffs'])
    assert.equal(replaceRuns(trace, output(1, 2, 0, 1, null), r0).result, 'applied_subset', 'an unknown sum is not checked')
    const tooMany = replaceRuns(trace, output(1, 2, 0, 2, 1n), r0)
    assert.deepEqual([tooMany.result, tooMany.detail?.why], ['not_applied_too_many_updates', 'updates'])
    assert.equal(tooMany.trace, trace)
  })

  it('named parts of a run (exploded for its order) leave it; the run keeps its other parts', () => {
    const a = hollowPart(2)
    const b = hollowPart(3)
    const c = hollowPart(4)
    const codec: HollowBatch = { desc: description(f(1), f(2), f(0)), len: 9, parts: [a, b, c], runSplits: [], runMeta: [{ order: 'codec', schemaId: 0 }] }
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), codec, hb(2, 3, 0, 1), hb(3, 4, 0, 1), hb(4, 5, 0, 1)])
    const out = output(1, 2, 0, 5)
    const r = replaceRuns(trace, out, [a, b])
    assert.equal(r.result, 'applied_subset')
    const after = batchAt(r.trace, 1)
    assert.deepEqual(runs(after), [
      { meta: { order: 'codec', schemaId: 0 }, parts: [c] },
      { meta: { order: 'structured', schemaId: 0 }, parts: out.parts },
    ])
    assert.equal(after.len, 9)
  })

  it('replacing inline parts: their updates are unknown, so the batch keeps its len and the output may not exceed it', () => {
    const inline: BatchPart = { kind: 'inline', encodedSizeBytes: 3, updates: new Uint8Array([1, 2, 3]) }
    const withInline: HollowBatch = {
      desc: description(f(1), f(2), f(0)),
      len: 5,
      parts: [inline, hollowPart(3)],
      runSplits: [1],
      runMeta: [
        { order: 'structured', schemaId: 0 },
        { order: 'structured', schemaId: 0 },
      ],
    }
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), withInline, hb(2, 3, 0, 1), hb(3, 4, 0, 1), hb(4, 5, 0, 1)])
    const copy: BatchPart = { kind: 'inline', encodedSizeBytes: 3, updates: new Uint8Array([1, 2, 3]) }
    assert.equal(replaceRuns(trace, output(1, 2, 0, 6), [copy]).result, 'not_applied_too_many_updates')
    const r = replaceRuns(trace, output(1, 2, 0, 2), [copy])
    assert.equal(r.result, 'applied_subset', 'an inline part is found by its bytes')
    assert.equal(batchAt(r.trace, 1).len, 5)
    assert.equal(batchAt(r.trace, 1).parts.length, 2)
  })
})

describe('applyResult', () => {
  it('merge mode: whole batches by desc, runs by their parts', () => {
    const { trace, big } = fixture()
    assert.equal(applyResult(trace, output(0, 2, 0, 4), 'merge', WHOLE_BATCHES).result, 'applied_subset')
    assert.equal(applyResult(trace, output(1, 2, 0, 1), 'merge', { kind: 'runs', parts: big.parts.slice(0, 1) }).result, 'applied_subset')
  })

  it('major mode, whole spine batches: they become one holding the output (as before)', () => {
    const { trace } = fixture()
    const t = downgradeSince(trace, f(7))
    const r = applyResult(t, output(0, 8, 7, 10), 'major', WHOLE_BATCHES)
    assert.equal(r.result, 'applied_exact')
    assert.deepEqual(shape(r.trace), ['0-8 [0,8) since 7 1/10', '8-9 [8,9) since 0 1/1'])
  })

  it('major mode, a chunk across spine batches: they are gathered at the output since, then the output replaces its hollow batches', () => {
    const { trace } = fixture()
    const t = downgradeSince(trace, f(7))
    const r = applyResult(t, output(4, 7, 7, 3), 'major', WHOLE_BATCHES)
    assert.equal(r.result, 'applied_subset')
    assert.equal(validate(r.trace), null)
    assert.deepEqual(shape(r.trace), ['0-8 [0,8) since 7 6/10', '8-9 [8,9) since 0 1/1'])
    assert.deepEqual(
      allHollowBatches(r.trace).map((b) => `${b.desc.lower[0]}-${b.desc.upper[0]}`),
      ['0-1', '1-2', '2-3', '3-4', '4-7', '7-8', '8-9'],
    )
    // The next chunk of the same compaction lands inside the gathered spine batch.
    const next = applyResult(r.trace, output(0, 4, 7, 5, 6n), 'major', WHOLE_BATCHES)
    assert.equal(next.result, 'applied_subset')
    assert.deepEqual(shape(next.trace), ['0-8 [0,8) since 7 3/9', '8-9 [8,9) since 0 1/1'])
  })

  it('major mode, a chunk of runs: its spine batch is raised to the output since first', () => {
    const { trace, big } = fixture()
    const t = downgradeSince(trace, f(7))
    const r = applyResult(t, output(1, 2, 7, 1), 'major', { kind: 'runs', parts: big.parts.slice(0, 1) })
    assert.equal(r.result, 'applied_subset')
    assert.equal(validate(r.trace), null)
    assert.deepEqual(shape(r.trace)[0], '0-6 [0,6) since 7 6/8')
    assert.equal(applyResult(t, output(1, 2, 7, 1), 'merge', { kind: 'runs', parts: big.parts.slice(0, 1) }).result, 'not_applied_invalid_since')
  })

  it('major mode, not applied after a gather: the trace is unchanged, gather included', () => {
    const { trace } = fixture()
    const t = downgradeSince(trace, f(7))
    const r = applyResult(t, output(4, 7, 7, 4, 3n), 'major', WHOLE_BATCHES)
    assert.equal(r.result, 'not_applied_too_many_updates')
    assert.equal(r.trace, t)
    const beyond = applyResult(t, output(4, 7, 8, 1), 'major', WHOLE_BATCHES)
    assert.equal(beyond.result, 'not_applied_invalid_since')
    assert.equal(beyond.trace, t)
    const nowhere = applyResult(t, output(4, 5, 7, 1), 'major', { kind: 'runs', parts: [hollowPart(1)] })
    assert.equal(nowhere.result, 'not_applied_no_match')
    assert.equal(nowhere.trace, t)
  })
})

describe('remainingInputs', () => {
  const inputsOf = (t: Trace): HollowBatch[] => allHollowBatches(t).slice(0, 6)
  const groups = (gs: ReturnType<typeof remainingInputs>): string[] =>
    gs.map((g) =>
      g.kind === 'batches'
        ? `batches ${g.inputs.map((b) => b.desc.lower[0]).join(',')}`
        : `runs of ${g.batch.desc.lower[0]}: ${runs(g.batch).map((r) => r.parts.length).join('+')} len ${g.batch.len}`,
    )

  it('untouched inputs are one group; inputs replaced by chunk outputs are left out', () => {
    const { trace } = fixture()
    const inputs = inputsOf(trace)
    assert.deepEqual(groups(remainingInputs(trace, inputs)), ['batches 0,1,2,3,4,5'])
    const chunk1 = applyResult(trace, output(0, 2, 0, 4), 'merge', WHOLE_BATCHES).trace
    assert.deepEqual(groups(remainingInputs(chunk1, inputs)), ['batches 2,3,4,5'])
    const chunk2 = applyResult(chunk1, output(4, 5, 0, 1), 'merge', WHOLE_BATCHES).trace
    assert.deepEqual(groups(remainingInputs(chunk2, inputs)), ['batches 2,3', 'batches 5'], 'an output with the same bounds holds none of the input parts')
    const all = applyResult(chunk2, output(0, 6, 0, 8), 'merge', WHOLE_BATCHES).trace
    assert.deepEqual(remainingInputs(all, inputs), [])
  })

  it('a batch some of whose runs were replaced: a group of its remaining runs only', () => {
    const { trace, big } = fixture()
    const inputs = inputsOf(trace)
    const [r0] = runsOf(big) as [BatchPart[]]
    const partly = replaceRuns(trace, output(1, 2, 0, 1), r0).trace
    const gs = remainingInputs(partly, inputs)
    assert.deepEqual(groups(gs), ['batches 0', 'runs of 1: 1+1 len 2', 'batches 2,3,4,5'])
    const runsGroup = gs[1] as { kind: 'runs'; batch: HollowBatch }
    assert.deepEqual(runsGroup.batch.parts, big.parts.slice(1))
    assert.deepEqual(runsGroup.batch.desc, big.desc)
  })

  it('withoutParts: a rescued attempt leaves its own outputs out of inputs planned from the state', () => {
    const { trace, big } = fixture()
    const [r0, r1] = runsOf(big) as [BatchPart[], BatchPart[]]
    const ours = new Set([...r0, ...(batchAt(trace, 3).parts as BatchPart[])])
    const mine = (p: BatchPart): boolean => ours.has(p)
    const gs = withoutParts(inputsOf(trace), mine)
    assert.deepEqual(groups(gs), ['batches 0', 'runs of 1: 1+1 len 2', 'batches 2', 'batches 4,5'])
    assert.deepEqual((gs[1] as { batch: HollowBatch }).batch.parts, [...r1, ...big.parts.slice(2)])
    assert.deepEqual(withoutParts(inputsOf(trace), () => false).length, 1)
    assert.deepEqual(withoutParts(inputsOf(trace), () => true), [])
  })

  it('groups of empty inputs only are left out', () => {
    const empty = hb(1, 2, 0, 0)
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), empty, hb(2, 3, 0, 1), hb(3, 4, 0, 1), hb(4, 5, 0, 1)])
    const inputs = allHollowBatches(trace).slice(0, 3)
    const chunk = applyResult(trace, output(0, 1, 0, 1), 'merge', WHOLE_BATCHES).trace
    assert.deepEqual(groups(remainingInputs(chunk, inputs)), ['batches 1,2'])
    const chunk2 = applyResult(chunk, output(2, 3, 0, 1), 'merge', WHOLE_BATCHES).trace
    assert.deepEqual(remainingInputs(chunk2, inputs), [])
  })
})
