/**
 * Rows as JSON text, written straight from the columns into bytes: for every row exactly the UTF-8
 * of `JSON.stringify` of the row `updatesToJson` gives (`{"key":…,"val":…,"time":…,"diff":…}`),
 * without a row object, a string or a bigint per value on the common paths. For snapshot
 * responses, which stream many rows.
 *
 * Values follow values.ts (`valueToJson`): utf8 as JSON strings (escaped as `JSON.stringify`
 * escapes: `"`, `\` and control characters), binary as base64, int64/uint64 as numbers when safe
 * else decimal strings, floats as numbers or "NaN"/"Infinity"/"-Infinity"/"-0", structs as
 * objects with every field in schema order. Times and diffs as core/timestamp.ts and
 * `diffToJson` write them.
 */
import type * as arrow from 'apache-arrow'
import { bitAt, float64FromWords, onlyData, validityOf, words64 } from './column.js'
import type { DataType } from './data-type.js'
import type { Updates } from './updates.js'

/** A growable byte buffer written from the front. */
export class ByteSink {
  bytes: Uint8Array
  length = 0

  constructor(capacity = 1 << 16) {
    this.bytes = new Uint8Array(capacity)
  }

  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.length + n <= this.bytes.length) return
    let cap = this.bytes.length * 2
    while (cap < this.length + n) cap *= 2
    const next = new Uint8Array(cap)
    next.set(this.bytes.subarray(0, this.length))
    this.bytes = next
  }

  /** Appends ASCII text (every char code below 0x80). */
  ascii(s: string): void {
    this.ensure(s.length)
    const b = this.bytes
    let at = this.length
    for (let i = 0; i < s.length; i++) b[at++] = s.charCodeAt(i)
    this.length = at
  }

  append(src: Uint8Array): void {
    this.ensure(src.byteLength)
    this.bytes.set(src, this.length)
    this.length += src.byteLength
  }

  /**
   * Appends a few bytes (the constant pieces of a row) byte by byte: for a handful of bytes a
   * loop is several times faster than `set`.
   */
  small(src: Uint8Array): void {
    this.ensure(src.length)
    const b = this.bytes
    let at = this.length
    for (let i = 0; i < src.length; i++) b[at++] = src[i]!
    this.length = at
  }

  /** Appends one byte. */
  byte(c: number): void {
    if (this.length === this.bytes.length) this.ensure(1)
    this.bytes[this.length++] = c
  }

  /** The bytes written, copied into a buffer of their own; the sink starts over. */
  take(): Uint8Array {
    const out = this.bytes.slice(0, this.length)
    this.length = 0
    return out
  }
}

type ValueWriter = (sink: ByteSink, row: number) => void

const enc = new TextEncoder()
const HEX = '0123456789abcdef'
const B64 = enc.encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')
const TWO_32 = 4294967296
/** |hi| below this: hi·2^32 + lo is an exact double. */
const EXACT_HI = 1 << 21

/** The two ASCII digits of every number below 100, at `2n` and `2n + 1`. */
const PAIRS = enc.encode(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''))

/** Decimal digits of `n` (an integer in `[10, 2^31)`). */
function digitCount(n: number): number {
  if (n < 1e5) return n < 100 ? 2 : n < 1000 ? 3 : n < 1e4 ? 4 : 5
  return n < 1e6 ? 6 : n < 1e7 ? 7 : n < 1e8 ? 8 : n < 1e9 ? 9 : 10
}

/**
 * Writes `n` (a non-negative integer ≤ 2^53) in decimal. Below 2^31 (times, diffs and most
 * values) with int32 arithmetic, two digits a step; above, with doubles.
 */
function writeDigits(sink: ByteSink, n: number): void {
  sink.ensure(17)
  const b = sink.bytes
  if (n < 10) {
    b[sink.length++] = 48 + n
    return
  }
  if (n < 0x80000000) {
    let at = sink.length + digitCount(n)
    sink.length = at
    let m = n | 0
    while (m >= 100) {
      const q = (m / 100) | 0
      const r = (m - q * 100) << 1
      b[--at] = PAIRS[r + 1]!
      b[--at] = PAIRS[r]!
      m = q
    }
    if (m >= 10) {
      b[--at] = PAIRS[(m << 1) + 1]!
      b[--at] = PAIRS[m << 1]!
    } else b[--at] = 48 + m
    return
  }
  let digits = 1
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++
  let at = sink.length + digits
  sink.length = at
  for (let m = n; m > 0; m = Math.floor(m / 10)) b[--at] = 48 + (m % 10)
}

