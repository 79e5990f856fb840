/**
 * Per-row byte encodings that realize the two run orders, computed column-wise into one
 * `SortKeyColumn` per column, and the comparators the sort and the merge use.
 *
 * `structured` (typed-value order) is a memcomparable encoding: comparing two encodings bytewise
 * orders them exactly as the values, and equal encodings mean equal values (injective):
 * - utf8/binary: the bytes; inside a struct, escaped (0x00 → 0x00 0xFF) and terminated by 0x00 0x00
 *   so fields concatenate;
 * - int64: 8 bytes big-endian with the sign bit flipped; uint64: 8 bytes big-endian;
 * - float64: IEEE 754 totalOrder (Rust's `total_cmp`, Arrow's float order): big-endian bits with
 *   the sign bit flipped for positives and every bit flipped for negatives, so -0 < +0 and NaN
 *   (as JS writes it, positive) sorts after +Infinity. NB: a NaN with its sign bit set sorts
 *   before -Infinity, and distinct NaN payloads stay distinct values;
 * - bool: one byte 0/1; unit: nothing;
 * - struct: its fields in order; a nullable field (not unit) starts with a marker, 0x00 for null
 *   (then nothing more) and 0x01 for present, so nulls sort first.
 *
 * `codec` order is the bytewise order of the canonical binary encoding (codec.ts). It differs from
 * structured order (little-endian integers, length-prefixed strings); runs record which they use.
 *
 * Time order: `(major, minor)` words (updates.ts `timeOrderWords`): u64 numerically, product
 * lexicographically, which is the kinds' total `compare` in core/timestamp.ts.
 */
import * as arrow from 'apache-arrow'
import { codecColumn, encodeCodecValue } from './codec.js'
import { KEY_LOWER_MAX_BYTES } from '../core/batch.js'
import { bitAt, float64ToWords, liveRows, offsetsFromLengths, onlyData, validityOf, valueAt, words64 } from './column.js'
import type { DataType } from './data-type.js'
import { timeOrderWords, type Updates } from './updates.js'
import type { StructValue, Value } from './values.js'

export const SORT_ORDERS = ['structured', 'codec'] as const
export type SortOrder = (typeof SORT_ORDERS)[number]

/** Row i's encoding is `bytes[offsets[i], offsets[i + 1])` (`offsets[0]` is not always 0). */
export interface SortKeyColumn {
  readonly offsets: Int32Array
  readonly bytes: Uint8Array
}

/** Sort-key encodings of every row of a column (a single-chunk vector or its `Data`). */
export function sortKeyColumn(col: arrow.Data | arrow.Vector, type: DataType, order: SortOrder): SortKeyColumn {
  const d = col instanceof arrow.Vector ? onlyData(col) : col
  return order === 'structured' ? structuredColumn(d, type) : codecColumn(d, type)
}

/**
 * The structured (memcomparable) encoding of every row of a column. NB: for a top-level utf8 or
 * binary column the encoding is the values themselves, so the result views the column's buffers
 * (no copy) and its `offsets[0]` need not be 0.
 */
export function structuredColumn(d: arrow.Data, type: DataType): SortKeyColumn {
  if (type.type === 'utf8' || type.type === 'binary') {
    return { offsets: (d.valueOffsets as Int32Array).subarray(0, d.length + 1), bytes: d.values as Uint8Array }
  }
  const lens = new Int32Array(d.length)
  measure(d, type, false, false, null, lens)
  const offsets = offsetsFromLengths(lens)
  const bytes = new Uint8Array(offsets[d.length]!)
  const pos = lens
  pos.set(offsets.subarray(0, d.length))
  fill(d, type, false, false, null, bytes, pos)
  return { offsets, bytes }
}

function measure(d: arrow.Data, t: DataType, nested: boolean, nullable: boolean, live: Uint8Array | null, lens: Int32Array): void {
  const n = d.length
  const marked = nullable && t.type !== 'unit'
  const valid = marked ? validityOf(d) : null
  const off = d.offset
  if (marked) for (let r = 0; r < n; r++) if (live === null || live[r] === 1) lens[r]! += 1
  const check = live !== null || valid !== null
  const skip = (r: number): boolean => (live !== null && live[r] !== 1) || (valid !== null && !bitAt(valid, off + r))
  switch (t.type) {
    case 'utf8':
    case 'binary': {
      const offs = d.valueOffsets as Int32Array
      const src = d.values as Uint8Array
      for (let r = 0; r < n; r++) {
        if (check && skip(r)) continue
        const s = offs[r]!
        const e = offs[r + 1]!
        if (nested) {
          let zeros = 0
          for (let i = s; i < e; i++) if (src[i] === 0) zeros++
          lens[r]! += e - s + zeros + 2
        } else lens[r]! += e - s
      }
      return
    }
    case 'int64':
    case 'uint64':
    case 'float64':
    case 'bool': {
      const w = t.type === 'bool' ? 1 : 8
      for (let r = 0; r < n; r++) {
        if (check && skip(r)) continue
        lens[r]! += w
      }
      return
    }
    case 'unit':
      return
    case 'struct': {
      const inner = liveRows(live, d, nullable)
      t.fields.forEach((f, i) => measure(d.children[i]!, f.type, true, f.nullable, inner, lens))
      return
    }
  }
}

