/**
 * Antichains (frontiers): sets of mutually incomparable timestamps, held canonical: minimal
 * elements only, no duplicates, sorted by the kind's total `compare`. Every function here returns
 * a canonical antichain; every one that takes antichains expects canonical ones.
 *
 * NB: the empty antichain `[]` is "the end of time": no time is at or beyond it. As an upper it
 * means "closed forever"; as a since it means everything was compacted away.
 */
import type { Timestamp, TimestampJson, TimestampKind } from './timestamp.js'

export type Antichain = readonly Timestamp[]

/** Canonical form of any set of timestamps: its minimal elements, sorted, deduplicated. */
export function canonical(tk: TimestampKind, elements: readonly Timestamp[]): Antichain {
  const minimal: Timestamp[] = []
  for (const t of elements) {
    if (elements.some((o) => tk.lessEqual(o, t) && !tk.equals(o, t))) continue
    if (minimal.some((m) => tk.equals(m, t))) continue
    minimal.push(t)
  }
  return minimal.sort((a, b) => tk.compare(a, b))
}

/** The antichain `[minimum]`: every time is at or beyond it. */
export function minimumFrontier(tk: TimestampKind): Antichain {
  return [tk.minimum]
}

/** Whether some element of `frontier` is ≤ `t` (`t` is at or beyond the frontier). */
export function lessEqual(tk: TimestampKind, frontier: Antichain, t: Timestamp): boolean {
  return frontier.some((f) => tk.lessEqual(f, t))
}

/** Whether some element of `frontier` is strictly less than `t`. */
export function lessThan(tk: TimestampKind, frontier: Antichain, t: Timestamp): boolean {
  return frontier.some((f) => tk.lessEqual(f, t) && !tk.equals(f, t))
}

/** Frontier order: `a ≤ b` iff every element of `b` is at or beyond `a`. */
export function frontierLessEqual(tk: TimestampKind, a: Antichain, b: Antichain): boolean {
  return b.every((t) => lessEqual(tk, a, t))
}

export function equals(tk: TimestampKind, a: Antichain, b: Antichain): boolean {
  return a.length === b.length && a.every((t, i) => tk.equals(t, b[i] as Timestamp))
}

/** Frontier order, strict: `a ≤ b` and `a ≠ b`. */
export function frontierLessThan(tk: TimestampKind, a: Antichain, b: Antichain): boolean {
  return frontierLessEqual(tk, a, b) && !equals(tk, a, b)
}

/** Least upper bound of two frontiers: minimal elements of all pairwise joins (`[]` absorbs). */
export function join(tk: TimestampKind, a: Antichain, b: Antichain): Antichain {
  const out: Timestamp[] = []
  for (const x of a) for (const y of b) out.push(tk.join(x, y))
  return canonical(tk, out)
}

/** Greatest lower bound of two frontiers: minimal elements of their union. */
export function meet(tk: TimestampKind, a: Antichain, b: Antichain): Antichain {
  return canonical(tk, [...a, ...b])
}

/**
 * Advances `t` by `frontier`: unchanged when the frontier is empty, else the meet over the
 * frontier's elements of `join(t, f)`. The result is ≥ `t` and compares with every time beyond the
 * frontier exactly as `t` does.
 */
export function advanceBy(tk: TimestampKind, t: Timestamp, frontier: Antichain): Timestamp {
  let out: Timestamp | undefined
  for (const f of frontier) {
    const j = tk.join(t, f)
    out = out === undefined ? j : tk.meet(out, j)
  }
  return out ?? t
}

export function toJson(tk: TimestampKind, a: Antichain): TimestampJson[] {
  return a.map((t) => tk.toJson(t))
}

/**
 * Parses a JSON frontier. Duplicates and order are forgiven (the result is canonical); two distinct
 * comparable elements are not, since that is almost always a mistake in the request.
 */
export function parse(tk: TimestampKind, json: unknown): { ok: true; value: Antichain } | { ok: false; error: string } {
  if (!Array.isArray(json)) return { ok: false, error: `a ${tk.name} frontier must be an array of timestamps` }
  const elements: Timestamp[] = []
  for (const [i, item] of json.entries()) {
    const parsed = tk.parse(item)
    if (!parsed.ok) return { ok: false, error: `element ${i}: ${parsed.error}` }
    elements.push(parsed.value)
  }
  for (const x of elements) {
    for (const y of elements) {
      if (tk.lessEqual(x, y) && !tk.equals(x, y)) {
        return { ok: false, error: `not an antichain: ${tk.format(x)} and ${tk.format(y)} are comparable` }
      }
    }
  }
  return { ok: true, value: canonical(tk, elements) }
}

export function format(tk: TimestampKind, a: Antichain): string {
  return `[${a.map((t) => tk.format(t)).join(', ')}]`
}
