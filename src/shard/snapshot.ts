/**
 * Snapshot reads: every update with `t ≤ asOf`, times advanced to `asOf`, consolidated and sorted,
 * as a response body (an Arrow IPC stream or the JSON document) that a worker merges and encodes
 * chunk by chunk (engine/read-task.ts). The merge is compaction's, so memory stays bounded by a
 * window of each run plus a chunk, whatever the shard's size; nothing is decoded on the main
 * thread, and a slow client slows the merge (the next chunk is encoded when the last is written).
 */
import * as ac from '../core/antichain.js'
import type { HollowBatch } from '../core/batch.js'
import { allHollowBatches } from '../trace/trace.js'
import type { Timestamp } from '../core/timestamp.js'
import type { SortOrder } from '../columnar/sort-key.js'
import type { Blob } from '../location/blob.js'
import { fetchPart } from '../engine/part-cache.js'
import type { MergeRunsTask } from '../engine/protocol.js'
import { keyLowerPlan } from '../engine/prefetcher.js'
import { readTask, type BodyChunk } from '../engine/read-task.js'
import { orderRuns } from '../engine/runs.js'
import { SharedSlots } from '../engine/shared-slots.js'
import { windowChunk } from '../engine/windows.js'
import type { WorkerPool } from '../engine/worker-pool.js'
import { latestSchema, tkOf, type ShardState } from './state.js'

export interface SnapshotDeps {
  readonly pool: WorkerPool
  readonly blob: Blob
  /** Parts larger than this are read one record batch at a time (engine/windows.ts). Default: `WINDOW_MIN_PART_BYTES`. */
  readonly windowMinBytes?: number
}

/** The encodings of a snapshot's body. */
export type SnapshotFormat = 'json' | 'arrow'

export interface SnapshotOptions {
  readonly format: SnapshotFormat
  readonly signal?: AbortSignal
  /** Called once when the read is over (see `ReadTaskOptions.onEnd`). */
  readonly onEnd?: () => void
  /** About how many bytes of rows each chunk of the body holds. */
  readonly chunkBytes?: number
  /** The order runs are merged in (the shard's preferred order). */
  readonly order?: SortOrder
  readonly yieldAfterUpdates?: number
}

/** Default bytes of rows per chunk of a snapshot body. */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20

/** Chunks the worker may encode ahead of the socket. */
const CHUNKS_AHEAD = 2

/** Bytes of parts read ahead of the merge, in chunks. */
const PREFETCH_CHUNKS = 4

/**
 * What reads read parts and windows into: reused shared memory, as compaction's inputs (see
 * shared-slots.ts), lent to the worker in place. Fresh buffers cost their page faults on every
 * read: on the VMs compactd is measured on, as much as the read itself.
 */
const inputSlots = new SharedSlots()

/** The reads' slot pool: slots kept, and how many are lent now (for tests). */
export function snapshotInputSlots(): { readonly size: number; readonly lent: number } {
  return { size: inputSlots.size, lent: inputSlots.lent }
}

/**
 * The batches a snapshot at `asOf` reads: those whose lower is at or below it. Every update of a
 * batch has a time at or beyond its lower (a write checks its rows against its bounds, and
 * advancing a time by a since only raises it), so a batch whose lower is not ≤ `asOf` holds no
 * update the snapshot returns: e.g. writes appended after the asOf, read for nothing before.
 */
export function snapshotBatches(state: ShardState, asOf: Timestamp): HollowBatch[] {
  const tk = tkOf(state)
  return allHollowBatches(state.trace).filter((b) => ac.lessEqual(tk, b.desc.lower, asOf))
}

/**
 * The body of the snapshot of `state` at `asOf` (the caller checked `since ≤ asOf < upper`), once
 * the large parts' windows are known. Stopping the iteration early aborts the merge.
 */
export async function readSnapshot(deps: SnapshotDeps, state: ShardState, asOf: Timestamp, opts: SnapshotOptions): Promise<AsyncGenerator<BodyChunk>> {
  const tk = tkOf(state)
  const schema = latestSchema(state)
  const order = opts.order ?? 'structured'
  const chunkBytes = opts.chunkBytes ?? SNAPSHOT_CHUNK_BYTES
  const batches = snapshotBatches(state, asOf)
  const planned = orderRuns(batches, order)
  // Large parts are read a record batch at a time, as compaction reads them.
  const { chunk, windows } = await windowChunk(
    { runs: planned, memoryBytes: 0 },
    { blob: deps.blob, shardId: state.shardId, order, ...(deps.windowMinBytes === undefined ? {} : { minPartBytes: deps.windowMinBytes }), ...(opts.signal === undefined ? {} : { signal: opts.signal }) },
  )
  const runs = chunk.runs
  // Marks the slots this read borrows: those still held when its merge is over (read ahead and
  // never taken, e.g. after an abort) are forgotten then, not lent again.
  const owner = {}
  const alloc = (size: number): Uint8Array => inputSlots.acquire(size, owner)
  const task: MergeRunsTask = {
    timeKind: tk.name,
    since: [asOf],
    asOf,
    runs: runs.map((r) => {
      const desc = (batches[r.input] as (typeof batches)[number]).desc
      return {
        order: r.meta.order,
        parts: r.parts.map((p) => ({
          registeredLower: desc.lower,
          registeredUpper: desc.upper,
          encodedSizeBytes: p.encodedSizeBytes,
          // NB: inline parts go with the task: no round trip to ask for them.
          ...(p.kind === 'inline' ? { inline: p.updates } : {}),
        })),
      }
    }),
    keyType: schema.key,
    valType: schema.val,
    order,
    targetSizeBytes: chunkBytes,
    yieldAfterUpdates: opts.yieldAfterUpdates ?? 100_000,
  }
  return readTask(
    deps.pool,
    task,
    { kind: 'stream', format: opts.format, maxOutstanding: CHUNKS_AHEAD },
    {
      partSizes: runs.map((r) => r.parts.map((p) => (p.kind === 'inline' ? 0 : p.encodedSizeBytes))),
      // The windows are fetched in the order the merge reaches them (by key, across runs), so the
      // budget holds the next ones, not the next window of a run the merge has not come back to.
      prefetchBudgetBytes: PREFETCH_CHUNKS * chunkBytes,
      plan: keyLowerPlan(runs, order),
      fetch: (run, part) => {
        const p = runs[run]!.parts[part]!
        return windows.get(p)?.fetch(alloc) ?? fetchPart(deps.blob, state.shardId, p, alloc)
      },
      onSettled: () => void inputSlots.dropLent(owner),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.onEnd === undefined ? {} : { onEnd: opts.onEnd }),
    },
  )
}
