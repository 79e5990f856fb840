/** spineLayout: levels highest first, columns oldest first, sizes, runs, and which merge covers a batch. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { batchRuns, spineIdWithin, spineLayout } from '../../src/client/spine.js'
import type { HollowBatchJson, ShardJson } from '../../src/client/wire.js'

const desc = (lower: number, upper: number) => ({ lower: [lower], upper: [upper], since: [0] })
const hollow = (lower: number, upper: number, sizes: number[], runSplits?: number[]): HollowBatchJson => ({
  desc: desc(lower, upper),
  len: sizes.length * 10,
  parts: sizes.map((s, i) => (i === 0 && s < 100 ? { inline: { encodedSizeBytes: s } } : { key: `w/p${i}`, encodedSizeBytes: s })),
  ...(runSplits === undefined ? {} : { runSplits }),
})

const trace: Pick<ShardJson, 'trace'> = {
  trace: {
    batches: [
      { id: '0-4', desc: desc(0, 40), len: 40, level: 2, compact: true, batches: [hollow(0, 40, [1000, 3000], [1])] },
      { id: '4-5', desc: desc(40, 50), len: 10, level: 0, compact: false, batches: [hollow(40, 45, [50]), hollow(45, 50, [200])] },
      { id: '5-6', desc: desc(50, 60), len: 10, level: 0, batches: [hollow(50, 60, [])] },
    ],
    merges: [{ level: 0, id: '4-6', since: [0], remainingWork: 7 }],
  },
}

describe('spineLayout', () => {
  it('lays out levels, columns, bytes, runs and merges', () => {
    const layout = spineLayout(trace)
    assert.equal(layout.columns, 3)
    assert.deepEqual(layout.levels.map((l) => [l.level, l.boxes.map((b) => [b.id, b.column]), l.merge?.id ?? null]), [
      [2, [['0-4', 0]], null],
      [0, [['4-5', 1], ['5-6', 2]], '4-6'],
    ])
    const [big] = layout.levels[0]?.boxes ?? []
    assert.deepEqual([big?.bytes, big?.runs, big?.parts, big?.compact, big?.merge], [4000, 2, 2, true, null])
    const small = layout.levels[1]?.boxes ?? []
    assert.deepEqual(small.map((b) => [b.bytes, b.runs, b.hollow, b.compact, b.merge?.id]), [
      [250, 2, 2, false, '4-6'],
      [0, 0, 1, false, '4-6'],
    ])
    assert.equal(layout.totalBytes, 4250)
    assert.equal(layout.backlogBytes, 250)
  })

  it('an empty spine has no levels; an older server without merges has none', () => {
    assert.deepEqual(spineLayout({ trace: { batches: [] } }).levels, [])
    const old = spineLayout({ trace: { batches: trace.trace.batches } })
    assert.ok(old.levels.every((l) => l.merge === null))
  })

  it('counts runs from metadata, else splits, and reads spine id ranges', () => {
    assert.equal(batchRuns({ ...hollow(0, 1, [10, 10]), runMeta: [{}, {}, {}] }), 3)
    assert.equal(batchRuns(hollow(0, 1, [10, 10, 10], [1, 2])), 3)
    assert.equal(batchRuns(hollow(0, 1, [])), 0)
    assert.equal(spineIdWithin('4-5', '4-6'), true)
    assert.equal(spineIdWithin('3-5', '4-6'), false)
    assert.equal(spineIdWithin('x', '4-6'), false)
  })
})
