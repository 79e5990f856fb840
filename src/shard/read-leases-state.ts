/**
 * Reader leases in shard state: pure transitions over `ShardState.leases` (state.ts).
 *
 * A lease `{ id, instance, seqno, expiresAt }` says "instance may still read state versions from
 * `seqno` on until `expiresAt`". GC on every instance keeps the parts any version from the oldest
 * live lease's seqno up to the head references, and truncates no version at or above it (gc.ts).
 * An expired lease protects nothing: it is dropped by the next hold of any instance or by GC.
 *
 * NB: "expired" is judged by the clock of whoever looks. Holders renew long before expiry
 * (reader-leases.ts), so clocks may differ by up to a quarter of the lease duration.
 */
import { breakWith, continueWith, type Transition } from './machine.js'
import { isDeleted, type ReadLease, type ShardState } from './state.js'

/** Whether `lease` lapsed at `nowMs` (ms since epoch). */
export const isExpired = (lease: ReadLease, nowMs: number): boolean => Date.parse(lease.expiresAt) <= nowMs

/** The leases of `s` still live at `nowMs`. */
export function liveLeases(s: ShardState, nowMs: number): readonly ReadLease[] {
  return (s.leases ?? []).filter((l) => !isExpired(l, nowMs))
}

/** The smallest seqno of a lease of `s` live at `nowMs`, or null when none is. */
export function oldestLiveLeaseSeqno(s: ShardState, nowMs: number): number | null {
  let min: number | null = null
  for (const l of liveLeases(s, nowMs)) if (min === null || l.seqno < min) min = l.seqno
  return min
}

export type HoldLeaseResult = { readonly kind: 'held'; readonly lease: ReadLease } | { readonly kind: 'deleted'; readonly deletedAt: string }

/**
 * Holds (or renews) `lease`: replaces the lease with its id, or adds it, and drops the leases of
 * others expired at `nowMs` on the way. A tombstone takes no lease (GC ignores them there).
 */
export function holdReadLease(s: ShardState, lease: ReadLease, nowMs: number): Transition<ShardState, HoldLeaseResult> {
  if (isDeleted(s)) return breakWith({ kind: 'deleted', deletedAt: s.deletedAt as string })
  const held = Object.freeze({ id: lease.id, instance: lease.instance, seqno: lease.seqno, expiresAt: lease.expiresAt })
  // The lease keeps its place among the others (a renewal does not reorder what the API shows).
  const leases = (s.leases ?? []).filter((l) => l.id === lease.id || !isExpired(l, nowMs)).map((l) => (l.id === lease.id ? held : l))
  if (!leases.includes(held)) leases.push(held)
  return continueWith({ ...s, leases }, { kind: 'held', lease: held })
}

/** Releases the lease `id`; true when there was one. A tombstone is left as it is. */
export function releaseReadLease(s: ShardState, id: string): Transition<ShardState, boolean> {
  if (isDeleted(s) || !(s.leases ?? []).some((l) => l.id === id)) return breakWith(false)
  return continueWith(withLeases(s, (s.leases ?? []).filter((l) => l.id !== id)), true)
}

/** Drops every lease expired at `nowMs`; the number dropped. A tombstone is left as it is. */
export function dropExpiredLeases(s: ShardState, nowMs: number): Transition<ShardState, number> {
  if (isDeleted(s)) return breakWith(0)
  const current = s.leases ?? []
  const kept = current.filter((l) => !isExpired(l, nowMs))
  if (kept.length === current.length) return breakWith(0)
  return continueWith(withLeases(s, kept), current.length - kept.length)
}

/** `s` with `leases` (the field left out when there are none, as in states from before leases). */
function withLeases(s: ShardState, leases: readonly ReadLease[]): ShardState {
  const { leases: _dropped, ...rest } = s
  return leases.length === 0 ? rest : { ...rest, leases }
}
