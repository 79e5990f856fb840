/**
 * Splitting one chunk between two workers by key (our addition to persist's Stage D): the lower
 * half merges keys below a split key, the upper half the rest, and their outputs, concatenated,
 * are one sorted run. The split key balances the bytes each half reads, estimated from the parts'
 * key lowers and keys sampled out of runs' first parts when those are large (`worthSampling`).
 */
import type { BatchPart } from '../core/batch.js'
import { decodePart, PART_BATCH_BYTES } from '../columnar/part-format.js'
import { sortKeyLowerAt, type SortOrder } from '../columnar/sort-key.js'
import { sortedIn, type Chunk, type PlannedRun } from './runs.js'

/** Keys sampled from one part. */
const SAMPLES_PER_PART = 64

/**
 * A run's first part is sampled only from this size up. A smaller one (a window of a large part
 * is one record batch, about `PART_BATCH_BYTES`) counts half below any split key inside it, which
 * moves the balance by at most half its bytes per run; sampling it would mean decoding it on the
 * main thread before the chunk's tasks could start.
 */
export const SAMPLE_MIN_PART_BYTES = 2 * PART_BATCH_BYTES

/** One run as one half of a split chunk sees it: the indices of the parts it needs. */
export interface RangeRun {
  readonly run: PlannedRun
  readonly parts: readonly number[]
}

export interface KeyRangeTask {
  readonly keyRange: { readonly lower: Uint8Array | null; readonly upper: Uint8Array | null } | undefined
  readonly runs: readonly RangeRun[]
}

export interface KeySplit {
  readonly tasks: readonly KeyRangeTask[]
  /**
   * How many halves read part `i` of `run` from one fetched copy, kept until each has taken it:
   * two only for a run's first part read by both (both start with it); a later part read by both
   * is the upper half's first and the lower half's last, so each half fetches it when it gets
   * there rather than one copy being held for the whole chunk.
   */
  sharers(run: PlannedRun, i: number): number
}

/**
 * Whether a run's key lowers and samples are usable: its parts are sorted by key in `order`, and
 * written with the compaction's schema, so their sort-key bytes are those the workers compare.
 * NB: a part of an older schema encodes its keys in its own key type; a lower compared in that
 * encoding could wrongly keep a part from the half whose keys it holds.
 */
export function splittable(run: PlannedRun, order: SortOrder, schemaId: number): boolean {
  return sortedIn(run, order) && run.meta.schemaId === schemaId
}

/** Whether `run`'s first part is worth sampling for a split (`sampleKeys`): usable and large. */
export function worthSampling(run: PlannedRun, order: SortOrder, schemaId: number): boolean {
  const first = run.parts[0]
  return first !== undefined && first.encodedSizeBytes >= SAMPLE_MIN_PART_BYTES && splittable(run, order, schemaId)
}

/**
 * Sort keys (in `order`) of evenly spaced rows of a part's bytes, each cut to
 * `KEY_LOWER_MAX_BYTES` (see the NB in `splitByKey`).
 */
export function sampleKeys(bytes: Uint8Array, order: SortOrder, count = SAMPLES_PER_PART): Uint8Array[] {
  const { updates: u } = decodePart(bytes)
  const out: Uint8Array[] = []
  for (let s = 0; s < count && u.length > 0; s++) out.push(sortKeyLowerAt(u, Math.min(u.length - 1, Math.floor(((s + 0.5) * u.length) / count)), order))
  return out
}

/**
 * A candidate whose bytes `below` it come closest to `target` (default: half of `total`), given
 * that `below` never falls as the key grows: a binary search for where it crosses the target, not
 * one count per candidate (a chunk of 16 runs has ~1,000 candidates, and counting for each blocked
 * the event loop for ~60 ms). Sorts `candidates` (at least one).
 */
export function balancedKey(candidates: Uint8Array[], below: (key: Uint8Array) => number, total: number, target = total / 2): Uint8Array {
  candidates.sort(Buffer.compare)
  let lo = 0
  let hi = candidates.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (below(candidates[mid] as Uint8Array) >= target) hi = mid
    else lo = mid + 1
  }
  const imbalance = (key: Uint8Array): number => Math.abs(below(key) - target)
  const after = candidates[lo] as Uint8Array
  const before = candidates[lo - 1]
  return before !== undefined && imbalance(before) <= imbalance(after) ? before : after
}

