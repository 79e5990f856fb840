import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { BatchPart, HollowBatch, RunOrder } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { newPartId, newWriterKey } from '../../src/core/ids.js'
import { partialBatchKey } from '../../src/core/paths.js'
import { u64 } from '../../src/core/timestamp.js'
import {
  chunkBatches,
  chunkRuns,
  planChunks,
  runCost,
  fastPathEligible,
  heuristic,
  MIB,
  maxOutstandingParts,
  reserveMemory,
  selectSchema,
  timeoutMs,
  validateRequest,
} from '../../src/compact/plan.js'
import { orderRuns } from '../../src/engine/runs.js'

const writer = newWriterKey()
function part(bytes: number, name = ''): BatchPart & { name: string } {
  return { kind: 'hollow', key: partialBatchKey(writer, newPartId()), encodedSizeBytes: bytes, keyLower: '', diffsSum: 0n, schemaId: 0, stats: { updates: 1 }, name }
}
const d = (lo: number, hi: number, since = 0) => description([BigInt(lo)], [BigInt(hi)], [BigInt(since)])
/** A batch whose runs are given as lists of part sizes. */
function batch(lo: number, hi: number, runs: (number | [number, string])[][], order: RunOrder | null = 'structured', since = 0): HollowBatch {
  const parts: BatchPart[] = []
  const runSplits: number[] = []
  for (const r of runs) {
    if (parts.length > 0) runSplits.push(parts.length)
    for (const p of r) parts.push(typeof p === 'number' ? part(p) : part(p[0], p[1]))
  }
  return { desc: d(lo, hi, since), len: parts.length * 10, parts, runSplits, runMeta: runs.map(() => ({ order, schemaId: 0 })) }
}
const names = (rs: readonly { parts: readonly BatchPart[] }[]) => rs.map((r) => r.parts.map((p) => (p as { name?: string }).name).join('+'))

describe('heuristic', () => {
  const cfg = { minInputs: 8, minParts: 8, minUpdates: 1024 }
  it('compacts when any threshold is met and skips when none is', () => {
    assert.equal(heuristic([batch(0, 1, [[1]])], cfg).wouldCompact, false)
    const many = Array.from({ length: 8 }, (_, i) => batch(i, i + 1, []))
    assert.equal(heuristic(many, cfg).wouldCompact, true)
    assert.equal(heuristic([batch(0, 1, [[1, 1, 1, 1, 1, 1, 1, 1]])], cfg).wouldCompact, true)
    const big = { ...batch(0, 1, [[1]]), len: 1024 }
    assert.deepEqual(heuristic([big], cfg), { inputs: 1, parts: 1, updates: 1024, wouldCompact: true })
  })
})

