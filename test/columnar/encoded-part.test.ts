import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import fc from 'fast-check'
import { onlyData, valueAt } from '../../src/columnar/column.js'
import { binary, bool, dataTypeToJson, field, float64, int64, struct, toArrowType, uint64, unit, utf8, type DataType } from '../../src/columnar/data-type.js'
import { OffsetsScratch } from '../../src/columnar/batch-slices.js'
import { decodePart, encodedPart, encodePart, partBatches, PART_FORMAT_VERSION, PART_META_KEYS, type PartWriteMeta } from '../../src/columnar/part-format.js'
import { encodeSortKey } from '../../src/columnar/sort-key.js'
import { sliceUpdates, sumDiffs, updatesToJson, UpdatesBuilder, type Updates, type UpdatesShape } from '../../src/columnar/updates.js'
import { canonical, type Antichain } from '../../src/core/antichain.js'
import { RUN_ORDERS } from '../../src/core/batch.js'
import * as descs from '../../src/core/description.js'
import { timestampKind, type Timestamp, type TimestampKindName } from '../../src/core/timestamp.js'
import type { Value } from '../../src/columnar/values.js'
import { announceSeed, arbRows, arbShape, arbTime, seed, type Row, type Shape } from './arbitraries.js'

announceSeed('encoded-part.test.ts')

/**
 * The encoder as it was before `encodedPart`: apache-arrow's file writer, whose chunks are joined
 * into a fresh buffer. The new writer must produce exactly these bytes.
 */
function referenceEncodePart(u: Updates, meta: PartWriteMeta): Uint8Array {
  const tk = timestampKind(u.timeKind)
  const metadata = new Map<string, string>([
    [PART_META_KEYS.format, String(PART_FORMAT_VERSION)],
    [PART_META_KEYS.desc, JSON.stringify(descs.toJson(tk, meta.desc))],
    [PART_META_KEYS.order, meta.order],
    [PART_META_KEYS.schemaId, String(meta.schemaId)],
    [PART_META_KEYS.timestamp, u.timeKind],
    [PART_META_KEYS.diffsSum, sumDiffs(u).toString()],
    [PART_META_KEYS.keySchema, JSON.stringify(dataTypeToJson(u.keyType))],
    [PART_META_KEYS.valSchema, JSON.stringify(dataTypeToJson(u.valType))],
  ])
  const tType =
    u.timeKind === 'u64' ? new arrow.Uint64() : new arrow.Struct([new arrow.Field('a', new arrow.Uint32(), false), new arrow.Field('b', new arrow.Uint32(), false)])
  const schema = new arrow.Schema(
    [
      new arrow.Field('k', toArrowType(u.keyType), u.keyType.type === 'unit'),
      new arrow.Field('v', toArrowType(u.valType), u.valType.type === 'unit'),
      new arrow.Field('t', tType, false),
      new arrow.Field('d', new arrow.Int64(), false),
    ],
    metadata,
  )
  const n = u.length
  const t =
    u.timeKind === 'u64'
      ? arrow.makeData({ type: new arrow.Uint64(), length: n, nullCount: 0, data: u.times })
      : arrow.makeData({
          type: tType as arrow.Struct,
          length: n,
          nullCount: 0,
          children: [
            arrow.makeData({ type: new arrow.Uint32(), length: n, nullCount: 0, data: u.times.a }),
            arrow.makeData({ type: new arrow.Uint32(), length: n, nullCount: 0, data: u.times.b }),
          ],
        })
  const d = arrow.makeData({ type: new arrow.Int64(), length: n, nullCount: 0, data: u.diffs })
  const data = arrow.makeData({ type: new arrow.Struct(schema.fields), length: n, nullCount: 0, children: [onlyData(u.keys), onlyData(u.vals), t as arrow.Data, d as arrow.Data] })
  return arrow.RecordBatchFileWriter.writeAll([new arrow.RecordBatch(schema, data)]).toUint8Array(true)
}

function build(shape: Shape, rows: readonly Row[]): Updates {
  const b = new UpdatesBuilder(shape)
  for (const r of rows) b.append(r.key, r.val, r.time, r.diff)
  return b.finish()
}

