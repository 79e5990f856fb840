/**
 * ReaderLeases: this instance's reader leases in shard state (read-leases-state.ts), one per shard,
 * shared by every snapshot read of that shard here, so GC on other instances keeps what those reads
 * need (persist's leased readers, at the granularity of an instance).
 *
 * A read calls `acquire(shardId, head, durationMs)` with the state it means to read:
 * - **shared** (no write): this instance holds a live lease on the shard with `seqno ≤ head.seqno`
 *   and more than half the duration left, and no lease write of the shard is in flight here. The
 *   read goes ahead on `head` at once. This is the common case: thousands of short reads a second
 *   cost no state write.
 * - **held** (one compare-and-set): otherwise the lease is committed (added, or renewed with a new
 *   expiry) and the read uses **the state that commit produced**, never the state it had: between
 *   reading that one and the commit, GC elsewhere may have deleted the parts it referenced and
 *   compaction replaced. The caller re-checks its asOf against the state returned.
 * Either way the read also takes a lease of the process (leases.ts) on the version it reads, which
 * is what the renewer looks at.
 *
 * The **renewer** runs every quarter of the duration (1 s to 60 s): for a shard with reads in flight
 * here it renews the expiry and moves the lease's seqno up to the oldest version still read here;
 * it releases the lease of a shard with no read here for a whole period; `stop()` releases what no
 * read holds. Lease writes of a shard are serialized here, and while one is in flight no read
 * shares: a read that starts during a renewal waits for it, so a renewal never moves the seqno past
 * a read it did not see.
 *
 * Recent states (recent-states.ts): a state this process saw up to a second ago is shared only when
 * its seqno is at or above the lease's, so the lease (live since before that version was read)
 * covers it; an older one makes the read commit and read the state that commit produced.
 *
 * A duration of 0 turns leases in state off: reads then take only the lease of the process and rely
 * on the GC grace against other instances, as before.
 *
 * A read whose lease commit is refused for lack of space (a full consensus store) reads as with
 * leases off, on the state it had: refusing would fail every read of a full disk, where the state
 * cannot change anyway.
 *
 * NB: a lease lapses if its holder cannot renew it for half the duration (a store outage, a
 * stalled process); reads in flight then lose their protection against other instances' GC and
 * may fail (DATA_LOSS), never answer wrong rows.
 */
import { randomUUID } from 'node:crypto'
import type { ShardId } from '../core/ids.js'
import { LocationError } from '../location/errors.js'
import type { SeqNo } from '../location/consensus.js'
import type { ClusterMetrics } from '../metrics/metrics.js'
import type { Leases, Release } from './leases.js'
import { breakWith, type Transition, type Versioned } from './machine.js'
import { holdReadLease, releaseReadLease } from './read-leases-state.js'
import type { ShardState } from './state.js'

/** Commits a transition of a shard's state (the `Shards` command loop). */
export type CommitState = <R>(
  shardId: ShardId,
  cmd: string,
  transition: (cur: Versioned<ShardState> | null) => Transition<ShardState, R>,
) => Promise<{ readonly result: R; readonly seqno: SeqNo; readonly state: ShardState | null }>

export type ReaderLeaseMetrics = Pick<ClusterMetrics, 'readerLeases' | 'readerLeaseWrites'>

export interface ReaderLeasesOptions {
  /** This instance's id, recorded in its leases. */
  readonly instance: string
  readonly leases: Leases
  readonly commit: CommitState
  readonly now: () => Date
  /** The lease duration now (`persist_reader_lease_duration`); 0 turns leases in state off. */
  readonly durationMs: () => number
  readonly metrics?: ReaderLeaseMetrics
  /** Errors of the renewer, which nobody awaits. */
  readonly onError: (err: unknown) => void
}

/** A read with its leases, or why there is none: the shard has no state, or is a tombstone. */
export type LeasedRead =
  | { readonly kind: 'read'; readonly read: Versioned<ShardState>; readonly release: Release }
  | { readonly kind: 'not_found' }
  | { readonly kind: 'deleted'; readonly state: ShardState }

