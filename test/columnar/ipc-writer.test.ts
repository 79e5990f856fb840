import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import fc from 'fast-check'
import { layoutIpcFile } from '../../src/columnar/ipc-writer.js'
import { announceSeed, seed } from './arbitraries.js'

announceSeed('ipc-writer.test.ts')

/** apache-arrow's own file writer: the bytes layoutIpcFile must reproduce. */
const reference = (batch: arrow.RecordBatch): Uint8Array => arrow.RecordBatchFileWriter.writeAll([batch]).toUint8Array(true)

function written(batch: arrow.RecordBatch): Uint8Array {
  const layout = layoutIpcFile([batch])
  const out = new Uint8Array(layout.byteLength + 17).fill(0xaa)
  layout.writeTo(out)
  assert.ok(out.subarray(layout.byteLength).every((x) => x === 0xaa), 'nothing written beyond byteLength')
  return out.subarray(0, layout.byteLength)
}

function assertSame(batch: arrow.RecordBatch, what: string): void {
  const a = Buffer.from(written(batch))
  const e = Buffer.from(reference(batch))
  assert.ok(a.equals(e), `${what}: ${a.byteLength} bytes vs ${e.byteLength} expected`)
}

function batchOf(columns: Record<string, arrow.Vector>, metadata?: Map<string, string>): arrow.RecordBatch {
  const entries = Object.entries(columns)
  const schema = new arrow.Schema(
    entries.map(([name, v]) => new arrow.Field(name, v.type, true)),
    metadata,
  )
  const children = entries.map(([, v]) => v.data[0]!)
  const length = children[0]?.length ?? 0
  return new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length, nullCount: 0, children }))
}

const TYPES = {
  bool: new arrow.Bool(),
  int8: new arrow.Int8(),
  int32: new arrow.Int32(),
  float32: new arrow.Float32(),
  int64: new arrow.Int64(),
  utf8: new arrow.Utf8(),
  binary: new arrow.Binary(),
  struct: new arrow.Struct([new arrow.Field('x', new arrow.Int16(), true), new arrow.Field('y', new arrow.Utf8(), true)]),
  null: new arrow.Null(),
} as const

type TypeName = keyof typeof TYPES

function arbValue(t: TypeName): fc.Arbitrary<unknown> {
  switch (t) {
    case 'bool':
      return fc.boolean()
    case 'int8':
      return fc.integer({ min: -128, max: 127 })
    case 'int32':
      return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })
    case 'float32':
      return fc.float({ noNaN: true }).map(Math.fround)
    case 'int64':
      return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
    case 'utf8':
      return fc.string({ maxLength: 9 })
    case 'binary':
      return fc.uint8Array({ maxLength: 9 })
    case 'struct':
      return fc.record({ x: fc.option(fc.integer({ min: -100, max: 100 }), { nil: null }), y: fc.option(fc.string({ maxLength: 4 }), { nil: null }) })
    case 'null':
      return fc.constant(null)
  }
}

const arbColumn = fc
  .constantFrom(...(Object.keys(TYPES) as TypeName[]))
  .chain((t) => fc.tuple(fc.constant(t), fc.array(fc.option(arbValue(t), { nil: null, freq: 4 }), { maxLength: 70 })))

describe('layoutIpcFile', () => {
  it('reproduces apache-arrow file bytes for random columns, slices included', () => {
    fc.assert(
      fc.property(fc.array(arbColumn, { minLength: 1, maxLength: 4 }), fc.nat(), fc.nat(), (cols, a, b) => {
        const n = Math.min(...cols.map(([, vs]) => vs.length))
        const columns: Record<string, arrow.Vector> = {}
        cols.forEach(([t, vs], i) => (columns[`c${i}`] = arrow.vectorFromArray(vs.slice(0, n), TYPES[t])))
        const batch = batchOf(columns, new Map([['k', 'v'.repeat(a % 13)]]))
        assertSame(batch, 'whole')
        const start = n === 0 ? 0 : a % n
        const len = b % (n - start + 1)
        const sliced = batch.slice(start, start + len)
        // Sliced Null columns are where the writers deliberately differ (see ipc-writer.ts).
        if (!cols.some(([t]) => t === 'null')) assertSame(sliced, `slice [${start}, ${start + len})`)
        assert.equal(arrow.tableFromIPC(written(sliced)).numRows, len)
      }),
      { seed, numRuns: 300 },
    )
  })

  it('reproduces apache-arrow file bytes for several record batches', () => {
    fc.assert(
      fc.property(fc.array(arbColumn, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), (cols, cuts) => {
        if (cols.some(([t]) => t === 'null')) return
        const n = Math.min(...cols.map(([, vs]) => vs.length))
        const columns: Record<string, arrow.Vector> = {}
        cols.forEach(([t, vs], i) => (columns[`c${i}`] = arrow.vectorFromArray(vs.slice(0, n), TYPES[t])))
        const batch = batchOf(columns, new Map([['k', 'v']]))
        const bounds = [...new Set([0, ...cuts.map((c) => c % (n + 1)), n])].sort((x, y) => x - y)
        const batches = bounds.slice(1).map((end, i) => batch.slice(bounds[i] as number, end))
        if (batches.length === 0) return
        const layout = layoutIpcFile(batches)
        const out = new Uint8Array(layout.byteLength)
        layout.writeTo(out)
        assert.ok(Buffer.from(out).equals(Buffer.from(arrow.RecordBatchFileWriter.writeAll(batches).toUint8Array(true))))
        assert.equal(arrow.tableFromIPC(out).numRows, n)
      }),
      { seed, numRuns: 200 },
    )
  })

  it('writes zero-row batches and batch metadata like apache-arrow', () => {
    assertSame(batchOf({ a: arrow.vectorFromArray([], new arrow.Utf8()) }), 'empty')
    const batch = batchOf({ a: arrow.vectorFromArray([1, 2, 3], new arrow.Int8()) })
    assertSame(new arrow.RecordBatch(batch.schema, batch.data, new Map([['batch', 'meta']])), 'batch metadata')
  })

  it('states a sliced Null column null count as its length, where apache-arrow writes -1', () => {
    const batch = batchOf({ n: arrow.vectorFromArray([null, null, null, null], new arrow.Null()), i: arrow.vectorFromArray([1, 2, 3, 4], new arrow.Int32()) })
    const sliced = batch.slice(1, 3)
    assert.equal(sliced.data.children[0]!.nullCount, -1)
    const bytes = written(sliced)
    const table = arrow.tableFromIPC(bytes)
    assert.equal(table.getChild('n')!.data[0]!.nullCount, 2)
    assert.deepEqual([...table.getChild('i')!], [2, 3])
    assert.equal(bytes.byteLength, reference(sliced).byteLength)
  })

  it('refuses column types whose children the assembler re-slices', () => {
    const list = arrow.vectorFromArray([[1], [2, 3]], new arrow.List(new arrow.Field('e', new arrow.Int32(), true)))
    assert.throws(() => layoutIpcFile([batchOf({ l: list })]), /not supported/)
    const dict = arrow.vectorFromArray(['a', 'b', 'a'], new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32()))
    assert.throws(() => layoutIpcFile([batchOf({ d: dict })]), /dictionary/)
  })
})
