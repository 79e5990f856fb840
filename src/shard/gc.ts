/**
 * Garbage collection of one shard: deletes blobs no live state references, and truncates state
 * versions no reader needs.
 *
 * A blob under the shard's prefix is **referenced** when a hollow part names it in
 * - the head state;
 * - any state version from the oldest **live reader lease** in the head (read-leases-state.ts,
 *   `expiresAt` after now) up to the head: a read on any instance may be reading one of them
 *   (those versions are scanned from consensus; truncation keeps them, see below);
 * - a state leased by an in-flight read of this process (leases.ts);
 * - a pin (a write or compaction of this process in flight).
 * An unreferenced blob is deleted when both
 * - it was written at least `graceMs` ago (`lastModified`): uploads of writes and compactions still
 *   in flight elsewhere, and batches written unappended, are younger than that; and
 * - this collector first saw it unreferenced at least `graceMs` ago.
 * That also collects what crashed writes and compactions leaked, and batches never appended
 * (which must therefore be appended within the grace period). What a write cut short mid-upload
 * left (a file store's temp file) goes once untouched for the grace (`Blob.removeInterrupted`),
 * counted in `deletedBytes` only. Reads are covered by leases, not by
 * the grace: a zero grace is safe for reads of every instance whose lease is live.
 *
 * Expired reader leases in the head (a dead instance's, say) are dropped by compare-and-set, only
 * when there are some; until it expires, a dead instance's lease holds GC back like a live one.
 *
 * A **deleted** shard (its head is a tombstone) can gain no part again, so every blob under its
 * prefix is garbage at once, whatever its age, except what a leased state of an in-flight read of
 * this process or a pin still holds (released, the next pass takes it). Reader leases in a
 * tombstone are ignored.
 *
 * Consensus is truncated below min(head seqno, smallest leased seqno of this process, oldest live
 * reader lease's seqno), lowered to the whole version that version is written against (a version
 * may be a delta against the one before, machine.ts `DELTA_CHAIN`): for a tombstone (always
 * written whole) without leases of this process that leaves the tombstone alone, the record that
 * the shard existed. Between passes, the commands of this process truncate
 * the same way every `KEEP_VERSIONS` versions, keeping that many behind the head (`committed`).
 *
 * While deltas are not written (machine.ts `writesDeltas`: switched off, or a live instance reads
 * whole versions only), a collection writes a head that is a delta again whole (`writeWhole`), so
 * that such an instance can read the shard; the next collection truncates the deltas below it.
 *
 * NB: the order is: list the blobs, take this process's pins and leased states, read the head. A
 * listed part was uploaded before the listing, so pinned from before then until its append or
 * compaction committed (or failed); at the moment the pins are taken it is either still pinned, or
 * committed and so in the head read after, or garbage. Taking the pins after the head instead let a
 * compaction that committed and unpinned in between lose its output.
 * NB: `graceMs` must exceed the longest compaction of any instance, and the longest gap between
 * writing a batch with `append: false` and appending it.
 * NB: reads of a deleted shard's older states by other instances are not protected: their parts
 * may go while they read.
 * NB: "live" is judged by this process's clock; holders renew at a quarter of the lease duration,
 * so clocks may differ by up to about a quarter of it.
 *
 * The periodic **pass** (`pass`) collects many shards, with two savings, since each collection
 * lists the shard's blobs (an S3 LIST) even when it finds nothing:
 * - In a cluster, each live instance collects only its share: the shards whose id hashes to its
 *   place among the live instances (`GcShare`). While membership changes a shard may be collected
 *   twice or wait for the next pass; a new owner starts its own clock on the unreferenced blobs it
 *   sees, which only delays their deletion.
 * - A deleted shard a collection left with nothing but its tombstone (no blob listed that was not
 *   deleted, every earlier version truncated) is **finished**: passes skip it, but every
 *   `TOMBSTONE_RECHECK_PASSES`th, which collects it again in case a write that was in flight when it
 *   was deleted left a part behind. So deleted shards cost a pass nothing as they accumulate.
 */
