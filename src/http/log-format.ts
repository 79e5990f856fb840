/**
 * Log destinations for pino (Fastify's logger). `json` writes pino's lines as they are; `pretty`
 * turns each into one readable line for a terminal:
 *
 *   14:32:01.123 INFO  [reqId] request completed  GET /v1/shards 201 3.2ms
 *   14:32:02.004 ERROR request failed  err=STORAGE_ERROR ...
 *       <stack, indented>
 *
 * Fields beyond the usual ones follow as `key=value` (objects as JSON). Colours only on a TTY.
 * NB: a line that is not JSON is written through unchanged, so nothing a logger emits is lost.
 */
import type { LogFormat } from '../settings.js'

/** What pino writes to. */
export interface LogDestination {
  write(line: string): void
}

/** pino's numeric levels. */
const LEVELS: Readonly<Record<number, { readonly name: string; readonly color: string }>> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '36' },
  30: { name: 'INFO ', color: '32' },
  40: { name: 'WARN ', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '35' },
}

/** Fields shown in the line's fixed places, or dropped as noise on a terminal. */
const PLACED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'reqId', 'req', 'res', 'responseTime', 'err'])

/** The destination for `format` (undefined: pino's own, JSON on stdout). */
export function logDestination(format: LogFormat, out: NodeJS.WriteStream = process.stdout): LogDestination | undefined {
  if (format === 'json') return undefined
  const color = out.isTTY === true
  return { write: (chunk) => void out.write(formatLogLine(chunk, color)) }
}

/** One pino JSON line → one readable line (plus an indented stack for errors), newline-terminated. */
export function formatLogLine(chunk: string, color = false): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(chunk) as Record<string, unknown>
  } catch {
    return chunk.endsWith('\n') ? chunk : `${chunk}\n`
  }
  if (typeof entry !== 'object' || entry === null) return chunk.endsWith('\n') ? chunk : `${chunk}\n`
  const paint = (code: string, s: string): string => (color ? `\x1b[${code}m${s}\x1b[0m` : s)
  const level = LEVELS[Number(entry.level)] ?? { name: String(entry.level).toUpperCase().padEnd(5), color: '0' }
  const parts = [clock(entry.time), paint(level.color, level.name)]
  if (typeof entry.reqId === 'string') parts.push(paint('90', `[${entry.reqId}]`))
  parts.push(String(entry.msg ?? ''))

  const detail: string[] = []
  const req = entry.req as { method?: unknown; url?: unknown } | undefined
  if (req !== undefined && req !== null) detail.push(`${String(req.method)} ${String(req.url)}`)
  const res = entry.res as { statusCode?: unknown } | undefined
  if (res !== undefined && res !== null) detail.push(String(res.statusCode))
  if (typeof entry.responseTime === 'number') detail.push(`${entry.responseTime.toFixed(1)}ms`)
  for (const [key, value] of Object.entries(entry)) {
    if (PLACED.has(key) || value === undefined) continue
    detail.push(`${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
  }
  const err = entry.err as { type?: unknown; message?: unknown; stack?: unknown } | undefined
  const stack = typeof err?.stack === 'string' ? err.stack : undefined
  if (err !== undefined && err !== null && stack === undefined) detail.push(`err=${String(err.type ?? 'Error')}: ${String(err.message ?? '')}`)

  let line = parts.join(' ')
  if (detail.length > 0) line += `  ${detail.join(' ')}`
  if (stack !== undefined) line += `\n${stack.replace(/^/gm, '    ')}`
  return `${line}\n`
}

function clock(time: unknown): string {
  const d = new Date(typeof time === 'number' ? time : Date.now())
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}
