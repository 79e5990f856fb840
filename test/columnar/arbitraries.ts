/**
 * fast-check generators of schema types, values, and update rows, plus a reference comparator of
 * typed values written independently of the encodings under test.
 */
import fc from 'fast-check'
import { field, struct, type DataType, type StructField } from '../../src/columnar/data-type.js'
import { INT64_MAX, INT64_MIN, UINT64_MAX, type StructValue, type Value } from '../../src/columnar/values.js'
import type { Product, Timestamp, TimestampKindName } from '../../src/core/timestamp.js'

export const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 0x7fff_ffff)

/** Prints the seed once per test file, so a failure can be replayed with `FC_SEED=…`. */
export function announceSeed(file: string): void {
  console.log(`${file}: FC_SEED=${seed}`)
}

const scalarType: fc.Arbitrary<DataType> = fc.constantFrom<DataType>(
  { type: 'utf8' },
  { type: 'binary' },
  { type: 'int64' },
  { type: 'uint64' },
  { type: 'float64' },
  { type: 'bool' },
  { type: 'unit' },
)

export function arbDataType(maxDepth = 3): fc.Arbitrary<DataType> {
  const { tree } = fc.letrec<{ tree: DataType; node: DataType }>((tie) => ({
    tree: fc.oneof({ depthSize: 'small', maxDepth, withCrossShrink: true }, scalarType, tie('node')),
    node: fc
      .uniqueArray(fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd', 'e', '__proto__', 'x y'), type: tie('tree'), nullable: fc.boolean() }), {
        maxLength: 4,
        selector: (f) => f.name,
      })
      .map((fs) => struct(fs.map((f: StructField) => field(f.name, f.type, f.nullable)))),
  }))
  return tree
}

/** Small domains on purpose, so random rows collide and ties get exercised. */
export function arbValue(t: DataType): fc.Arbitrary<Value> {
  switch (t.type) {
    case 'utf8':
      return fc.oneof(fc.constantFrom('', 'a', 'ab', '\0', 'a\0', 'a\0b', 'b', 'é', '\u{1F600}', '\uFFFF'), fc.string({ unit: 'binary', maxLength: 5 }))
    case 'binary':
      return fc.oneof(
        fc.constantFrom(new Uint8Array([]), new Uint8Array([0]), new Uint8Array([0, 0]), new Uint8Array([0, 255]), new Uint8Array([255]), new Uint8Array([1, 0])),
        fc.uint8Array({ maxLength: 5 }),
      )
    case 'int64':
      return fc.oneof(fc.constantFrom(0n, -1n, 1n, 256n, -256n, INT64_MIN, INT64_MAX, 1n << 32n, -(1n << 32n)), fc.bigInt({ min: INT64_MIN, max: INT64_MAX }))
    case 'uint64':
      return fc.oneof(fc.constantFrom(0n, 1n, 255n, 256n, 1n << 32n, (1n << 32n) - 1n, UINT64_MAX, 1n << 63n), fc.bigInt({ min: 0n, max: UINT64_MAX }))
    case 'float64':
      return fc.oneof(fc.constantFrom(0, -0, 1, -1, 0.5, NaN, Infinity, -Infinity, Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE), fc.double())
    case 'bool':
      return fc.boolean()
    case 'unit':
      return fc.constant(null)
    case 'struct': {
      const parts = t.fields.map((f) => {
        const v = arbValue(f.type)
        return f.nullable && f.type.type !== 'unit' ? fc.option(v, { nil: null, freq: 3 }) : v
      })
      return fc.tuple(...parts).map((vs) => {
        const o = Object.create(null) as Record<string, Value>
        t.fields.forEach((f, i) => (o[f.name] = vs[i] as Value))
        return o as StructValue
      })
    }
  }
}

export function arbTime(kind: TimestampKindName): fc.Arbitrary<Timestamp> {
  if (kind === 'u64') return fc.oneof(fc.bigInt({ min: 0n, max: 5n }), fc.constantFrom(0n, 1n << 32n, UINT64_MAX, (1n << 53n) + 1n), fc.bigInt({ min: 0n, max: UINT64_MAX }))
  const c = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom(0xffff_ffff, 0x8000_0000))
  return fc.tuple(c, c).map(([a, b]) => [a, b] as Product)
}

export function arbDiff(): fc.Arbitrary<bigint> {
  return fc.oneof({ weight: 8, arbitrary: fc.integer({ min: -3, max: 3 }).map(BigInt) }, { weight: 1, arbitrary: fc.constantFrom(INT64_MAX, INT64_MIN, 1n << 53n) })
}

export interface Row {
  readonly key: Value
  readonly val: Value
  readonly time: Timestamp
  readonly diff: bigint
}

export interface Shape {
  readonly keyType: DataType
  readonly valType: DataType
  readonly timeKind: TimestampKindName
}

export function arbShape(maxDepth = 2): fc.Arbitrary<Shape> {
  return fc.record({ keyType: arbDataType(maxDepth), valType: arbDataType(maxDepth), timeKind: fc.constantFrom<TimestampKindName>('u64', 'product') })
}

/** Rows drawn from a small pool of keys and vals, so equal (key, val, time) recur. */
export function arbRows(s: Shape, maxLength = 40): fc.Arbitrary<Row[]> {
  return fc
    .tuple(fc.array(arbValue(s.keyType), { minLength: 1, maxLength: 4 }), fc.array(arbValue(s.valType), { minLength: 1, maxLength: 3 }), fc.array(arbTime(s.timeKind), { minLength: 1, maxLength: 3 }))
    .chain(([keys, vals, times]) =>
      fc.array(
        fc.record({ key: fc.constantFrom(...keys), val: fc.constantFrom(...vals), time: fc.constantFrom(...times), diff: arbDiff() }),
        { maxLength },
      ),
    )
}

// ---- reference order ---------------------------------------------------------------------------

const utf8 = new TextEncoder()

function compareByteArrays(a: Uint8Array, b: Uint8Array): number {
  return Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)))
}

function compareFloats(a: number, b: number): number {
  const an = Number.isNaN(a)
  const bn = Number.isNaN(b)
  if (an || bn) return an && bn ? 0 : an ? 1 : -1
  if (a < b) return -1
  if (a > b) return 1
  if (a === 0 && b === 0) return Object.is(a, b) ? 0 : Object.is(a, -0) ? -1 : 1
  return 0
}

/** Typed-value order: the order `structured` encodings must realize. Nulls first. */
export function refCompare(t: DataType, a: Value, b: Value): number {
  switch (t.type) {
    case 'utf8':
      return compareByteArrays(utf8.encode(a as string), utf8.encode(b as string))
    case 'binary':
      return compareByteArrays(a as Uint8Array, b as Uint8Array)
    case 'int64':
    case 'uint64':
      return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0
    case 'float64':
      return compareFloats(a as number, b as number)
    case 'bool':
      return Number(a) - Number(b)
    case 'unit':
      return 0
    case 'struct': {
      for (const f of t.fields) {
        const x = (a as StructValue)[f.name] ?? null
        const y = (b as StructValue)[f.name] ?? null
        if (f.type.type !== 'unit' && (x === null || y === null)) {
          if (x === null && y === null) continue
          return x === null ? -1 : 1
        }
        const c = refCompare(f.type, x, y)
        if (c !== 0) return c
      }
      return 0
    }
  }
}

export function compareTimes(a: Timestamp, b: Timestamp): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0
  const x = a as Product
  const y = b as Product
  return x[0] !== y[0] ? Math.sign(x[0] - y[0]) : Math.sign(x[1] - y[1])
}