import { createHash } from 'node:crypto'
import { blobKey, parseBlobKey, shardPrefix } from '../core/paths.js'
import type { ShardId } from '../core/ids.js'
import type { Blob } from '../location/blob.js'
import type { Consensus, SeqNo } from '../location/consensus.js'
import { LocationError } from '../location/errors.js'
import type { ClusterMetrics, GcMetrics } from '../metrics/metrics.js'
import { runLimited } from './batch-writer.js'
import type { Leases } from './leases.js'
import { breakWith, type Machine, type Versioned } from './machine.js'
import { allHollowBatches } from '../trace/trace.js'
import { dropExpiredLeases, isExpired, oldestLiveLeaseSeqno } from './read-leases-state.js'
import { isDeleted, type ShardState } from './state.js'

export interface GcResult {
  readonly deletedParts: number
  readonly deletedBytes: number
  /** Every state version below this seqno is gone from consensus. */
  readonly truncatedBelowSeqno: SeqNo
}

export interface ShardGcOptions {
  readonly blob: Blob
  readonly consensus: Consensus
  readonly machine: Machine<ShardState>
  readonly leases: Leases
  readonly metrics: GcMetrics
  /** Counts the expired reader leases dropped (`op="drop_expired"`). */
  readonly leaseWrites?: ClusterMetrics['readerLeaseWrites']
  readonly now: () => Date
  readonly graceMs: number
  /** Reports a truncation started by `committed` that failed (not for lack of space). */
  readonly onError?: (err: unknown) => void
}

/** State versions kept behind the head by the truncations that follow commands (`committed`). */
export const KEEP_VERSIONS = 64

/** Passes that skip a finished tombstone between two that collect it again (an hour at the default 5-minute interval). */
export const TOMBSTONE_RECHECK_PASSES = 12

/** This instance's place among the `count` live instances of the cluster (by id), for the periodic pass. */
export interface GcShare {
  readonly index: number
  readonly count: number
}

/** Whether `shardId` is in `share` (every shard when there is none). */
export function inGcShare(shardId: ShardId, share: GcShare | null): boolean {
  if (share === null || share.count <= 1) return true
  return createHash('sha256').update(shardId).digest().readUInt32BE(0) % share.count === share.index
}

/** What this process held for one shard at one moment: pinned blob keys and leased states. */
interface Held {
  readonly shardId: ShardId
  readonly pinned: readonly string[]
  readonly states: readonly ShardState[]
}

export class ShardGc {
  readonly #o: ShardGcOptions
  /** Per shard: blob key → when a pass first found it unreferenced (ms since epoch). */
  readonly #unreferencedSince = new Map<ShardId, Map<string, number>>()
  /** Per shard: the seqno below which `committed` last truncated, and its truncation in flight. */
  readonly #truncatedBelow = new Map<ShardId, SeqNo>()
  readonly #truncating = new Map<ShardId, Promise<void>>()
  /** Deleted shards a collection left with nothing but the tombstone (see the header). */
  readonly #finished = new Set<ShardId>()
  #passes = 0

  constructor(opts: ShardGcOptions) {
    this.#o = opts
  }

