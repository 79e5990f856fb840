import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HollowBatch } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { product, u64, U64_MAX } from '../../src/core/timestamp.js'
import { traceFromJson, traceToJson, traceToJsonBytes, type TraceJson } from '../../src/trace/trace-json.js'
import { traceStats, traceSummaryJson } from '../../src/trace/trace-summary.js'
import { downgradeSince, emptyTrace, pushBatch, type Trace } from '../../src/trace/trace.js'
import { hb, hollowPart, pushAll, u64Trace } from './fixtures.js'

const jsonText = (bytes: readonly Uint8Array[]): string => Buffer.concat(bytes).toString('utf8')

function roundTrip(trace: Trace): void {
  const json = JSON.parse(JSON.stringify(traceToJson(trace))) as unknown
  const parsed = traceFromJson(trace.tk, json)
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error)
  assert.deepStrictEqual(parsed.value, trace)
  assert.deepStrictEqual(traceToJson(parsed.value), json)
  assert.equal(jsonText(traceToJsonBytes(trace)), JSON.stringify(traceToJson(trace)))
  assert.equal(jsonText(traceToJsonBytes(parsed.value)), JSON.stringify(traceToJson(trace)))
}

describe('traceToJson / traceFromJson', () => {
  it('round-trips the empty trace', () => roundTrip(u64Trace()))

  it('writes the text of each batch, and counts it for the stats, once across the traces an append makes from one another', () => {
    // A shard's state is written whole after every append: its text must not convert every batch again.
    let conversions = 0
    const counted = (i: number): HollowBatch => {
      const b = hb(i, i + 1, 0, 1)
      return Object.defineProperty({ ...b }, 'runMeta', { enumerable: true, get: () => (conversions++, b.runMeta) })
    }
    let trace = u64Trace()
    let converted = 0
    let countedForStats = 0
    for (let i = 0; i < 300; i++) {
      trace = pushBatch(trace, counted(i)).trace
      const before = conversions
      const text = jsonText(traceToJsonBytes(trace))
      converted += conversions - before
      const beforeStats = conversions
      const stats = traceStats(trace)
      countedForStats += conversions - beforeStats
      if (i % 50 === 0) {
        assert.equal(text, JSON.stringify(traceToJson(trace)))
        assert.equal(stats.batches, i + 1)
      }
    }
    assert.ok(converted <= 300, `${converted} batch conversions for 300 appends`)
    // The stats are taken after every command too (the backlog metrics); counting a batch reads its run metadata twice.
    assert.ok(countedForStats <= 2 * 300, `${countedForStats} batches counted for the stats of 300 appends`)
  })

  it('round-trips merges in progress', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 100)])
    assert.ok(trace.levels.some((l) => l.merge !== null))
    roundTrip(trace)
  })

  it('round-trips a fueled, partly compacted spine with inline parts, split runs and big times', () => {
    const big = U64_MAX - 10n
    const inline: HollowBatch = {
      desc: description([2n], [big], [0n]),
      len: 3,
      parts: [hollowPart(1, null), { kind: 'inline', encodedSizeBytes: 4, updates: new Uint8Array([1, 2, 3, 4]) }],
      runSplits: [1],
      runMeta: [{ order: 'codec', schemaId: null }, { order: null, schemaId: 3 }],
    }
    let { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 1), inline])
    trace = downgradeSince(trace, [big + 5n])
    trace = pushBatch(trace, { ...hb(0, 1, 0, 0), desc: description([big], [], [big]) }).trace
    roundTrip(trace)
  })

  it('round-trips product timestamps', () => {
    let trace = emptyTrace(product)
    const fr = (n: number) => (n === 0 ? [[0, 0] as const] : [[0, n] as const, [n, 0] as const])
    for (let i = 0; i < 5; i++) trace = pushBatch(trace, { ...hb(0, 1, 0, i), desc: description(fr(i), fr(i + 1), fr(0)) }).trace
    trace = downgradeSince(trace, [[2, 3]])
    roundTrip(trace)
  })

  // Levels: 0 = [2-3, 3-4] merging, 1 = [0-2].
  const base = traceToJson(pushAll(u64Trace(), [0, 1, 2, 3].map((i) => hb(i, i + 1, 0, 1))).trace)
  it('the corruption base has a merge', () => assert.notEqual(base.levels[0]?.merge, null))
  const corrupt: [string, (j: TraceJson) => unknown, RegExp][] = [
    ['not an object', () => [], /trace must be an object/],
    ['a bad since', (j) => ({ ...j, since: 'x' }), /trace\.since/],
    ['a bad spine id', (j) => ({ ...j, levels: j.levels.map((l) => ({ ...l, batches: l.batches.map((b) => ({ ...b, id: '3-1' })) })) }), /\.id: spine id 3-1 must have lo < hi/],
    ['a bad hollow batch', (j) => ({ ...j, levels: j.levels.map((l) => ({ ...l, batches: l.batches.map((b) => ({ ...b, parts: b.parts.map((p) => ({ ...p, batch: { ...p.batch, len: -1 } })) })) })) }), /parts\[0\]\.batch\.len/],
    ['a wrong next id', (j) => ({ ...j, nextId: 7 }), /trace: next id 7/],
    ['a merge on a level that is not full', (j) => ({ ...j, levels: j.levels.map((l) => ({ ...l, merge: { id: '0-1', since: [0], remainingWork: 1 } })) }), /merging without being full/],
    ['a negative remaining work', (j) => ({ ...j, levels: j.levels.map((l) => ({ ...l, merge: l.merge && { ...l.merge, remainingWork: -1 } })) }), /remainingWork/],
  ]
  for (const [name, mutate, expected] of corrupt) {
    it(`refuses ${name}`, () => {
      const r = traceFromJson(u64, mutate(structuredClone(base)))
      assert.equal(r.ok, false)
      assert.match(r.ok ? '' : r.error, expected)
    })
  }
})

describe('traceSummaryJson', () => {
  it('has the API shape', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 1), hb(2, 3, 0, 1)])
    const summary = traceSummaryJson(trace)
    assert.deepEqual(
      summary.batches.map((b) => [b.id, b.desc, b.len, b.level, b.compact, b.batches.length]),
      [
        ['0-2', { lower: [0], upper: [2], since: [0] }, 2, 1, false, 2],
        ['2-3', { lower: [2], upper: [3], since: [0] }, 1, 0, true, 1],
      ],
    )
    assert.deepEqual(summary.merges, [])
    const merging = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 1)]).trace
    assert.deepEqual(traceSummaryJson(merging).merges, [{ level: 0, id: '0-2', since: [0], remainingWork: 2 }])
    assert.deepEqual(summary.batches[1]?.batches[0]?.desc, { lower: [2], upper: [3], since: [0] })
  })
  it('counts stats', () => {
    const { trace } = pushAll(u64Trace(), [hb(0, 1, 0, 1), hb(1, 2, 0, 2), hb(2, 3, 0, 0)])
    assert.deepEqual(traceStats(trace), { spineBatches: 2, batches: 3, parts: 2, runs: 2, updates: 3, encodedBytes: 203, backlogBatches: 1, backlogBytes: 203 })
  })
})
