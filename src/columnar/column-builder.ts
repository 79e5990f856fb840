/**
 * Growable builders of one Arrow column of a schema type, filled either from JS values (writes) or
 * by copying rows of a source column of the same type (compaction output), bytes and words at a
 * time, with no per-row objects.
 *
 * Contracts:
 * - a builder's type is fixed; `copierFor(data)` expects `data` of the same schema type (callers
 *   check `dataTypeEquals` once per source, not per row);
 * - `finish(reuse)` returns a `Data` viewing the builder's buffers. With `reuse = false` the builder
 *   lets go of them; with `reuse = true` it keeps them and starts over at length 0.
 *   NB: with reuse, the next append overwrites the memory of every `Data` finished before;
 * - a null struct row holds placeholders in its children (empty, zero, or null when nullable), so
 *   copying a null row never copies the bytes under it.
 */
import * as arrow from 'apache-arrow'
import { bitAt, float64ToWords, validityOf, words64 } from './column.js'
import { toArrowType, type DataType } from './data-type.js'
import type { StructValue, Value } from './values.js'

export interface ColumnCopier {
  /** Appends source row `row`. */
  copy(row: number): void
  /** Appends source rows `[start, end)`. */
  copyRange(start: number, end: number): void
  /** A binary or string column without nulls, as its raw buffers (for `gather`); null otherwise. */
  readonly raw: RawBinary | null
}

/** The buffers of a variable-length column without nulls. */
export interface RawBinary {
  readonly offsets: Int32Array
  readonly bytes: Uint8Array
  /**
   * When every value has the same length (fixed-width keys), that length: value i starts at
   * `offsets[0] + i * width`. Else -1. `WIDTH_UNMEASURED` until the first `gather` from it measures
   * it (a range copy never needs it, and measuring is a pass over every row of the source).
   */
  width: number
  /** Values in the column (what `width` is measured over). */
  readonly length: number
  /** A u32 view of `bytes`' buffer, and the byte of it where `bytes` starts (see `wordView`). */
  readonly words: Uint32Array
  readonly wordShift: number
}

function grown<T extends Uint8Array | Int32Array | Uint32Array>(arr: T, min: number): T {
  let cap = Math.max(16, arr.length * 2)
  while (cap < min) cap *= 2
  const next = new (arr.constructor as new (n: number) => T)(cap)
  next.set(arr)
  return next
}

/** `RawBinary.width` before anything measured it. */
export const WIDTH_UNMEASURED = -2

/** The common length of values `[0, length)` of `offsets`, or -1 when they differ. */
function uniformWidth(offsets: Int32Array, length: number): number {
  if (length === 0) return -1
  const w = offsets[1]! - offsets[0]!
  for (let i = 1; i < length; i++) if (offsets[i + 1]! - offsets[i]! !== w) return -1
  return w
}

/** Validity bits of a nullable builder; every append writes its bit explicitly (buffers may be reused). */
class Validity {
  bits = new Uint8Array(0)
  nulls = 0

  push(row: number, valid: boolean): void {
    const byte = row >> 3
    if (byte >= this.bits.length) this.bits = grown(this.bits, byte + 1)
    if (valid) this.bits[byte]! |= 1 << (row & 7)
    else {
      this.bits[byte]! &= ~(1 << (row & 7))
      this.nulls++
    }
  }

  pushRun(start: number, n: number): void {
    for (let i = 0; i < n; i++) this.push(start + i, true)
  }

  truncate(from: number, to: number): void {
    for (let i = to; i < from; i++) if (!bitAt(this.bits, i)) this.nulls--
  }

  /** The bitmap and null count for a column of `length` rows; detaches unless `reuse`. */
  finish(length: number, reuse: boolean): { nullBitmap: Uint8Array; nullCount: number } {
    const out = { nullBitmap: this.nulls > 0 ? this.bits.subarray(0, (length + 7) >> 3) : new Uint8Array(0), nullCount: this.nulls }
    if (!reuse && this.nulls > 0) this.bits = new Uint8Array(0)
    this.nulls = 0
    return out
  }
}

