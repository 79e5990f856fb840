/**
 * The oracle for sorting and consolidating rows of any shape: group by the JSON of (key, val,
 * time), sum with BigInt (wrapping to i64), drop zeros, sort by a reference order of typed values
 * written independently of the encodings under test. Slow and obviously right; tests only.
 */
import { encodeCodecValue } from '../../src/columnar/codec.js'
import { onlyData, valueAt } from '../../src/columnar/column.js'
import { compareBytes, type SortOrder } from '../../src/columnar/sort-key.js'
import { updatesToJson, UpdatesBuilder, type Updates } from '../../src/columnar/updates.js'
import { valueToJson } from '../../src/columnar/values.js'
import { timestampKind } from '../../src/core/timestamp.js'
import { compareTimes, refCompare, type Row, type Shape } from '../columnar/arbitraries.js'

const bytesOrder = (a: Uint8Array, b: Uint8Array): number => Math.sign(compareBytes(a, 0, a.length, b, 0, b.length))

/** `rows` as one `Updates` of `shape`, in the order given. */
export function buildUpdates(shape: Shape, rows: readonly Row[]): Updates {
  const b = new UpdatesBuilder(shape)
  for (const r of rows) b.append(r.key, r.val, r.time, r.diff)
  return b.finish()
}

/** The consolidation of `rows` in `order`, as the JSON text `normalizedJson` gives for updates. */
export function oracleJson(shape: Shape, rows: readonly Row[], order: SortOrder): string {
  const tk = timestampKind(shape.timeKind)
  const groups = new Map<string, { row: Row; sum: bigint }>()
  for (const r of rows) {
    const id = JSON.stringify([valueToJson(shape.keyType, r.key), valueToJson(shape.valType, r.val), tk.toJson(r.time)])
    const g = groups.get(id)
    if (g === undefined) groups.set(id, { row: r, sum: r.diff })
    else g.sum = BigInt.asIntN(64, g.sum + r.diff)
  }
  const cmp = (a: Row, b: Row): number => {
    if (order === 'structured') {
      const k = refCompare(shape.keyType, a.key, b.key)
      if (k !== 0) return k
      const v = refCompare(shape.valType, a.val, b.val)
      if (v !== 0) return v
    } else {
      const k = bytesOrder(encodeCodecValue(shape.keyType, a.key), encodeCodecValue(shape.keyType, b.key))
      if (k !== 0) return k
      const v = bytesOrder(encodeCodecValue(shape.valType, a.val), encodeCodecValue(shape.valType, b.val))
      if (v !== 0) return v
    }
    return compareTimes(a.time, b.time)
  }
  const out = [...groups.values()].filter((g) => g.sum !== 0n).sort((a, b) => cmp(a.row, b.row))
  return JSON.stringify(out.map((g) => ({ key: valueToJson(shape.keyType, g.row.key), val: valueToJson(shape.valType, g.row.val), time: tk.toJson(g.row.time), diff: g.sum.toString() })))
}

/** Updates as the JSON text the oracle writes (diffs as strings). */
export function normalizedJson(us: readonly Updates[]): string {
  return JSON.stringify(us.flatMap((u) => updatesToJson(u)).map((r) => ({ ...r, diff: String(r.diff) })))
}

/** The rows of `u` as the arbitraries' rows (the inverse of `buildUpdates`). */
export function rowsOf(shape: Shape, u: Updates): Row[] {
  const keys = onlyData(u.keys)
  const vals = onlyData(u.vals)
  const out: Row[] = []
  for (let i = 0; i < u.length; i++) {
    const time = u.timeKind === 'u64' ? u.times[i]! : ([u.times.a[i]!, u.times.b[i]!] as [number, number])
    out.push({ key: valueAt(keys, shape.keyType, i), val: valueAt(vals, shape.valType, i), time, diff: u.diffs[i]! })
  }
  return out
}
