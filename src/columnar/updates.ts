/**
 * `Updates`: an in-memory columnar batch of `(key, val, time, diff)` rows of one shard.
 *
 * - `keys`, `vals`: single-chunk Arrow vectors of the shard's key/val types (never null at top level);
 * - `times`: `BigUint64Array` for `u64`; two `Uint32Array`s `{a, b}` for `product`;
 * - `diffs`: `BigInt64Array` (signed, summed with wrapping i64 addition).
 *
 * Hot paths never touch `bigint`: times and diffs are read as u32 word pairs (`timeOrderWords`,
 * `diffWords`) and written through `UpdatesBuilder.appendFrom` as words. A time's order words are
 * `(major, minor)`: `(hi, lo)` for u64, `(a, b)` for product, so both kinds compare the same way.
 */
import * as arrow from 'apache-arrow'
import { diffToJson, parseDiff } from '../core/batch.js'
import { timestampKind, type Product, type Timestamp, type TimestampJson, type TimestampKindName } from '../core/timestamp.js'
import { makeColumnBuilder, NOT_COPIED, type ColumnBuilder, type ColumnCopier } from './column-builder.js'
import { onlyData, valueAt } from './column.js'
import { dataTypeEquals, formatDataType, type DataType } from './data-type.js'
import { err, ok, type Result } from './result.js'
import { parseValue, valueToJson, type JsonValue, type Value } from './values.js'

export interface ProductTimes {
  readonly a: Uint32Array
  readonly b: Uint32Array
}

interface UpdatesCommon {
  readonly length: number
  readonly keyType: DataType
  readonly valType: DataType
  readonly keys: arrow.Vector
  readonly vals: arrow.Vector
  readonly diffs: BigInt64Array
}

export interface U64Updates extends UpdatesCommon {
  readonly timeKind: 'u64'
  readonly times: BigUint64Array
}

export interface ProductUpdates extends UpdatesCommon {
  readonly timeKind: 'product'
  readonly times: ProductTimes
}

export type Updates = U64Updates | ProductUpdates

/** What every batch of one shard (at one schema) shares. */
export interface UpdatesShape {
  readonly keyType: DataType
  readonly valType: DataType
  readonly timeKind: TimestampKindName
}

export function shapeOf(u: Updates): UpdatesShape {
  return { keyType: u.keyType, valType: u.valType, timeKind: u.timeKind }
}

export function sameShape(a: UpdatesShape, b: UpdatesShape): boolean {
  return a.timeKind === b.timeKind && dataTypeEquals(a.keyType, b.keyType) && dataTypeEquals(a.valType, b.valType)
}

export function formatShape(s: UpdatesShape): string {
  return `key ${formatDataType(s.keyType)}, val ${formatDataType(s.valType)}, time ${s.timeKind}`
}

/** The diffs as little-endian u32 word pairs: row i is `(w[2i], w[2i+1])` = (lo, hi). A view, no copy. */
export function diffWords(u: Updates): Uint32Array {
  return new Uint32Array(u.diffs.buffer, u.diffs.byteOffset, u.length * 2)
}

/** Times as order words `(major, minor)`: zero-copy for product, a de-interleaved copy for u64. */
export function timeOrderWords(u: Updates): { readonly major: Uint32Array; readonly minor: Uint32Array } {
  if (u.timeKind === 'product') return { major: u.times.a, minor: u.times.b }
  const w = new Uint32Array(u.times.buffer, u.times.byteOffset, u.length * 2)
  const major = new Uint32Array(u.length)
  const minor = new Uint32Array(u.length)
  for (let i = 0; i < u.length; i++) {
    minor[i] = w[2 * i]!
    major[i] = w[2 * i + 1]!
  }
  return { major, minor }
}

/** The time of row i as a core `Timestamp` (allocates; not for bulk paths). */
export function timeAt(u: Updates, i: number): Timestamp {
  return u.timeKind === 'u64' ? u.times[i]! : ([u.times.a[i]!, u.times.b[i]!] as Product)
}

/** Wrapping i64 accumulator over word pairs; no allocation per add. */
export class I64Sum {
  /** Low word, as an unsigned 32-bit number. */
  lo = 0
  /** High word, as a signed 32-bit number. */
  hi = 0

  reset(lo = 0, hi = 0): void {
    this.lo = lo >>> 0
    this.hi = hi | 0
  }

  add(lo: number, hi: number): void {
    const s = this.lo + (lo >>> 0)
    const carry = s > 0xffffffff ? 1 : 0
    this.lo = s >>> 0
    this.hi = (this.hi + (hi | 0) + carry) | 0
  }