export abstract class ColumnBuilder {
  length = 0
  readonly arrowType: arrow.DataType
  protected readonly validity: Validity | null

  constructor(
    readonly type: DataType,
    readonly nullable: boolean,
  ) {
    this.arrowType = toArrowType(type)
    this.validity = nullable && type.type !== 'unit' ? new Validity() : null
  }

  /** Appends a value; null only where the column is nullable (or unit). */
  abstract appendValue(v: Value): void
  /** Appends the slot under a null parent: null when nullable, else a zero value. */
  abstract appendPlaceholder(): void
  abstract copierFor(data: arrow.Data): ColumnCopier
  /** Drops rows beyond `length`. */
  abstract truncate(length: number): void
  /** Bytes of buffers in use (what the column adds to an encoded part, before padding). */
  abstract byteLength(): number
  abstract finish(reuse: boolean): arrow.Data

  /**
   * Appends `n` rows gathered from several sources: row i is row `row[i] + bases[src[i]]` of
   * `copiers[src[i]]` (copiers this builder made). One call per batch of rows instead of one per
   * row; variable-length columns override it with a loop over raw buffers.
   */
  gather(copiers: readonly (ColumnCopier | undefined)[], bases: ArrayLike<number>, src: Uint32Array, row: Uint32Array, n: number): void {
    for (let i = 0; i < n; i++) {
      const s = src[i]!
      copiers[s]!.copy(row[i]! + bases[s]!)
    }
  }

  /**
   * Appends rows `rows[0 .. n)` of one source, like `gather` from it, when it can do so reading the
   * source in order instead: `dest[i - lo]` is where source row i goes among the n (`NOT_COPIED`
   * for rows not copied; rows in `[lo, hi)`). False when it cannot (the caller gathers instead).
   */
  scatter(_copier: ColumnCopier, _rows: Uint32Array, _n: number, _dest: Uint32Array, _lo: number, _hi: number): boolean {
    return false
  }

  appendNull(): void {
    if (this.validity === null) {
      if (this.type.type === 'unit') return this.appendValue(null)
      throw new TypeError(`null appended to a non-null ${this.type.type} column`)
    }
    this.appendPlaceholder()
  }

  protected validityBytes(): number {
    return this.validity !== null && this.validity.nulls > 0 ? (this.length + 7) >> 3 : 0
  }
}

const encoder = new TextEncoder()

/** A u32 view over `bytes`' whole buffer from the 4-aligned byte at or before `bytes` (its `base`). */
function wordView(bytes: Uint8Array): { words: Uint32Array; base: number } {
  const base = bytes.byteOffset & ~3
  return { words: new Uint32Array(bytes.buffer, base, (bytes.buffer.byteLength - base) >> 2), base }
}

/**
 * Copies `len` bytes from `src[s]` (at byte `sw` of `srcWords`) to `dst[d]`: 4 bytes at a time
 * when source and destination share their alignment (fixed-length keys), else unrolled bytes.
 * Short values dominate, and a subarray per value costs more than either.
 */
function copyBytes(src: Uint8Array, srcWords: Uint32Array, sw: number, s: number, dst: Uint8Array, dstWords: Uint32Array, d: number, len: number): void {
  let i = 0
  if (len >= 12 && ((sw ^ d) & 3) === 0) {
    for (; ((d + i) & 3) !== 0; i++) dst[d + i] = src[s + i]!
    const ws = (sw + i) >> 2
    const wd = (d + i) >> 2
    const nw = (len - i) >> 2
    for (let k = 0; k < nw; k++) dstWords[wd + k] = srcWords[ws + k]!
    i += nw << 2
  } else {
    for (; i + 4 <= len; i += 4) {
      dst[d + i] = src[s + i]!
      dst[d + i + 1] = src[s + i + 1]!
      dst[d + i + 2] = src[s + i + 2]!
      dst[d + i + 3] = src[s + i + 3]!
    }
  }
  for (; i < len; i++) dst[d + i] = src[s + i]!
}

