import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type * as arrow from 'apache-arrow'
import fc from 'fast-check'
import { decodeCodecValue, encodeCodecValue } from '../../src/columnar/codec.js'
import { makeColumnBuilder } from '../../src/columnar/column-builder.js'
import { valueAt } from '../../src/columnar/column.js'
import { binary, field, float64, int64, struct, utf8, type DataType } from '../../src/columnar/data-type.js'
import {
  compareBytes,
  compareRows,
  compareSortKeys,
  encodeSortKey,
  encodeStructuredValue,
  firstUnsortedRow,
  rowOrderKeys,
  sortKeyColumn,
  type SortKeyColumn,
  type SortOrder,
} from '../../src/columnar/sort-key.js'
import { UpdatesBuilder } from '../../src/columnar/updates.js'
import type { Value } from '../../src/columnar/values.js'
import { announceSeed, arbDataType, arbValue, refCompare, seed } from './arbitraries.js'

announceSeed('sort-key.test.ts')

function column(t: DataType, values: readonly Value[]): arrow.Data {
  const b = makeColumnBuilder(t, false)
  for (const v of values) b.appendValue(v)
  return b.finish(false)
}

const rowBytes = (c: SortKeyColumn, i: number): Uint8Array => c.bytes.slice(c.offsets[i], c.offsets[i + 1])

const arbTypedValues = (min: number, max: number): fc.Arbitrary<[DataType, Value[]]> =>
  arbDataType(3).chain((t) => fc.tuple(fc.constant(t), fc.array(arbValue(t), { minLength: min, maxLength: max })))