  isZero(): boolean {
    return this.lo === 0 && this.hi === 0
  }

  toBigInt(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo)
  }
}

/** Wrapping i64 sum of every diff. */
export function sumDiffs(u: Updates): bigint {
  const w = diffWords(u)
  let total = 0n
  // Plain number sums are exact for up to 2^20 words of 32 bits each (below 2^53); one bigint
  // step per block then wraps them into the i64 total.
  for (let start = 0; start < u.length; start += 1 << 20) {
    const end = Math.min(u.length, start + (1 << 20))
    let lo = 0
    let hi = 0
    for (let i = start; i < end; i++) {
      lo += w[2 * i]!
      hi += w[2 * i + 1]! | 0
    }
    total = BigInt.asIntN(64, total + (BigInt(hi) << 32n) + BigInt(lo))
  }
  return total
}

/** Rows to gather (see `UpdatesBuilder.appendGathered`); a merge's output has this shape. */
export interface GatherRows {
  readonly rows: number
  readonly src: Uint32Array
  readonly row: Uint32Array
  readonly time0: Uint32Array
  readonly time1: Uint32Array
  readonly diffLo: Uint32Array
  readonly diffHi: Int32Array
}

/** A source `Updates` prepared for copying rows into one builder (bind once per source, not per row). */
export interface BoundSource {
  readonly updates: Updates
  readonly keys: ColumnCopier
  readonly vals: ColumnCopier
  /** Order words of the source's times (see `timeOrderWords`). */
  readonly major: Uint32Array
  readonly minor: Uint32Array
  readonly diffs: Uint32Array
}

function grown(arr: Uint32Array, min: number): Uint32Array {
  let cap = Math.max(16, arr.length * 2)
  while (cap < min) cap *= 2
  const next = new Uint32Array(cap)
  next.set(arr)
  return next
}

export interface UpdatesBuilderOptions {
  /** Rows to allocate for up front. */
  readonly capacity?: number
  /**
   * Keep buffers across `finish()` calls. NB: the next append then overwrites the memory of the
   * `Updates` returned by the previous `finish()`; use it only when that batch is fully consumed
   * (e.g. encoded) before appending again.
   */
  readonly reuseBuffers?: boolean
}

/**
 * Appends rows into columnar buffers: from JS values (`append`, for writes) or by copying rows of a
 * source `Updates` of the same shape (`appendFrom`/`appendRange`, for compaction output).
 */
export class UpdatesBuilder {
  readonly shape: UpdatesShape
  readonly #keys: ColumnBuilder
  readonly #vals: ColumnBuilder
  readonly #reuse: boolean
  /** u64: interleaved (lo, hi) words; product: `a` components. */
  #t0: Uint32Array
  /** product: `b` components; unused for u64. */
  #t1: Uint32Array
  #diffs: Uint32Array
  #length = 0
  /** `appendPermuted`'s map from source rows to their places (kept: it is as long as a source). */
  #dest = new Uint32Array(0)

  constructor(shape: UpdatesShape, opts: UpdatesBuilderOptions = {}) {
    this.shape = { keyType: shape.keyType, valType: shape.valType, timeKind: shape.timeKind }
    const cap = opts.capacity ?? 0
    this.#reuse = opts.reuseBuffers ?? false
    this.#keys = makeColumnBuilder(shape.keyType, false, cap)
    this.#vals = makeColumnBuilder(shape.valType, false, cap)
    this.#t0 = new Uint32Array(shape.timeKind === 'u64' ? 2 * cap : cap)
    this.#t1 = new Uint32Array(shape.timeKind === 'u64' ? 0 : cap)
    this.#diffs = new Uint32Array(2 * cap)
  }

  get length(): number {
    return this.#length
  }

  /** Bytes of column buffers in use: about what the rows add to an encoded part. */
  byteLength(): number {
    return this.#keys.byteLength() + this.#vals.byteLength() + this.#length * 16
  }

  #ensure(n: number): void {
    if (this.shape.timeKind === 'u64') {
      if (2 * n > this.#t0.length) this.#t0 = grown(this.#t0, 2 * n)
    } else if (n > this.#t0.length) {
      this.#t0 = grown(this.#t0, n)
      this.#t1 = grown(this.#t1, n)
    }
    if (2 * n > this.#diffs.length) this.#diffs = grown(this.#diffs, 2 * n)
  }

  #pushTimeDiff(major: number, minor: number, dLo: number, dHi: number): void {
    const n = this.#length
    this.#ensure(n + 1)
    if (this.shape.timeKind === 'u64') {
      this.#t0[2 * n] = minor
      this.#t0[2 * n + 1] = major
    } else {
      this.#t0[n] = major
      this.#t1[n] = minor
    }
    this.#diffs[2 * n] = dLo
    this.#diffs[2 * n + 1] = dHi
    this.#length = n + 1
  }