/** `ColumnBuilder.scatter`'s mark of a source row that is not copied. */
export const NOT_COPIED = 0xffff_ffff

/** Consecutive rows of one source that `gather` copies as one stretch instead of row by row. */
const GATHER_STRETCH_ROWS = 8

export class VarBinaryBuilder extends ColumnBuilder {
  offsets = new Int32Array(1)
  bytes = new Uint8Array(0)
  /** u32 view of `bytes` (whose byteOffset is always 0). */
  words = new Uint32Array(0)

  appendValue(v: Value): void {
    if (v === null) return this.appendNull()
    const n = this.length
    const start = this.offsets[n]!
    if (n + 2 > this.offsets.length) this.offsets = grown(this.offsets, n + 2)
    let end: number
    if (typeof v === 'string') {
      const max = start + v.length * 3
      if (max > this.bytes.length) this.#growBytes(max)
      end = start + encoder.encodeInto(v, this.bytes.subarray(start)).written
    } else {
      const b = v as Uint8Array
      end = start + b.length
      if (end > this.bytes.length) this.#growBytes(end)
      this.bytes.set(b, start)
    }
    if (end > 0x7fffffff) throw new RangeError('a column of a part may hold at most 2 GiB of bytes')
    this.offsets[n + 1] = end
    this.validity?.push(n, true)
    this.length = n + 1
  }

  appendPlaceholder(): void {
    const n = this.length
    if (n + 2 > this.offsets.length) this.offsets = grown(this.offsets, n + 2)
    this.offsets[n + 1] = this.offsets[n]!
    this.validity?.push(n, false)
    this.length = n + 1
  }

