/**
 * Recently seen shard states, so that a snapshot read need not read the head from consensus
 * every time: a snapshot at `asOf` is fully determined by any committed state with `since ≤ asOf`
 * and `asOf` not beyond its `upper` (times at or before asOf can no longer change), so a state
 * this process saw a moment ago serves every such read.
 *
 * NB: a state older than the head may reference parts that a compaction has since replaced. GC
 * deletes a part only after it was unreferenced for the whole GC grace period, so a state read
 * less than that long ago still has all its parts, and the read's lease (leases.ts) keeps them
 * from then on. States are therefore served for at most `min(maxAgeMs, gcGraceMs / 2)`; with no
 * grace, never.
 * Against other instances' GC, the instance's reader lease in shard state covers a remembered state
 * only when its seqno is at or above the lease's (reader-leases.ts); an older one makes the read
 * commit the lease and read the state that commit produced instead.
 *
 * What a client may notice: for up to `maxAgeMs` after another instance (or a concurrent command
 * of this one) changes a shard, a read may still answer from the state before it: the snapshot as
 * of that state (which is never wrong for the asOf it served), or AS_OF_NOT_AVAILABLE when the
 * asOf is beyond what that state knew (the head is then read again before answering).
 */
import type { ShardId } from '../core/ids.js'
import type { Versioned } from './machine.js'
import type { ShardState } from './state.js'

/** Default longest age of a state served from memory. */
export const RECENT_STATE_MAX_AGE_MS = 1_000

/** Most shards remembered (the least recently stored are forgotten first). */
const MAX_ENTRIES = 4096

interface Entry {
  readonly state: Versioned<ShardState>
  readonly at: number
}

export class RecentStates {
  readonly #maxAgeMs: number
  readonly #now: () => number
  readonly #entries = new Map<ShardId, Entry>()
  /** Head reads in flight for `getOrRead`, per shard. */
  readonly #reading = new Map<ShardId, Promise<Versioned<ShardState>>>()

  constructor(opts: { readonly maxAgeMs: number; readonly gcGraceMs: number; readonly now?: () => number }) {
    this.#maxAgeMs = Math.max(0, Math.min(opts.maxAgeMs, opts.gcGraceMs / 2))
    this.#now = opts.now ?? (() => performance.now())
  }

  /** The latest state seen of `shardId` if it is recent enough, else null. */
  get(shardId: ShardId): Versioned<ShardState> | null {
    const e = this.#entries.get(shardId)
    if (e === undefined) return null
    if (this.#now() - e.at >= this.#maxAgeMs) {
      this.#entries.delete(shardId)
      return null
    }
    return e.state
  }

  /**
   * The latest state seen of `shardId` if it is recent enough, else the one `read` returns; reads
   * asked for while one of the same shard is in flight share it (so a burst of reads arriving
   * when the state has just aged out reads the head once, not once each). A state a read in flight
   * returns is no older than a remembered one may be. A failure is every sharer's, and is not kept.
   * With no age allowed (no GC grace), nothing is shared: each call reads.
   */
  async getOrRead(shardId: ShardId, read: () => Promise<Versioned<ShardState>>): Promise<Versioned<ShardState>> {
    const recent = this.get(shardId)
    if (recent !== null) return recent
    if (this.#maxAgeMs === 0) return read()
    const inFlight = this.#reading.get(shardId)
    if (inFlight !== undefined) return inFlight
    const p = read().finally(() => {
      if (this.#reading.get(shardId) === p) this.#reading.delete(shardId)
    })
    this.#reading.set(shardId, p)
    return p
  }

  /** Remembers a committed state just read or written (an older seqno than the one kept is ignored). */
  saw(shardId: ShardId, state: Versioned<ShardState>): void {
    if (this.#maxAgeMs === 0) return
    const kept = this.#entries.get(shardId)
    if (kept !== undefined && kept.state.seqno > state.seqno) return
    this.#entries.delete(shardId)
    const now = this.#now()
    this.#entries.set(shardId, { state, at: now })
    // Entries are in the order they were stored: the first ones are the oldest. Those too old to
    // serve go now, not when their shard is read next (which may be never: a deleted shard).
    for (const [oldest, e] of this.#entries) {
      if (this.#entries.size <= MAX_ENTRIES && now - e.at < this.#maxAgeMs) break
      this.#entries.delete(oldest)
    }
  }

  /** Shards whose state is remembered now (for tests). */
  get size(): number {
    return this.#entries.size
  }

  /** Forgets `shardId` (e.g. when it is deleted). */
  forget(shardId: ShardId): void {
    this.#entries.delete(shardId)
  }
}
