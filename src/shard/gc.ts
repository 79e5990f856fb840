/**
 * Garbage collection of one shard: deletes blobs no live state references, and truncates state
 * versions no reader of this process needs.
 *
 * A blob under the shard's prefix is **referenced** when a hollow part of the head state, of a
 * state leased by an in-flight read of this process, or a pin (a write or compaction in flight)
 * names it. An unreferenced blob is deleted when both
 * - it was written at least `graceMs` ago (`lastModified`): uploads of writes and compactions still
 *   in flight elsewhere, and batches written unappended, are younger than that; and
 * - this collector first saw it unreferenced at least `graceMs` ago: another instance may still be
 *   reading a state version that references it.
 * That also collects what crashed writes and compactions leaked, and batches never appended
 * (which must therefore be appended within the grace period).
 *
 * A **deleted** shard (its head is a tombstone) can gain no part again, so every blob under its
 * prefix is garbage at once, whatever its age, except what a leased state of an in-flight read of
 * this process or a pin still holds (released, the next pass takes it).
 *
 * Consensus is truncated below min(head seqno, smallest leased seqno): for a tombstone without
 * leases that leaves the tombstone alone, the record that the shard existed.
 *
 * NB: the blob listing is taken BEFORE the head is read, so a part appended between the two is
 * either absent from the listing or referenced by the head; never deleted while live.
 * NB: `graceMs` must exceed the longest compaction and the longest snapshot read of any instance.
 * NB: reads of a deleted shard's older states by other instances are not protected: their parts
 * may go while they read.
 */
import { blobKey, parseBlobKey, shardPrefix } from '../core/paths.js'
import type { ShardId } from '../core/ids.js'
import type { Blob } from '../location/blob.js'
import type { Consensus, SeqNo } from '../location/consensus.js'
import type { GcMetrics } from '../metrics/metrics.js'
import { runLimited } from './batch-writer.js'
import type { Leases } from './leases.js'
import type { Machine } from './machine.js'
import { allHollowBatches } from '../trace/trace.js'
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
  readonly now: () => Date
  readonly graceMs: number
}

export class ShardGc {
  readonly #o: ShardGcOptions
  /** Per shard: blob key → when a pass first found it unreferenced (ms since epoch). */
  readonly #unreferencedSince = new Map<ShardId, Map<string, number>>()

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
      const head = await machine.head(shardId)
      if (head === null) {
        this.#unreferencedSince.delete(shardId)
        return null
      }
      const tombstone = isDeleted(head.state)
      const referenced = this.#referenced(shardId, tombstone ? [] : [head.state])
      const now = this.#o.now().getTime()
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
      if (nextSeen.size > 0) this.#unreferencedSince.set(shardId, nextSeen)
      else this.#unreferencedSince.delete(shardId)

      const leased = leases.minSeqno(shardId)
      const below = leased === null ? head.seqno : Math.min(leased, head.seqno)
      const truncated = below > 0 ? await consensus.truncate(shardId, below) : 0
      metrics.deletedParts.inc(deletedParts)
      metrics.deletedBytes.inc(deletedBytes)
      if (deletedParts === 0 && truncated === 0) metrics.noop.inc()
      metrics.finished.inc()
      return { deletedParts, deletedBytes, truncatedBelowSeqno: below }
    } finally {
      metrics.seconds.inc((performance.now() - started) / 1000)
    }
  }

  /** Full blob keys that `states`, the leased states and the pins of `shardId` reference. */
  #referenced(shardId: ShardId, states: readonly ShardState[]): Set<string> {
    const out = new Set<string>(this.#o.leases.pinned(shardId))
    for (const state of [...states, ...this.#o.leases.states(shardId)]) {
      for (const batch of allHollowBatches(state.trace)) {
        for (const part of batch.parts) if (part.kind === 'hollow') out.add(blobKey(shardId, part.key))
      }
    }
    return out
  }
}
