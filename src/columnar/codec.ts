/**
 * The canonical binary encoding of a value of a schema type (the `codec` run order sorts by these
 * bytes). Not self-describing: decoding needs the type.
 *
 * - int64, uint64: 8 bytes little-endian (two's complement for int64);
 * - float64: the 8 bytes of the IEEE 754 double, little-endian;
 * - bool: one byte 0/1; unit: nothing;
 * - utf8, binary: u32 little-endian byte length, then the bytes;
 * - struct: its fields in order; a nullable field (not unit) starts with a presence byte, 0x00
 *   for null (then nothing more) and 0x01 for present.
 *
 * The encoding is prefix-free for a given type, so concatenations decode unambiguously.
 */
import type * as arrow from 'apache-arrow'
import { bitAt, float64FromWords, float64ToWords, liveRows, offsetsFromLengths, validityOf, words64 } from './column.js'
import type { DataType } from './data-type.js'
import type { SortKeyColumn } from './sort-key.js'
import type { StructValue, Value } from './values.js'

/** The codec encoding of every row of a column. */
export function codecColumn(d: arrow.Data, type: DataType): SortKeyColumn {
  const lens = new Int32Array(d.length)
  measure(d, type, false, null, lens)
  const offsets = offsetsFromLengths(lens)
  const bytes = new Uint8Array(offsets[d.length]!)
  const pos = lens
  pos.set(offsets.subarray(0, d.length))
  fill(d, type, false, null, bytes, pos)
  return { offsets, bytes }
}

function measure(d: arrow.Data, t: DataType, nullable: boolean, live: Uint8Array | null, lens: Int32Array): void {
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
      for (let r = 0; r < n; r++) if (!check || !skip(r)) lens[r]! += 4 + offs[r + 1]! - offs[r]!
      return
    }
    case 'int64':
    case 'uint64':
    case 'float64':
      for (let r = 0; r < n; r++) if (!check || !skip(r)) lens[r]! += 8
      return
    case 'bool':
      for (let r = 0; r < n; r++) if (!check || !skip(r)) lens[r]! += 1
      return
    case 'unit':
      return
    case 'struct': {
      const inner = liveRows(live, d, nullable)
      t.fields.forEach((f, i) => measure(d.children[i]!, f.type, f.nullable, inner, lens))
      return
    }
  }
}

function fill(d: arrow.Data, t: DataType, nullable: boolean, live: Uint8Array | null, out: Uint8Array, pos: Int32Array): void {
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
        const len = e - s
        let p = pos[r]!
        out[p] = len & 0xff
        out[p + 1] = (len >>> 8) & 0xff
        out[p + 2] = (len >>> 16) & 0xff
        out[p + 3] = len >>> 24
        p += 4
        if (len > 32) out.set(src.subarray(s, e), p)
        else for (let i = 0; i < len; i++) out[p + i] = src[s + i]!
        pos[r] = p + len
      }
      return
    }
    case 'int64':
    case 'uint64':
    case 'float64': {
      const w = words64(d)
      for (let r = 0; r < n; r++) {
        if (check && skip(r)) continue
        const p = pos[r]!
        writeLE(out, p, w[2 * r]!, w[2 * r + 1]!)
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
      t.fields.forEach((f, i) => fill(d.children[i]!, f.type, f.nullable, inner, out, pos))
      return
    }
  }
}

function writeLE(out: Uint8Array, p: number, lo: number, hi: number): void {
  out[p] = lo & 0xff
  out[p + 1] = (lo >>> 8) & 0xff
  out[p + 2] = (lo >>> 16) & 0xff
  out[p + 3] = lo >>> 24
  out[p + 4] = hi & 0xff
  out[p + 5] = (hi >>> 8) & 0xff
  out[p + 6] = (hi >>> 16) & 0xff
  out[p + 7] = hi >>> 24
}

/**
 * The codec encoding of one value (same bytes as `codecColumn` gives its row), or only its first
 * `limit` bytes (and maybe a few more): the encoding is produced in order, so a key lower of a
 * huge key costs its cut length, not the key's.
 */
export function encodeCodecValue(t: DataType, v: Value, limit = Infinity): Uint8Array {
  const out: number[] = []
  encodeInto(t, v, out, limit)
  return Uint8Array.from(out)
}

function encodeInto(t: DataType, v: Value, out: number[], limit: number): void {
  if (out.length >= limit) return
  switch (t.type) {
    case 'utf8':
    case 'binary': {
      const b = typeof v === 'string' ? new TextEncoder().encode(v) : (v as Uint8Array)
      const len = b.length
      out.push(len & 0xff, (len >>> 8) & 0xff, (len >>> 16) & 0xff, len >>> 24)
      for (let i = 0; i < len && out.length < limit; i++) out.push(b[i]!)
      return
    }
    case 'int64':
    case 'uint64': {
      const u = BigInt.asUintN(64, v as bigint)
      for (let s = 0n; s < 64n; s += 8n) out.push(Number((u >> s) & 0xffn))
      return
    }
    case 'float64': {
      const [lo, hi] = float64ToWords(v as number)
      const tmp = new Uint8Array(8)
      writeLE(tmp, 0, lo, hi)
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
        encodeInto(f.type, fv, out, limit)
      }
      return
    }
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Decodes one codec-encoded value; throws if the bytes are not exactly one value of `t`. */
export function decodeCodecValue(t: DataType, bytes: Uint8Array): Value {
  const cursor = { p: 0 }
  const v = decodeAt(t, bytes, cursor)
  if (cursor.p !== bytes.length) throw new RangeError(`${bytes.length - cursor.p} trailing bytes after a codec value`)
  return v
}

function take(bytes: Uint8Array, c: { p: number }, n: number): number {
  const at = c.p
  if (at + n > bytes.length) throw new RangeError('codec value is truncated')
  c.p = at + n
  return at
}

function decodeAt(t: DataType, bytes: Uint8Array, c: { p: number }): Value {
  switch (t.type) {
    case 'utf8':
    case 'binary': {
      const at = take(bytes, c, 4)
      const len = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0
      const s = take(bytes, c, len)
      const b = bytes.slice(s, s + len)
      return t.type === 'utf8' ? strictUtf8.decode(b) : b
    }
    case 'int64':
    case 'uint64':
    case 'float64': {
      const at = take(bytes, c, 8)
      const lo = (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0
      const hi = (bytes[at + 4]! | (bytes[at + 5]! << 8) | (bytes[at + 6]! << 16) | (bytes[at + 7]! << 24)) >>> 0
      if (t.type === 'float64') return float64FromWords(lo, hi)
      const u = (BigInt(hi) << 32n) | BigInt(lo)
      return t.type === 'int64' ? BigInt.asIntN(64, u) : u
    }
    case 'bool': {
      const b = bytes[take(bytes, c, 1)]!
      if (b > 1) throw new RangeError(`bad bool byte ${b}`)
      return b === 1
    }
    case 'unit':
      return null
    case 'struct': {
      const out = Object.create(null) as Record<string, Value>
      for (const f of t.fields) {
        if (f.nullable && f.type.type !== 'unit') {
          const m = bytes[take(bytes, c, 1)]!
          if (m > 1) throw new RangeError(`bad presence byte ${m}`)
          if (m === 0) {
            out[f.name] = null
            continue
          }
        }
        out[f.name] = decodeAt(f.type, bytes, c)
      }
      return out
    }
  }
}
