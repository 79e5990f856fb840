/**
 * The spine of a shard, laid out for drawing: one row per level (highest first, where the oldest,
 * largest batches live), each spine batch in its column (oldest first, the order of
 * `trace.batches`), with its range, size, runs, and whether a merge in progress covers it. The
 * console draws this as boxes, compactctl as text. Pure.
 */
import type { HollowBatchJson, PartJson, ShardJson, ShardSpineJson, SpineBatchJson, SpineBatchSummaryJson, SpineMergeJson } from './wire.js'

export interface SpineBox {
  readonly id: string
  /** Position in trace.batches, oldest first. */
  readonly column: number
  readonly level: number
  readonly desc: SpineBatchJson['desc']
  readonly len: number
  readonly bytes: number
  /** Hollow batches inside this spine batch. */
  readonly hollow: number
  readonly parts: number
  readonly runs: number
  /** One hollow batch of one run: no merge work left. Unknown (older servers): false. */
  readonly compact: boolean
  /** The merge in progress that covers it, if any. */
  readonly merge: SpineMergeJson | null
}

export interface SpineLevel {
  readonly level: number
  readonly boxes: readonly SpineBox[]
  readonly merge: SpineMergeJson | null
}

export interface SpineLayout {
  readonly columns: number
  /** Highest level first. */
  readonly levels: readonly SpineLevel[]
  readonly totalBytes: number
  readonly backlogBytes: number
}

const partBytes = (p: PartJson): number => p.encodedSizeBytes ?? p.inline?.encodedSizeBytes ?? 0

export const batchBytes = (b: HollowBatchJson): number => b.parts.reduce((s, p) => s + partBytes(p), 0)

/** Runs of a hollow batch: its run metadata when sent, else one more than its splits (none if empty). */
export function batchRuns(b: HollowBatchJson): number {
  if (Array.isArray(b.runMeta)) return b.runMeta.length
  if (b.parts.length === 0) return 0
  return (b.runSplits?.length ?? 0) + 1
}

/** `"3-7"` → [3, 7]; anything else → null. */
export function parseSpineId(id: string): readonly [number, number] | null {
  const m = /^(\d+)-(\d+)$/.exec(id)
  return m === null ? null : [Number(m[1]), Number(m[2])]
}

/** Whether spine id `inner` lies within `outer` (both `lo-hi`). */
export function spineIdWithin(inner: string, outer: string): boolean {
  const a = parseSpineId(inner)
  const b = parseSpineId(outer)
  return a !== null && b !== null && a[0] >= b[0] && a[1] <= b[1]
}

/** A spine batch's counts: as the server counted them (the spine route), or from its batches (the whole shard). */
function spineBatchStats(sb: SpineBatchJson | SpineBatchSummaryJson): SpineBatchSummaryJson['stats'] {
  if (!('batches' in sb)) return sb.stats
  return {
    batches: sb.batches.length,
    parts: sb.batches.reduce((s, b) => s + b.parts.length, 0),
    runs: sb.batches.reduce((s, b) => s + batchRuns(b), 0),
    updates: sb.len,
    encodedBytes: sb.batches.reduce((s, b) => s + batchBytes(b), 0),
  }
}

/** What a spine is drawn from: the spine route's answer (counts) or a whole shard (batches). */
export type SpineSource = Pick<ShardSpineJson, 'trace'> | Pick<ShardJson, 'trace'>

/** The layout of a shard's spine, from the spine route's counts or from a whole shard's batches. */
export function spineLayout(shard: SpineSource): SpineLayout {
  const merges = shard.trace.merges ?? []
  const batches: readonly (SpineBatchJson | SpineBatchSummaryJson)[] = shard.trace.batches
  const boxes: SpineBox[] = batches.map((sb, column) => {
    const stats = spineBatchStats(sb)
    return {
      id: sb.id,
      column,
      level: sb.level,
      desc: sb.desc,
      len: sb.len,
      bytes: stats.encodedBytes,
      hollow: stats.batches,
      parts: stats.parts,
      runs: stats.runs,
      compact: sb.compact === true,
      merge: merges.find((m) => spineIdWithin(sb.id, m.id)) ?? null,
    }
  })
  const levelNumbers = [...new Set([...boxes.map((b) => b.level), ...merges.map((m) => m.level)])].sort((a, b) => b - a)
  return {
    columns: boxes.length,
    levels: levelNumbers.map((level) => ({
      level,
      boxes: boxes.filter((b) => b.level === level),
      merge: merges.find((m) => m.level === level) ?? null,
    })),
    totalBytes: boxes.reduce((s, b) => s + b.bytes, 0),
    backlogBytes: boxes.filter((b) => !b.compact).reduce((s, b) => s + b.bytes, 0),
  }
}
