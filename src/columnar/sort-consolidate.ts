/**
 * Sorting and consolidating one in-memory `Updates` (user writes, wrong-order runs in a merge):
 * sort by (key, val, time) in a run order, sum the diffs of equal (key, val, time) with wrapping
 * i64 addition, drop zero sums. The output is a sorted, consolidated copy.
 *
 * The sort is a radix sort of 8 bytes of each row's key encoding, taken after the bytes every key
 * shares (a stretch of a sort key orders like the key wherever two stretches differ, when what
 * comes before is equal), then the same for each run of equal stretches with the next 8 bytes
 * (a few levels deep), then a comparison sort of what is still tied. Keys that differ anywhere in
 * their first bytes never reach the comparator; only equal keys (and keys sharing very long
 * prefixes) do.
 */
import { compareRows, firstUnsortedRow, rowOrderKeys, type RowOrderKeys, type SortKeyColumn, type SortOrder } from './sort-key.js'
import { diffWords, shapeOf, UpdatesBuilder, type GatherRows, type Updates } from './updates.js'

/** Below this many rows a comparison sort beats the radix passes. */
const RADIX_MIN_ROWS = 256

/**
 * Working arrays a sort reuses from one call to the next (a writer sorts a buffer after another):
 * fresh arrays of millions of entries cost their page faults every time. NB: the arrays of a
 * result (`sortConsolidated`'s) are valid until the next sort with the same scratch.
 */
export class SortScratch {
  readonly #arrays: Uint32Array[] = []

  /** Array `slot` with room for at least `n` entries (contents unspecified), as a view of exactly `n`. */
  u32(slot: number, n: number): Uint32Array {
    let a = this.#arrays[slot]
    if (a === undefined || a.length < n) {
      a = new Uint32Array(Math.ceil(n * 1.125) + 16)
      this.#arrays[slot] = a
    }
    return a.subarray(0, n)
  }
}

/** The scratch arrays of one sort, by role. */
const Slot = { Perm: 0, Hi: 1, Lo: 2, Idx2: 3, Hi2: 4, Lo2: 5, Row: 6, Time0: 7, Time1: 8, DiffLo: 9, DiffHi: 10, Src: 11 } as const

/** A scratch whose arrays are never kept (fresh arrays each time). */
const FRESH = { u32: (_slot: number, n: number): Uint32Array => new Uint32Array(n) }

/** Row indices of `[0, length)` in (key, val, time) order; the identity when already sorted. */
export function sortPermutation(k: RowOrderKeys, length: number): Uint32Array {
  return sortRows(k, length, FRESH).order
}

/**
 * The rows of `k` sorted and consolidated (see `consolidateInOrder`): one source to gather from.
 * Already sorted rows are only consolidated.
 */
export function sortConsolidated(k: RowOrderKeys, diffs: Uint32Array, length: number, scratch?: SortScratch): GatherRows {
  const memory = scratch ?? FRESH
  const { order, prefixes } = sortRows(k, length, memory)
  return consolidateInOrder(k, diffs, order, length, prefixes, memory)
}

/** Key prefixes of rows in sorted order (see `keyPrefixes`): rows with different prefixes differ. */
interface SortedPrefixes {
  readonly hi: Uint32Array
  readonly lo: Uint32Array
}

function sortRows(k: RowOrderKeys, length: number, memory: Pick<SortScratch, 'u32'>): { order: Uint32Array; prefixes: SortedPrefixes | null } {
  const perm = memory.u32(Slot.Perm, length)
  for (let i = 0; i < length; i++) perm[i] = i
  if (firstUnsortedRow(k, length) === -1) return { order: perm, prefixes: null }
  if (length < RADIX_MIN_ROWS) return { order: perm.sort((x, y) => compareRows(k, x, k, y)), prefixes: null }
  const hi = memory.u32(Slot.Hi, length)
  const lo = memory.u32(Slot.Lo, length)
  const offset = sharedKeyPrefix(k.keys, length)
  keyPrefixes(k.keys, perm, offset, hi, lo)
  const sorted = radixSort(perm, hi, lo, memory.u32(Slot.Idx2, length), memory.u32(Slot.Hi2, length), memory.u32(Slot.Lo2, length))
  refineTies(k, sorted, hi, lo, offset, 0)
  return { order: sorted, prefixes: { hi, lo } }
}

/** Levels of radix sorting of tied rows (8 more key bytes each) before the comparator. */
const MAX_LEVELS = 4

