/**
 * Read access to one Arrow column (`Data`) of a schema type, without per-row objects.
 *
 * Arrow JS conventions relied on here (apache-arrow 21):
 * - `data.offset` applies to bit buffers only (validity, bool values); typed value buffers and
 *   value offsets are already sliced so that index 0 is row 0; struct children are sliced so that
 *   child row i is struct row i;
 * - the validity bitmap is consulted only when `nullCount > 0` (an empty bitmap means all valid).
 *
 * NB: every column inside `Updates` is a single `Data` chunk (`onlyData`), so bulk paths index
 * typed arrays directly.
 */
import type * as arrow from 'apache-arrow'
import type { DataType } from './data-type.js'
import type { StructValue, Value } from './values.js'

export function onlyData(v: arrow.Vector): arrow.Data {
  if (v.data.length !== 1) throw new Error(`expected a single-chunk column, got ${v.data.length} chunks`)
  return v.data[0]!
}

/**
 * Validity bits of a column, or null when every row is valid (Arrow `Null` columns, which carry no
 * bitmap, also give null). Read bit `offset + row`.
 */
export function validityOf(d: arrow.Data): Uint8Array | null {
  const bits = d.nullBitmap as Uint8Array | undefined
  return d.nullCount > 0 && bits !== undefined && bits.length > 0 ? bits : null
}

export function bitAt(bits: Uint8Array, i: number): boolean {
  return (bits[i >> 3]! & (1 << (i & 7))) !== 0
}

export function isValidAt(d: arrow.Data, row: number): boolean {
  const v = validityOf(d)
  return v === null || bitAt(v, d.offset + row)
}

/** The 64-bit values of an int64/uint64/float64 column as little-endian u32 word pairs. */
export function words64(d: arrow.Data): Uint32Array {
  const v = d.values as BigInt64Array | BigUint64Array | Float64Array
  return new Uint32Array(v.buffer, v.byteOffset, d.length * 2)
}

export function int64FromWords(lo: number, hi: number): bigint {
  return (BigInt(hi | 0) << 32n) | BigInt(lo >>> 0)
}

export function uint64FromWords(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)
}

const scratchF64 = new Float64Array(1)
const scratchU32 = new Uint32Array(scratchF64.buffer)

export function float64FromWords(lo: number, hi: number): number {
  scratchU32[0] = lo
  scratchU32[1] = hi
  return scratchF64[0]!
}

export function float64ToWords(x: number): [number, number] {
  scratchF64[0] = x
  return [scratchU32[0]!, scratchU32[1]!]
}

const utf8Decoder = new TextDecoder('utf-8')

/** The value at `row` (assumed valid; the caller checks validity of nullable positions). */
export function valueAt(d: arrow.Data, t: DataType, row: number): Value {
  switch (t.type) {
    case 'utf8':
    case 'binary': {
      const offs = d.valueOffsets as Int32Array
      const bytes = (d.values as Uint8Array).subarray(offs[row]!, offs[row + 1]!)
      return t.type === 'utf8' ? utf8Decoder.decode(bytes) : bytes.slice()
    }
    case 'int64':
    case 'uint64':
    case 'float64': {
      const w = words64(d)
      const lo = w[2 * row]!
      const hi = w[2 * row + 1]!
      return t.type === 'int64' ? int64FromWords(lo, hi) : t.type === 'uint64' ? uint64FromWords(lo, hi) : float64FromWords(lo, hi)
    }
    case 'bool':
      return bitAt(d.values as Uint8Array, d.offset + row)
    case 'unit':
      return null
    case 'struct': {
      const out = Object.create(null) as Record<string, Value>
      t.fields.forEach((f, i) => {
        const child = d.children[i]!
        out[f.name] = isValidAt(child, row) ? valueAt(child, f.type, row) : null
      })
      return out as StructValue
    }
  }
}

/**
 * Rows of a struct's children that are "live": `parent` live (null = all) and the struct row valid
 * (when `nullable`). Null means every row is live.
 */
export function liveRows(parent: Uint8Array | null, d: arrow.Data, nullable: boolean): Uint8Array | null {
  const valid = nullable ? validityOf(d) : null
  if (valid === null) return parent
  const n = d.length
  const off = d.offset
  const out = new Uint8Array(n)
  for (let r = 0; r < n; r++) out[r] = (parent === null || parent[r] === 1) && bitAt(valid, off + r) ? 1 : 0
  return out
}

const MAX_COLUMN_BYTES = 0x7fffffff

/** Prefix sums of per-row lengths into offsets (throws past 2 GiB). */
export function offsetsFromLengths(lens: Int32Array): Int32Array {
  const n = lens.length
  const offsets = new Int32Array(n + 1)
  let total = 0
  for (let i = 0; i < n; i++) {
    total += lens[i]!
    if (total > MAX_COLUMN_BYTES) throw new RangeError('sort keys of one column exceed 2 GiB')
    offsets[i + 1] = total
  }
  return offsets
}