  /**
   * Appends one row of JS values (already validated against the shape; see `parseValue`).
   * `time` must be of the shape's kind.
   */
  append(key: Value, val: Value, time: Timestamp, diff: bigint): void {
    let major: number
    let minor: number
    if (this.shape.timeKind === 'u64') {
      if (typeof time !== 'bigint') throw new TypeError('expected a u64 timestamp')
      major = Number((time >> 32n) & 0xffffffffn)
      minor = Number(time & 0xffffffffn)
    } else {
      if (typeof time === 'bigint') throw new TypeError('expected a product timestamp')
      major = time[0]
      minor = time[1]
    }
    this.#keys.appendValue(key)
    this.#vals.appendValue(val)
    this.#pushTimeDiff(major, minor, Number(diff & 0xffffffffn), Number((diff >> 32n) & 0xffffffffn))
  }

  /** The key column's builder, for decoders that append values straight into it (then `endRow`). */
  get keyColumn(): ColumnBuilder {
    return this.#keys
  }

  /** The value column's builder (see `keyColumn`). */
  get valColumn(): ColumnBuilder {
    return this.#vals
  }

  /**
   * Ends a row whose key and value were appended to `keyColumn` and `valColumn`: its time (order
   * words) and diff (lo, hi words).
   */
  endRow(major: number, minor: number, diffLo: number, diffHi: number): void {
    this.#pushTimeDiff(major, minor, diffLo, diffHi)
  }

  /** Drops what was appended to `keyColumn` and `valColumn` since the last complete row. */
  abandonRow(): void {
    this.#keys.truncate(this.#length)
    this.#vals.truncate(this.#length)
  }

  /** Prepares `src` for copying. Throws if its shape differs (migrate it first). */
  bind(src: Updates): BoundSource {
    if (!sameShape(src, this.shape)) {
      throw new TypeError(`cannot copy rows of (${formatShape(src)}) into a builder of (${formatShape(this.shape)})`)
    }
    // NB: the order words of u64 times are a copy; only `appendRow` reads them, so they are
    // made on first use.
    let words: { readonly major: Uint32Array; readonly minor: Uint32Array } | null = null
    return {
      updates: src,
      keys: this.#keys.copierFor(onlyData(src.keys)),
      vals: this.#vals.copierFor(onlyData(src.vals)),
      get major() {
        return (words ??= timeOrderWords(src)).major
      },
      get minor() {
        return (words ??= timeOrderWords(src)).minor
      },
      diffs: diffWords(src),
    }
  }

  /** Appends source row `row`'s key and val with the given time (order words) and diff (lo, hi words). */
  appendFrom(src: BoundSource, row: number, major: number, minor: number, diffLo: number, diffHi: number): void {
    src.keys.copy(row)
    src.vals.copy(row)
    this.#pushTimeDiff(major, minor, diffLo, diffHi)
  }

  /**
   * Appends `rows.rows` rows gathered from bound sources, column by column: row i is the key of
   * row `rows.row[i] + bases[rows.src[i]]` of the source whose key copier is `keys[rows.src[i]]`
   * (likewise the value), with time order words (`time0[i]`, `time1[i]`) and diff words
   * (`diffLo[i]`, `diffHi[i]`). The same rows as `appendFrom` one at a time, at a fraction of the
   * cost per row (the merge's output path).
   */
  appendGathered(keys: readonly (ColumnCopier | undefined)[], vals: readonly (ColumnCopier | undefined)[], bases: ArrayLike<number>, rows: GatherRows): void {
    const n = rows.rows
    const k = this.#length
    this.#keys.gather(keys, bases, rows.src, rows.row, n)
    this.#vals.gather(vals, bases, rows.src, rows.row, n)
    this.#pushGatheredTimes(k, rows)
  }

