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
    // Each control character alone, so none hides behind another that needs escaping.
    for (let c = 0; c < 0x20; c++) b.append(String.fromCharCode(c), BigInt(c), BigInt(c), 1n)
    const sink = new ByteSink()
    const u = b.finish()
    writeJsonRows(sink, u, true)
    assert.equal(text.decode(sink.take()), updatesToJson(u).map((r) => JSON.stringify(r)).join(','))
  })
})