function fill(d: arrow.Data, t: DataType, nested: boolean, nullable: boolean, live: Uint8Array | null, out: Uint8Array, pos: Int32Array): void {
  const n = d.length
  const marked = nullable && t.type !== 'unit'
  const valid = marked ? validityOf(d) : null
  const off = d.offset
  if (marked) {
    for (let r = 0; r < n; r++) {
      if (live !== null && live[r] !== 1) continue
      out[pos[r]!++] = valid === null || bitAt(valid, off + r) ? 1 : 0
    }
  }
  const check = live !== null || valid !== null
  const skip = (r: number): boolean => (live !== null && live[r] !== 1) || (valid !== null && !bitAt(valid, off + r))
  switch (t.type) {
    case 'utf8':
    case 'binary': {
      const offs = d.valueOffsets as Int32Array
      const src = d.values as Uint8Array
      for (let r = 0; r < n; r++) {
        if (check && skip(r)) continue
        const s = offs[r]!
        const e = offs[r + 1]!
        let p = pos[r]!
        if (nested) {
          for (let i = s; i < e; i++) {
            const b = src[i]!
            out[p++] = b
            if (b === 0) out[p++] = 0xff
          }
          out[p++] = 0
          out[p++] = 0
        } else {
          if (e - s > 32) out.set(src.subarray(s, e), p)
          else for (let i = s; i < e; i++) out[p + i - s] = src[i]!
          p += e - s
        }
        pos[r] = p
      }
      return
    }
    case 'int64':
    case 'uint64':
    case 'float64': {
      const w = words64(d)
      const kind = t.type === 'int64' ? 0 : t.type === 'uint64' ? 1 : 2
      for (let r = 0; r < n; r++) {
        if (check && skip(r)) continue
        let lo = w[2 * r]!
        let hi = w[2 * r + 1]!
        if (kind === 0) hi ^= 0x80000000
        else if (kind === 2) {
          if (hi & 0x80000000) {
            hi = ~hi
            lo = ~lo
          } else hi ^= 0x80000000
        }
        const p = pos[r]!
        writeBE(out, p, hi, lo)
        pos[r] = p + 8
      }
      return
    }
    case 'bool': {
      const bits = d.values as Uint8Array
      for (let r = 0; r < n; r++) {
        if (check && skip(r)) continue
        out[pos[r]!++] = bitAt(bits, off + r) ? 1 : 0
      }
      return
    }
    case 'unit':
      return
    case 'struct': {
      const inner = liveRows(live, d, nullable)
      t.fields.forEach((f, i) => fill(d.children[i]!, f.type, true, f.nullable, inner, out, pos))
      return
    }
  }
}

function writeBE(out: Uint8Array, p: number, hi: number, lo: number): void {
  out[p] = hi >>> 24
  out[p + 1] = (hi >>> 16) & 0xff
  out[p + 2] = (hi >>> 8) & 0xff
  out[p + 3] = hi & 0xff
  out[p + 4] = lo >>> 24
  out[p + 5] = (lo >>> 16) & 0xff
  out[p + 6] = (lo >>> 8) & 0xff
  out[p + 7] = lo & 0xff
}

/**
 * The structured encoding of one value (same bytes as `structuredColumn` gives its row), or only
 * its first `limit` bytes (and maybe a few more): see `encodeCodecValue`.
 */
export function encodeStructuredValue(t: DataType, v: Value, limit = Infinity): Uint8Array {
  const out: number[] = []
  encodeValueInto(t, v, false, out, limit)
  return Uint8Array.from(out)
}

