/**
 * A batch description `{lower, upper, since}`: the batch holds updates with `lower ≤ t` and not
 * `upper ≤ t`, whose times have already been advanced by `since`.
 */
import * as ac from './antichain.js'
import type { Antichain } from './antichain.js'
import type { Timestamp, TimestampJson, TimestampKind } from './timestamp.js'

export interface Description {
  readonly lower: Antichain
  readonly upper: Antichain
  readonly since: Antichain
}

export interface DescriptionJson {
  lower: TimestampJson[]
  upper: TimestampJson[]
  since: TimestampJson[]
}

export function description(lower: Antichain, upper: Antichain, since: Antichain): Description {
  return Object.freeze({ lower, upper, since })
}

/** Whether time `t` lies in `[lower, upper)`. */
export function contains(tk: TimestampKind, desc: Description, t: Timestamp): boolean {
  return ac.lessEqual(tk, desc.lower, t) && !ac.lessEqual(tk, desc.upper, t)
}

export function equals(tk: TimestampKind, a: Description, b: Description): boolean {
  return ac.equals(tk, a.lower, b.lower) && ac.equals(tk, a.upper, b.upper) && ac.equals(tk, a.since, b.since)
}

export function toJson(tk: TimestampKind, d: Description): DescriptionJson {
  return { lower: ac.toJson(tk, d.lower), upper: ac.toJson(tk, d.upper), since: ac.toJson(tk, d.since) }
}

export function parse(tk: TimestampKind, json: unknown): { ok: true; value: Description } | { ok: false; error: string } {
  if (typeof json !== 'object' || json === null) return { ok: false, error: 'a description must be an object {lower, upper, since}' }
  const o = json as Record<string, unknown>
  const parts: Antichain[] = []
  for (const field of ['lower', 'upper', 'since'] as const) {
    const r = ac.parse(tk, o[field])
    if (!r.ok) return { ok: false, error: `${field}: ${r.error}` }
    parts.push(r.value)
  }
  const [lower, upper, since] = parts as [Antichain, Antichain, Antichain]
  return { ok: true, value: description(lower, upper, since) }
}

export function format(tk: TimestampKind, d: Description): string {
  return `{lower: ${ac.format(tk, d.lower)}, upper: ${ac.format(tk, d.upper)}, since: ${ac.format(tk, d.since)}}`
}