describe('validateRequest', () => {
  it('accepts consecutive inputs and a since at or beyond theirs', () => {
    assert.equal(validateRequest(u64, d(0, 3, 10), [batch(0, 1, []), batch(1, 3, [], 'structured', 5)]), null)
  })
  it('rejects gaps, a wrong end, and a since behind an input', () => {
    assert.match(validateRequest(u64, d(0, 3), [batch(0, 1, []), batch(2, 3, [])]) ?? '', /non-consecutive batches: \[1\] vs input 1's lower \[2\]/)
    assert.match(validateRequest(u64, d(0, 4), [batch(0, 1, []), batch(1, 3, [])]) ?? '', /vs the request's upper \[4\]/)
    assert.match(validateRequest(u64, d(1, 3), [batch(0, 3, [])]) ?? '', /non-consecutive/)
    assert.match(validateRequest(u64, d(0, 1, 2), [batch(0, 1, [], 'structured', 3)]) ?? '', /output since \[2\] must be at or in advance of input 0's since \[3\]/)
    assert.match(validateRequest(u64, d(0, 1), []) ?? '', /at least one input/)
  })
})

describe('timeoutMs', () => {
  it('is the minimum or one second per whole MiB of input', () => {
    assert.equal(timeoutMs([batch(0, 1, [[MIB - 1]])], 90_000), 90_000)
    assert.equal(timeoutMs([batch(0, 1, [[832 * MIB]])], 90_000), 832_000)
    assert.equal(timeoutMs([batch(0, 1, [[100 * MIB + 5]]), batch(1, 2, [[MIB]])], 90_000), 101_000)
  })
})

describe('selectSchema', () => {
  const withSchemas = (ids: (number | null)[]): HollowBatch => ({ ...batch(0, 1, ids.map(() => [1])), runMeta: ids.map((schemaId) => ({ order: 'structured', schemaId })) })
  it('picks the newest known schema among the runs when enabled', () => {
    assert.deepEqual(selectSchema([withSchemas([0, 2, 1])], new Set([0, 1, 2]), 1, true), { selection: 'recent_schema', schemaId: 2 })
  })
  it('falls back to the writer schema when disabled, absent or unknown', () => {
    assert.deepEqual(selectSchema([withSchemas([0, 2])], new Set([0, 1, 2]), 1, false), { selection: 'disabled', schemaId: 1 })
    assert.deepEqual(selectSchema([withSchemas([null])], new Set([0]), 0, true), { selection: 'no_schema', schemaId: 0 })
    assert.deepEqual(selectSchema([withSchemas([7])], new Set([0]), 0, true), { selection: 'no_schema', schemaId: 0 })
  })
})

describe('fastPathEligible', () => {
  it('needs exactly one non-empty input, one run, and a since past the minimum', () => {
    assert.equal(fastPathEligible(u64, [batch(0, 1, [[1, 1]], 'structured', 3), { ...batch(1, 2, []), len: 0 }]), true)
    assert.equal(fastPathEligible(u64, [batch(0, 1, [[1, 1]], 'structured', 0)]), false)
    assert.equal(fastPathEligible(u64, [batch(0, 1, [[1], [1]], 'structured', 3)]), false)
    assert.equal(fastPathEligible(u64, [batch(0, 1, [[1]], 'structured', 3), batch(1, 2, [[1]], 'structured', 3)]), false)
  })
})

describe('orderRuns and chunkRuns (docs/compaction.md#chunking-within-the-memory-bound)', () => {
  const M = MIB
  const inputs = [
    batch(0, 1, [[[128 * M, 'A']], [[128 * M, 'B']]]),
    batch(1, 2, [[[128 * M, 'C']]]),
    batch(2, 3, [[[64 * M, 'D']], [[128 * M, 'E']], [[128 * M, 'F']]]),
  ]
  it('orders runs round robin over the inputs', () => {
    assert.deepEqual(names(orderRuns(inputs, 'structured')), ['A', 'C', 'D', 'B', 'E', 'F'])
  })
  it('fits all six runs in one chunk under a 1 GiB bound', () => {
    const { runReservedBytes } = reserveMemory(1024 * M, 128 * M)
    assert.equal(runReservedBytes, 768 * M)
    const plan = chunkRuns(orderRuns(inputs, 'structured'), runReservedBytes, 128 * M)
    assert.deepEqual(plan.chunks.map((c) => [names(c.runs).join(','), c.memoryBytes / M]), [['A,C,D,B,E,F', 704]])
    assert.equal(plan.memoryViolations, 0)
    assert.equal(maxOutstandingParts(runReservedBytes, 704 * M, 128 * M), 1)
  })
  it('cuts three chunks under a 512 MiB bound', () => {
    const { runReservedBytes } = reserveMemory(512 * M, 128 * M)
    const plan = chunkRuns(orderRuns(inputs, 'structured'), runReservedBytes, 128 * M)
    assert.deepEqual(plan.chunks.map((c) => [names(c.runs).join(','), c.memoryBytes / M]), [['A,C', 256], ['D,B', 192], ['E,F', 256]])
    assert.equal(plan.memoryViolations, 0)
  })
  it('forces two oversized runs together and counts a violation', () => {
    const big = [batch(0, 1, [[[300 * M, 'R1']]]), batch(1, 2, [[[300 * M, 'R2']]]), batch(2, 3, [[[300 * M, 'R3']]])]
    const plan = chunkRuns(orderRuns(big, 'structured'), reserveMemory(512 * M, 128 * M).runReservedBytes, 128 * M)
    assert.deepEqual(plan.chunks.map((c) => [names(c.runs).join(','), c.memoryBytes / M]), [['R1,R2', 600], ['R3', 300]])
    assert.equal(plan.memoryViolations, 1)
    assert.equal(maxOutstandingParts(256 * M, 600 * M, 128 * M), 1)
  })
  it('matches the small-number example', () => {
    const three = [0, 1, 2].map((i) => batch(i, i + 1, [[[40, `b${i}`]]]))
    const fits = chunkRuns(orderRuns(three, 'structured'), reserveMemory(160, 40).runReservedBytes, 40)
    assert.deepEqual(fits.chunks.map((c) => names(c.runs).join(',')), ['b0,b1', 'b2'])
    const huge = [0, 1, 2].map((i) => batch(i, i + 1, [[[1000, `b${i}`]]]))
    const forced = chunkRuns(orderRuns(huge, 'structured'), reserveMemory(160, 40).runReservedBytes, 40)
    assert.deepEqual(forced.chunks.map((c) => names(c.runs).join(',')), ['b0,b1', 'b2'])
    assert.equal(forced.memoryViolations, 1)
  })
  it('explodes a run in the wrong order into single-part runs', () => {
    const wrong = batch(0, 1, [[[1, 'X1'], [1, 'X2'], [1, 'X3']]], 'codec')
    const right = batch(1, 2, [[[1, 'Y1'], [1, 'Y2']]], 'structured')
    const ordered = orderRuns([wrong, right], 'structured')
    assert.deepEqual(names(ordered), ['X1', 'Y1+Y2', 'X2', 'X3'])
    assert.deepEqual(ordered.map((r) => r.exploded), [true, false, true, true])
    // A null order counts as codec.
    const legacy = { ...wrong, runMeta: [{ order: null, schemaId: 0 }] }
    assert.equal(orderRuns([legacy], 'codec').length, 1)
    assert.equal(orderRuns([legacy], 'structured').length, 3)
  })
  it('costs a run read in windows two windows, not its largest part, so runs that fit merge in one chunk', () => {
    const windowed = (lo: number, name: string, order: RunOrder = 'structured'): HollowBatch => {
      const b = batch(lo, lo + 1, [[[32 * M, `${name}1`], [32 * M, `${name}2`]]], order)
      return { ...b, parts: b.parts.map((p) => (p.kind === 'hollow' ? { ...p, stats: { updates: 1, batchBytes: M } } : p)) }
    }
    const sixteen = Array.from({ length: 16 }, (_, i) => windowed(i, `r${i}-`))
    const windows = { order: 'structured' as const, minPartBytes: 2 * M }
    const ordered = orderRuns(sixteen, 'structured')
    assert.equal(runCost(ordered[0]!, windows), 2 * M)
    const { runReservedBytes } = reserveMemory(256 * M, 32 * M, 2)
    assert.equal(runReservedBytes, 128 * M)
    // Persist's accounting: 32 MiB a run makes four chunks of four; windows make one of sixteen.
    assert.equal(chunkRuns(ordered, runReservedBytes, 32 * M).chunks.length, 4)
    const one = chunkRuns(ordered, runReservedBytes, 32 * M, windows)
    assert.deepEqual(one.chunks.map((c) => [c.runs.length, c.memoryBytes / M]), [[16, 32]])
    // A run in another order, a part of one batch, or a small part is read whole: its whole size.
    assert.equal(runCost(orderRuns([windowed(0, 'c', 'codec')], 'structured')[0]!, windows), 32 * M)
    assert.equal(runCost(orderRuns([batch(0, 1, [[32 * M]])], 'structured')[0]!, windows), 32 * M)
    const small = { ...batch(0, 1, [[2 * M]]), parts: [{ ...part(2 * M), stats: { updates: 1, batchBytes: M / 2 } }] }
    assert.equal(runCost(orderRuns([small], 'structured')[0]!, windows), 2 * M)
  })
  it('gives empty inputs no runs and no memory', () => {
    const empty = { ...batch(0, 1, []), len: 0 }
    const ordered = orderRuns([empty, batch(1, 2, [[[10, 'P']]])], 'structured')
    assert.deepEqual(names(ordered), ['P'])
    const plan = chunkRuns(ordered, 100, 10)
    assert.deepEqual(plan.chunks.map((c) => c.memoryBytes), [10])
  })
})

describe('chunkBatches and planChunks: batch-granular chunks of incremental compaction', () => {
  const M = MIB
  const o = (runReservedBytes: number) => ({ order: 'structured' as const, runReservedBytes, targetSizeBytes: 128 * M, windows: null })
  /** Chunks as `kind [first..last] desc runs usage`. */
  const show = (p: ReturnType<typeof chunkBatches>): string[] =>
    p.chunks.map((c) => `${c.kind} ${c.first}..${c.last} [${c.desc.lower[0]},${c.desc.upper[0]})@${c.desc.since[0]} ${names(c.runs).join(',')} ${c.memoryBytes / M}`)
  const inputs = [
    batch(0, 1, [[[128 * M, 'A']], [[128 * M, 'B']]]),
    batch(1, 2, [[[128 * M, 'C']]]),
    batch(2, 3, [[[64 * M, 'D']], [[128 * M, 'E']], [[128 * M, 'F']]]),
  ]

  it('takes whole batches while they fit, each chunk with its own desc at the request since', () => {
    const all = chunkBatches(inputs, [5n], o(768 * M))
    assert.deepEqual(show(all), ['batches 0..2 [0,3)@5 A,C,D,B,E,F 704'])
    const two = chunkBatches(inputs, [5n], o(384 * M))
    assert.deepEqual(show(two), ['batches 0..1 [0,2)@5 A,C,B 384', 'batches 2..2 [2,3)@5 D,E,F 320'])
    assert.equal(two.memoryViolations, 0)
  })

  it('splits a batch too large for the budget alone, into chunks of its runs', () => {
    const split = chunkBatches(inputs, [0n], o(256 * M))
    assert.deepEqual(show(split), ['batches 0..0 [0,1)@0 A,B 256', 'batches 1..1 [1,2)@0 C 128', 'runs 2..2 [2,3)@0 D,E 192', 'runs 2..2 [2,3)@0 F 128'])
    assert.equal(split.memoryViolations, 0)
  })

  it('keeps two runs together over budget, counting a violation only when a chunk takes more than one run over it', () => {
    const big = [0, 1, 2, 3].map((i) => batch(i, i + 1, [[[300 * M, `R${i}`]]]))
    const p = chunkBatches(big, [0n], o(256 * M))
    assert.deepEqual(show(p), ['batches 0..1 [0,2)@0 R0,R1 600', 'batches 2..3 [2,4)@0 R2,R3 600'])
    assert.equal(p.memoryViolations, 2)
    const twoRuns = chunkBatches([batch(0, 1, [[[300 * M, 'X']], [[300 * M, 'Y']]])], [0n], o(256 * M))
    assert.deepEqual(show(twoRuns), ['batches 0..0 [0,1)@0 X,Y 600'])
    assert.equal(twoRuns.memoryViolations, 1)
    const lone = chunkBatches([batch(0, 1, [[[300 * M, 'Z']]])], [0n], o(256 * M))
    assert.equal(lone.memoryViolations, 0)
  })

  it('empty batches cost nothing and join the chunk at hand; only empty batches make a chunk of no runs', () => {
    const empty = (lo: number) => ({ ...batch(lo, lo + 1, []), len: 0 })
    assert.deepEqual(show(chunkBatches([empty(0), batch(1, 2, [[[10, 'P']]]), empty(2)], [0n], o(100))), [`batches 0..2 [0,3)@0 P ${10 / M}`])
    assert.deepEqual(show(chunkBatches([empty(0), empty(1)], [0n], o(100))), ['batches 0..1 [0,2)@0  0'])
  })

  it('every part lands in exactly one chunk, out-of-order runs exploded', () => {
    const wrong = batch(0, 1, [[[60, 'X1'], [60, 'X2'], [60, 'X3']]], 'codec')
    const right = batch(1, 2, [[[60, 'Y1'], [60, 'Y2']]])
    const p = chunkBatches([wrong, right], [0n], { ...o(100), targetSizeBytes: 10 })
    assert.deepEqual(show(p).map((x) => x.split(' ').slice(0, 4).join(' ')), ['runs 0..0 [0,1)@0 X1,X2', 'runs 0..0 [0,1)@0 X3', 'batches 1..1 [1,2)@0 Y1+Y2'])
    assert.equal(p.chunks.flatMap((c) => c.runs.flatMap((r) => r.parts)).length, 5)
  })

  it('planChunks: without incremental compaction, chunk_runs chunks combined into the request desc; a rescued batch of runs: runs chunks only', () => {
    const desc = d(0, 3, 5)
    const legacy = planChunks(inputs, desc, { ...o(256 * M), incremental: false, runsOnly: false })
    assert.deepEqual(legacy.chunks.map((c) => [c.kind, names(c.runs).join(','), c.first, c.last, c.desc]), [
      ['combined', 'A,C', 0, 1, desc],
      ['combined', 'D,B', 0, 2, desc],
      ['combined', 'E,F', 2, 2, desc],
    ])
    assert.deepEqual(planChunks(inputs, desc, { ...o(768 * M), incremental: true, runsOnly: false }).chunks.map((c) => c.kind), ['batches'])
    const rest = planChunks([inputs[0] as HollowBatch], d(0, 1, 5), { ...o(768 * M), incremental: true, runsOnly: true })
    assert.deepEqual(rest.chunks.map((c) => [c.kind, names(c.runs).join(','), c.desc]), [['runs', 'A,B', d(0, 1, 5)]])
  })
})