  #growBytes(min: number): void {
    this.bytes = grown(this.bytes, min)
    this.words = new Uint32Array(this.bytes.buffer, 0, this.bytes.length >> 2)
  }

  /** Appends bytes `src[start, end)` as one value (e.g. the UTF-8 of a string read from a request). */
  appendSpan(src: Uint8Array, start: number, end: number): void {
    const n = this.length
    if (n + 2 > this.offsets.length) this.offsets = grown(this.offsets, n + 2)
    const at = this.offsets[n]!
    const stop = at + end - start
    if (stop > 0x7fffffff) throw new RangeError('a column of a part may hold at most 2 GiB of bytes')
    if (stop > this.bytes.length) this.#growBytes(stop)
    const b = this.bytes
    if (end - start > 32) b.set(src.subarray(start, end), at)
    else for (let i = start, j = at; i < end; i++, j++) b[j] = src[i]!
    this.offsets[n + 1] = stop
    this.validity?.push(n, true)
    this.length = n + 1
  }

  /**
   * Appends bytes `src[start, end)` as one value. `srcWords` is a u32 view of `src`'s buffer from
   * byte `srcBase` (see `wordView`), used to copy 4 bytes at a time when alignments allow.
   */
  appendBytes(src: Uint8Array, srcWords: Uint32Array, srcBase: number, start: number, end: number): void {
    const n = this.length
    if (n + 2 > this.offsets.length) this.offsets = grown(this.offsets, n + 2)
    const at = this.offsets[n]!
    const len = end - start
    const stop = at + len
    if (stop > this.bytes.length) this.#growBytes(stop)
    if (len > 256) this.bytes.set(src.subarray(start, end), at)
    else copyBytes(src, srcWords, src.byteOffset + start - srcBase, start, this.bytes, this.words, at, len)
    this.offsets[n + 1] = stop
    this.validity?.push(n, true)
    this.length = n + 1
  }

  copierFor(data: arrow.Data): ColumnCopier {
    const offs = data.valueOffsets as Int32Array
    const src = data.values as Uint8Array
    const { words: srcWords, base: srcBase } = wordView(src)
    const valid = validityOf(data)
    const bitOffset = data.offset
    const copy = (row: number): void => {
      if (valid !== null && !bitAt(valid, bitOffset + row)) this.appendPlaceholder()
      else this.appendBytes(src, srcWords, srcBase, offs[row]!, offs[row + 1]!)
    }
    return {
      copy,
      raw: valid === null ? { offsets: offs, bytes: src, words: srcWords, wordShift: src.byteOffset - srcBase, width: WIDTH_UNMEASURED, length: data.length } : null,
      copyRange: (start, end) => {
        if (end <= start) return
        if (valid !== null) {
          for (let r = start; r < end; r++) copy(r)
          return
        }
        const n = this.length
        const count = end - start
        if (n + count + 1 > this.offsets.length) this.offsets = grown(this.offsets, n + count + 1)
        const base = this.offsets[n]!
        const s0 = offs[start]!
        const s1 = offs[end]!
        if (base + s1 - s0 > this.bytes.length) this.#growBytes(base + s1 - s0)
        this.bytes.set(src.subarray(s0, s1), base)
        const o = this.offsets
        const shift = base - s0
        for (let i = 1; i <= count; i++) o[n + i] = offs[start + i]! + shift
        this.validity?.pushRun(n, count)
        this.length = n + count
      },
    }
  }

  override gather(copiers: readonly (ColumnCopier | undefined)[], bases: ArrayLike<number>, src: Uint32Array, row: Uint32Array, n: number): void {
    if (this.length + n + 1 > this.offsets.length) this.offsets = grown(this.offsets, this.length + n + 1)
    for (let i = 0; i < n; i++) {
      const s = src[i]!
      const copier = copiers[s]!
      const r = row[i]! + bases[s]!
      const raw = copier.raw
      if (raw === null) {
        copier.copy(r)
        continue
      }
      const k = this.length
      // A stretch of consecutive rows of one source (a merge of one run emits whole windows of
      // them) is one bulk copy of its bytes and a pass over its offsets.
      let m = 1
      while (i + m < n && src[i + m] === s && row[i + m] === row[i]! + m) m++
      if (m >= GATHER_STRETCH_ROWS) {
        this.#copyStretch(raw, r, m)
        i += m - 1
        continue
      }
      // NB: fixed-width values need no offset reads (a random gather's cache misses halve).
      let w = raw.width
      if (w === WIDTH_UNMEASURED) w = raw.width = uniformWidth(raw.offsets, raw.length)
      const from = w >= 0 ? raw.offsets[0]! + r * w : raw.offsets[r]!
      const len = w >= 0 ? w : raw.offsets[r + 1]! - from
      const at = this.offsets[k]!
      const stop = at + len
      if (stop > this.bytes.length) this.#growBytes(stop)
      const sw = raw.wordShift + from
      if (((sw | at | len) & 3) === 0) {
        // Whole aligned words (fixed-length keys and values): the common case, copied inline.
        const ws = sw >> 2
        const wd = at >> 2
        const words = this.words
        for (let j = 0, m = len >> 2; j < m; j++) words[wd + j] = raw.words[ws + j]!
      } else if (len > 256) {
        this.bytes.set(raw.bytes.subarray(from, from + len), at)
      } else {
        copyBytes(raw.bytes, raw.words, sw, from, this.bytes, this.words, at, len)
      }
      this.offsets[k + 1] = stop
      this.validity?.push(k, true)
      this.length = k + 1
    }
  }

  /**
   * The scatter of a column without nulls: the new rows' offsets first (from the lengths, read in
   * the new order: a small random read of the offsets, none for fixed-width values), then one pass
   * over the source in its order, each value copied to its place. The source, megabytes that a
   * sort permuted, is read in order, and only the writes land out of order; a gather's reads
   * each wait for memory instead, several times slower.
   */
  override scatter(copier: ColumnCopier, rows: Uint32Array, n: number, dest: Uint32Array, lo: number, hi: number): boolean {
    const raw = copier.raw
    if (raw === null) return false
    const k = this.length
    if (k + n + 1 > this.offsets.length) this.offsets = grown(this.offsets, k + n + 1)
    let w = raw.width
    if (w === WIDTH_UNMEASURED) w = raw.width = uniformWidth(raw.offsets, raw.length)
    const o = this.offsets
    const ro = raw.offsets
    const base = o[k]!
    if (w >= 0) for (let j = 1; j <= n; j++) o[k + j] = base + j * w
    else {
      let at = base
      for (let j = 0; j < n; j++) {
        const r = rows[j]!
        at += ro[r + 1]! - ro[r]!
        o[k + j + 1] = at
      }
    }
    const end = o[k + n]!
    if (end > 0x7fffffff) throw new RangeError('a column of a part may hold at most 2 GiB of bytes')
    if (end > this.bytes.length) this.#growBytes(end)
    const bytes = this.bytes
    const words = this.words
    for (let i = lo; i < hi; i++) {
      const j = dest[i - lo]!
      if (j === NOT_COPIED) continue
      const from = ro[i]!
      const len = ro[i + 1]! - from
      const at = o[k + j]!
      const sw = raw.wordShift + from
      if (((sw | at | len) & 3) === 0) {
        const ws = sw >> 2
        const wd = at >> 2
        for (let m = 0, nw = len >> 2; m < nw; m++) words[wd + m] = raw.words[ws + m]!
      } else if (len > 256) bytes.set(raw.bytes.subarray(from, from + len), at)
      else copyBytes(raw.bytes, raw.words, sw, from, bytes, words, at, len)
    }
    this.validity?.pushRun(k, n)
    this.length = k + n
    return true
  }

  /** Appends rows `r .. r+m` of `raw` (the caller made room for their offsets). */
  #copyStretch(raw: RawBinary, r: number, m: number): void {
    const k = this.length
    const from = raw.offsets[r]!
    const to = raw.offsets[r + m]!
    const at = this.offsets[k]!
    if (at + to - from > this.bytes.length) this.#growBytes(at + to - from)
    this.bytes.set(raw.bytes.subarray(from, to), at)
    const o = this.offsets
    const ro = raw.offsets
    const shift = at - from
    for (let j = 1; j <= m; j++) o[k + j] = ro[r + j]! + shift
    this.validity?.pushRun(k, m)
    this.length = k + m
  }

  truncate(length: number): void {
    if (length >= this.length) return
    this.validity?.truncate(this.length, length)
    this.length = length
  }

  byteLength(): number {
    return this.length === 0 ? 0 : (this.length + 1) * 4 + this.offsets[this.length]! + this.validityBytes()
  }

  finish(reuse: boolean): arrow.Data {
    const n = this.length
    const { nullBitmap, nullCount } = this.validity?.finish(n, reuse) ?? { nullBitmap: new Uint8Array(0), nullCount: 0 }
    const data = arrow.makeData({
      type: this.arrowType as arrow.Utf8,
      length: n,
      nullCount,
      nullBitmap,
      valueOffsets: this.offsets.subarray(0, n + 1),
      data: this.bytes.subarray(0, this.offsets[n]!),
    })
    if (!reuse) {
      this.offsets = new Int32Array(1)
      this.bytes = new Uint8Array(0)
      this.words = new Uint32Array(0)
    }
    this.length = 0
    return data as arrow.Data
  }
}

