/**
 * Parsers of the data commands' arguments: frontiers, timestamps and schema types as the API
 * writes them (docs/api.md#timestamps-and-frontiers, docs/api.md#json-values), with a short
 * form or two. Each throws commander's InvalidArgumentError, so a bad value is a usage error
 * naming the flag, before any request.
 */
import { InvalidArgumentError } from 'commander'
import type { AntichainJson, TimestampJson, TypeJson } from '../client/wire.js'

const U64_MAX = (1n << 64n) - 1n

/** A u64 time from its decimal digits: a number when it is safe, else the decimal string. */
function u64(digits: string): TimestampJson {
  if (!/^[0-9]+$/.test(digits) || BigInt(digits) > U64_MAX) throw new InvalidArgumentError(`"${digits}" is not a u64 time (0 to ${U64_MAX})`)
  const n = Number(digits)
  return Number.isSafeInteger(n) ? n : digits
}

/** `5` or `"18446744073709551615"` (u64), or `[3,7]` (product). */
export function parseTimestamp(text: string): TimestampJson {
  const t = text.trim()
  if (!t.startsWith('[')) return u64(t.replace(/^"(.*)"$/, '$1'))
  let v: unknown
  try {
    v = JSON.parse(t)
  } catch {
    throw new InvalidArgumentError(`must be a time: 5 (u64) or [3,7] (product), got ${text}`)
  }
  if (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && (x as number) >= 0)) return v as [number, number]
  throw new InvalidArgumentError(`must be a time: 5 (u64) or [3,7] (product), got ${text}`)
}

/**
 * A frontier as JSON (`[5]`, `[]`, `[[0,11],[10,0]]`), or a bare u64 time for the frontier of that
 * one time (`5` is `[5]`). The server checks it is a frontier of the shard's kind.
 */
export function parseFrontier(text: string): AntichainJson {
  const t = text.trim()
  if (/^[0-9]+$/.test(t)) return [u64(t)]
  let v: unknown
  try {
    v = JSON.parse(t)
  } catch {
    throw new InvalidArgumentError(`must be a JSON frontier like [5], [] or [[0,1]], got ${text}`)
  }
  if (!Array.isArray(v)) throw new InvalidArgumentError(`must be a JSON frontier (an array) like [5], [] or [[0,1]], got ${text}`)
  return v as AntichainJson
}

export const PLAIN_TYPES = ['utf8', 'binary', 'int64', 'uint64', 'float64', 'bool', 'unit'] as const

/**
 * A key or value type: a plain type's name (`utf8`, `int64`, …; `string`, `bytes`, `i64`, `u64`,
 * `f64`, `boolean` too), or the API's Type JSON (`{"type":"struct","fields":[…]}`), which the
 * server checks.
 */
export function parseType(text: string): TypeJson {
  const t = text.trim()
  if (t.startsWith('{')) {
    try {
      return JSON.parse(t) as TypeJson
    } catch {
      throw new InvalidArgumentError(`is not valid JSON: ${text}`)
    }
  }
  const name = ALIASES[t.toLowerCase()] ?? t.toLowerCase()
  if ((PLAIN_TYPES as readonly string[]).includes(name)) return { type: name as (typeof PLAIN_TYPES)[number] }
  throw new InvalidArgumentError(`must be one of ${PLAIN_TYPES.join(', ')}, or a Type as JSON like {"type":"struct","fields":[{"name":"qty","type":{"type":"int64"},"nullable":false}]}`)
}

const ALIASES: Readonly<Record<string, string>> = { string: 'utf8', str: 'utf8', bytes: 'binary', i64: 'int64', u64: 'uint64', f64: 'float64', double: 'float64', boolean: 'bool', null: 'unit' }

/** `utf8`, or the Type as JSON when it is not a plain one. */
export function typeText(t: unknown): string {
  if (typeof t === 'object' && t !== null && Object.keys(t).length === 1 && typeof (t as { type?: unknown }).type === 'string') return (t as { type: string }).type
  return JSON.stringify(t)
}
