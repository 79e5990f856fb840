/**
 * Snapshot reads: every update with `t ≤ asOf`, times advanced to `asOf`, consolidated and sorted,
 * as a response body (an Arrow IPC stream or the JSON document) that a worker merges and encodes
 * chunk by chunk (engine/read-task.ts). The merge is compaction's, so memory stays bounded by a
 * window of each run plus a chunk, whatever the shard's size; nothing is decoded on the main
 * thread, and a slow client slows the merge (the next chunk is encoded when the last is written).
 *
 * A read of several runs is split by key, as compaction splits a chunk, when two workers are free
 * and the machine has a core to spare besides (`splitRead`): a second worker merges the upper keys
 * while the first sends the lower ones, and its chunks wait in memory for their turn, within a
 * budget all reads share.
 */
import { availableParallelism } from 'node:os'
import * as ac from '../core/antichain.js'
import type { BatchPart, HollowBatch } from '../core/batch.js'
import { allHollowBatches } from '../trace/trace.js'
import type { Timestamp } from '../core/timestamp.js'
import type { SortOrder } from '../columnar/sort-key.js'
import type { Blob } from '../location/blob.js'
import { fetchPart } from '../engine/part-cache.js'
import type { MergeRunsTask, StreamOutput } from '../engine/protocol.js'
import { splitByKey } from '../engine/key-split.js'
import { keyLowerPlan } from '../engine/prefetcher.js'
import { readTasks, type BodyChunk, type ReadPart } from '../engine/read-task.js'
import { orderRuns, type PlannedRun } from '../engine/runs.js'
import { SharedSlots } from '../engine/shared-slots.js'
import { windowChunk } from '../engine/windows.js'
import type { WorkerPool } from '../engine/worker-pool.js'
import { latestSchema, tkOf, type ShardState } from './state.js'

/** How snapshot reads are cut up: each value has a default, and tests set them for small data. */
export interface SnapshotTuning {
  /** Parts larger than this are read one record batch at a time (engine/windows.ts). Default: `WINDOW_MIN_PART_BYTES`. */
  readonly windowMinBytes?: number
  /** Reads of at least this many bytes of parts may be split by key (`splitRead`). Default: `SPLIT_MIN_BYTES`. */
  readonly splitMinBytes?: number
  /** The machine's cores, for `splitRead`. Default: `os.availableParallelism()`. */
  readonly cores?: number
}

export interface SnapshotDeps extends SnapshotTuning {
  readonly pool: WorkerPool
  readonly blob: Blob
}

/** The encodings of a snapshot's body. */
export type SnapshotFormat = 'json' | 'arrow'

