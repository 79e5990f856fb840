/**
 * Timestamps of the two kinds a shard may use, and the lattice operations over them.
 *
 * - `u64`: totally ordered unsigned 64-bit integers held as `bigint` (never a JS number, so no
 *   value above 2^53 is rounded).
 * - `product`: pairs of u32 with the product partial order; `(a1,b1) ≤ (a2,b2)` iff both
 *   components are ≤. `compare` is the lexicographic total order, used only for sorting.
 */

export const TIMESTAMP_KINDS = ['u64', 'product'] as const
export type TimestampKindName = (typeof TIMESTAMP_KINDS)[number]

export type U64 = bigint
export type Product = readonly [number, number]
export type Timestamp = U64 | Product

export const U64_MAX = (1n << 64n) - 1n
export const U32_MAX = 0xffff_ffff

/** JSON encoding of a timestamp: a number when safe, a decimal string above 2^53−1, `[a, b]` for products. */
export type TimestampJson = number | string | [number, number]

/** Lattice operations over one kind of timestamp. Values of the other kind are a programming error. */
export interface TimestampKind {
  readonly name: TimestampKindName
  /** The least element. */
  readonly minimum: Timestamp
  /** The partial order of the lattice. */
  lessEqual(a: Timestamp, b: Timestamp): boolean
  /** Least upper bound. */
  join(a: Timestamp, b: Timestamp): Timestamp
  /** Greatest lower bound. */
  meet(a: Timestamp, b: Timestamp): Timestamp
  /** A total order consistent with `lessEqual`, for sorting only (lexicographic for products). */
  compare(a: Timestamp, b: Timestamp): number
  equals(a: Timestamp, b: Timestamp): boolean
  /** Whether `lessEqual` is a total order (it is for u64). */
  readonly totallyOrdered: boolean
  toJson(t: Timestamp): TimestampJson
  /** Parses a JSON timestamp; returns an error sentence instead of throwing. */
  parse(json: unknown): { ok: true; value: Timestamp } | { ok: false; error: string }
  /** A short printable form: `5`, `(1,2)`. */
  format(t: Timestamp): string
}

function asU64(t: Timestamp): bigint {
  if (typeof t !== 'bigint') throw new TypeError('expected a u64 timestamp')
  return t
}

function asProduct(t: Timestamp): Product {
  if (typeof t === 'bigint') throw new TypeError('expected a product timestamp')
  return t
}

const DECIMAL = /^(0|[1-9][0-9]*)$/

export const u64: TimestampKind = {
  name: 'u64',
  minimum: 0n,
  totallyOrdered: true,
  lessEqual: (a, b) => asU64(a) <= asU64(b),
  join: (a, b) => (asU64(a) >= asU64(b) ? a : b),
  meet: (a, b) => (asU64(a) <= asU64(b) ? a : b),
  compare: (a, b) => (asU64(a) < asU64(b) ? -1 : asU64(a) > asU64(b) ? 1 : 0),
  equals: (a, b) => asU64(a) === asU64(b),
  toJson: (t) => {
    const v = asU64(t)
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()
  },
  parse: (json) => {
    if (typeof json === 'number') {
      if (!Number.isSafeInteger(json) || json < 0) {
        return { ok: false, error: 'a u64 timestamp must be a non-negative integer (use a decimal string above 2^53-1)' }
      }
      return { ok: true, value: BigInt(json) }
    }
    if (typeof json === 'string') {
      if (!DECIMAL.test(json)) return { ok: false, error: 'a u64 timestamp string must be a decimal integer' }
      const v = BigInt(json)
      if (v > U64_MAX) return { ok: false, error: 'a u64 timestamp must be at most 2^64-1' }
      return { ok: true, value: v }
    }
    return { ok: false, error: 'a u64 timestamp must be a number or a decimal string' }
  },
  format: (t) => asU64(t).toString(),
}

export const product: TimestampKind = {
  name: 'product',
  minimum: [0, 0] as Product,
  totallyOrdered: false,
  lessEqual: (a, b) => {
    const x = asProduct(a)
    const y = asProduct(b)
    return x[0] <= y[0] && x[1] <= y[1]
  },
  join: (a, b) => {
    const x = asProduct(a)
    const y = asProduct(b)
    return [Math.max(x[0], y[0]), Math.max(x[1], y[1])] as Product
  },
  meet: (a, b) => {
    const x = asProduct(a)
    const y = asProduct(b)
    return [Math.min(x[0], y[0]), Math.min(x[1], y[1])] as Product
  },
  compare: (a, b) => {
    const x = asProduct(a)
    const y = asProduct(b)
    return x[0] !== y[0] ? x[0] - y[0] : x[1] - y[1]
  },
  equals: (a, b) => {
    const x = asProduct(a)
    const y = asProduct(b)
    return x[0] === y[0] && x[1] === y[1]
  },
  toJson: (t) => {
    const x = asProduct(t)
    return [x[0], x[1]]
  },
  parse: (json) => {
    if (!Array.isArray(json) || json.length !== 2) {
      return { ok: false, error: 'a product timestamp must be a pair [a, b]' }
    }
    const [a, b] = json as unknown[]
    const isU32 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= U32_MAX
    if (!isU32(a) || !isU32(b)) return { ok: false, error: 'product timestamp components must be integers in [0, 2^32-1]' }
    return { ok: true, value: [a, b] as Product }
  },
  format: (t) => {
    const x = asProduct(t)
    return `(${x[0]},${x[1]})`
  },
}

export function timestampKind(name: TimestampKindName): TimestampKind {
  return name === 'u64' ? u64 : product
}
