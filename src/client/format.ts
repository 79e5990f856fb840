/** Short human forms of the API's values, shared by the console and compactctl. Pure. */
import type { AntichainJson, DescriptionJson, TimestampJson } from './wire.js'

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const

/** `1.5 MiB`; `—` for a value the server did not send. */
export function formatBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '—'
  let v = n
  let u = 0
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024
    u += 1
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`
}

/** `12,345`; `—` when missing. */
export function formatCount(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '—'
  return n.toLocaleString('en-US')
}

export function formatTimestamp(t: TimestampJson): string {
  return Array.isArray(t) ? `(${t[0]},${t[1]})` : String(t)
}

/** `[5]`, `[]` (the empty frontier: closed for good), `[(0,11),(10,0)]`. */
export function formatFrontier(a: AntichainJson | undefined): string {
  if (a === undefined) return '—'
  return `[${a.map(formatTimestamp).join(',')}]`
}

/** `[lower, upper) since S`. */
export function formatRange(d: DescriptionJson | undefined): string {
  if (d === undefined) return '—'
  return `${formatFrontier(d.lower)}..${formatFrontier(d.upper)}`
}

/** `1.2s`, `3m 4s`, `2h 5m`; `—` when missing. */
export function formatDuration(ms: number | undefined | null): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms) || ms < 0) return '—'
  if (ms < 1000) return `${Math.round(ms)}ms`
  const s = ms / 1000
  if (s < 60) return `${s.toFixed(1)}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`
  return `${Math.floor(m / 60)}h ${m % 60}m`
}

/** Milliseconds between two ISO instants (`to` defaults to now); undefined when `from` is missing. */
export function elapsedMs(from: string | undefined, to?: string, now: number = Date.now()): number | undefined {
  if (from === undefined) return undefined
  const a = Date.parse(from)
  const b = to === undefined ? now : Date.parse(to)
  return Number.isFinite(a) && Number.isFinite(b) ? b - a : undefined
}

/** `2026-12-06 14:03:11` (UTC), for tables. */
export function formatInstant(iso: string | undefined): string {
  if (iso === undefined) return '—'
  const t = Date.parse(iso)
  if (!Number.isFinite(t)) return iso
  return new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

/** A config value as the API shows it: strings bare, the rest as JSON. */
export function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/** The first and last few characters of a long id: `s1b2c…9f0e`. */
export function shortId(id: string, keep = 8): string {
  return id.length <= keep * 2 + 1 ? id : `${id.slice(0, keep + 1)}…${id.slice(-4)}`
}