  /** One pass over `shardId` with at most `deleteConcurrency` deletes in flight; null when the shard has no state. */
  async collect(shardId: ShardId, deleteConcurrency: number): Promise<GcResult | null> {
    const { blob, consensus, machine, leases, metrics, graceMs } = this.#o
    const started = performance.now()
    metrics.started.inc()
    try {
      const listed = []
      for await (const meta of blob.list(shardPrefix(shardId))) listed.push(meta)
      // NB: what this process holds is taken before the head is read (see the header).
      const held = this.#held(shardId)
      const head = await machine.head(shardId)
      if (head === null) {
        this.#unreferencedSince.delete(shardId)
        return null
      }
      const tombstone = isDeleted(head.state)
      const now = this.#o.now().getTime()
      const leasedFrom = tombstone ? null : oldestLiveLeaseSeqno(head.state, now)
      // NB: versions from the oldest live reader lease on may be read elsewhere: their parts stay.
      const leasedVersions = leasedFrom === null || leasedFrom >= head.seqno ? [] : await machine.states(shardId, leasedFrom, head.seqno)
      const referenced = this.#referenced(held, tombstone ? [] : [head.state, ...leasedVersions.map((v) => v.state)])
      const seen = this.#unreferencedSince.get(shardId) ?? new Map<string, number>()
      const nextSeen = new Map<string, number>()
      const doomed: { key: string }[] = []
      for (const meta of listed) {
        if (referenced.has(meta.key)) continue
        if (tombstone) {
          doomed.push(meta)
          continue
        }
        const parsed = parseBlobKey(meta.key)
        // NB: only part keys of this shard; anything else under the prefix is not ours to judge.
        if (!parsed.ok || parsed.value.shardId !== shardId) continue
        const since = seen.get(meta.key) ?? now
        nextSeen.set(meta.key, since)
        if (now - meta.lastModified.getTime() >= graceMs && now - since >= graceMs) doomed.push(meta)
      }
      let deletedParts = 0
      let deletedBytes = 0
      await runLimited(
        doomed.map(({ key }) => async () => {
          const size = await blob.delete(key)
          nextSeen.delete(key)
          if (size !== null) {
            deletedParts++
            deletedBytes += size
          }
        }),
        Math.max(1, deleteConcurrency),
      )
      // What writes cut short by a crash left (file stores' temp files): no part, so no key to judge.
      deletedBytes += await blob.removeInterrupted(shardPrefix(shardId), graceMs)
      if (nextSeen.size > 0) this.#unreferencedSince.set(shardId, nextSeen)
      else this.#unreferencedSince.delete(shardId)

      const below = await machine.truncationFloor(shardId, truncationBound(head.seqno, leases.minSeqno(shardId), leasedFrom))
      const truncated = below > 0 ? await consensus.truncate(shardId, below) : 0
      if (tombstone && doomed.length === listed.length && below === head.seqno) this.#finished.add(shardId)
      else this.#finished.delete(shardId)
      if (!tombstone && head.state.leases?.some((l) => isExpired(l, now)) === true) {
        try {
          const dropped = await machine.apply(shardId, 'drop_expired_read_leases', (cur) => (cur === null ? breakWith(0) : dropExpiredLeases(cur.state, now)))
          this.#o.leaseWrites?.inc({ op: 'drop_expired' }, dropped.result)
        } catch (err) {
          // NB: on a full disk GC must still answer for the space it freed; expired leases hold
          // nothing back (readers ignore them) and the next pass drops them.
          if (!(err instanceof LocationError && err.noSpace)) throw err
        }
      }
      // NB: deltas off (a build that reads whole versions only is live, or will be: rolling back):
      // the shard's latest version is written again whole, so such a build can read the shard.
      if (!tombstone && !machine.writesDeltas && machine.isDelta(shardId, head) && (await machine.writeWhole(shardId).catch(ignoreNoSpace))) metrics.stateRewrites.inc()
      metrics.deletedParts.inc(deletedParts)
      metrics.deletedBytes.inc(deletedBytes)
      if (deletedParts === 0 && truncated === 0) metrics.noop.inc()
      metrics.finished.inc()
      return { deletedParts, deletedBytes, truncatedBelowSeqno: below }
    } finally {
      metrics.seconds.inc((performance.now() - started) / 1000)
    }
  }