/** The lease this instance holds on one shard, as its last write left it. */
interface Held {
  readonly seqno: SeqNo
  readonly expiresAtMs: number
  readonly writtenAtMs: number
  /** The state that write produced. */
  readonly produced: Versioned<ShardState>
}

/** Renewal period bounds. */
const MIN_PERIOD_MS = 1_000
const MAX_PERIOD_MS = 60_000

/** How often the renewer runs for a lease duration. */
export const renewPeriodMs = (durationMs: number): number => Math.min(MAX_PERIOD_MS, Math.max(MIN_PERIOD_MS, Math.floor(durationMs / 4)))

export class ReaderLeases {
  readonly #o: ReaderLeasesOptions
  /** The id of every lease of this process (one per shard; a restart takes a new one). */
  readonly id = `r${randomUUID()}`
  readonly #held = new Map<ShardId, Held>()
  /** When a read of the shard last started here (ms since epoch). */
  readonly #used = new Map<ShardId, number>()
  /** Per shard: the tail of its lease writes, and how many reads wait behind them. */
  readonly #writing = new Map<ShardId, { tail: Promise<unknown>; waiting: number }>()
  #timer: NodeJS.Timeout | null = null
  #tick: Promise<void> | null = null
  #stopped = false

  constructor(opts: ReaderLeasesOptions) {
    this.#o = opts
  }

  /** The lease held on `shardId` by this instance (for tests and diagnostics), or null. */
  held(shardId: ShardId): { readonly seqno: SeqNo; readonly expiresAt: string } | null {
    const h = this.#held.get(shardId)
    return h === undefined ? null : { seqno: h.seqno, expiresAt: new Date(h.expiresAtMs).toISOString() }
  }

