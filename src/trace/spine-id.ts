/**
 * SpineId: the half-open range `[lo, hi)` of insertion ordinals a spine batch (or one of its hollow
 * batches) covers. Every pushed batch takes the next ordinal; a merge covers the union of its inputs'
 * ranges. Printed and stored as `lo-hi`.
 */

export interface SpineId {
  readonly lo: number
  readonly hi: number
}

export function spineId(lo: number, hi: number): SpineId {
  return Object.freeze({ lo, hi })
}

/** Whether `a` covers `b`: `a.lo ≤ b.lo && b.hi ≤ a.hi`. */
export function covers(a: SpineId, b: SpineId): boolean {
  return a.lo <= b.lo && b.hi <= a.hi
}

export function spineIdEquals(a: SpineId, b: SpineId): boolean {
  return a.lo === b.lo && a.hi === b.hi
}

export function formatSpineId(id: SpineId): string {
  return `${id.lo}-${id.hi}`
}

const SPINE_ID = /^(0|[1-9][0-9]*)-(0|[1-9][0-9]*)$/

/** Parses `lo-hi` with `lo < hi`, both safe integers. */
export function parseSpineId(s: unknown): { ok: true; value: SpineId } | { ok: false; error: string } {
  const m = typeof s === 'string' ? SPINE_ID.exec(s) : null
  if (m === null) return { ok: false, error: 'a spine id must be a string "lo-hi"' }
  const lo = Number(m[1])
  const hi = Number(m[2])
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) return { ok: false, error: 'spine id bounds must be safe integers' }
  if (lo >= hi) return { ok: false, error: `spine id ${s as string} must have lo < hi` }
  return { ok: true, value: spineId(lo, hi) }
}
