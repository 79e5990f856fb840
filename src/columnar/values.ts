/**
 * Values of schema types as JS values, and their JSON encoding (docs/api.md#json-values):
 *
 * | type    | JS value                 | JSON                                                        |
 * |---------|--------------------------|-------------------------------------------------------------|
 * | utf8    | string                   | string (well-formed Unicode)                                |
 * | binary  | Uint8Array               | base64 string                                               |
 * | int64   | bigint                   | number when safe, else decimal string (both accepted)       |
 * | uint64  | bigint                   | same                                                        |
 * | float64 | number                   | number; `"NaN"`, `"Infinity"`, `"-Infinity"`, `"-0"` as strings |
 * | bool    | boolean                  | boolean                                                     |
 * | unit    | null                     | null                                                        |
 * | struct  | null-prototype object    | object with every field; a missing nullable field reads as null |
 *
 * A top-level key or val is never null (except unit, whose only value is null); a struct field is
 * null only when the schema says it is nullable.
 *
 * NB: struct values are null-prototype objects so a field named `__proto__` or `constructor` is an
 * ordinary field; JSON input is read with `Object.hasOwn` for the same reason.
 */
import type { DataType, StructType } from './data-type.js'
import { err, ok, type Result } from './result.js'

export interface StructValue {
  readonly [field: string]: Value
}
export type Value = string | Uint8Array | bigint | number | boolean | null | StructValue

export type JsonValue = string | number | boolean | null | { [field: string]: JsonValue }

export const INT64_MIN = -(1n << 63n)
export const INT64_MAX = (1n << 63n) - 1n
export const UINT64_MAX = (1n << 64n) - 1n

const SIGNED_DECIMAL = /^(0|-?[1-9][0-9]*)$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const EXPECTED: Record<DataType['type'], string> = {
  utf8: 'utf8 (a string)',
  binary: 'binary (a base64 string)',
  int64: 'int64 (an integer or a decimal string)',
  uint64: 'uint64 (a non-negative integer or a decimal string)',
  float64: 'float64 (a number, or "NaN", "Infinity", "-Infinity", "-0")',
  bool: 'bool (true or false)',
  unit: 'unit (null)',
  struct: 'struct (an object)',
}

/** Parses a JSON value of type `t`. `path` names it in errors (`val.price: expected int64 …`). */
export function parseValue(t: DataType, json: unknown, path: string): Result<Value> {
  if (json === null && t.type !== 'unit') return err(`${path}: must not be null (expected ${EXPECTED[t.type]})`)
  return parseNonNull(t, json, path)
}

/** A value not of type `t`, named by `path`. */
function expected(t: DataType, path: string): Result<Value> {
  return err(`${path}: expected ${EXPECTED[t.type]}`)
}

// NB: no closures in here: it runs per value of a JSON body's slow rows, and under tsx (which keeps
// function names) each closure made costs a defineProperty.
function parseNonNull(t: DataType, json: unknown, path: string): Result<Value> {
  switch (t.type) {
    case 'utf8':
      if (typeof json !== 'string') return expected(t, path)
      if (LONE_SURROGATE.test(json)) return err(`${path}: string is not well-formed Unicode (lone surrogate)`)
      return ok(json)
    case 'binary':
      if (typeof json !== 'string' || !BASE64.test(json)) return expected(t, path)
      {
        const b = Buffer.from(json, 'base64')
        return ok(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
      }
    case 'int64':
    case 'uint64': {
      let v: bigint
      if (typeof json === 'number') {
        if (!Number.isSafeInteger(json)) return err(`${path}: expected ${EXPECTED[t.type]}; numbers beyond 2^53 must be decimal strings`)
        v = BigInt(json)
      } else if (typeof json === 'string' && SIGNED_DECIMAL.test(json) && json.length <= 21) {
        v = BigInt(json)
      } else {
        return expected(t, path)
      }
      if (t.type === 'int64' ? v < INT64_MIN || v > INT64_MAX : v < 0n || v > UINT64_MAX) {
        return err(`${path}: ${v} is out of range for ${t.type}`)
      }
      return ok(v)
    }
    case 'float64':
      if (typeof json === 'number') return ok(json)
      switch (json) {
        case 'NaN':
          return ok(NaN)
        case 'Infinity':
          return ok(Infinity)
        case '-Infinity':
          return ok(-Infinity)
        case '-0':
          return ok(-0)
        default:
          return expected(t, path)
      }
    case 'bool':
      return typeof json === 'boolean' ? ok(json) : expected(t, path)
    case 'unit':
      return json === null ? ok(null) : expected(t, path)
    case 'struct': {
      if (typeof json !== 'object' || json === null || Array.isArray(json)) return expected(t, path)
      const o = json as Record<string, unknown>
      const out = Object.create(null) as Record<string, Value>
      for (const f of t.fields) {
        const fp = `${path}.${f.name}`
        const present = Object.hasOwn(o, f.name)
        const fj = present ? o[f.name] : undefined
        if (fj === undefined || fj === null) {
          if (f.nullable || f.type.type === 'unit') {
            out[f.name] = null
            continue
          }
          return err(present ? `${fp}: must not be null (expected ${EXPECTED[f.type.type]})` : `${fp}: missing non-null field`)
        }
        const r = parseNonNull(f.type, fj, fp)
        if (!r.ok) return r
        out[f.name] = r.value
      }
      for (const k of Object.keys(o)) {
        if (!hasField(t, k)) return err(`${path}.${k}: unknown field`)
      }
      return ok(out)
    }
  }
}

function hasField(t: StructType, name: string): boolean {
  for (const f of t.fields) if (f.name === name) return true
  return false
}

/** JSON form of a value of type `t` (the inverse of `parseValue`). */
export function valueToJson(t: DataType, v: Value): JsonValue {
  switch (t.type) {
    case 'utf8':
      return v as string
    case 'binary':
      return Buffer.from((v as Uint8Array).buffer, (v as Uint8Array).byteOffset, (v as Uint8Array).byteLength).toString('base64')
    case 'int64':
    case 'uint64': {
      const b = v as bigint
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString()
    }
    case 'float64': {
      const n = v as number
      if (Number.isNaN(n)) return 'NaN'
      if (n === Infinity) return 'Infinity'
      if (n === -Infinity) return '-Infinity'
      if (Object.is(n, -0)) return '-0'
      return n
    }
    case 'bool':
      return v as boolean
    case 'unit':
      return null
    case 'struct': {
      const s = v as StructValue
      const out = Object.create(null) as Record<string, JsonValue>
      for (const f of t.fields) {
        const fv = Object.hasOwn(s, f.name) ? s[f.name] : null
        out[f.name] = fv === null || fv === undefined ? null : valueToJson(f.type, fv)
      }
      return out
    }
  }
}