function encodeValueInto(t: DataType, v: Value, nested: boolean, out: number[], limit: number): void {
  if (out.length >= limit) return
  switch (t.type) {
    case 'utf8':
    case 'binary': {
      const b = typeof v === 'string' ? new TextEncoder().encode(utf8Prefix(v, limit - out.length)) : (v as Uint8Array)
      const len = b.length
      if (!nested) {
        for (let i = 0; i < len && out.length < limit; i++) out.push(b[i]!)
        return
      }
      for (let i = 0; i < len && out.length < limit; i++) {
        const x = b[i]!
        out.push(x)
        if (x === 0) out.push(0xff)
      }
      out.push(0, 0)
      return
    }
    case 'int64':
    case 'uint64': {
      const u = BigInt.asUintN(64, v as bigint) ^ (t.type === 'int64' ? 1n << 63n : 0n)
      for (let s = 56n; s >= 0n; s -= 8n) out.push(Number((u >> s) & 0xffn))
      return
    }
    case 'float64': {
      let [lo, hi] = float64ToWords(v as number)
      if (hi & 0x80000000) {
        hi = ~hi
        lo = ~lo
      } else hi ^= 0x80000000
      const tmp = new Uint8Array(8)
      writeBE(tmp, 0, hi, lo)
      for (const x of tmp) out.push(x)
      return
    }
    case 'bool':
      out.push(v === true ? 1 : 0)
      return
    case 'unit':
      return
    case 'struct': {
      const s = v as StructValue
      for (const f of t.fields) {
        if (out.length >= limit) return
        const fv = Object.hasOwn(s, f.name) ? (s[f.name] ?? null) : null
        if (f.nullable && f.type.type !== 'unit') {
          if (fv === null) {
            out.push(0)
            continue
          }
          out.push(1)
        }
        encodeValueInto(f.type, fv, true, out, limit)
      }
      return
    }
  }
}

/**
 * Row `row`'s key in `order`'s sort encoding, cut to `KEY_LOWER_MAX_BYTES` as a part's key lower
 * is (a prefix of a sort key is still a lower bound of it).
 */
export function sortKeyLowerAt(u: Updates, row: number, order: SortOrder): Uint8Array {
  const key = encodeSortKey(u.keyType, valueAt(onlyData(u.keys), u.keyType, row), order, KEY_LOWER_MAX_BYTES)
  return key.byteLength > KEY_LOWER_MAX_BYTES ? key.subarray(0, KEY_LOWER_MAX_BYTES) : key
}

/** The encoding of one value in `order` (its first `limit` bytes, and maybe a few more). */
export function encodeSortKey(t: DataType, v: Value, order: SortOrder, limit = Infinity): Uint8Array {
  return order === 'structured' ? encodeStructuredValue(t, v, limit) : encodeCodecValue(t, v, limit)
}

/**
 * The start of `s` whose UTF-8 encoding begins with the first `bytes` bytes of `s`'s: every UTF-16
 * unit encodes to at least one byte, and one more unit keeps a surrogate pair cut at the end whole.
 */
function utf8Prefix(s: string, bytes: number): string {
  return s.length > bytes + 1 ? s.slice(0, bytes + 1) : s
}

/** Bytewise comparison of `a[aOff, aOff+aLen)` and `b[bOff, bOff+bLen)`: negative, zero or positive. */
export function compareBytes(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array, bOff: number, bLen: number): number {
  const n = aLen < bLen ? aLen : bLen
  for (let i = 0; i < n; i++) {
    const x = a[aOff + i]!
    const y = b[bOff + i]!
    if (x !== y) return x - y
  }
  return aLen - bLen
}

/** Compares row i of column `a` with row j of column `b`. */
export function compareSortKeys(a: SortKeyColumn, i: number, b: SortKeyColumn, j: number): number {
  const ao = a.offsets[i]!
  const bo = b.offsets[j]!
  return compareBytes(a.bytes, ao, a.offsets[i + 1]! - ao, b.bytes, bo, b.offsets[j + 1]! - bo)
}

/** What the row comparator reads: key and val sort keys, and time order words (possibly advanced). */
export interface RowOrderKeys {
  readonly keys: SortKeyColumn
  readonly vals: SortKeyColumn
  readonly major: Uint32Array
  readonly minor: Uint32Array
}

/** Sort keys of `u`'s keys and vals in `order`, and its time order words. */
export function rowOrderKeys(u: Updates, order: SortOrder): RowOrderKeys {
  const { major, minor } = timeOrderWords(u)
  return { keys: sortKeyColumn(u.keys, u.keyType, order), vals: sortKeyColumn(u.vals, u.valType, order), major, minor }
}

/** Order of rows by (key, val) only. */
export function compareKeyVal(a: RowOrderKeys, i: number, b: RowOrderKeys, j: number): number {
  const c = compareSortKeys(a.keys, i, b.keys, j)
  return c !== 0 ? c : compareSortKeys(a.vals, i, b.vals, j)
}

/** Order of rows by (key, val, time): the order of a sorted run. */
export function compareRows(a: RowOrderKeys, i: number, b: RowOrderKeys, j: number): number {
  const c = compareKeyVal(a, i, b, j)
  if (c !== 0) return c
  const am = a.major[i]!
  const bm = b.major[j]!
  if (am !== bm) return am < bm ? -1 : 1
  const an = a.minor[i]!
  const bn = b.minor[j]!
  return an === bn ? 0 : an < bn ? -1 : 1
}

/** The first row that sorts before its predecessor, or -1 if rows `[0, length)` are sorted. */
export function firstUnsortedRow(k: RowOrderKeys, length: number): number {
  for (let i = 1; i < length; i++) if (compareRows(k, i - 1, k, i) > 0) return i
  return -1
}
