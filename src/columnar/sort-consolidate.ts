/**
 * Sorting and consolidating one in-memory `Updates` (user writes, snapshot reads): sort by
 * (key, val, time) in a run order, sum the diffs of equal (key, val, time) with wrapping i64
 * addition, drop zero sums. The output is a sorted, consolidated copy.
 */
import { compareRows, firstUnsortedRow, rowOrderKeys, type RowOrderKeys, type SortOrder } from './sort-key.js'
import { I64Sum, shapeOf, UpdatesBuilder, type Updates } from './updates.js'

/** Row indices of `[0, length)` in (key, val, time) order; the identity when already sorted. */
export function sortPermutation(k: RowOrderKeys, length: number): Uint32Array {
  const perm = new Uint32Array(length)
  for (let i = 0; i < length; i++) perm[i] = i
  if (firstUnsortedRow(k, length) !== -1) perm.sort((x, y) => compareRows(k, x, k, y))
  return perm
}

/** `u` sorted in `order` and consolidated (equal rows summed, zero sums dropped). */
export function sortAndConsolidate(u: Updates, order: SortOrder): Updates {
  const n = u.length
  const k = rowOrderKeys(u, order)
  const perm = sortPermutation(k, n)
  const b = new UpdatesBuilder(shapeOf(u), { capacity: n })
  const src = b.bind(u)
  const dw = src.diffs
  const acc = new I64Sum()
  let i = 0
  while (i < n) {
    const first = perm[i]!
    acc.reset(dw[2 * first]!, dw[2 * first + 1]!)
    let j = i + 1
    for (; j < n; j++) {
      const r = perm[j]!
      if (compareRows(k, first, k, r) !== 0) break
      acc.add(dw[2 * r]!, dw[2 * r + 1]!)
    }
    if (!acc.isZero()) b.appendFrom(src, first, k.major[first]!, k.minor[first]!, acc.lo, acc.hi)
    i = j
  }
  return b.finish()
}