  /**
   * Tells GC that `head` was just committed to `shardId`. Once `KEEP_VERSIONS` more versions were
   * written since the last truncation this process made, it starts truncating (not awaited; one at
   * a time per shard) the versions more than `KEEP_VERSIONS` behind `head` that no reader needs, as
   * a pass does (see the header) but without listing or deleting blobs. So consensus holds between
   * one and two `KEEP_VERSIONS` of a shard's full states rather than every version written between
   * two passes (with a long trace, gigabytes). Nothing for a tombstone (a pass collects it).
   */
  committed(shardId: ShardId, head: Versioned<ShardState>): void {
    if (isDeleted(head.state)) {
      // NB: nothing more is written to a tombstone: what was kept for the shard goes.
      if (!this.#truncating.has(shardId)) this.#truncatedBelow.delete(shardId)
      return
    }
    if (this.#truncating.has(shardId)) return
    if (head.seqno - (this.#truncatedBelow.get(shardId) ?? 0) < 2 * KEEP_VERSIONS) return
    const leasedFrom = oldestLiveLeaseSeqno(head.state, this.#o.now().getTime())
    const bound = truncationBound(head.seqno - KEEP_VERSIONS, this.#o.leases.minSeqno(shardId), leasedFrom)
    if (bound <= (this.#truncatedBelow.get(shardId) ?? 0)) return
    const p = this.#o.machine
      .truncationFloor(shardId, bound)
      .then(async (below) => {
        if (below <= (this.#truncatedBelow.get(shardId) ?? 0)) return
        await this.#o.consensus.truncate(shardId, below)
        this.#truncatedBelow.set(shardId, Math.max(below, this.#truncatedBelow.get(shardId) ?? 0))
      })
      .catch((err: unknown) => {
        // NB: a full disk may refuse the truncation's marker; a later command tries again.
        if (!(err instanceof LocationError && err.noSpace)) this.#o.onError?.(err)
      })
      .finally(() => this.#truncating.delete(shardId))
    this.#truncating.set(shardId, p)
  }

  /**
   * One periodic pass over `shardIds`, one shard after another: those in `share`, but finished
   * tombstones only every `TOMBSTONE_RECHECK_PASSES`th pass. Returns how many shards it collected.
   * Once `signal` aborts, it ends after the collection in progress: a pass over thousands of shards
   * takes minutes, and a shutdown waits for it.
   */
  async pass(shardIds: readonly ShardId[], share: GcShare | null, deleteConcurrency: number, signal?: AbortSignal): Promise<number> {
    const recheck = ++this.#passes % TOMBSTONE_RECHECK_PASSES === 0
    let n = 0
    for (const id of shardIds) {
      if (signal?.aborted === true) break
      if (!inGcShare(id, share) || (this.#finished.has(id) && !recheck)) continue
      if ((await this.collect(id, deleteConcurrency)) !== null) n++
    }
    return n
  }

  /** Waits for the truncations `committed` started. */
  async settled(): Promise<void> {
    await Promise.all(this.#truncating.values())
  }

  /** The pins and leased states this process holds for `shardId` now. */
  #held(shardId: ShardId): Held {
    return { shardId, pinned: [...this.#o.leases.pinned(shardId)], states: [...this.#o.leases.states(shardId)] }
  }

  /** Full blob keys that `states` and what was `held` reference. */
  #referenced(held: Held, states: readonly ShardState[]): Set<string> {
    const { shardId } = held
    const out = new Set<string>(held.pinned)
    for (const state of [...states, ...held.states]) {
      for (const batch of allHollowBatches(state.trace)) {
        for (const part of batch.parts) if (part.kind === 'hollow') out.add(blobKey(shardId, part.key))
      }
    }
    return out
  }
}

/** A write GC may leave to its next pass: refused for lack of space (GC must still answer for the space it freed). */
function ignoreNoSpace(err: unknown): false {
  if (err instanceof LocationError && err.noSpace) return false
  throw err
}

/**
 * The seqno below which versions may be truncated: `upTo` (at most the head: consensus keeps a
 * key's last version), held back by this process's leases (its commands and reads) and the oldest
 * live reader lease; never below 0.
 */
function truncationBound(upTo: SeqNo, leased: SeqNo | null, readerLeased: SeqNo | null): SeqNo {
  return Math.max(0, Math.min(upTo, leased ?? upTo, readerLeased ?? upTo))
}
