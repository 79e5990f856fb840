/**
 * The rows of a JSON array of updates (`[{"key":…,"val":…,"time":…,"diff":…}, …]`), read from
 * UTF-8 bytes that arrive in pieces straight into an `UpdatesBuilder`.
 *
 * A row whose fields are plain (utf8 strings without escapes, integers of at most 15 digits, unit
 * nulls, u64 or `[a, b]` times) is read byte by byte into the columns, with no row object, string
 * or bigint. Any other row (escapes, structs, floats, big numbers as strings, duplicate or missing
 * fields, bad JSON…) is parsed with `JSON.parse` and appended by `appendJsonRow`, so every row
 * means and fails exactly what it means and fails in a parsed body, with the same messages.
 */
import { isUtf8 } from 'node:buffer'
import { Fixed64Builder, VarBinaryBuilder, type ColumnBuilder } from './column-builder.js'
import type { DataType } from './data-type.js'
import { isDelimiter, JsonBodyError, NEED_MORE, parseJsonText, scanValue, skipWs, ValueEnd } from './json-scan.js'
import { appendJsonRow, type UpdatesBuilder } from './updates.js'

/** The row is not plain: read it the general way. */
const SLOW = -2

/** Longest integer read byte by byte (15 digits are always exact in a double). */
const MAX_DIGITS = 15

type FastKind = 'utf8' | 'int64' | 'uint64' | 'unit' | 'slow'

function fastKind(t: DataType, column: ColumnBuilder): FastKind {
  if (t.type === 'utf8' && column instanceof VarBinaryBuilder) return 'utf8'
  if ((t.type === 'int64' || t.type === 'uint64') && column instanceof Fixed64Builder) return t.type
  if (t.type === 'unit') return 'unit'
  return 'slow'
}

const KEY = 1
const VAL = 2
const TIME = 4
const DIFF = 8

export class JsonRowsReader {
  readonly #b: UpdatesBuilder
  readonly #path: string
  readonly #keyKind: FastKind
  readonly #valKind: FastKind
  readonly #product: boolean
  #state: 'open' | 'value' | 'after' | 'closed' = 'open'
  #index = 0
  // The time and diff of the row being read (words), and the last integer read.
  #t0 = 0
  #t1 = 0
  #num = 0
  /**
   * The end of a row that did not fit in the bytes given, looked for as more arrive: the row is
   * read once its end is there, so a row spanning many chunks (a value of many MiB) is read once,
   * not once per chunk.
   */
  readonly #pending = new ValueEnd()
  #waiting = false

  /** `path` names the array in errors (`body.updates`); reading starts just after its `[`. */
  constructor(builder: UpdatesBuilder, path: string) {
    this.#b = builder
    this.#path = path
    this.#keyKind = fastKind(builder.shape.keyType, builder.keyColumn)
    this.#valKind = fastKind(builder.shape.valType, builder.valColumn)
    this.#product = builder.shape.timeKind === 'product'
  }

  /** Rows read so far (the index of the next one). */
  get rows(): number {
    return this.#index
  }

  /** Whether the array's closing `]` has been read. */
  get closed(): boolean {
    return this.#state === 'closed'
  }

  /**
   * Reads rows from `b[p, end)`; returns where it stopped: just after the closing `]`, or at the
   * first byte of something incomplete in the bytes given (call again from there with more).
   * `final`: no more bytes follow. Throws `JsonBodyError`.
   */
  read(b: Uint8Array, p: number, end: number, final: boolean): number {
    for (;;) {
      p = skipWs(b, p, end)
      if (p >= end) {
        if (final) throw new JsonBodyError('malformed', `${this.#path}: not valid JSON (the body ends inside the array)`)
        return p
      }
      const c = b[p]!
      switch (this.#state) {
        case 'closed':
          return p
        case 'after':
          if (c === 0x2c) {
            this.#state = 'value'
            p++
            continue
          }
          if (c === 0x5d) {
            this.#state = 'closed'
            return p + 1
          }
          throw new JsonBodyError('malformed', `${this.#path}: not valid JSON (expected , or ] after element ${this.#index - 1})`)
        case 'open':
          if (c === 0x5d) {
            this.#state = 'closed'
            return p + 1
          }
          break
        case 'value':
          break
      }
      if (this.#waiting && this.#pending.find(b, p, end, final) === NEED_MORE) {
        if (final) throw new JsonBodyError('malformed', `${this.#path}[${this.#index}]: not valid JSON (the body ends inside it)`)
        return p
      }
      const next = this.#row(b, p, end, final)
      if (next === NEED_MORE) {
        if (final) throw new JsonBodyError('malformed', `${this.#path}[${this.#index}]: not valid JSON (the body ends inside it)`)
        // NB: the bytes so far are looked at once more, from here on never again.
        this.#waiting = true
        this.#pending.reset()
        this.#pending.find(b, p, end, false)
        return p
      }
      this.#waiting = false
      this.#index++
      this.#state = 'after'
      p = next
    }
  }

