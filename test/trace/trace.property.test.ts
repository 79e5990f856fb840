/**
 * Random histories of pushes, since downgrades, exerts and applications of emitted merge requests,
 * over u64 and product timestamps, checked after every step against invariants and simple oracles.
 */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import fc from 'fast-check'
import * as ac from '../../src/core/antichain.js'
import type { Antichain } from '../../src/core/antichain.js'
import { diffsSum, encodedSizeBytes, inlineBytes, runs, type HollowBatch } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { product, u64, type Timestamp, type TimestampKind } from '../../src/core/timestamp.js'
import { APPLY_MERGE_RESULTS, applied, applyMergeRes } from '../../src/trace/apply-merge-res.js'
import { replaceSpineBatches } from '../../src/trace/replace-spine-batches.js'
import type { FueledMergeReq } from '../../src/trace/fueled-merge-req.js'
import { spineIdEquals } from '../../src/trace/spine-id.js'
import { traceFromJson, traceToJson, traceToJsonBytes } from '../../src/trace/trace-json.js'
import { traceInlineBytes, traceStats } from '../../src/trace/trace-summary.js'
import {
  allHollowBatches,
  checkPush,
  downgradeSince,
  emptyTrace,
  exert,
  pushBatch,
  spineBatches,
  validate,
  type Trace,
} from '../../src/trace/trace.js'
import { hollowPart } from './fixtures.js'

const jsonText = (bytes: readonly Uint8Array[]): string => Buffer.concat(bytes).toString('utf8')

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`trace property test seed: ${seed} (rerun with FC_SEED=${seed})`)

/** The n-th frontier of a chain: `[n]` for u64; `[(0,n),(n,0)]` (or `[(0,0)]`) for products. */
function frontier(tk: TimestampKind, n: number): Antichain {
  if (tk.name === 'u64') return [BigInt(n)]
  return n === 0 ? [[0, 0] as Timestamp] : ac.canonical(tk, [[0, n], [n, 0]] as Timestamp[])
}

type Op =
  | { kind: 'push'; width: number; len: number; sinceAtSpine: boolean }
  | { kind: 'close'; len: number }
  | { kind: 'downgrade'; step: number; toEmpty: boolean }
  | { kind: 'exert'; fuel: number }
  | { kind: 'apply'; pick: number; subset: boolean; from: number; to: number; ratio: number; since: 'req' | 'minimum' | 'beyond' }
  | { kind: 'major'; from: number; to: number; ratio: number; since: 'trace' | 'minimum' | 'beyond' }

const lenArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 4 }) },
  { weight: 3, arbitrary: fc.integer({ min: 5, max: 3000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 20, max: 2 ** 40 }) },
)

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('push' as const), width: fc.integer({ min: 1, max: 3 }), len: lenArb, sinceAtSpine: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), len: lenArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('downgrade' as const), step: fc.integer({ min: 0, max: 4 }), toEmpty: fc.integer({ min: 0, max: 15 }).map((x) => x === 0) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('exert' as const), fuel: fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 17, max: 5000 })) }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('apply' as const),
      pick: fc.nat(),
      subset: fc.boolean(),
      from: fc.nat(),
      to: fc.nat(),
      ratio: fc.oneof({ weight: 6, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) }, { weight: 1, arbitrary: fc.double({ min: 1.01, max: 3, noNaN: true }) }),
      since: fc.constantFrom('req' as const, 'req' as const, 'minimum' as const, 'beyond' as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('major' as const),
      from: fc.nat(),
      to: fc.nat(),
      ratio: fc.oneof({ weight: 6, arbitrary: fc.double({ min: 0, max: 1, noNaN: true }) }, { weight: 1, arbitrary: fc.double({ min: 1.01, max: 3, noNaN: true }) }),
      since: fc.constantFrom('trace' as const, 'trace' as const, 'minimum' as const, 'beyond' as const),
    }),
  },
)

const totalLen = (t: Trace): number => allHollowBatches(t).reduce((s, b) => s + b.len, 0)
const totalDiffs = (t: Trace): bigint => allHollowBatches(t).reduce((s, b) => s + (diffsSum(b.parts) ?? 0n), 0n)

function batch(tk: TimestampKind, lower: Antichain, upper: Antichain, since: Antichain, len: number, diffs: bigint): HollowBatch {
  const parts = len === 0 ? [] : [hollowPart(len, diffs)]
  return { desc: description(lower, upper, since), len, parts, runSplits: [], runMeta: parts.length === 0 ? [] : [{ order: 'structured', schemaId: 0 }] }
}

/** Lowers and uppers chain from `[minimum]` to the trace upper, checked without `validate`. */
function assertContiguous(t: Trace): void {
  let at = ac.minimumFrontier(t.tk)
  for (const b of allHollowBatches(t)) {
    assert.ok(ac.equals(t.tk, b.desc.lower, at), 'hollow batch lower is the previous upper')
    at = b.desc.upper
  }
  assert.ok(ac.equals(t.tk, at, t.upper), 'the last upper is the trace upper')
}

