/**
 * The oracle for the merge kernel: plain sort-and-sum consolidation over row objects with bigint
 * diffs (docs/concepts.md#consolidation). Slow and obviously right; tests only.
 */

/** One update; the time is the word pair (time0, time1), ordered lexicographically. */
export interface ReferenceRow {
  readonly key: Uint8Array
  readonly val: Uint8Array
  readonly time0: number
  readonly time1: number
  /** An i64: sums wrap to the signed 64-bit range. */
  readonly diff: bigint
}

/** Bytewise comparison, a proper prefix first. */
export function compareByteStrings(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!
  }
  return a.length - b.length
}

/** Order of (key, val, time). */
export function compareReferenceRows(a: ReferenceRow, b: ReferenceRow): number {
  return compareByteStrings(a.key, b.key) || compareByteStrings(a.val, b.val) || a.time0 - b.time0 || a.time1 - b.time1
}

/** Sorts by (key, val, time), sums equal (key, val, time) with i64 wrap-around, drops zero sums. */
export function consolidateReference(rows: readonly ReferenceRow[]): ReferenceRow[] {
  const sorted = [...rows].sort(compareReferenceRows)
  const out: ReferenceRow[] = []
  let i = 0
  while (i < sorted.length) {
    const first = sorted[i]!
    let sum = 0n
    let j = i
    while (j < sorted.length && compareReferenceRows(first, sorted[j]!) === 0) {
      sum = BigInt.asIntN(64, sum + sorted[j]!.diff)
      j++
    }
    if (sum !== 0n) out.push({ key: first.key, val: first.val, time0: first.time0, time1: first.time1, diff: sum })
    i = j
  }
  return out
}
