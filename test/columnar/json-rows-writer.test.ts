import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ByteSink, writeJsonRows } from '../../src/columnar/json-rows-writer.js'
import { updatesToJson, UpdatesBuilder, type Updates } from '../../src/columnar/updates.js'
import { announceSeed, arbRows, arbShape, seed, type Row, type Shape } from './arbitraries.js'

announceSeed('json-rows-writer.test.ts')

function build(shape: Shape, rows: readonly Row[]): Updates {
  const b = new UpdatesBuilder(shape)
  for (const r of rows) b.append(r.key, r.val, r.time, r.diff)
  return b.finish()
}

const text = new TextDecoder('utf-8', { fatal: true })

describe('writeJsonRows', () => {
  it('writes exactly the JSON.stringify of updatesToJson, batch after batch', () => {
    fc.assert(
      fc.property(
        arbShape(3).chain((s) => fc.tuple(fc.constant(s), fc.array(arbRows(s, 20), { minLength: 1, maxLength: 3 }))),
        ([shape, batches]) => {
          const sink = new ByteSink(8)
          const expected: string[] = []
          batches.forEach((rows, i) => {
            const u = build(shape, rows)
            writeJsonRows(sink, u, i === 0 || expected.length === 0)
            expected.push(...updatesToJson(u).map((r) => JSON.stringify(r)))
          })
          assert.equal(text.decode(sink.take()), expected.join(','))
        },
      ),
      { seed, numRuns: 300 },
    )
  })

  it('escapes strings as JSON.stringify does and keeps large integers exact', () => {
    const b = new UpdatesBuilder({ keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' })
    b.append('a"b\\c\n\u0001\u001f\u007f é 😀', -(1n << 63n), (1n << 64n) - 1n, (1n << 53n) - 1n)
    b.append('', (1n << 53n) - 1n, 1n << 53n, -(1n << 53n))
    // Each character to escape alone (within clean text), so none hides behind another one.
    // Short and long strings (over 64 bytes) are copied differently: both.
    for (const c of [...Array.from({ length: 0x20 }, (_, i) => i), 0x22, 0x5c]) {
      b.append(`ab${String.fromCharCode(c)}cd`, BigInt(c), BigInt(c), 1n)
      b.append(`${'é'.repeat(40)}${String.fromCharCode(c)}cd`, BigInt(c), BigInt(c), 1n)
    }
    const sink = new ByteSink()
    const u = b.finish()
    writeJsonRows(sink, u, true)
    assert.equal(text.decode(sink.take()), updatesToJson(u).map((r) => JSON.stringify(r)).join(','))
  })

  it('writes integers of every length exactly, at each power of ten and word boundary', () => {
    // Every value, time and diff is written by the same digit writer: one row per boundary value.
    const edges: bigint[] = []
    for (let p = 0n, ten = 1n; p <= 19n; p++, ten *= 10n) edges.push(ten - 1n, ten, ten + 1n)
    for (const bit of [31n, 32n, 52n, 53n, 63n]) edges.push((1n << bit) - 1n, 1n << bit, (1n << bit) + 1n)
    const b = new UpdatesBuilder({ keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' })
    const I64_MAX = (1n << 63n) - 1n
    for (const e of edges) {
      const v = e > I64_MAX ? I64_MAX : e
      b.append(`k${e}`, v, e < 1n << 64n ? e : 0n, v === 0n ? 1n : v)
      b.append(`n${e}`, -v, 0n, v === 0n ? -1n : -v)
    }
    const u = b.finish()
    const sink = new ByteSink(8)
    writeJsonRows(sink, u, true)
    assert.equal(text.decode(sink.take()), updatesToJson(u).map((r) => JSON.stringify(r)).join(','))
  })

  it('writes random integers of every magnitude exactly', () => {
    const magnitude = fc.integer({ min: 0, max: 63 }).chain((bits) => fc.bigInt({ min: -(1n << BigInt(bits)), max: (1n << BigInt(bits)) - 1n }))
    fc.assert(
      fc.property(fc.array(fc.tuple(magnitude, magnitude, magnitude), { minLength: 1, maxLength: 50 }), (rows) => {
        const b = new UpdatesBuilder({ keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' })
        for (const [v, t, d] of rows) b.append('k', v, t < 0n ? -t : t, d === 0n ? 1n : d)
        const u = b.finish()
        const sink = new ByteSink(8)
        writeJsonRows(sink, u, true)
        assert.equal(text.decode(sink.take()), updatesToJson(u).map((r) => JSON.stringify(r)).join(','))
      }),
      { seed, numRuns: 300 },
    )
  })
})