export class Fixed64Builder extends ColumnBuilder {
  words = new Uint32Array(0)

  appendValue(v: Value): void {
    if (v === null) return this.appendNull()
    let lo: number
    let hi: number
    if (typeof v === 'bigint') {
      lo = Number(v & 0xffffffffn)
      hi = Number((v >> 32n) & 0xffffffffn)
    } else {
      ;[lo, hi] = float64ToWords(v as number)
    }
    this.appendWords(lo, hi)
  }

  appendWords(lo: number, hi: number): void {
    const n = this.length
    if (2 * n + 2 > this.words.length) this.words = grown(this.words, 2 * n + 2)
    this.words[2 * n] = lo
    this.words[2 * n + 1] = hi
    this.validity?.push(n, true)
    this.length = n + 1
  }

  appendPlaceholder(): void {
    const n = this.length
    if (2 * n + 2 > this.words.length) this.words = grown(this.words, 2 * n + 2)
    this.words[2 * n] = 0
    this.words[2 * n + 1] = 0
    this.validity?.push(n, false)
    this.length = n + 1
  }

  copierFor(data: arrow.Data): ColumnCopier {
    const w = words64(data)
    const valid = validityOf(data)
    const bitOffset = data.offset
    const copy = (row: number): void => {
      if (valid !== null && !bitAt(valid, bitOffset + row)) this.appendPlaceholder()
      else this.appendWords(w[2 * row]!, w[2 * row + 1]!)
    }
    return {
      raw: null,
      copy,
      copyRange: (start, end) => {
        if (end <= start) return
        if (valid !== null) {
          for (let r = start; r < end; r++) copy(r)
          return
        }
        const n = this.length
        const count = end - start
        if (2 * (n + count) > this.words.length) this.words = grown(this.words, 2 * (n + count))
        this.words.set(w.subarray(2 * start, 2 * end), 2 * n)
        this.validity?.pushRun(n, count)
        this.length = n + count
      },
    }
  }

