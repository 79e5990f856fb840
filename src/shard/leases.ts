/**
 * Leases: what in-flight work of this process still needs from a shard, so GC neither deletes it
 * nor truncates it away.
 *
 * - A **seqno lease** says "state versions from `seqno` on may still be read": consensus is not
 *   truncated at or above the smallest leased seqno. With a `state`, the parts that state
 *   references count as referenced too (a snapshot reading an older version while compaction
 *   replaces its batches).
 * - A **pin** says "these blob keys are live although no state references them yet": parts
 *   uploaded by a write or a compaction that has not been appended or applied.
 *
 * Both are per-process multisets: acquiring twice needs releasing twice. `release` functions are
 * idempotent. NB: other instances' reads are invisible here: they are covered by the reader leases
 * their instance records in shard state (reader-leases.ts), and GC's grace period.
 */
import type { ShardId } from '../core/ids.js'
import type { SeqNo } from '../location/consensus.js'
import type { ShardState } from './state.js'

export interface Lease {
  readonly seqno: SeqNo
  /** The state held, or null for a lease that only holds back truncation (a command in flight). */
  readonly state: ShardState | null
}

/** Gives the lease or pin back; calling it again does nothing. */
export type Release = () => void

export class Leases {
  readonly #leases = new Map<ShardId, Set<Lease>>()
  readonly #pins = new Map<ShardId, Map<string, number>>()

  /** Holds state versions of `shardId` from `seqno` on (and `state`'s parts) until released. */
  acquire(shardId: ShardId, seqno: SeqNo, state: ShardState | null = null): Release {
    const lease: Lease = Object.freeze({ seqno, state })
    let set = this.#leases.get(shardId)
    if (set === undefined) this.#leases.set(shardId, (set = new Set()))
    set.add(lease)
    let released = false
    return () => {
      if (released) return
      released = true
      const s = this.#leases.get(shardId)
      s?.delete(lease)
      if (s?.size === 0) this.#leases.delete(shardId)
    }
  }

  /** Marks full blob keys of `shardId` as live until released. */
  pin(shardId: ShardId, keys: Iterable<string>): Release {
    const held = [...keys]
    let map = this.#pins.get(shardId)
    if (map === undefined) this.#pins.set(shardId, (map = new Map()))
    for (const k of held) map.set(k, (map.get(k) ?? 0) + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const m = this.#pins.get(shardId)
      if (m === undefined) return
      for (const k of held) {
        const n = (m.get(k) ?? 0) - 1
        if (n <= 0) m.delete(k)
        else m.set(k, n)
      }
      if (m.size === 0) this.#pins.delete(shardId)
    }
  }

  /** The smallest leased seqno of `shardId`, or null when nothing is leased. */
  minSeqno(shardId: ShardId): SeqNo | null {
    let min: SeqNo | null = null
    for (const l of this.#leases.get(shardId) ?? []) if (min === null || l.seqno < min) min = l.seqno
    return min
  }

  /**
   * The smallest seqno of a lease of `shardId` that holds a state (a read in flight), or null when
   * none does; leases of commands (no state) do not count.
   */
  minReadSeqno(shardId: ShardId): SeqNo | null {
    let min: SeqNo | null = null
    for (const l of this.#leases.get(shardId) ?? []) if (l.state !== null && (min === null || l.seqno < min)) min = l.seqno
    return min
  }

  /** The distinct states leased for `shardId`. */
  states(shardId: ShardId): ShardState[] {
    const out = new Set<ShardState>()
    for (const l of this.#leases.get(shardId) ?? []) if (l.state !== null) out.add(l.state)
    return [...out]
  }

  /** The pinned blob keys of `shardId`. */
  pinned(shardId: ShardId): ReadonlySet<string> {
    return new Set(this.#pins.get(shardId)?.keys() ?? [])
  }

  /** Number of leases and pinned keys held for `shardId` (for tests and diagnostics). */
  held(shardId: ShardId): { leases: number; pins: number } {
    return { leases: this.#leases.get(shardId)?.size ?? 0, pins: this.#pins.get(shardId)?.size ?? 0 }
  }
}