export interface SnapshotOptions {
  readonly format: SnapshotFormat
  readonly signal?: AbortSignal
  /** Called once when the read is over (see `ReadOptions.onEnd`). */
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
 * Reads of fewer bytes of parts are never split: a second task's start and its share of the
 * windows at the split cost more than half of a merge this short saves.
 */
export const SPLIT_MIN_BYTES = 8 << 20

/** At most this many bytes of parts go to the upper range of a split read (the rest is the lower's). */
export const SPLIT_UPPER_MAX_BYTES = 24 << 20

/**
 * Bytes of chunks that split reads, all together, may have encoded ahead of their bodies (the
 * upper ranges' output, waiting for the lower ranges to be sent). A read that finds too little of
 * it left is not split.
 */
export const SPLIT_AHEAD_BUDGET_BYTES = 64 << 20

let aheadReserved = 0

/** Bytes of the split reads' budget reserved now (for tests). */
export function snapshotAheadBytes(): number {
  return aheadReserved
}

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
  const fetch = (p: BatchPart): Promise<Uint8Array> => windows.get(p)?.fetch(alloc) ?? fetchPart(deps.blob, state.shardId, p, alloc)
  const part = (ranged: readonly PlannedRun[], keyRange: MergeRunsTask['keyRange'], output: StreamOutput, prefetchBudgetBytes: number): ReadPart => ({
    task: {
      timeKind: tk.name,
      since: [asOf],
      asOf,
      runs: ranged.map((r) => {
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
      ...(keyRange === undefined ? {} : { keyRange }),
    },
    output,
    partSizes: ranged.map((r) => r.parts.map((p) => (p.kind === 'inline' ? 0 : p.encodedSizeBytes))),
    // The windows are fetched in the order the merge reaches them (by key, across runs), so the
    // budget holds the next ones, not the next window of a run the merge has not come back to.
    prefetchBudgetBytes,
    plan: keyLowerPlan(ranged, order),
    fetch: (run, i) => fetch(ranged[run]!.parts[i]!),
  })
  const stream = { kind: 'stream', format: opts.format } as const
  // NB: whether to split is decided when the body is first asked for, as its tasks start: a body
  // never read reserves nothing.
  return (async function* body(): AsyncGenerator<BodyChunk> {
    const split = splitRead(deps, runs, order, schema.id, chunkBytes)
    const parts =
      split === null
        ? [part(runs, undefined, { ...stream, maxOutstanding: CHUNKS_AHEAD, opens: true, closes: true }, PREFETCH_CHUNKS * chunkBytes)]
        : split.ranges.map((range, i) =>
            part(
              range.runs,
              range.keyRange,
              { ...stream, maxOutstanding: i === 0 ? CHUNKS_AHEAD : split.aheadChunks, opens: i === 0, closes: i === split.ranges.length - 1 },
              (PREFETCH_CHUNKS * chunkBytes) / 2,
            ),
          )
    // The budget a split read reserves (here, just before its tasks start) is given back once its
    // tasks are over and its body too (the chunks waiting for their turn are dropped with it).
    if (split !== null) aheadReserved += split.aheadBytes
    let ends = 0
    const ended = (): void => {
      if (++ends === 2 && split !== null) aheadReserved -= split.aheadBytes
    }
    yield* readTasks(deps.pool, parts, {
      onSettled: () => {
        inputSlots.dropLent(owner)
        ended()
      },
      onEnd: () => {
        opts.onEnd?.()
        ended()
      },
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    })
  })()
}

/** A read split by key: its ranges in key order, and what it needs of the shared budget. */
interface SplitRead {
  readonly ranges: readonly { readonly keyRange: MergeRunsTask['keyRange']; readonly runs: readonly PlannedRun[] }[]
  /** Chunks the upper range may encode ahead of its turn. */
  readonly aheadChunks: number
  readonly aheadBytes: number
}

/**
 * The key ranges of a read of `runs` (windowed) that two workers merge at once, and the budget
 * they need (the caller reserves it, with no await in between), or null to read them in one task:
 * when there is one run (nothing to merge: its parts pass through), fewer than `splitMinBytes` to
 * read, fewer than two workers free now (a split read queued behind other tasks would hold the
 * second worker waiting), no core left over once both run, or too little of the budget left.
 *
 * NB (the core left over): a split read keeps the main thread busy sending, and its client often
 * runs on the same machine. On 2 cores, with both workers merging one read, /healthz took
 * p99 14–19 ms and up to 39 ms during Arrow snapshots, against p99 8–9 ms and 11–12 ms unsplit
 * (`bench/snapshot-probe.ts --shuffle`, with a prober beside it), for no steady gain in the reads'
 * speed: the cores were already busy. The control plane comes first.
 *
 * The upper range takes half of the bytes, at most `SPLIT_UPPER_MAX_BYTES`: its output waits in
 * memory until the lower range has been sent, so it is bounded, and with it what a slow client
 * holds. Its credit is its share in chunks plus two, so that it usually finishes without waiting
 * and frees its worker; if its output comes out larger, it waits for its turn (never for another
 * read: its lower range started first and needs nothing but the client).
 */
function splitRead(deps: SnapshotDeps, runs: readonly PlannedRun[], order: SortOrder, schemaId: number, chunkBytes: number): SplitRead | null {
  if (runs.length < 2 || deps.pool.idle < 2 || deps.pool.busy + 2 >= (deps.cores ?? availableParallelism())) return null
  const total = runs.reduce((s, r) => s + r.parts.reduce((t, p) => t + p.encodedSizeBytes, 0), 0)
  if (total < (deps.splitMinBytes ?? SPLIT_MIN_BYTES)) return null
  const upperBytes = Math.min(total / 2, SPLIT_UPPER_MAX_BYTES)
  const aheadChunks = Math.ceil(upperBytes / chunkBytes) + 2
  const aheadBytes = aheadChunks * chunkBytes
  if (aheadReserved + aheadBytes > SPLIT_AHEAD_BUDGET_BYTES) return null
  const split = splitByKey({ runs: [...runs], memoryBytes: 0 }, order, schemaId, 2, [], upperBytes)
  if (split.tasks.length < 2) return null
  return {
    ranges: split.tasks.map((t) => ({ keyRange: t.keyRange, runs: t.runs.map((r) => ({ ...r.run, parts: r.parts.map((i) => r.run.parts[i] as BatchPart) })) })),
    aheadChunks,
    aheadBytes,
  }
}
