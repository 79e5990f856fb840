import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { description } from '../../src/core/description.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { decodePart, encodePart, PartFormatError } from '../../src/columnar/part-format.js'
import { FOOTER_TAIL_BYTES, footerSpan, partWindows } from '../../src/columnar/part-windows.js'
import { sliceUpdates, sumDiffs, UpdatesBuilder, updatesToJson, type Updates } from '../../src/columnar/updates.js'
import { announceSeed, seed } from './arbitraries.js'

announceSeed('part-windows.test.ts')

const meta = { desc: description([0n], [10n], [0n]), order: 'structured' as const, schemaId: 3 }

function rows(n: number, salt: number): Updates {
  const b = new UpdatesBuilder({ keyType: utf8, valType: int64, timeKind: 'u64' })
  for (let i = 0; i < n; i++) b.append(`k${String(i).padStart(6, '0')}${'x'.repeat((i * salt) % 40)}`, BigInt(i * salt), BigInt(i % 9), BigInt(((i + salt) % 7) - 3))
  return b.finish()
}

/** The part's windows, found as compaction finds them: from its last bytes only. */
function windowsOf(bytes: Uint8Array) {
  const tail = bytes.subarray(Math.max(0, bytes.byteLength - FOOTER_TAIL_BYTES))
  const span = footerSpan(tail, bytes.byteLength)
  return partWindows(bytes.subarray(span.offset, span.offset + span.length))
}

/** Window `w`'s part file, its batch's bytes copied from the part as a ranged read would. */
function windowFile(bytes: Uint8Array, w: NonNullable<ReturnType<typeof windowsOf>>[number]): Uint8Array {
  const out = new Uint8Array(w.byteLength).fill(0xee)
  out.set(bytes.subarray(w.offset, w.offset + w.length), w.batchAt)
  w.finish(out)
  return out
}

describe('part windows', () => {
  it('makes each record batch a part file of exactly its rows, with its own diff sum and the part metadata', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 600 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 200, max: 4000 }), (n, salt, batchBytes) => {
        const u = rows(n, salt)
        const bytes = encodePart(u, meta, undefined, { batchBytes })
        const windows = windowsOf(bytes)
        if (windows === null) {
          // One batch: nothing to window.
          assert.equal(decodePart(bytes).updates.length, n)
          return
        }
        let at = 0
        for (const w of windows) {
          const part = decodePart(windowFile(bytes, w))
          const want = sliceUpdates(u, at, at + w.info.rows)
          assert.deepEqual(updatesToJson(part.updates), updatesToJson(want))
          assert.equal(part.meta.diffsSum, sumDiffs(want))
          assert.equal(w.info.diffsSum, sumDiffs(want))
          assert.equal(part.meta.schemaId, 3)
          assert.equal(part.meta.order, 'structured')
          at += w.info.rows
        }
        assert.equal(at, n)
      }),
      { seed, numRuns: 60 },
    )
  })

  it('reads nothing to window in a part of one batch', () => {
    assert.equal(windowsOf(encodePart(rows(50, 3), meta)), null)
  })

  it('refuses a tail that does not end a part, a footer length out of range, and an unreadable footer', () => {
    const bytes = encodePart(rows(400, 7), meta, undefined, { batchBytes: 500 })
    assert.throws(() => footerSpan(bytes.subarray(0, bytes.byteLength - 1), bytes.byteLength - 1), PartFormatError)
    assert.throws(() => footerSpan(new Uint8Array(4), 4), PartFormatError)
    const broken = bytes.slice()
    new DataView(broken.buffer).setInt32(broken.byteLength - 10, broken.byteLength, true)
    assert.throws(() => footerSpan(broken, broken.byteLength), /footer length/)
    const span = footerSpan(bytes, bytes.byteLength)
    assert.throws(() => partWindows(bytes.subarray(span.offset, span.offset + 7)), PartFormatError)
  })
})