/**
 * Orders each run of rows of `order` whose key stretches (`hi`, `lo`, at `offset`) are equal: by
 * the next 8 key bytes when the run is large and its keys go on, else by the whole row.
 */
function refineTies(k: RowOrderKeys, order: Uint32Array, hi: Uint32Array, lo: Uint32Array, offset: number, level: number): void {
  const n = order.length
  for (let i = 0; i < n; ) {
    let j = i + 1
    while (j < n && hi[j] === hi[i] && lo[j] === lo[i]) j++
    if (j - i > 1) {
      const tied = order.subarray(i, j)
      if (j - i >= RADIX_MIN_ROWS && level < MAX_LEVELS && anyKeyLonger(k.keys, tied, offset + 8)) {
        const h = new Uint32Array(j - i)
        const l = new Uint32Array(j - i)
        keyPrefixes(k.keys, tied, offset + 8, h, l)
        tied.set(radixSort(tied.slice(), h, l, new Uint32Array(j - i), new Uint32Array(j - i), new Uint32Array(j - i)))
        refineTies(k, tied, h, l, offset + 8, level + 1)
      } else if (j - i <= INSERTION_MAX_ROWS) {
        insertionSort(k, tied)
      } else {
        tied.sort((x, y) => compareRows(k, x, k, y))
      }
    }
    i = j
  }
}

/**
 * Tied runs this short are ordered by insertion: most ties are a key written twice or thrice,
 * and `TypedArray.prototype.sort` with a comparator costs a closure and a copy per run.
 */
const INSERTION_MAX_ROWS = 12

/** `rows` in row order (stable). */
function insertionSort(k: RowOrderKeys, rows: Uint32Array): void {
  for (let i = 1; i < rows.length; i++) {
    const x = rows[i]!
    let j = i - 1
    for (; j >= 0 && compareRows(k, rows[j]!, k, x) > 0; j--) rows[j + 1] = rows[j]!
    rows[j + 1] = x
  }
}

/** Bytes at the start of every key (the longest common prefix of the first `length` keys). */
function sharedKeyPrefix(keys: SortKeyColumn, length: number): number {
  const o = keys.offsets
  const b = keys.bytes
  const s0 = o[0]!
  let shared = o[1]! - s0
  for (let i = 1; i < length && shared > 0; i++) {
    const s = o[i]!
    const len = Math.min(shared, o[i + 1]! - s)
    let j = 0
    while (j < len && b[s + j] === b[s0 + j]) j++
    shared = j
  }
  return shared
}

/** Whether some key of the rows `rows` is longer than `offset` bytes. */
function anyKeyLonger(keys: SortKeyColumn, rows: Uint32Array, offset: number): boolean {
  const o = keys.offsets
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!
    if (o[r + 1]! - o[r]! > offset) return true
  }
  return false
}