/**
 * Splits `chunk` into two key ranges at the key that best balances the bytes on either side (or,
 * with `upperBytes`, that leaves about that many bytes above it); each half reads only the parts
 * whose key span reaches into its range. Keys equal to the split key
 * all go to the upper half, so a (key, value) is never split. One task (no split) when there is
 * one worker or nothing to split at. `schemaId`: the compaction's schema (see `splittable`).
 *
 * `samples[r]`: keys sampled from the first part of `chunk.runs[r]` (empty when not sampled). A
 * sampled part's bytes count below a candidate in proportion to its samples below it; any other
 * part counts wholly below when the next part starts at or before the candidate, wholly above
 * when it starts at or after it, half otherwise.
 *
 * NB: a part spanning the split key is read by both halves (see `sharers` for when from one copy).
 */
export function splitByKey(chunk: Chunk, order: SortOrder, schemaId: number, workers: number, samples: readonly (readonly Uint8Array[])[], upperBytes?: number): KeySplit {
  const whole: KeySplit = { tasks: [{ keyRange: undefined, runs: chunk.runs.map((run) => ({ run, parts: run.parts.map((_, i) => i) })) }], sharers: () => 1 }
  if (workers < 2) return whole
  const lowers = chunk.runs.map((run) =>
    run.parts.map((p, i): Uint8Array | null => {
      if (i === 0 || p.kind !== 'hollow' || p.keyLower === '' || !splittable(run, order, schemaId)) return null
      return Buffer.from(p.keyLower, 'base64')
    }),
  )
  const candidates: Uint8Array[] = []
  chunk.runs.forEach((run, r) => {
    if (!splittable(run, order, schemaId)) return
    for (const k of samples[r] ?? []) candidates.push(k)
    for (const k of lowers[r] as (Uint8Array | null)[]) if (k !== null) candidates.push(k)
  })
  if (candidates.length === 0) return whole
  const size = (run: PlannedRun, i: number): number => (run.parts[i] as BatchPart).encodedSizeBytes
  const bytesBelow = (split: Uint8Array): number => {
    let below = 0
    chunk.runs.forEach((run, r) => {
      const ls = lowers[r] as (Uint8Array | null)[]
      const sampled = samples[r] ?? []
      for (let i = 0; i < run.parts.length; i++) {
        if (i === 0 && sampled.length > 0) {
          below += (size(run, i) * sampled.filter((k) => Buffer.compare(k, split) < 0).length) / sampled.length
          continue
        }
        const lo = ls[i] ?? null
        const hi = ls[i + 1] ?? null
        if (hi !== null && Buffer.compare(hi, split) <= 0) below += size(run, i)
        else if (lo === null || Buffer.compare(lo, split) < 0) below += size(run, i) / 2
      }
    })
    return below
  }
  const total = chunk.runs.reduce((s, r) => s + r.parts.reduce((t, p) => t + p.encodedSizeBytes, 0), 0)
  const split = balancedKey(candidates, bytesBelow, total, upperBytes === undefined ? total / 2 : total - upperBytes)
  const needs = (r: number, i: number, half: 0 | 1): boolean => {
    const run = chunk.runs[r] as PlannedRun
    const ls = lowers[r] as (Uint8Array | null)[]
    // Part i holds keys in [lower_i, lower_{i+1}] (equal keys may straddle a part boundary).
    const lo = ls[i] ?? null
    const hi = ls[i + 1] ?? null
    // NB: a key lower cut to KEY_LOWER_MAX_BYTES is a prefix P of the next part's first key K, and
    // the split key (a stored key lower or a sample cut the same way) is at most that long:
    // nothing that short lies strictly between P and K, so comparing the split with P answers as
    // comparing it with K would.
    const known = (i === 0 || lo !== null) && (i + 1 === run.parts.length || hi !== null)
    if (!known) return true
    return half === 0 ? lo === null || Buffer.compare(lo, split) < 0 : hi === null || Buffer.compare(hi, split) >= 0
  }
  const tasks = ([0, 1] as const).map((half) => ({
    keyRange: half === 0 ? { lower: null, upper: split } : { lower: split, upper: null },
    runs: chunk.runs.map((run, r) => ({ run, parts: run.parts.map((_, i) => i).filter((i) => needs(r, i, half)) })),
  }))
  const index = new Map(chunk.runs.map((run, r) => [run, r]))
  return {
    tasks,
    sharers: (run, i) => {
      const r = index.get(run) as number
      return i === 0 && needs(r, i, 0) && needs(r, i, 1) ? 2 : 1
    },
  }
}