describe('structured sort keys', () => {
  it('order bytewise exactly as the typed values (and are injective)', () => {
    fc.assert(
      fc.property(arbTypedValues(1, 24), ([t, values]) => {
        const keys = sortKeyColumn(column(t, values), t, 'structured')
        for (let i = 0; i < values.length; i++) {
          for (let j = 0; j < values.length; j++) {
            const want = refCompare(t, values[i]!, values[j]!)
            const got = Math.sign(compareSortKeys(keys, i, keys, j))
            if (got !== want) assert.fail(`rows ${i} and ${j}: encodings compare ${got}, values compare ${want}`)
          }
        }
      }),
      { seed, numRuns: 400 },
    )
  })

  it('computed column-wise equal the per-value encoding, and the column reads back its values', () => {
    fc.assert(
      fc.property(arbTypedValues(0, 20), ([t, values]) => {
        const d = column(t, values)
        const keys = sortKeyColumn(d, t, 'structured')
        values.forEach((v, i) => {
          assert.deepEqual(rowBytes(keys, i), encodeStructuredValue(t, v))
          assert.equal(refCompare(t, valueAt(d, t, i), v), 0)
        })
      }),
      { seed, numRuns: 300 },
    )
  })

  it('are the same for a sliced column (non-zero Arrow offsets)', () => {
    fc.assert(
      fc.property(arbTypedValues(3, 30), fc.nat(), fc.nat(), ([t, values], a, b) => {
        const start = a % values.length
        const len = b % (values.length - start + 1)
        const d = column(t, values).slice(start, len)
        for (const order of ['structured', 'codec'] as const) {
          const keys = sortKeyColumn(d, t, order)
          for (let i = 0; i < len; i++) assert.deepEqual(rowBytes(keys, i), encodeSortKey(t, values[start + i]!, order))
        }
      }),
      { seed, numRuns: 200 },
    )
  })

  it('realize the documented examples', () => {
    const enc = (t: DataType, vs: Value[]): SortKeyColumn => sortKeyColumn(column(t, vs), t, 'structured')
    const ascending = (t: DataType, vs: Value[]): void => {
      const k = enc(t, vs)
      for (let i = 1; i < vs.length; i++) assert.ok(compareSortKeys(k, i - 1, k, i) < 0, `${t.type} example ${i - 1} < ${i}`)
    }
    ascending(float64, [-Infinity, -1, -Number.MIN_VALUE, -0, 0, Number.MIN_VALUE, 1, Infinity, NaN])
    ascending(int64, [-(2n ** 63n), -256n, -1n, 0n, 1n, 256n, 2n ** 63n - 1n])
    const s = struct([field('s', utf8), field('n', int64, true)])
    const row = (str: string, n: bigint | null): Value => Object.assign(Object.create(null) as object, { s: str, n })
    ascending(s, [row('', null), row('', 0n), row('a', null), row('a', 5n), row('a\0', null), row('a\0b', null), row('ab', null), row('b', -1n)])
    assert.deepEqual(encodeStructuredValue(s, row('a\0', 1n)), new Uint8Array([0x61, 0x00, 0xff, 0x00, 0x00, 0x01, 0x80, 0, 0, 0, 0, 0, 0, 1]))
    assert.deepEqual(encodeStructuredValue(int64, -1n), new Uint8Array([0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
    assert.deepEqual(encodeStructuredValue(utf8, 'a\0'), new Uint8Array([0x61, 0x00]))
  })
})

describe('sort keys cut to a length', () => {
  it('are the first bytes of the whole encoding, and cost about the cut, not the value', () => {
    fc.assert(
      fc.property(arbTypedValues(1, 1), fc.constantFrom<SortOrder>('structured', 'codec'), fc.integer({ min: 0, max: 40 }), ([t, [v]], order, limit) => {
        const whole = encodeSortKey(t, v!, order)
        const cut = encodeSortKey(t, v!, order, limit)
        const n = Math.min(limit, whole.length)
        assert.ok(cut.length >= n, `${cut.length} bytes for a cut of ${limit} of ${whole.length}`)
        assert.deepEqual(cut.subarray(0, n), whole.subarray(0, n))
        // NB: at most one fixed-width value, an escape or a codec length past the cut.
        assert.ok(cut.length <= limit + 8, `${cut.length} bytes for a cut of ${limit}`)
      }),
      { seed, numRuns: 1000 },
    )
  })

  it('read a key of many MiB only as far as the cut (a part key lower)', () => {
    const huge = new Uint8Array(64 << 20).fill(7)
    const big = struct([field('a', utf8, true), field('b', binary, false)])
    const cut = encodeSortKey(big, { a: 'x'.repeat(32 << 20), b: huge }, 'structured', 256)
    assert.ok(cut.length <= 264)
    assert.deepEqual(cut.subarray(0, 4), new Uint8Array([1, 0x78, 0x78, 0x78]))
    assert.deepEqual(encodeSortKey(binary, huge, 'codec', 256).subarray(0, 6), new Uint8Array([0, 0, 0, 4, 7, 7]))
  })
})

describe('codec sort keys', () => {
  it('equal the canonical encoding column-wise, decode back, and are injective', () => {
    fc.assert(
      fc.property(arbTypedValues(1, 20), ([t, values]) => {
        const keys = sortKeyColumn(column(t, values), t, 'codec')
        values.forEach((v, i) => {
          const bytes = rowBytes(keys, i)
          assert.deepEqual(bytes, encodeCodecValue(t, v))
          assert.equal(refCompare(t, decodeCodecValue(t, bytes), v), 0)
          for (let j = 0; j < values.length; j++) {
            assert.equal(compareSortKeys(keys, i, keys, j) === 0, refCompare(t, v, values[j]!) === 0)
          }
        })
      }),
      { seed, numRuns: 300 },
    )
  })

  it('is a different order from structured, as intended', () => {
    const cmp = (t: DataType, a: Value, b: Value, order: SortOrder): number => {
      const x = encodeSortKey(t, a, order)
      const y = encodeSortKey(t, b, order)
      return Math.sign(compareBytes(x, 0, x.length, y, 0, y.length))
    }
    assert.equal(cmp(int64, 1n, 256n, 'structured'), -1)
    assert.equal(cmp(int64, 1n, 256n, 'codec'), 1)
    assert.equal(cmp(int64, -1n, 1n, 'codec'), 1)
    assert.equal(cmp(utf8, 'ab', 'b', 'structured'), -1)
    assert.equal(cmp(utf8, 'ab', 'b', 'codec'), 1)
    assert.deepEqual(encodeCodecValue(utf8, 'ab'), new Uint8Array([2, 0, 0, 0, 0x61, 0x62]))
  })

  it('rejects truncated or trailing bytes when decoding', () => {
    assert.throws(() => decodeCodecValue(int64, new Uint8Array(7)), /truncated/)
    assert.throws(() => decodeCodecValue(int64, new Uint8Array(9)), /trailing/)
    assert.throws(() => decodeCodecValue(utf8, new Uint8Array([5, 0, 0, 0, 1])), /truncated/)
  })
})

describe('comparators', () => {
  it('compareBytes is bytewise with shorter prefixes first', () => {
    const a = new Uint8Array([9, 1, 2, 3, 9])
    const b = new Uint8Array([1, 2, 4])
    assert.ok(compareBytes(a, 1, 3, b, 0, 3) < 0)
    assert.ok(compareBytes(a, 1, 2, b, 0, 2) === 0)
    assert.ok(compareBytes(a, 1, 2, b, 0, 3) < 0)
    assert.ok(compareBytes(b, 0, 3, a, 1, 2) > 0)
    assert.ok(compareBytes(a, 0, 0, b, 0, 0) === 0)
  })

  it('compareRows orders by key, then val, then time in the kind’s total order', () => {
    for (const timeKind of ['u64', 'product'] as const) {
      const b = new UpdatesBuilder({ keyType: utf8, valType: int64, timeKind })
      const t = (x: number, y: number) => (timeKind === 'u64' ? BigInt(x) * 2n ** 32n + BigInt(y) : ([x, y] as const))
      const rows: [string, bigint, number, number][] = [
        ['a', 1n, 0, 0],
        ['a', 1n, 0, 7],
        ['a', 1n, 1, 0],
        ['a', 2n, 0, 0],
        ['b', -5n, 0, 0],
      ]
      for (const [k, v, x, y] of rows) b.append(k, v, t(x, y), 1n)
      const u = b.finish()
      const keys = rowOrderKeys(u, 'structured')
      for (let i = 0; i < rows.length; i++) {
        for (let j = 0; j < rows.length; j++) assert.equal(Math.sign(compareRows(keys, i, keys, j)), Math.sign(i - j))
      }
      assert.equal(firstUnsortedRow(keys, u.length), -1)
      const rev = new UpdatesBuilder(u)
      const src = rev.bind(u)
      for (let i = u.length - 1; i >= 0; i--) rev.appendRow(src, i)
      assert.equal(firstUnsortedRow(rowOrderKeys(rev.finish(), 'structured'), u.length), 1)
    }
  })

  it('time words order u64 times above 2^32 correctly', () => {
    const b = new UpdatesBuilder({ keyType: utf8, valType: utf8, timeKind: 'u64' })
    const times = [0n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 63n, 2n ** 64n - 1n]
    for (const t of times) b.append('k', 'v', t, 1n)
    const keys = rowOrderKeys(b.finish(), 'codec')
    for (let i = 1; i < times.length; i++) assert.ok(compareRows(keys, i - 1, keys, i) < 0)
  })
})