  truncate(length: number): void {
    if (length >= this.length) return
    this.validity?.truncate(this.length, length)
    this.length = length
  }

  byteLength(): number {
    return this.length * 8 + this.validityBytes()
  }

  finish(reuse: boolean): arrow.Data {
    const n = this.length
    const { nullBitmap, nullCount } = this.validity?.finish(n, reuse) ?? { nullBitmap: new Uint8Array(0), nullCount: 0 }
    const buf = this.words.buffer
    const values =
      this.type.type === 'int64' ? new BigInt64Array(buf, 0, n) : this.type.type === 'uint64' ? new BigUint64Array(buf, 0, n) : new Float64Array(buf, 0, n)
    const data = arrow.makeData({ type: this.arrowType as arrow.Int64, length: n, nullCount, nullBitmap, data: values as BigInt64Array })
    if (!reuse) this.words = new Uint32Array(0)
    this.length = 0
    return data as arrow.Data
  }
}

class BoolBuilder extends ColumnBuilder {
  bits = new Uint8Array(0)

  appendValue(v: Value): void {
    if (v === null) return this.appendNull()
    this.appendBit(v === true)
  }

  appendBit(b: boolean, valid = true): void {
    const n = this.length
    const byte = n >> 3
    if (byte >= this.bits.length) this.bits = grown(this.bits, byte + 1)
    if (b) this.bits[byte]! |= 1 << (n & 7)
    else this.bits[byte]! &= ~(1 << (n & 7))
    this.validity?.push(n, valid)
    this.length = n + 1
  }

  appendPlaceholder(): void {
    this.appendBit(false, false)
  }

  copierFor(data: arrow.Data): ColumnCopier {
    const src = data.values as Uint8Array
    const valid = validityOf(data)
    const bitOffset = data.offset
    const copy = (row: number): void => {
      if (valid !== null && !bitAt(valid, bitOffset + row)) this.appendPlaceholder()
      else this.appendBit(bitAt(src, bitOffset + row))
    }
    return {
      raw: null,
      copy,
      copyRange: (start, end) => {
        for (let r = start; r < end; r++) copy(r)
      },
    }
  }

  truncate(length: number): void {
    if (length >= this.length) return
    this.validity?.truncate(this.length, length)
    this.length = length
  }

  byteLength(): number {
    return ((this.length + 7) >> 3) + this.validityBytes()
  }

  finish(reuse: boolean): arrow.Data {
    const n = this.length
    const { nullBitmap, nullCount } = this.validity?.finish(n, reuse) ?? { nullBitmap: new Uint8Array(0), nullCount: 0 }
    const data = arrow.makeData({ type: this.arrowType as arrow.Bool, length: n, nullCount, nullBitmap, data: this.bits.subarray(0, (n + 7) >> 3) })
    if (!reuse) this.bits = new Uint8Array(0)
    this.length = 0
    return data as arrow.Data
  }
}

class UnitBuilder extends ColumnBuilder {
  appendValue(): void {
    this.length++
  }

