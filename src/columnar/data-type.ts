/**
 * Schema types of keys and values: `utf8 | binary | int64 | uint64 | float64 | bool | unit` and
 * `struct` of named fields, as immutable values discriminated by `type`.
 *
 * JSON form (docs/api.md#json-values): `{"type":"utf8"}`, `{"type":"struct","fields":[{"name","type","nullable"}]}`.
 *
 * NB: `unit` has exactly one value (JSON `null`, Arrow `Null`); a nullable unit field is accepted
 * but cannot tell "null" from "unit". Its Arrow field is always written nullable, because Arrow's
 * Null type has no validity buffer.
 */
import * as arrow from 'apache-arrow'
import { err, ok, type Result } from './result.js'

export const SCALAR_TYPE_NAMES = ['utf8', 'binary', 'int64', 'uint64', 'float64', 'bool', 'unit'] as const
export type ScalarTypeName = (typeof SCALAR_TYPE_NAMES)[number]
export const TYPE_NAMES = [...SCALAR_TYPE_NAMES, 'struct'] as const
export type TypeName = (typeof TYPE_NAMES)[number]

export interface Utf8Type { readonly type: 'utf8' }
export interface BinaryType { readonly type: 'binary' }
export interface Int64Type { readonly type: 'int64' }
export interface Uint64Type { readonly type: 'uint64' }
export interface Float64Type { readonly type: 'float64' }
export interface BoolType { readonly type: 'bool' }
export interface UnitType { readonly type: 'unit' }

export interface StructField {
  readonly name: string
  readonly type: DataType
  readonly nullable: boolean
}

export interface StructType {
  readonly type: 'struct'
  readonly fields: readonly StructField[]
}

export type ScalarType = Utf8Type | BinaryType | Int64Type | Uint64Type | Float64Type | BoolType | UnitType
export type DataType = ScalarType | StructType

/** JSON form of a type, as the API takes and returns it. */
export type DataTypeJson =
  | { type: ScalarTypeName }
  | { type: 'struct'; fields: { name: string; type: DataTypeJson; nullable: boolean }[] }

/** Deepest struct nesting accepted from input (guards recursion on untrusted JSON and Arrow schemas). */
export const MAX_TYPE_DEPTH = 32
/** Most fields accepted in one type, counted over all levels. */
export const MAX_TYPE_FIELDS = 4096
/** Longest field name accepted, in UTF-16 code units. */
export const MAX_FIELD_NAME_LENGTH = 256

const scalars: { readonly [N in ScalarTypeName]: Extract<ScalarType, { type: N }> } = Object.freeze({
  utf8: Object.freeze({ type: 'utf8' }),
  binary: Object.freeze({ type: 'binary' }),
  int64: Object.freeze({ type: 'int64' }),
  uint64: Object.freeze({ type: 'uint64' }),
  float64: Object.freeze({ type: 'float64' }),
  bool: Object.freeze({ type: 'bool' }),
  unit: Object.freeze({ type: 'unit' }),
})

/** The shared, frozen instance of a scalar type. */
export function scalar<N extends ScalarTypeName>(name: N): Extract<ScalarType, { type: N }> {
  return scalars[name]
}

export const utf8 = scalars.utf8
export const binary = scalars.binary
export const int64 = scalars.int64
export const uint64 = scalars.uint64
export const float64 = scalars.float64
export const bool = scalars.bool
export const unit = scalars.unit

export function field(name: string, type: DataType, nullable = false): StructField {
  return Object.freeze({ name, type, nullable })
}

/** A struct type. Throws on invalid fields (use `parseDataType` for untrusted input). */
export function struct(fields: readonly StructField[]): StructType {
  const t: StructType = Object.freeze({ type: 'struct', fields: Object.freeze(fields.map((f) => field(f.name, f.type, f.nullable))) })
  const r = parseDataType(dataTypeToJson(t), 'struct')
  if (!r.ok) throw new TypeError(r.error)
  return t
}

const isScalarName = (s: unknown): s is ScalarTypeName => (SCALAR_TYPE_NAMES as readonly unknown[]).includes(s)

/**
 * Parses and validates a JSON type. Errors name the JSON path from `path`
 * (e.g. `keySchema.fields[1].name: duplicate field name "a"`).
 */
export function parseDataType(json: unknown, path = 'schema'): Result<DataType> {
  const budget = { fields: 0 }
  return parseAt(json, path, 0, budget)
}