  /** The times and diffs of `rows`, appended at row `k` (whose keys and vals are in). */
  #pushGatheredTimes(k: number, rows: GatherRows): void {
    const n = rows.rows
    this.#ensure(k + n)
    const major = rows.time0
    const minor = rows.time1
    const lo = rows.diffLo
    const hi = rows.diffHi
    const t0 = this.#t0
    const d = this.#diffs
    if (this.shape.timeKind === 'u64') {
      for (let i = 0; i < n; i++) {
        t0[2 * (k + i)] = minor[i]!
        t0[2 * (k + i) + 1] = major[i]!
      }
    } else {
      t0.set(major.subarray(0, n), k)
      this.#t1.set(minor.subarray(0, n), k)
    }
    for (let i = 0; i < n; i++) {
      d[2 * (k + i)] = lo[i]!
      d[2 * (k + i) + 1] = hi[i]!
    }
    this.#length = k + n
  }

  /**
   * `appendGathered` from one source whose rows are each taken at most once (a sort's output):
   * each column is copied reading the source in order where it can (`ColumnBuilder.scatter`), not
   * row by row in the new order. Throws if a row is taken twice.
   */
  appendPermuted(keys: ColumnCopier, vals: ColumnCopier, rows: GatherRows): void {
    const n = rows.rows
    if (n === 0) return
    const row = rows.row
    let lo = row[0]!
    let hi = lo
    for (let j = 1; j < n; j++) {
      const r = row[j]!
      if (r < lo) lo = r
      else if (r > hi) hi = r
    }
    hi++
    if (this.#dest.length < hi - lo) this.#dest = new Uint32Array(Math.ceil((hi - lo) * 1.125))
    const dest = this.#dest
    dest.fill(NOT_COPIED, 0, hi - lo)
    for (let j = 0; j < n; j++) {
      const at = row[j]! - lo
      if (dest[at] !== NOT_COPIED) throw new RangeError(`row ${row[j]} is taken twice`)
      dest[at] = j
    }
    const k = this.#length
    // NB: every row is of source 0, for the columns that gather.
    let sources: Uint32Array | null = null
    if (!this.#keys.scatter(keys, row, n, dest, lo, hi)) this.#keys.gather([keys], [0], (sources ??= new Uint32Array(n)), row, n)
    if (!this.#vals.scatter(vals, row, n, dest, lo, hi)) this.#vals.gather([vals], [0], (sources ??= new Uint32Array(n)), row, n)
    this.#pushGatheredTimes(k, rows)
  }

  /** Appends source row `row` as it is (time and diff included). */
  appendRow(src: BoundSource, row: number): void {
    this.appendFrom(src, row, src.major[row]!, src.minor[row]!, src.diffs[2 * row]!, src.diffs[2 * row + 1]!)
  }

  /** Appends source rows `[start, end)` as they are, buffer stretches at a time. */
  appendRange(src: BoundSource, start: number, end: number): void {
    if (end <= start) return
    const n = this.#length
    const count = end - start
    src.keys.copyRange(start, end)
    src.vals.copyRange(start, end)
    this.#ensure(n + count)
    if (this.shape.timeKind === 'u64') {
      const u = src.updates as U64Updates
      this.#t0.set(new Uint32Array(u.times.buffer, u.times.byteOffset + start * 8, count * 2), 2 * n)
    } else {
      this.#t0.set(src.major.subarray(start, end), n)
      this.#t1.set(src.minor.subarray(start, end), n)
    }
    this.#diffs.set(src.diffs.subarray(2 * start, 2 * end), 2 * n)
    this.#length = n + count
  }

  /** Drops rows beyond `length` (e.g. a row whose diffs turned out to sum to zero). */
  truncate(length: number): void {
    if (length >= this.#length) return
    this.#keys.truncate(length)
    this.#vals.truncate(length)
    this.#length = length
  }

  /** The rows appended since the last `finish()`; the builder starts over empty. */
  finish(): Updates {
    const n = this.#length
    const keys = new arrow.Vector([this.#keys.finish(this.#reuse)])
    const vals = new arrow.Vector([this.#vals.finish(this.#reuse)])
    const diffs = new BigInt64Array(this.#diffs.buffer, 0, n)
    let out: Updates
    if (this.shape.timeKind === 'u64') {
      const times = new BigUint64Array(this.#t0.buffer, 0, n)
      out = { length: n, keyType: this.shape.keyType, valType: this.shape.valType, timeKind: 'u64', keys, vals, times, diffs }
    } else {
      const times = { a: this.#t0.subarray(0, n), b: this.#t1.subarray(0, n) }
      out = { length: n, keyType: this.shape.keyType, valType: this.shape.valType, timeKind: 'product', keys, vals, times, diffs }
    }
    if (!this.#reuse) {
      this.#t0 = new Uint32Array(0)
      this.#t1 = new Uint32Array(0)
      this.#diffs = new Uint32Array(0)
    }
    this.#length = 0
    return out
  }
}

export function emptyUpdates(shape: UpdatesShape): Updates {
  return new UpdatesBuilder(shape).finish()
}

/** Rows `[start, end)` of `u`, sharing its buffers (no copy). */
export function sliceUpdates(u: Updates, start: number, end: number): Updates {
  const s = Math.max(0, Math.min(start, u.length))
  const e = Math.max(s, Math.min(end, u.length))
  const n = e - s
  const keys = new arrow.Vector([onlyData(u.keys).slice(s, n)])
  const vals = new arrow.Vector([onlyData(u.vals).slice(s, n)])
  const diffs = u.diffs.subarray(s, e)
  if (u.timeKind === 'u64') return { ...u, length: n, keys, vals, times: u.times.subarray(s, e), diffs }
  return { ...u, length: n, keys, vals, times: { a: u.times.a.subarray(s, e), b: u.times.b.subarray(s, e) }, diffs }
}

/** `u` with its times replaced (e.g. advanced to a since or an as-of); shares every other column. */
export function withTimes(u: Updates, times: BigUint64Array | ProductTimes): Updates {
  if (u.timeKind === 'u64') {
    if (!(times instanceof BigUint64Array) || times.length !== u.length) throw new TypeError('expected u64 times of the same length')
    return { ...u, times }
  }
  if (times instanceof BigUint64Array || times.a.length !== u.length || times.b.length !== u.length) {
    throw new TypeError('expected product times of the same length')
  }
  return { ...u, times }
}

/** Approximate bytes of `u`'s column buffers (keys, vals, 16 bytes of time and diff per row). */
export function updatesByteLength(u: Updates): number {
  return onlyData(u.keys).byteLength + onlyData(u.vals).byteLength + u.length * 16
}

// ---- JSON ------------------------------------------------------------------------------------

export interface UpdateJson {
  key: JsonValue
  val: JsonValue
  time: TimestampJson
  diff: number | string
}

/** Rows as JSON (`{key, val, time, diff}`), times per core/timestamp.ts, diffs per `diffToJson`. */
export function updatesToJson(u: Updates): UpdateJson[] {
  const tk = timestampKind(u.timeKind)
  const keys = onlyData(u.keys)
  const vals = onlyData(u.vals)
  const out: UpdateJson[] = new Array(u.length)
  for (let i = 0; i < u.length; i++) {
    out[i] = {
      key: valueToJson(u.keyType, valueAt(keys, u.keyType, i)),
      val: valueToJson(u.valType, valueAt(vals, u.valType, i)),
      time: tk.toJson(timeAt(u, i)),
      diff: diffToJson(u.diffs[i]!),
    }
  }
  return out
}

/**
 * Parses JSON rows `[{key, val, time, diff}]` against a shape. Errors name the first bad row and
 * field (`updates[3].val.price: expected int64 …`). Times are checked for kind only, not against
 * any description.
 */
export function updatesFromJson(rows: unknown, shape: UpdatesShape, path = 'updates'): Result<Updates> {
  if (!Array.isArray(rows)) return err(`${path}: must be an array of {key, val, time, diff}`)
  const b = new UpdatesBuilder(shape, { capacity: rows.length })
  for (let i = 0; i < rows.length; i++) {
    const error = appendJsonRow(b, rows[i], `${path}[${i}]`)
    if (error !== null) return err(error)
  }
  return ok(b.finish())
}

/**
 * Appends one JSON row `{key, val, time, diff}` (a parsed JSON value) to `b`, or returns the error
 * naming the row's first bad field (`at` names the row, e.g. `updates[3]`); nothing is appended then.
 */
export function appendJsonRow(b: UpdatesBuilder, r: unknown, at: string): string | null {
  const shape = b.shape
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return `${at}: must be an object {key, val, time, diff}`
  const o = r as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (k !== 'key' && k !== 'val' && k !== 'time' && k !== 'diff') return `${at}.${k}: unknown property`
  }
  const key = parseField(shape.keyType, o, 'key', at)
  if (!key.ok) return key.error
  const val = parseField(shape.valType, o, 'val', at)
  if (!val.ok) return val.error
  if (!Object.hasOwn(o, 'time')) return `${at}.time: missing`
  if (!Object.hasOwn(o, 'diff')) return `${at}.diff: missing`
  const time = timestampKind(shape.timeKind).parse(o.time)
  if (!time.ok) return `${at}.time: ${time.error}`
  const diff = parseDiff(o.diff)
  if (!diff.ok) return `${at}.diff: ${diff.error}`
  b.append(key.value, val.value, time.value, diff.value)
  return null
}

function parseField(t: DataType, row: Record<string, unknown>, name: 'key' | 'val', at: string): Result<Value> {
  if (!Object.hasOwn(row, name)) return t.type === 'unit' ? ok(null) : err(`${at}.${name}: missing`)
  return parseValue(t, row[name], `${at}.${name}`)
}