/** A signed 64-bit integer of words (lo unsigned, hi signed) as a JSON number when safe, else a decimal string. */
function writeI64(sink: ByteSink, lo: number, hi: number): void {
  if (hi >= -EXACT_HI && hi < EXACT_HI) {
    const n = hi * TWO_32 + lo
    if (Number.isSafeInteger(n)) {
      if (n < 0) {
        sink.byte(45)
        writeDigits(sink, -n)
      } else writeDigits(sink, n)
      return
    }
  }
  sink.ascii(`"${((BigInt(hi) << 32n) | BigInt(lo >>> 0)).toString()}"`)
}

/** An unsigned 64-bit integer of words as a JSON number when ≤ 2^53−1, else a decimal string. */
function writeU64(sink: ByteSink, lo: number, hi: number): void {
  if (hi < EXACT_HI) {
    writeDigits(sink, hi * TWO_32 + lo)
    return
  }
  sink.ascii(`"${((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)).toString()}"`)
}

/**
 * The escape of every byte that `JSON.stringify` escapes (`"`, `\` and the control characters),
 * by byte; null for bytes written as they are (every byte of a multi-byte UTF-8 character too).
 */
const ESCAPES: readonly (Uint8Array | null)[] = Array.from({ length: 256 }, (_, c) => {
  if (c >= 0x20 && c !== 0x22 && c !== 0x5c) return null
  const short: Record<number, string> = { 0x22: '\\"', 0x5c: '\\\\', 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r' }
  return enc.encode(short[c] ?? `\\u00${HEX[c >> 4]}${HEX[c & 15]}`)
})

/** `bytes[s, e)` (valid UTF-8) as a JSON string literal, escaped like `JSON.stringify`. */
function writeUtf8String(sink: ByteSink, bytes: Uint8Array, s: number, e: number): void {
  sink.ensure(e - s + 2)
  const b = sink.bytes
  let at = sink.length
  b[at++] = 0x22
  let i = s
  if (e - s > 64) {
    // A long string: scanned up to its first byte to escape, and that clean prefix copied at once.
    while (i < e && ESCAPES[bytes[i]!] === null) i++
    b.set(bytes.subarray(s, i), at)
    at += i - s
  } else {
    // A short one (nearly every key): copied as it is scanned, one pass.
    for (; i < e; i++) {
      const c = bytes[i]!
      if (c < 0x20 || c === 0x22 || c === 0x5c) break
      b[at++] = c
    }
  }
  sink.length = at
  for (; i < e; i++) {
    const c = bytes[i]!
    const escape = ESCAPES[c]
    if (escape === null || escape === undefined) sink.byte(c)
    else sink.small(escape)
  }
  sink.byte(0x22)
}

/** The two base64 characters of every 12-bit number, at `2n` and `2n + 1`. */
const B64_PAIRS = Uint8Array.from({ length: 2 * 4096 }, (_, i) => B64[i & 1 ? (i >> 1) & 63 : i >> 7]!)

/** `bytes[s, e)` as a base64 JSON string (standard alphabet, padded). */
function writeBase64(sink: ByteSink, bytes: Uint8Array, s: number, e: number): void {
  const n = e - s
  sink.ensure(2 + 4 * Math.ceil(n / 3))
  const b = sink.bytes
  let at = sink.length
  b[at++] = 0x22
  let i = s
  // Three bytes at a time, as two 12-bit halves of two characters each.
  for (; i + 3 <= e; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    const h = (v >> 12) << 1
    const l = (v & 4095) << 1
    b[at++] = B64_PAIRS[h]!
    b[at++] = B64_PAIRS[h + 1]!
    b[at++] = B64_PAIRS[l]!
    b[at++] = B64_PAIRS[l + 1]!
  }
  if (i < e) {
    const rest = e - i
    const v = (bytes[i]! << 16) | (rest === 2 ? bytes[i + 1]! << 8 : 0)
    b[at++] = B64[v >> 18]!
    b[at++] = B64[(v >> 12) & 63]!
    b[at++] = rest === 2 ? B64[(v >> 6) & 63]! : 0x3d
    b[at++] = 0x3d
  }
  b[at++] = 0x22
  sink.length = at
}

function writeFloat(sink: ByteSink, x: number): void {
  if (Number.isNaN(x)) sink.ascii('"NaN"')
  else if (x === Infinity) sink.ascii('"Infinity"')
  else if (x === -Infinity) sink.ascii('"-Infinity"')
  else if (Object.is(x, -0)) sink.ascii('"-0"')
  else sink.ascii(String(x))
}

/** A writer of the JSON of row values of column `d` of type `t` (`d` holds no null where `t` forbids one). */
function valueWriter(d: arrow.Data, t: DataType, nullable: boolean): ValueWriter {
  const valid = nullable && t.type !== 'unit' ? validityOf(d) : null
  const inner = plainWriter(d, t)
  if (valid === null) return inner
  const off = d.offset
  return (sink, row) => {
    if (bitAt(valid, off + row)) inner(sink, row)
    else sink.ascii('null')
  }
}

function plainWriter(d: arrow.Data, t: DataType): ValueWriter {
  switch (t.type) {
    case 'utf8':
    case 'binary': {
      const offs = d.valueOffsets as Int32Array
      const bytes = d.values as Uint8Array
      if (t.type === 'utf8') return (sink, row) => writeUtf8String(sink, bytes, offs[row]!, offs[row + 1]!)
      return (sink, row) => writeBase64(sink, bytes, offs[row]!, offs[row + 1]!)
    }
    case 'int64':
    case 'uint64': {
      const w = words64(d)
      if (t.type === 'int64') return (sink, row) => writeI64(sink, w[2 * row]!, w[2 * row + 1]! | 0)
      return (sink, row) => writeU64(sink, w[2 * row]!, w[2 * row + 1]!)
    }
    case 'float64': {
      const w = words64(d)
      return (sink, row) => writeFloat(sink, float64FromWords(w[2 * row]!, w[2 * row + 1]!))
    }
    case 'bool': {
      const bits = d.values as Uint8Array
      const off = d.offset
      return (sink, row) => sink.ascii(bitAt(bits, off + row) ? 'true' : 'false')
    }
    case 'unit':
      return (sink) => sink.ascii('null')
    case 'struct': {
      const fields = t.fields.map((f, i) => ({ name: enc.encode(`${JSON.stringify(f.name)}:`), write: valueWriter(d.children[i]!, f.type, f.nullable) }))
      return (sink, row) => {
        sink.ascii('{')
        for (let i = 0; i < fields.length; i++) {
          const f = fields[i]!
          if (i > 0) sink.ascii(',')
          sink.append(f.name)
          f.write(sink, row)
        }
        sink.ascii('}')
      }
    }
  }
}

const KEY = enc.encode('{"key":')
const VAL = enc.encode(',"val":')
const TIME = enc.encode(',"time":')
const DIFF = enc.encode(',"diff":')

/**
 * Appends the JSON of every row of `u` to `sink`, comma-separated, with a leading comma unless
 * `first` (the rows of a JSON array, written batch by batch).
 */
export function writeJsonRows(sink: ByteSink, u: Updates, first: boolean): void {
  const key = valueWriter(onlyData(u.keys), u.keyType, false)
  const val = valueWriter(onlyData(u.vals), u.valType, false)
  const diffs = new Uint32Array(u.diffs.buffer, u.diffs.byteOffset, 2 * u.length)
  const times = u.timeKind === 'u64' ? new Uint32Array(u.times.buffer, u.times.byteOffset, 2 * u.length) : null
  const a = u.timeKind === 'product' ? u.times.a : null
  const b = u.timeKind === 'product' ? u.times.b : null
  for (let i = 0; i < u.length; i++) {
    if (i > 0 || !first) sink.byte(0x2c)
    sink.small(KEY)
    key(sink, i)
    sink.small(VAL)
    val(sink, i)
    sink.small(TIME)
    if (times !== null) writeU64(sink, times[2 * i]!, times[2 * i + 1]!)
    else {
      sink.byte(0x5b)
      writeDigits(sink, a![i]!)
      sink.byte(0x2c)
      writeDigits(sink, b![i]!)
      sink.byte(0x5d)
    }
    sink.small(DIFF)
    writeI64(sink, diffs[2 * i]!, diffs[2 * i + 1]! | 0)
    sink.byte(0x7d)
  }
}