  /** Reads the row at `p`: its end, or NEED_MORE. */
  #row(b: Uint8Array, p: number, end: number, final: boolean): number {
    if (b[p] === 0x7b) {
      const fast = this.#fastRow(b, p + 1, end)
      if (fast >= 0) return fast
      this.#b.abandonRow()
      if (fast === NEED_MORE && !final) return NEED_MORE
    }
    const e = scanValue(b, p, end, final)
    if (e === NEED_MORE) return NEED_MORE
    const at = `${this.#path}[${this.#index}]`
    const error = appendJsonRow(this.#b, parseJsonText(b, p, e, at), at)
    if (error !== null) throw new JsonBodyError('invalid', error)
    return e
  }

  /** A plain row's fields from just after its `{`: its end, NEED_MORE, or SLOW. */
  #fastRow(b: Uint8Array, p: number, end: number): number {
    let seen = 0
    let dLo = 0
    let dHi = 0
    for (;;) {
      p = skipWs(b, p, end)
      if (p >= end) return NEED_MORE
      if (b[p] === 0x7d && seen !== 0) {
        p++
        break
      }
      // A field name: "key", "val", "time" or "diff", unescaped.
      if (b[p] !== 0x22) return SLOW
      if (p + 6 > end) return NEED_MORE
      let field = 0
      let q = p + 1
      const c1 = b[q]!
      if (c1 === 0x6b && b[q + 1] === 0x65 && b[q + 2] === 0x79 && b[q + 3] === 0x22) field = KEY
      else if (c1 === 0x76 && b[q + 1] === 0x61 && b[q + 2] === 0x6c && b[q + 3] === 0x22) field = VAL
      else if (c1 === 0x74 && b[q + 1] === 0x69 && b[q + 2] === 0x6d && b[q + 3] === 0x65 && b[q + 4] === 0x22) field = TIME
      else if (c1 === 0x64 && b[q + 1] === 0x69 && b[q + 2] === 0x66 && b[q + 3] === 0x66 && b[q + 4] === 0x22) field = DIFF
      else return SLOW
      if ((seen & field) !== 0) return SLOW
      seen |= field
      q += field === KEY || field === VAL ? 4 : 5
      q = skipWs(b, q, end)
      if (q >= end) return NEED_MORE
      if (b[q] !== 0x3a) return SLOW
      q = skipWs(b, q + 1, end)
      if (q >= end) return NEED_MORE
      switch (field) {
        case KEY:
          q = this.#value(b, q, end, this.#keyKind, this.#b.keyColumn)
          break
        case VAL:
          q = this.#value(b, q, end, this.#valKind, this.#b.valColumn)
          break
        case TIME:
          q = this.#time(b, q, end)
          break
        default:
          q = this.#int(b, q, end, true)
          if (q >= 0) {
            const n = this.#num
            const hi = Math.floor(n / 4294967296)
            dHi = hi | 0
            dLo = (n - hi * 4294967296) >>> 0
          }
      }
      if (q < 0) return q
      q = skipWs(b, q, end)
      if (q >= end) return NEED_MORE
      if (b[q] === 0x2c) {
        p = q + 1
        continue
      }
      if (b[q] !== 0x7d) return SLOW
      p = q + 1
      break
    }
    // A unit key or value may be left out.
    if ((seen & KEY) === 0 && this.#keyKind === 'unit') {
      this.#b.keyColumn.appendValue(null)
      seen |= KEY
    }
    if ((seen & VAL) === 0 && this.#valKind === 'unit') {
      this.#b.valColumn.appendValue(null)
      seen |= VAL
    }
    if (seen !== (KEY | VAL | TIME | DIFF)) return SLOW
    this.#b.endRow(this.#t0, this.#t1, dLo, dHi)
    return p
  }

  /** A key or value of a plain kind appended to `column`: its end, NEED_MORE or SLOW. */
  #value(b: Uint8Array, p: number, end: number, kind: FastKind, column: ColumnBuilder): number {
    switch (kind) {
      case 'utf8': {
        if (b[p] !== 0x22) return SLOW
        let ascii = true
        let i = p + 1
        for (; i < end; i++) {
          const c = b[i]!
          if (c === 0x22) break
          if (c === 0x5c || c < 0x20) return SLOW
          if (c >= 0x80) ascii = false
        }
        if (i >= end) return NEED_MORE
        // NB: a value's bytes are stored as they came; non-ASCII ones must be well-formed UTF-8.
        if (!ascii && !isUtf8(b.subarray(p + 1, i))) return SLOW
        ;(column as VarBinaryBuilder).appendSpan(b, p + 1, i)
        return i + 1
      }
      case 'int64':
      case 'uint64': {
        const e = this.#int(b, p, end, kind === 'int64')
        if (e < 0) return e
        const n = this.#num
        const hi = Math.floor(n / 4294967296)
        ;(column as Fixed64Builder).appendWords((n - hi * 4294967296) >>> 0, hi >>> 0)
        return e
      }
      case 'unit':
        if (p + 4 > end) return NEED_MORE
        if (b[p] !== 0x6e || b[p + 1] !== 0x75 || b[p + 2] !== 0x6c || b[p + 3] !== 0x6c) return SLOW
        column.appendValue(null)
        return p + 4
      case 'slow':
        return SLOW
    }
  }

  /** A u64 time (an integer) or a product time (`[a, b]`) into `#t0`, `#t1`: its end, NEED_MORE or SLOW. */
  #time(b: Uint8Array, p: number, end: number): number {
    if (!this.#product) {
      const e = this.#int(b, p, end, false)
      if (e < 0) return e
      const hi = Math.floor(this.#num / 4294967296)
      this.#t0 = hi
      this.#t1 = this.#num - hi * 4294967296
      return e
    }
    if (b[p] !== 0x5b) return SLOW
    let q = skipWs(b, p + 1, end)
    q = this.#int(b, q, end, false)
    if (q < 0) return q
    const a = this.#num
    q = skipWs(b, q, end)
    if (q >= end) return NEED_MORE
    if (b[q] !== 0x2c) return SLOW
    q = this.#int(b, skipWs(b, q + 1, end), end, false)
    if (q < 0) return q
    q = skipWs(b, q, end)
    if (q >= end) return NEED_MORE
    if (b[q] !== 0x5d || a > 0xffff_ffff || this.#num > 0xffff_ffff) return SLOW
    this.#t0 = a
    this.#t1 = this.#num
    return q + 1
  }

  /**
   * An integer token at `p` (optionally signed), at most MAX_DIGITS digits, followed by a
   * delimiter, into `#num`: its end, NEED_MORE or SLOW (anything else: fractions, exponents,
   * leading zeros, long numbers, strings).
   */
  #int(b: Uint8Array, p: number, end: number, signed: boolean): number {
    if (p >= end) return NEED_MORE
    let i = p
    const neg = b[i] === 0x2d
    if (neg) {
      if (!signed) return SLOW
      i++
      if (i >= end) return NEED_MORE
    }
    const first = b[i]! - 48
    if (first < 0 || first > 9) return SLOW
    let n = first
    const start = i
    i++
    if (first !== 0) {
      for (; i < end; i++) {
        const d = b[i]! - 48
        if (d < 0 || d > 9) break
        n = n * 10 + d
      }
      if (i - start > MAX_DIGITS) return SLOW
    }
    if (i >= end) return NEED_MORE
    if (!isDelimiter(b[i]!)) return SLOW
    this.#num = neg ? -n : n
    return i
  }
}
