/**
 * Durations of dynamic configs: held as integer milliseconds, written as `"90s"`, `"1500ms"`,
 * `"2m"`, `"1h"`, `"7d"` or as a JSON integer of milliseconds.
 *
 * The canonical string uses the largest unit that divides the value exactly (90000 → `"90s"`,
 * 120000 → `"2m"`, 1500 → `"1500ms"`, 0 → `"0s"`), so `formatDuration(parseDuration(s))` is
 * stable and every value has exactly one canonical spelling.
 */

export const DURATION_UNITS = ['d', 'h', 'm', 's', 'ms'] as const
export type DurationUnit = (typeof DURATION_UNITS)[number]

/** Milliseconds per unit, largest first (the order `formatDuration` tries them in). */
const MS_PER_UNIT: Readonly<Record<DurationUnit, number>> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 }

const DURATION = /^([0-9]+)(d|h|m|s|ms)$/

export type DurationParse = { ok: true; value: number } | { ok: false; error: string }

/**
 * Parses a duration into milliseconds: a string `<digits><unit>` with unit one of d, h, m, s, ms, or
 * a non-negative safe integer of milliseconds. Returns an error sentence instead of throwing.
 */
export function parseDuration(input: unknown): DurationParse {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return { ok: false, error: 'a duration must be a finite number of milliseconds' }
    if (!Number.isInteger(input)) return { ok: false, error: `a duration in milliseconds must be an integer, got ${input}` }
    if (input < 0) return { ok: false, error: `a duration must not be negative, got ${input}` }
    if (!Number.isSafeInteger(input)) return { ok: false, error: `a duration must be at most ${Number.MAX_SAFE_INTEGER} ms` }
    return { ok: true, value: input }
  }
  if (typeof input !== 'string') {
    return { ok: false, error: 'a duration must be a string like "90s" or an integer of milliseconds' }
  }
  const match = DURATION.exec(input)
  if (match === null) return { ok: false, error: describeBadString(input) }
  const [, digits = '', unit = 'ms'] = match
  const ms = Number(digits) * MS_PER_UNIT[unit as DurationUnit]
  if (!Number.isSafeInteger(ms)) return { ok: false, error: `a duration must be at most ${Number.MAX_SAFE_INTEGER} ms, got "${input}"` }
  return { ok: true, value: ms }
}

/** The canonical string of `ms` (a non-negative safe integer; anything else is a programming error). */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`not a duration in milliseconds: ${ms}`)
  if (ms === 0) return '0s'
  for (const unit of DURATION_UNITS) {
    const per = MS_PER_UNIT[unit]
    if (ms % per === 0) return `${ms / per}${unit}`
  }
  // Unreachable: every integer is a multiple of 1 ms.
  return `${ms}ms`
}

function describeBadString(input: string): string {
  const shown = JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)
  if (input.startsWith('-')) return `a duration must not be negative, got ${shown}`
  if (/^[0-9]*\.[0-9]*[a-z]*$/.test(input)) {
    return `a duration must be a whole number of a unit (write "1500ms", not "1.5s"), got ${shown}`
  }
  if (/^[0-9]+$/.test(input)) return `a duration string needs a unit (d, h, m, s or ms), got ${shown}`
  return `a duration must be a whole number followed by d, h, m, s or ms (like "90s"), got ${shown}`
}