/** The new path, into a fresh buffer of exactly the part's size (one record batch unless `batchBytes` is given). */
function written(u: Updates, m: PartWriteMeta, batchBytes = Infinity): Uint8Array {
  const part = encodedPart(u, m, undefined, { batchBytes })
  const out = new Uint8Array(part.byteLength)
  part.writeTo(out)
  return out
}

/** Byte equality with the first differing offset in the message (assert.deepEqual on MiB is unreadable). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`)
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)
  if (!a.equals(e)) {
    let i = 0
    while (a[i] === e[i]) i++
    assert.fail(`${what}: first difference at byte ${i} of ${e.byteLength} (got ${a[i]}, expected ${e[i]})`)
  }
}

const json = (u: Updates): string => JSON.stringify(updatesToJson(u))

/** Whether a column holds a null count apache-arrow has not counted (-1): a sliced unit (Arrow Null) column. */
function uncounted(d: arrow.Data): boolean {
  return d.nullCount < 0 || d.children.some(uncounted)
}

/**
 * The new bytes equal the reference's, except where the reference writes a null count of -1 (a
 * sliced unit column), which decodePart refuses: there the new file has the same layout, differs
 * only inside the record batch's metadata, and decodes.
 */
function assertMatchesReference(u: Updates, m: PartWriteMeta, what = 'part'): Uint8Array {
  const actual = written(u, m)
  const expected = referenceEncodePart(u, m)
  if (!uncounted(onlyData(u.keys)) && !uncounted(onlyData(u.vals))) {
    assertSameBytes(actual, expected, what)
    return actual
  }
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`)
  const metaEnd = 16 + new DataView(actual.buffer, actual.byteOffset).getInt32(12, true)
  for (let i = 0; i < actual.byteLength; i++) {
    if (actual[i] !== expected[i]) assert.ok(i >= 16 && i < metaEnd, `${what}: byte ${i} differs outside the record batch metadata [16, ${metaEnd})`)
  }
  assert.throws(() => decodePart(expected), /null count is negative/, `${what}: the reference writes an invalid part`)
  assert.equal(json(decodePart(actual).updates), json(u), `${what}: round trip`)
  return actual
}

function arbAntichain(kind: TimestampKindName): fc.Arbitrary<Antichain> {
  return fc.array(arbTime(kind), { maxLength: 3 }).map((ts) => canonical(timestampKind(kind), ts))
}

function arbMeta(kind: TimestampKindName): fc.Arbitrary<PartWriteMeta> {
  return fc.record({
    desc: fc.tuple(arbAntichain(kind), arbAntichain(kind), arbAntichain(kind)).map(([l, u, s]) => descs.description(l, u, s)),
    order: fc.constantFrom(...RUN_ORDERS),
    schemaId: fc.nat({ max: 1_000_000 }),
  })
}

const metaU64: PartWriteMeta = { desc: descs.description([0n], [1000n], [0n]), order: 'structured', schemaId: 3 }
const metaProduct: PartWriteMeta = { desc: descs.description([[0, 0]], [[9, 9]], [[0, 0]]), order: 'codec', schemaId: 0 }
const metaFor = (kind: TimestampKindName): PartWriteMeta => (kind === 'u64' ? metaU64 : metaProduct)

const nested = struct([
  field('id', int64),
  field('name', utf8, true),
  field('inner', struct([field('bytes', binary, true), field('flag', bool), field('u', unit), field('n', uint64, true)]), true),
  field('f', float64, true),
  field('empty', struct([]), true),
])

function valueFor(t: DataType, i: number): Value {
  switch (t.type) {
    case 'utf8':
      return `s${i}-${'é'.repeat(i % 5)}`
    case 'binary':
      return Uint8Array.from({ length: i % 7 }, (_, j) => (i * 31 + j) & 0xff)
    case 'int64':
      return BigInt(i) * -7919n
    case 'uint64':
      return BigInt(i) * 0x1_0000_0001n
    case 'float64':
      return i % 11 === 0 ? NaN : i * 0.25 - 3
    case 'bool':
      return i % 3 === 0
    case 'unit':
      return null
    case 'struct': {
      const o = Object.create(null) as Record<string, Value>
      t.fields.forEach((f, j) => (o[f.name] = f.nullable && f.type.type !== 'unit' && (i + j) % 4 === 0 ? null : valueFor(f.type, i + j)))
      return o as Value
    }
  }
}

function rowsFor(s: UpdatesShape, n: number): Updates {
  const b = new UpdatesBuilder(s, { capacity: n })
  for (let i = 0; i < n; i++) {
    const time: Timestamp = s.timeKind === 'u64' ? BigInt(i) * 0x9_0000_0001n : [i, n - i]
    b.append(valueFor(s.keyType, i), valueFor(s.valType, i + 1), time, BigInt(i % 5) - 2n)
  }
  return b.finish()
}

const TYPES: [string, DataType][] = [
  ['utf8', utf8],
  ['binary', binary],
  ['int64', int64],
  ['uint64', uint64],
  ['float64', float64],
  ['bool', bool],
  ['unit', unit],
  ['nested struct', nested],
]

describe('encodedPart', () => {
  it('writes the bytes of the apache-arrow file writer for every type, both time kinds, 0, 1 and many rows', () => {
    let cases = 0
    for (const timeKind of ['u64', 'product'] as const) {
      for (const [, keyType] of TYPES) {
        for (const [vname, valType] of TYPES) {
          for (const n of [0, 1, 2, 9, 65]) {
            const u = rowsFor({ keyType, valType, timeKind }, n)
            const m = metaFor(timeKind)
            assertSameBytes(written(u, m), referenceEncodePart(u, m), `${timeKind} ${formatName(keyType)} → ${vname}, ${n} rows`)
            cases++
          }
        }
      }
    }
    assert.equal(cases, 2 * TYPES.length * TYPES.length * 5)
  })

  it('writes the same bytes for large parts: many rows, and single values of hundreds of KiB', () => {
    const many = rowsFor({ keyType: utf8, valType: nested, timeKind: 'u64' }, 20_000)
    assertSameBytes(written(many, metaU64), referenceEncodePart(many, metaU64), '20k rows')
    const b = new UpdatesBuilder({ keyType: binary, valType: utf8, timeKind: 'product' })
    const big = new Uint8Array(300_001).map((_, i) => (i * 13) & 0xff)
    b.append(big, 'x'.repeat(200_003), [1, 2], 1n)
    b.append(new Uint8Array(0), '', [3, 4], -1n)
    const u = b.finish()
    assertSameBytes(written(u, metaProduct), referenceEncodePart(u, metaProduct), 'large values')
    assert.equal(json(decodePart(written(u, metaProduct)).updates), json(u))
  })

  it('cuts large parts into record batches, each described in the metadata, and decodes them whole', () => {
    for (const order of ['structured', 'codec', 'unordered'] as const) {
      const u = rowsFor({ keyType: utf8, valType: nested, timeKind: 'u64' }, 3_000)
      const m = { ...metaU64, order }
      const bytes = written(u, m, 16 * 1024)
      const table = arrow.tableFromIPC(bytes)
      assert.ok(table.batches.length > 3, `several batches: ${table.batches.length}`)
      assert.equal(json(decodePart(bytes).updates), json(u))
      const batches = partBatches(table.schema.metadata)
      assert.ok(batches !== null)
      assert.deepEqual(
        batches.map((b) => b.rows),
        table.batches.map((b) => b.numRows),
      )
      let start = 0
      for (const b of batches) {
        assert.equal(b.diffsSum, sumDiffs(sliceUpdates(u, start, start + b.rows)))
        const key = order === 'unordered' ? '' : Buffer.from(encodeSortKey(utf8, valueAt(onlyData(u.keys), utf8, start), order)).toString('base64')
        assert.equal(b.keyLower, key)
        start += b.rows
      }
      // apache-arrow reads it too (ipc-writer.test.ts checks multi-batch bytes against its writer).
      assert.equal(table.numRows, u.length)
    }
    // A part of one batch says nothing about batches.
    assert.equal(partBatches(arrow.tableFromIPC(written(rowsFor({ keyType: utf8, valType: nested, timeKind: 'u64' }, 10), metaU64, 1 << 20)).schema.metadata), null)
  })

  it('gives every batch its own value offsets from 0, through a reused scratch: apache-arrow rewrites the file to the same bytes', () => {
    const scratch = new OffsetsScratch()
    const shapes: UpdatesShape[] = [
      { keyType: binary, valType: binary, timeKind: 'u64' },
      { keyType: utf8, valType: nested, timeKind: 'product' },
      // A string value column with nulls is sliced as apache-arrow slices it.
      { keyType: binary, valType: struct([field('s', utf8, true)]), timeKind: 'u64' },
    ]
    for (const [i, shape] of shapes.entries()) {
      for (const n of [2_000, 700]) {
        const u = rowsFor(shape, n)
        const part = encodedPart(u, shape.timeKind === 'u64' ? metaU64 : metaProduct, undefined, { batchBytes: 8 * 1024, scratch })
        const bytes = new Uint8Array(part.byteLength)
        part.writeTo(bytes)
        const table = arrow.tableFromIPC(bytes)
        assert.ok(table.batches.length > 2, `shape ${i}: several batches`)
        // Decoding a file yields batches whose offsets start at 0; written back they must give our bytes.
        const rewritten = arrow.RecordBatchFileWriter.writeAll(table.batches).toUint8Array(true)
        assert.ok(Buffer.from(rewritten).equals(bytes), `shape ${i}, ${n} rows: apache-arrow rewrites different bytes`)
        assert.equal(json(decodePart(bytes).updates), json(u))
      }
    }
  })

  it('writes the same bytes for slices (offsets not starting at 0, bitmaps at odd bit offsets) and decoded parts', () => {
    const u = rowsFor({ keyType: nested, valType: struct([field('b', bool, true), field('s', utf8, true)]), timeKind: 'product' }, 50)
    for (const [s, e] of [
      [0, 50],
      [1, 50],
      [3, 4],
      [7, 40],
      [13, 13],
      [49, 50],
    ] as const) {
      const slice = sliceUpdates(u, s, e)
      const decoded = decodePart(assertMatchesReference(slice, metaProduct, `slice [${s}, ${e})`)).updates
      assert.equal(json(decoded), json(slice))
      assertMatchesReference(decoded, metaProduct, `decoded slice [${s}, ${e})`)
      assertMatchesReference(sliceUpdates(decoded, 1, 5), metaProduct, `slice of decoded [${s}, ${e})`)
    }
  })

  it('matches the reference on random shapes, rows, slices and metadata, and round-trips through decodePart', () => {
    fc.assert(
      fc.property(
        arbShape(3).chain((s) => fc.tuple(fc.constant(s), arbRows(s, 40), arbMeta(s.timeKind), fc.nat(), fc.nat())),
        ([s, rows, m, a, b]) => {
          const full = build(s, rows)
          const start = rows.length === 0 ? 0 : a % rows.length
          const u = sliceUpdates(full, start, start + (b % (rows.length - start + 1)))
          const bytes = assertMatchesReference(u, m)
          assertSameBytes(encodePart(u, m), bytes, 'encodePart')
          const part = decodePart(bytes)
          assert.equal(json(part.updates), json(u))
          assert.ok(descs.equals(timestampKind(s.timeKind), part.meta.desc, m.desc))
          assert.equal(part.meta.order, m.order)
          assert.equal(part.meta.schemaId, m.schemaId)
          assert.equal(part.meta.diffsSum, sumDiffs(u))
        },
      ),
      { seed, numRuns: 200 },
    )
  })

  it('states the real null count of sliced unit columns, which apache-arrow writes as -1', () => {
    const shapes: UpdatesShape[] = [
      { keyType: utf8, valType: unit, timeKind: 'u64' },
      { keyType: struct([field('a', unit), field('b', struct([field('c', unit, true)]), true)]), valType: int64, timeKind: 'product' },
    ]
    for (const s of shapes) {
      const u = rowsFor(s, 20)
      for (const [a, b] of [
        [0, 20],
        [3, 11],
        [0, 0],
      ] as const) {
        const slice = sliceUpdates(u, a, b)
        assert.ok(uncounted(onlyData(slice.keys)) || uncounted(onlyData(slice.vals)), 'the slice has an uncounted null count')
        assertMatchesReference(slice, metaFor(s.timeKind), `${JSON.stringify(dataTypeToJson(s.keyType))} [${a}, ${b})`)
        const table = arrow.tableFromIPC(written(slice, metaFor(s.timeKind)))
        assert.equal(table.numRows, b - a)
      }
    }
  })

  it('writes every byte of [0, byteLength) of a larger dirty buffer, and nothing beyond', () => {
    for (const [s, e] of [
      [0, 0],
      [0, 1],
      [0, 33],
      [5, 30],
    ] as const) {
      const u = sliceUpdates(rowsFor({ keyType: nested, valType: binary, timeKind: 'u64' }, 33), s, e)
      const expected = assertMatchesReference(u, metaU64)
      const part = encodedPart(u, metaU64)
      const target = new Uint8Array(part.byteLength + 123).fill(0xaa)
      part.writeTo(target)
      assertSameBytes(target.subarray(0, part.byteLength), expected, `rows [${s}, ${e})`)
      assert.ok(target.subarray(part.byteLength).every((x) => x === 0xaa), 'bytes beyond byteLength are untouched')
      // A second write over the first (a reused buffer) gives the same bytes.
      target.fill(0x55, 0, part.byteLength)
      part.writeTo(target)
      assertSameBytes(target.subarray(0, part.byteLength), expected, `rows [${s}, ${e}), rewritten`)
      assert.equal(json(decodePart(target.subarray(0, part.byteLength)).updates), json(u))
    }
  })

  it('writes into a view over a SharedArrayBuffer, which decodePart reads in place', () => {
    const u = rowsFor({ keyType: utf8, valType: nested, timeKind: 'product' }, 100)
    const part = encodedPart(u, metaProduct)
    const shared = new SharedArrayBuffer(part.byteLength + 64)
    new Uint8Array(shared).fill(0xaa)
    const view = new Uint8Array(shared, 16, part.byteLength)
    part.writeTo(view)
    assertSameBytes(view, referenceEncodePart(u, metaProduct))
    const decoded = decodePart(view)
    assert.equal(json(decoded.updates), json(u))
    assert.equal(decoded.updates.diffs.buffer, shared)
    assert.equal(new Uint8Array(shared, 0, 16).every((x) => x === 0xaa), true)
  })

  it('refuses a target smaller than the part, before writing anything', () => {
    const u = rowsFor({ keyType: utf8, valType: int64, timeKind: 'u64' }, 10)
    const part = encodedPart(u, metaU64)
    const small = new Uint8Array(part.byteLength - 1).fill(0xaa)
    assert.throws(() => part.writeTo(small), RangeError)
    assert.ok(small.every((x) => x === 0xaa))
  })

  it('lays out without copying the columns: writeTo copies them from the live buffers', () => {
    const u = rowsFor({ keyType: int64, valType: utf8, timeKind: 'u64' }, 4)
    const part = encodedPart(u, metaU64)
    const before = new Uint8Array(part.byteLength)
    part.writeTo(before)
    const diffsSum = sumDiffs(u)
    u.diffs[0] = u.diffs[0]! + 10n
    u.diffs[1] = u.diffs[1]! - 10n
    const after = new Uint8Array(part.byteLength)
    part.writeTo(after)
    assert.notDeepEqual(after, before)
    assert.equal(sumDiffs(u), diffsSum)
    assertSameBytes(after, referenceEncodePart(u, metaU64))
  })

  it('uses the given diffsSum, and keeps refusing aliased columns and bad schema ids', () => {
    const u = rowsFor({ keyType: utf8, valType: utf8, timeKind: 'u64' }, 3)
    assertSameBytes(encodePart(u, metaU64, sumDiffs(u)), referenceEncodePart(u, metaU64))
    assert.equal(decodePart(encodePart(u, metaU64, sumDiffs(u))).meta.diffsSum, sumDiffs(u))
    assert.throws(() => decodePart(encodePart(u, metaU64, sumDiffs(u) + 1n)), /diffs sum to/)
    assert.throws(() => encodedPart({ ...u, vals: u.keys }, metaU64), /overlapping buffers/)
    assert.throws(() => encodedPart(u, { ...metaU64, schemaId: -1 }), /schemaId/)
  })
})

function formatName(t: DataType): string {
  return t.type === 'struct' ? 'struct' : t.type
}