const spineShape = (t: Trace): string[] =>
  t.levels.flatMap((l, i) => [
    `level ${i} merge ${l.merge === null ? '-' : `${l.merge.id.lo}-${l.merge.id.hi}/${l.merge.remainingWork}`}`,
    ...l.batches.map((sb) => `${sb.id.lo}-${sb.id.hi} ${ac.format(t.tk, sb.desc.lower)} ${ac.format(t.tk, sb.desc.upper)}`),
  ])
const boundaries = (t: Trace): string[] => [...allHollowBatches(t).map((b) => ac.format(t.tk, b.desc.lower)), ac.format(t.tk, t.upper)]

/** Whether `sub` is a subsequence of `all` with the same first and last elements. */
function coarsens(sub: string[], all: string[]): boolean {
  if (sub[0] !== all[0] || sub.at(-1) !== all.at(-1)) return false
  let i = 0
  for (const x of all) if (i < sub.length && sub[i] === x) i++
  return i === sub.length
}

/** How often each apply outcome occurred over the whole property run. */
const outcomes = new Map<string, number>()
let steps = 0
let maxLevels = 0

function run(tk: TimestampKind, ops: Op[]): void {
  let trace = emptyTrace(tk)
  let upperN = 0
  let sinceN = 0
  let closed = false
  let sinceEmpty = false
  let pushedLen = 0
  const pending: FueledMergeReq[] = []

  for (const op of ops) {
    const before = trace
    const beforeJson = JSON.stringify(traceToJson(before))
    switch (op.kind) {
      case 'push':
      case 'close': {
        if (closed) continue
        const lower = trace.upper
        const nextN = upperN + (op.kind === 'push' ? op.width : 0)
        const upper = op.kind === 'close' ? [] : frontier(tk, nextN)
        const since = op.kind === 'push' && op.sinceAtSpine ? trace.since : ac.minimumFrontier(tk)
        const b = batch(tk, lower, upper, since, op.len, BigInt(op.len))
        assert.equal(checkPush(trace, b), null)
        const r = pushBatch(trace, b)
        trace = r.trace
        pending.push(...r.mergeReqs)
        for (const req of r.mergeReqs) {
          assert.ok(req.inputs.length >= 2 && req.inputs.some((i) => i.batch.len > 0), 'a merge request has two or more inputs, not all empty')
        }
        pushedLen += op.len
        upperN = nextN
        closed = op.kind === 'close'
        assert.equal(totalLen(trace), totalLen(before) + op.len)
        break
      }
      case 'downgrade': {
        // NB: the since only moves forward; once `[]` it stays there.
        sinceN += op.step
        if (op.toEmpty) sinceEmpty = true
        trace = downgradeSince(trace, sinceEmpty ? [] : frontier(tk, sinceN))
        break
      }
      case 'exert': {
        const r = exert(trace, op.fuel)
        trace = r.trace
        pending.push(...r.mergeReqs)
        assert.equal(totalLen(trace), totalLen(before))
        if (!r.didWork) assert.equal(allHollowBatches(trace).length, allHollowBatches(before).length)
        break
      }
      case 'apply': {
        if (pending.length === 0) continue
        const req = pending[op.pick % pending.length] as FueledMergeReq
        const n = req.inputs.length
        const a = op.subset ? op.from % n : 0
        const z = op.subset ? a + (op.to % (n - a)) : n - 1
        const inputs = req.inputs.slice(a, z + 1).map((i) => i.batch)
        const inLen = inputs.reduce((s, b) => s + b.len, 0)
        const outLen = op.ratio > 1 ? Math.floor(inLen * op.ratio) + 1 : Math.max(inLen > 0 ? 1 : 0, Math.floor(inLen * op.ratio))
        const diffs = inputs.reduce((s, b) => s + (diffsSum(b.parts) ?? 0n), 0n)
        const since = op.since === 'req' ? req.desc.since : op.since === 'minimum' ? ac.minimumFrontier(tk) : frontier(tk, sinceN + 1000)
        const first = inputs[0] as HollowBatch
        const last = inputs[inputs.length - 1] as HollowBatch
        const output = batch(tk, first.desc.lower, last.desc.upper, since, outLen, diffs)
        const fresh = !op.subset && spineBatches(trace).some((sb) => spineIdEquals(sb.id, req.id) && sb.parts.length === n && sb.parts.every((p, i) => p === req.inputs[i]))

        const r = applyMergeRes(trace, { output })
        outcomes.set(r.result, (outcomes.get(r.result) ?? 0) + 1)
        trace = r.trace
        if (applied(r.result)) {
          assert.ok(op.ratio <= 1, `a result with more updates than its inputs applied: ${r.result}`)
          assert.ok(totalLen(trace) <= totalLen(before))
        } else {
          assert.equal(trace, before, 'a result that is not applied leaves the trace as it was')
        }
        if (op.since === 'beyond' && !sinceEmpty) assert.ok(!applied(r.result), 'a since beyond every batch since never applies')
        if (fresh && op.ratio <= 1 && op.since !== 'beyond') assert.equal(r.result, 'applied_exact')
        assert.deepEqual(spineShape(trace), spineShape(before), 'applying never changes the spine structure')
        assert.ok(coarsens(boundaries(trace), boundaries(before)), 'applying only merges adjacent hollow batches')
        break
      }
      case 'major': {
        // A major compaction of whole spine batches from..to, at the trace since (or wrongly beyond).
        const all = spineBatches(trace)
        if (all.length === 0) continue
        const a = op.from % all.length
        const z = a + (op.to % (all.length - a))
        const covered = all.slice(a, z + 1)
        const inputs = covered.flatMap((sb) => sb.parts.map((p) => p.batch))
        const inLen = inputs.reduce((s, b) => s + b.len, 0)
        const outLen = op.ratio > 1 ? Math.floor(inLen * op.ratio) + 1 : Math.max(inLen > 0 ? 1 : 0, Math.floor(inLen * op.ratio))
        const diffs = inputs.reduce((s, b) => s + (diffsSum(b.parts) ?? 0n), 0n)
        const beyond = sinceEmpty ? null : frontier(tk, sinceN + 1000)
        const since = op.since === 'trace' ? trace.since : op.since === 'minimum' ? ac.minimumFrontier(tk) : (beyond ?? trace.since)
        const output = batch(tk, (covered[0] as (typeof all)[number]).desc.lower, (covered.at(-1) as (typeof all)[number]).desc.upper, since, outLen, diffs)
        const r = replaceSpineBatches(trace, output)
        outcomes.set(`major ${r.result}`, (outcomes.get(`major ${r.result}`) ?? 0) + 1)
        trace = r.trace
        if (applied(r.result)) {
          assert.ok(op.ratio <= 1, 'a major result with more updates than its inputs applied')
          assert.ok(spineBatches(trace).length <= all.length - covered.length + 1, 'the covered spine batches become one (with empty-interval ones at its ends)')
          assert.ok(spineBatches(trace).some((sb) => sb.parts.length === 1 && sb.parts[0]?.batch === output), 'one spine batch holds just the output')
          assert.equal(r.detail, null)
        } else {
          assert.equal(trace, before, 'a result that is not applied leaves the trace as it was')
          assert.ok(r.detail !== null && r.detail.message.length > 0, 'a result that is not applied says why')
        }
        if (op.ratio <= 1 && !(op.since === 'beyond' && beyond !== null)) assert.equal(r.result, 'applied_exact', 'a major result of whole spine batches at or behind the trace since applies')
        break
      }
    }
    assert.equal(JSON.stringify(traceToJson(before)), beforeJson, 'transitions do not change their argument')
    assert.equal(jsonText(traceToJsonBytes(trace)), JSON.stringify(traceToJson(trace)), 'the text reusing kept batch texts is the JSON')
    const hollow = allHollowBatches(trace)
    const stats = traceStats(trace)
    assert.deepEqual([stats.batches, stats.parts, stats.runs, stats.updates, stats.encodedBytes], [
      hollow.length,
      hollow.reduce((s, b) => s + b.parts.length, 0),
      hollow.reduce((s, b) => s + runs(b).length, 0),
      hollow.reduce((s, b) => s + b.len, 0),
      hollow.reduce((s, b) => s + encodedSizeBytes(b), 0),
    ], 'the stats, from counts kept per spine batch, count every hollow batch')
    assert.equal(traceInlineBytes(trace), hollow.reduce((s, b) => s + inlineBytes(b), 0))
    steps++
    maxLevels = Math.max(maxLevels, trace.levels.length)
    assert.equal(validate(trace), null)
    assertContiguous(trace)
    assert.equal(totalDiffs(trace), BigInt(pushedLen), 'diff sums are conserved')
    assert.equal(trace.nextId, spineBatches(trace).at(-1)?.id.hi ?? 0)
  }

  const parsed = traceFromJson(tk, JSON.parse(JSON.stringify(traceToJson(trace))))
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error)
  assert.deepStrictEqual(parsed.value, trace)
}

it('random histories keep the trace valid and contiguous (u64 and product)', () => {
  fc.assert(
    fc.property(fc.constantFrom('u64', 'product'), fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }), (kind, ops) =>
      run(kind === 'u64' ? u64 : product, ops),
    ),
    { seed, numRuns: 300 },
  )
  console.log(`steps ${steps}, max levels ${maxLevels}, apply outcomes ${JSON.stringify(Object.fromEntries(outcomes))}`)
  for (const r of APPLY_MERGE_RESULTS) assert.ok((outcomes.get(r) ?? 0) > 0, `the generator never produced ${r}`)
  for (const r of ['applied_exact', 'not_applied_invalid_since', 'not_applied_too_many_updates']) assert.ok((outcomes.get(`major ${r}`) ?? 0) > 0, `the generator never produced major ${r}`)
})
