/**
 * What the operator clients derive from a Compaction record: how far along it is, what its outcome
 * means, and its timeline. Pure; reads the optional fields of newer servers when they are there
 * (`progress.fraction`, `reason`, `attempt`, `instance`) and falls back on the counters otherwise.
 */
import { elapsedMs, formatBytes, formatCount, formatDuration } from './format.js'
import type { CompactionJson } from './wire.js'

const FINAL = new Set(['succeeded', 'failed', 'cancelled', 'skipped', 'not_applied'])

export const isFinal = (c: Pick<CompactionJson, 'status'>): boolean => FINAL.has(c.status)

/** How the operator should read the ending: it did its work, it did nothing, or it went wrong. */
export type Outcome = 'live' | 'done' | 'nothing' | 'failed'

export function outcomeOf(c: CompactionJson): Outcome {
  if (!isFinal(c)) return 'live'
  if (c.status === 'failed' || c.status === 'cancelled') return 'failed'
  if (c.status === 'skipped' || c.status === 'not_applied') return 'nothing'
  return c.result !== undefined && c.result.startsWith('not_applied') ? 'nothing' : 'done'
}

/**
 * Fraction done in [0, 1]: the server's own `progress.fraction` when it sends one; otherwise the
 * larger of merged chunks over planned chunks and rows read over input rows. A finished compaction
 * that succeeded is 1; a live one stays below 1 (NB: rows read may exceed the inputs' Σ len, an
 * upper bound, and a merged last chunk still has its apply ahead).
 */
export function fractionOf(c: CompactionJson): number {
  const p = c.progress
  if (typeof p?.fraction === 'number' && Number.isFinite(p.fraction)) return clamp01(p.fraction)
  if (c.status === 'succeeded' || c.status === 'not_applied') return 1
  const chunks = p !== undefined && p.chunksTotal > 0 ? p.chunksDone / p.chunksTotal : 0
  const rows = p !== undefined && c.inputs?.updates > 0 ? p.updatesRead / c.inputs.updates : 0
  return Math.min(LIVE_MAX, clamp01(Math.max(chunks, rows)))
}

const LIVE_MAX = 0.99

/** The done column of a list: `42%`, or `—` for one that ended without doing its work. */
export function percentLabel(c: CompactionJson): string {
  const o = outcomeOf(c)
  return o === 'failed' || o === 'nothing' ? '—' : `${Math.round(fractionOf(c) * 100)}%`
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x)

/** The status word with the apply result when it says more: `succeeded (applied_exact)`. */
export function statusLabel(c: CompactionJson): string {
  if (c.result !== undefined) return `${c.status} (${c.result})`
  return c.status
}

/** Why it ended as it did, in one line: the error, else the reason, else ''. */
export function whyLine(c: CompactionJson): string {
  if (c.error !== undefined) return `${c.error.code}: ${c.error.message}`
  if (c.reason !== undefined) return `${c.reason.code}: ${c.reason.message}`
  return ''
}

/** `3/8 chunks · 2 applied · 1.2k rows read · 1.2 MiB written · eta 4s`: the counters in one line (an eta only while it runs). */
export function progressLine(c: CompactionJson): string {
  const p = c.progress
  if (p === undefined) return ''
  const parts = [`${p.chunksDone}/${p.chunksTotal} chunks`]
  if (typeof p.chunksApplied === 'number') parts.push(`${p.chunksApplied} applied`)
  parts.push(`${formatCount(p.updatesRead)} rows read`, `${formatBytes(p.bytesWritten)} written`)
  if (typeof p.etaSeconds === 'number' && c.status === 'running') parts.push(`eta ${formatDuration(p.etaSeconds * 1000)}`)
  return parts.join(' · ')
}

export interface TimelineEntry {
  /** ISO instant, when the record carries one. */
  readonly at?: string
  readonly label: string
  readonly detail: string
}

/** queued → started → chunks → the end (status, apply result, reason or error). */
export function timelineOf(c: CompactionJson, now: number = Date.now()): TimelineEntry[] {
  const out: TimelineEntry[] = []
  const attempt = typeof c.attempt === 'number' ? `, attempt ${c.attempt}` : ''
  out.push({ at: c.createdAt, label: 'queued', detail: `by ${c.source}${c.kind !== undefined && c.kind !== 'range' ? `, ${c.kind}` : ''}${attempt}; ${c.inputs?.batches ?? 0} batches, ${formatCount(c.inputs?.updates)} updates, ${formatBytes(c.inputs?.encodedBytes)}` })
  if (c.startedAt !== undefined) {
    const on = typeof c.instance === 'string' ? ` on ${c.instance}` : ''
    const waited = formatDuration(elapsedMs(c.createdAt, c.startedAt, now))
    out.push({ at: c.startedAt, label: 'started', detail: `after ${waited} queued${on}; timeout ${formatDuration(c.timeoutMs)}` })
  }
  if (c.progress !== undefined && (c.progress.chunksTotal > 0 || c.startedAt !== undefined)) {
    out.push({ label: 'chunks', detail: progressLine(c) })
  }
  if (isFinal(c)) {
    const took = c.startedAt !== undefined ? ` after ${formatDuration(elapsedMs(c.startedAt, c.finishedAt, now))} running` : ''
    const why = whyLine(c)
    out.push({ at: c.finishedAt ?? c.createdAt, label: c.status, detail: `${c.result ?? 'no result'}${took}${why === '' ? '' : `; ${why}`}` })
  }
  return out
}