  /**
   * Leases for a read of `head` (or of the state a lease commit produced, returned in `read`):
   * release them when the read ends.
   */
  async acquire(shardId: ShardId, head: Versioned<ShardState>, durationMs: number): Promise<LeasedRead> {
    if (durationMs <= 0) return this.#read(shardId, head)
    const shared = this.#writing.has(shardId) ? null : this.#share(shardId, head, durationMs)
    if (shared !== null) return shared
    return this.#exclusive(shardId, true, async () => {
      // A read that waited here may share what the write before it committed.
      const h = this.#held.get(shardId)
      const best = h !== undefined && h.produced.seqno > head.seqno ? h.produced : head
      try {
        return this.#share(shardId, best, durationMs) ?? (await this.#hold(shardId, durationMs, 'hold'))
      } catch (err) {
        // NB: a consensus store with no space left cannot take the lease, yet every part is there
        // to read: the read goes ahead as with leases off (the process's lease, and the GC grace
        // against other instances), rather than refusing reads on a full disk.
        if (err instanceof LocationError && err.noSpace) return this.#read(shardId, best)
        throw err
      }
    })
  }

  /** One renewer pass (the timer runs it; tests call it with their clock). */
  async renew(): Promise<void> {
    const durationMs = this.#o.durationMs()
    const period = renewPeriodMs(durationMs)
    const now = this.#o.now().getTime()
    for (const [shardId, h] of [...this.#held]) {
      try {
        const reading = this.#o.leases.minReadSeqno(shardId)
        if (reading !== null) {
          this.#used.set(shardId, now)
          if (durationMs > 0 && (reading > h.seqno || now - h.writtenAtMs >= period)) {
            await this.#exclusive(shardId, false, () => this.#hold(shardId, durationMs, 'renew'))
          }
        } else if (h.expiresAtMs <= now) {
          this.#forget(shardId)
        } else if (now - (this.#used.get(shardId) ?? 0) >= period && (this.#writing.get(shardId)?.waiting ?? 0) === 0) {
          await this.#release(shardId)
        }
      } catch (err) {
        this.#o.onError(err)
      }
    }
  }

  /** Stops the renewer and releases the leases no read here holds. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    await this.#tick
    for (const shardId of [...this.#held.keys()]) {
      if (this.#o.leases.minReadSeqno(shardId) !== null) continue
      await this.#release(shardId).catch((err: unknown) => this.#o.onError(err))
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * A read of `v` under the lease already held, or null when it does not cover `v` for long enough.
   * NB: only while no lease write of the shard is in flight (the caller makes sure).
   */
  #share(shardId: ShardId, v: Versioned<ShardState>, durationMs: number): LeasedRead | null {
    const h = this.#held.get(shardId)
    if (h === undefined || h.seqno > v.seqno) return null
    if (h.expiresAtMs - this.#o.now().getTime() <= durationMs / 2) return null
    return this.#read(shardId, v)
  }

  #read(shardId: ShardId, v: Versioned<ShardState>): LeasedRead {
    this.#used.set(shardId, this.#o.now().getTime())
    return { kind: 'read', read: v, release: this.#o.leases.acquire(shardId, v.seqno, v.state) }
  }

  /**
   * Commits the lease (a hold for a read, which then reads the state committed, or a renewal),
   * its seqno the oldest version read here, or the version this commit writes when none is.
   */
  async #hold(shardId: ShardId, durationMs: number, op: 'hold' | 'renew'): Promise<LeasedRead> {
    const now = this.#o.now().getTime()
    const expiresAt = new Date(now + durationMs).toISOString()
    // NB: no read shares while this write is in flight, so none starts below `reading` unseen.
    const reading = this.#o.leases.minReadSeqno(shardId)
    const r = await this.#o.commit(shardId, `${op}_read_lease`, (cur) => {
      if (cur === null) return breakWith(null)
      const seqno = Math.min(reading ?? Number.MAX_SAFE_INTEGER, cur.seqno + 1)
      return holdReadLease(cur.state, { id: this.id, instance: this.#o.instance, seqno, expiresAt }, now)
    })
    if (r.result === null || r.state === null) {
      this.#forget(shardId)
      return { kind: 'not_found' }
    }
    if (r.result.kind === 'deleted') {
      this.#forget(shardId)
      return { kind: 'deleted', state: r.state }
    }
    const produced = { seqno: r.seqno, state: r.state }
    this.#held.set(shardId, { seqno: r.result.lease.seqno, expiresAtMs: Date.parse(expiresAt), writtenAtMs: now, produced })
    this.#o.metrics?.readerLeaseWrites.inc({ op })
    this.#o.metrics?.readerLeases.set(this.#held.size)
    this.#schedule()
    return op === 'hold' ? this.#read(shardId, produced) : { kind: 'read', read: produced, release: () => undefined }
  }

  /** Releases the lease on `shardId` (forgotten first, so no read shares it meanwhile). */
  async #release(shardId: ShardId): Promise<void> {
    if (!this.#held.has(shardId)) return
    this.#forget(shardId)
    await this.#exclusive(shardId, false, async () => {
      const r = await this.#o.commit(shardId, 'release_read_lease', (cur) => (cur === null ? breakWith(false) : releaseReadLease(cur.state, this.id)))
      if (r.result) this.#o.metrics?.readerLeaseWrites.inc({ op: 'release' })
    })
  }

  #forget(shardId: ShardId): void {
    this.#held.delete(shardId)
    this.#used.delete(shardId)
    this.#o.metrics?.readerLeases.set(this.#held.size)
  }

  /** Runs `fn` after every lease write of `shardId` before it; `read`: a read waits (counted). */
  async #exclusive<T>(shardId: ShardId, read: boolean, fn: () => Promise<T>): Promise<T> {
    const slot = this.#writing.get(shardId) ?? { tail: Promise.resolve(), waiting: 0 }
    this.#writing.set(shardId, slot)
    if (read) slot.waiting++
    const run = slot.tail.then(fn, fn)
    const tail = run.catch(() => undefined)
    slot.tail = tail
    try {
      return await run
    } finally {
      if (read) slot.waiting--
      if (slot.tail === tail) this.#writing.delete(shardId)
    }
  }

  /** Arms the renewer (after the first lease write; never after `stop`). */
  #schedule(): void {
    if (this.#stopped || this.#timer !== null) return
    this.#timer = setTimeout(() => {
      this.#tick = this.renew()
        .catch((err: unknown) => this.#o.onError(err))
        .finally(() => {
          this.#tick = null
          this.#timer = null
          if (this.#held.size > 0) this.#schedule()
        })
    }, renewPeriodMs(this.#o.durationMs()))
    this.#timer.unref()
  }
}