  appendPlaceholder(): void {
    this.length++
  }

  copierFor(): ColumnCopier {
    return {
      raw: null,
      copy: () => {
        this.length++
      },
      copyRange: (start, end) => {
        if (end > start) this.length += end - start
      },
    }
  }

  truncate(length: number): void {
    if (length < this.length) this.length = length
  }

  byteLength(): number {
    return 0
  }

  finish(): arrow.Data {
    const data = arrow.makeData({ type: this.arrowType as arrow.Null, length: this.length })
    this.length = 0
    return data as arrow.Data
  }
}

class StructBuilder extends ColumnBuilder {
  readonly children: ColumnBuilder[]
  readonly names: string[]

  constructor(type: Extract<DataType, { type: 'struct' }>, nullable: boolean, capacity: number) {
    super(type, nullable)
    this.children = type.fields.map((f) => makeColumnBuilder(f.type, f.nullable, capacity))
    this.names = type.fields.map((f) => f.name)
  }

  appendValue(v: Value): void {
    if (v === null) return this.appendNull()
    const o = v as StructValue
    for (let i = 0; i < this.children.length; i++) {
      const name = this.names[i]!
      this.children[i]!.appendValue(Object.hasOwn(o, name) ? (o[name] ?? null) : null)
    }
    this.validity?.push(this.length, true)
    this.length++
  }

  appendPlaceholder(): void {
    for (const c of this.children) c.appendPlaceholder()
    this.validity?.push(this.length, false)
    this.length++
  }

  copierFor(data: arrow.Data): ColumnCopier {
    const copiers = this.children.map((c, i) => c.copierFor(data.children[i]!))
    const valid = validityOf(data)
    const bitOffset = data.offset
    const copy = (row: number): void => {
      if (valid !== null && !bitAt(valid, bitOffset + row)) return this.appendPlaceholder()
      for (let i = 0; i < copiers.length; i++) copiers[i]!.copy(row)
      this.validity?.push(this.length, true)
      this.length++
    }
    return {
      raw: null,
      copy,
      copyRange: (start, end) => {
        if (end <= start) return
        if (valid !== null) {
          for (let r = start; r < end; r++) copy(r)
          return
        }
        for (const c of copiers) c.copyRange(start, end)
        this.validity?.pushRun(this.length, end - start)
        this.length += end - start
      },
    }
  }

  truncate(length: number): void {
    if (length >= this.length) return
    for (const c of this.children) c.truncate(length)
    this.validity?.truncate(this.length, length)
    this.length = length
  }

  byteLength(): number {
    return this.children.reduce((s, c) => s + c.byteLength(), this.validityBytes())
  }

  finish(reuse: boolean): arrow.Data {
    const n = this.length
    const children = this.children.map((c) => c.finish(reuse))
    const { nullBitmap, nullCount } = this.validity?.finish(n, reuse) ?? { nullBitmap: new Uint8Array(0), nullCount: 0 }
    this.length = 0
    return arrow.makeData({ type: this.arrowType as arrow.Struct, length: n, nullCount, nullBitmap, children }) as arrow.Data
  }
}

/** A builder for a column of `type`; `nullable` says whether rows may be null. */
export function makeColumnBuilder(type: DataType, nullable: boolean, capacity = 0): ColumnBuilder {
  let b: ColumnBuilder
  switch (type.type) {
    case 'utf8':
    case 'binary': {
      const v = new VarBinaryBuilder(type, nullable)
      if (capacity > 0) v.offsets = new Int32Array(capacity + 1)
      b = v
      break
    }
    case 'int64':
    case 'uint64':
    case 'float64': {
      const f = new Fixed64Builder(type, nullable)
      if (capacity > 0) f.words = new Uint32Array(2 * capacity)
      b = f
      break
    }
    case 'bool':
      b = new BoolBuilder(type, nullable)
      break
    case 'unit':
      b = new UnitBuilder(type, nullable)
      break
    case 'struct':
      b = new StructBuilder(type, nullable, capacity)
      break
  }
  return b
}
