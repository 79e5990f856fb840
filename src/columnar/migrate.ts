/**
 * Migrating `Updates` read with an older schema to a newer one that `checkEvolution` allows: new
 * nullable fields read as null, fields made nullable keep their values. Buffers of existing
 * columns are shared, not copied; only new all-null columns are allocated.
 *
 * NB: migration preserves the row order in both run orders (see evolution.ts), so a sorted run
 * stays sorted after migration.
 */
import * as arrow from 'apache-arrow'
import { onlyData } from './column.js'
import { dataTypeEquals, toArrowType, type DataType } from './data-type.js'
import { checkEvolution } from './evolution.js'
import { err, ok, type Result } from './result.js'
import type { Updates } from './updates.js'

/** `u` as values of `keyType`/`valType`; an error sentence if some value would not survive. */
export function migrateUpdates(u: Updates, keyType: DataType, valType: DataType): Result<Updates> {
  const keyErr = checkEvolution(u.keyType, keyType, 'key')
  if (keyErr !== null) return err(`cannot migrate: ${keyErr}`)
  const valErr = checkEvolution(u.valType, valType, 'val')
  if (valErr !== null) return err(`cannot migrate: ${valErr}`)
  const keys = dataTypeEquals(u.keyType, keyType) ? u.keys : new arrow.Vector([migrateData(onlyData(u.keys), u.keyType, keyType)])
  const vals = dataTypeEquals(u.valType, valType) ? u.vals : new arrow.Vector([migrateData(onlyData(u.vals), u.valType, valType)])
  return ok({ ...u, keyType, valType, keys, vals })
}

function migrateData(d: arrow.Data, from: DataType, to: DataType): arrow.Data {
  if (from.type !== 'struct' || to.type !== 'struct') return d
  const children = to.fields.map((f) => {
    const i = from.fields.findIndex((g) => g.name === f.name)
    return i >= 0 ? migrateData(d.children[i]!, from.fields[i]!.type, f.type) : placeholderColumn(f.type, f.nullable, d.length)
  })
  return arrow.makeData({
    type: toArrowType(to) as arrow.Struct,
    offset: d.offset,
    length: d.length,
    nullCount: d.nullCount,
    nullBitmap: d.nullCount > 0 ? (d.nullBitmap as Uint8Array) : new Uint8Array(0),
    children,
  }) as arrow.Data
}

/** A column of `n` nulls (nullable) or zero values (non-null; only under null parents). */
export function placeholderColumn(t: DataType, nullable: boolean, n: number): arrow.Data {
  const isNull = nullable && t.type !== 'unit'
  const nullBitmap = isNull ? new Uint8Array((n + 7) >> 3) : new Uint8Array(0)
  const nullCount = isNull ? n : 0
  const type = toArrowType(t)
  switch (t.type) {
    case 'utf8':
    case 'binary':
      return arrow.makeData({ type: type as arrow.Utf8, length: n, nullCount, nullBitmap, valueOffsets: new Int32Array(n + 1), data: new Uint8Array(0) }) as arrow.Data
    case 'int64':
      return arrow.makeData({ type: type as arrow.Int64, length: n, nullCount, nullBitmap, data: new BigInt64Array(n) }) as arrow.Data
    case 'uint64':
      return arrow.makeData({ type: type as arrow.Uint64, length: n, nullCount, nullBitmap, data: new BigUint64Array(n) }) as arrow.Data
    case 'float64':
      return arrow.makeData({ type: type as arrow.Float64, length: n, nullCount, nullBitmap, data: new Float64Array(n) }) as arrow.Data
    case 'bool':
      return arrow.makeData({ type: type as arrow.Bool, length: n, nullCount, nullBitmap, data: new Uint8Array((n + 7) >> 3) }) as arrow.Data
    case 'unit':
      return arrow.makeData({ type: type as arrow.Null, length: n }) as arrow.Data
    case 'struct':
      return arrow.makeData({
        type: type as arrow.Struct,
        length: n,
        nullCount,
        nullBitmap,
        children: t.fields.map((f) => placeholderColumn(f.type, f.nullable, n)),
      }) as arrow.Data
  }
}