function parseAt(json: unknown, path: string, depth: number, budget: { fields: number }): Result<DataType> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return err(`${path}: a type must be an object like {"type":"utf8"}`)
  }
  const o = json as Record<string, unknown>
  const t = o.type
  if (typeof t !== 'string') return err(`${path}.type: must be a string, one of ${TYPE_NAMES.join(', ')}`)
  if (isScalarName(t)) {
    for (const k of Object.keys(o)) if (k !== 'type') return err(`${path}.${k}: unknown property of a ${t} type`)
    return ok(scalars[t])
  }
  if (t !== 'struct') return err(`${path}.type: unknown type ${JSON.stringify(t)}; expected one of ${TYPE_NAMES.join(', ')}`)
  for (const k of Object.keys(o)) if (k !== 'type' && k !== 'fields') return err(`${path}.${k}: unknown property of a struct type`)
  if (depth >= MAX_TYPE_DEPTH) return err(`${path}: structs nest deeper than ${MAX_TYPE_DEPTH} levels`)
  if (!Array.isArray(o.fields)) return err(`${path}.fields: must be an array of fields`)
  const fields: StructField[] = []
  const seen = new Set<string>()
  for (const [i, fj] of o.fields.entries()) {
    const at = `${path}.fields[${i}]`
    if (++budget.fields > MAX_TYPE_FIELDS) return err(`${at}: a type may have at most ${MAX_TYPE_FIELDS} fields in all`)
    if (typeof fj !== 'object' || fj === null || Array.isArray(fj)) return err(`${at}: a field must be an object {name, type, nullable}`)
    const f = fj as Record<string, unknown>
    for (const k of Object.keys(f)) {
      if (k !== 'name' && k !== 'type' && k !== 'nullable') return err(`${at}.${k}: unknown property of a field`)
    }
    if (typeof f.name !== 'string') return err(`${at}.name: must be a string`)
    if (f.name.length === 0) return err(`${at}.name: must not be empty`)
    if (f.name.length > MAX_FIELD_NAME_LENGTH) return err(`${at}.name: must be at most ${MAX_FIELD_NAME_LENGTH} characters`)
    if (seen.has(f.name)) return err(`${at}.name: duplicate field name ${JSON.stringify(f.name)}`)
    seen.add(f.name)
    const nullable = f.nullable ?? false
    if (typeof nullable !== 'boolean') return err(`${at}.nullable: must be a boolean`)
    if (f.type === undefined) return err(`${at}.type: missing`)
    const ft = parseAt(f.type, `${at}.type`, depth + 1, budget)
    if (!ft.ok) return ft
    fields.push(field(f.name, ft.value, nullable))
  }
  return ok(Object.freeze({ type: 'struct', fields: Object.freeze(fields) }))
}

export function dataTypeToJson(t: DataType): DataTypeJson {
  if (t.type !== 'struct') return { type: t.type }
  return { type: 'struct', fields: t.fields.map((f) => ({ name: f.name, type: dataTypeToJson(f.type), nullable: f.nullable })) }
}

/** Structural equality: same types, same field names in the same order, same nullability. */
export function dataTypeEquals(a: DataType, b: DataType): boolean {
  if (a === b) return true
  if (a.type !== 'struct' || b.type !== 'struct') return a.type === b.type
  if (a.fields.length !== b.fields.length) return false
  for (let i = 0; i < a.fields.length; i++) {
    const x = a.fields[i]!
    const y = b.fields[i]!
    if (x.name !== y.name || x.nullable !== y.nullable || !dataTypeEquals(x.type, y.type)) return false
  }
  return true
}

/** Printable form: `int64`, `struct<id: uint64, name?: utf8>` (`?` marks a nullable field). */
export function formatDataType(t: DataType): string {
  if (t.type !== 'struct') return t.type
  return `struct<${t.fields.map((f) => `${f.name}${f.nullable ? '?' : ''}: ${formatDataType(f.type)}`).join(', ')}>`
}

/** Whether the Arrow field for a value of this type is written nullable. */
function arrowNullable(t: DataType, nullable: boolean): boolean {
  return nullable || t.type === 'unit'
}

/** The Arrow type of a column of this type (unit is Arrow `Null`). */
export function toArrowType(t: DataType): arrow.DataType {
  switch (t.type) {
    case 'utf8':
      return new arrow.Utf8()
    case 'binary':
      return new arrow.Binary()
    case 'int64':
      return new arrow.Int64()
    case 'uint64':
      return new arrow.Uint64()
    case 'float64':
      return new arrow.Float64()
    case 'bool':
      return new arrow.Bool()
    case 'unit':
      return new arrow.Null()
    case 'struct':
      return new arrow.Struct(t.fields.map((f) => new arrow.Field(f.name, toArrowType(f.type), arrowNullable(f.type, f.nullable))))
  }
}