/** Bytes `[offset, offset + 8)` of the keys of rows `rows`, as big-endian words, zero-padded. */
function keyPrefixes(keys: SortKeyColumn, rows: Uint32Array, offset: number, hi: Uint32Array, lo: Uint32Array): void {
  const o = keys.offsets
  const b = keys.bytes
  for (let p = 0; p < rows.length; p++) {
    const r = rows[p]!
    const s = o[r]! + offset
    const len = o[r + 1]! - s
    if (len >= 8) {
      hi[p] = ((b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!) >>> 0
      lo[p] = ((b[s + 4]! << 24) | (b[s + 5]! << 16) | (b[s + 6]! << 8) | b[s + 7]!) >>> 0
      continue
    }
    let h = 0
    let l = 0
    for (let j = 0; j < len; j++) {
      if (j < 4) h |= b[s + j]! << (24 - 8 * j)
      else l |= b[s + j]! << (24 - 8 * (j - 4))
    }
    hi[p] = h >>> 0
    lo[p] = l >>> 0
  }
}

/** Digit counts of the radix passes (sorts on a thread run one at a time). */
const counts = new Uint32Array(1 << 16)

/**
 * LSD radix sort of `perm` by (hi, lo) in 16-bit digits, skipping digits every row shares, with
 * `idx2`, `h2`, `l2` (as long as `perm`) to move through. `hi` and `lo` are permuted along (on
 * return they are in sorted order); returns the sorted indices (`perm` or `idx2`).
 */
function radixSort(perm: Uint32Array, hi: Uint32Array, lo: Uint32Array, idx2In: Uint32Array, h2In: Uint32Array, l2In: Uint32Array): Uint32Array {
  const n = perm.length
  let idx: Uint32Array = perm
  let h: Uint32Array = hi
  let l: Uint32Array = lo
  let idx2: Uint32Array = idx2In
  let h2: Uint32Array = h2In
  let l2: Uint32Array = l2In
  for (let pass = 0; pass < 4; pass++) {
    const words = pass < 2 ? l : h
    const shift = pass % 2 === 0 ? 0 : 16
    counts.fill(0)
    for (let i = 0; i < n; i++) counts[(words[i]! >>> shift) & 0xffff]!++
    if (counts[(words[0]! >>> shift) & 0xffff] === n) continue
    let sum = 0
    for (let d = 0; d < counts.length; d++) {
      const c = counts[d]!
      counts[d] = sum
      sum += c
    }
    for (let i = 0; i < n; i++) {
      const at = counts[(words[i]! >>> shift) & 0xffff]!++
      idx2[at] = idx[i]!
      h2[at] = h[i]!
      l2[at] = l[i]!
    }
    ;[idx, idx2] = [idx2, idx]
    ;[h, h2] = [h2, h]
    ;[l, l2] = [l2, l]
  }
  if (h !== hi) {
    hi.set(h)
    lo.set(l)
  }
  return idx
}

/**
 * The consolidation of rows visited in `order` (sorted): one entry per distinct (key, val, time),
 * its first row's index and the wrapping sum of the group's diffs; groups summing to zero are
 * dropped. The result gathers from source 0 (see `UpdatesBuilder.appendGathered`). `prefixes`, when
 * given, are the rows' key prefixes in `order`, which spare most comparisons.
 */
export function consolidateInOrder(
  k: RowOrderKeys,
  diffs: Uint32Array,
  order: Uint32Array,
  length: number,
  prefixes: SortedPrefixes | null = null,
  memory: Pick<SortScratch, 'u32'> = FRESH,
): GatherRows {
  const row = memory.u32(Slot.Row, length)
  const time0 = memory.u32(Slot.Time0, length)
  const time1 = memory.u32(Slot.Time1, length)
  const diffLo = memory.u32(Slot.DiffLo, length)
  const hiWords = memory.u32(Slot.DiffHi, length)
  const diffHi = new Int32Array(hiWords.buffer, hiWords.byteOffset, length)
  const major = k.major
  const minor = k.minor
  const pHi = prefixes === null ? null : prefixes.hi
  const pLo = prefixes === null ? null : prefixes.lo
  let rows = 0
  for (let i = 0; i < length; ) {
    const first = order[i]!
    // The group's wrapping i64 sum as words (I64Sum's arithmetic, kept in locals in this hot loop).
    let lo = diffs[2 * first]!
    let hi = diffs[2 * first + 1]! | 0
    let j = i + 1
    // NB: rows whose key prefixes differ differ: only rows with equal prefixes reach the comparator.
    const h = pHi === null ? 0 : pHi[i]!
    const l = pLo === null ? 0 : pLo[i]!
    for (; j < length; j++) {
      if (pHi !== null && pLo !== null && (pHi[j] !== h || pLo[j] !== l)) break
      const r = order[j]!
      if (compareRows(k, first, k, r) !== 0) break
      const sum = lo + diffs[2 * r]!
      hi = (hi + (diffs[2 * r + 1]! | 0) + (sum > 0xffffffff ? 1 : 0)) | 0
      lo = sum >>> 0
    }
    if (lo !== 0 || hi !== 0) {
      row[rows] = first
      time0[rows] = major[first]!
      time1[rows] = minor[first]!
      diffLo[rows] = lo
      diffHi[rows] = hi
      rows++
    }
    i = j
  }
  return { rows, src: memory.u32(Slot.Src, rows).fill(0), row, time0, time1, diffLo, diffHi }
}

/** `u` sorted in `order` and consolidated (equal rows summed, zero sums dropped). */
export function sortAndConsolidate(u: Updates, order: SortOrder): Updates {
  const n = u.length
  const k = rowOrderKeys(u, order)
  const consolidated = sortConsolidated(k, diffWords(u), n)
  const b = new UpdatesBuilder(shapeOf(u), { capacity: consolidated.rows })
  const src = b.bind(u)
  b.appendPermuted(src.keys, src.vals, consolidated)
  return b.finish()
}
