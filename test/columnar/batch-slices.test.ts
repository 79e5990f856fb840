import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { batchSlicer, OffsetsScratch } from '../../src/columnar/batch-slices.js'
import { onlyData } from '../../src/columnar/column.js'
import { binary, int64, utf8 } from '../../src/columnar/data-type.js'
import { sliceUpdates, updatesToJson, UpdatesBuilder, type Updates } from '../../src/columnar/updates.js'

function rows(n: number): Updates {
  const b = new UpdatesBuilder({ keyType: utf8, valType: binary, timeKind: 'u64' })
  for (let i = 0; i < n; i++) b.append(`key-${i}`, Uint8Array.from({ length: i % 7 }, (_, j) => i + j), BigInt(i), 1n)
  return b.finish()
}

describe('batchSlicer', () => {
  it('gives slices the rows sliceUpdates gives, their string and binary offsets starting at 0', () => {
    const u = rows(100)
    const scratch = new OffsetsScratch()
    const slicer = batchSlicer(u, 5, scratch)
    const bounds = [0, 1, 37, 37, 99, 100]
    const slices = bounds.slice(1).map((end, i) => [bounds[i] as number, end] as const)
    const made = slices.map(([s, e]) => slicer.slice(s, e))
    // Every slice is still intact after the later ones were cut from the same scratch.
    made.forEach((m, i) => {
      const [s, e] = slices[i]!
      assert.equal(JSON.stringify(updatesToJson(m)), JSON.stringify(updatesToJson(sliceUpdates(u, s, e))))
      for (const col of [m.keys, m.vals]) assert.equal((onlyData(col).valueOffsets as Int32Array)[0], 0)
    })
  })

  it('slices other columns as they are, and refuses overlapping slices', () => {
    const b = new UpdatesBuilder({ keyType: int64, valType: utf8, timeKind: 'u64' })
    for (let i = 0; i < 10; i++) b.append(BigInt(i), `v${i}`, 1n, 1n)
    const u = b.finish()
    const slicer = batchSlicer(u, 2)
    assert.equal(JSON.stringify(updatesToJson(slicer.slice(2, 5))), JSON.stringify(updatesToJson(sliceUpdates(u, 2, 5))))
    assert.throws(() => slicer.slice(0, 10), RangeError)
  })
})
