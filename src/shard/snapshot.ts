/**
 * Snapshot reads: every update with `t ≤ asOf`, times advanced to `asOf`, consolidated and sorted,
 * streamed in chunks. The merge is compaction's (runs merged in a worker thread), so memory stays
 * bounded by one part per run plus a chunk, whatever the shard's size.
 */
import { description } from '../core/description.js'
import { allHollowBatches } from '../trace/trace.js'
import type { Timestamp } from '../core/timestamp.js'
import { decodePart } from '../columnar/part-format.js'
import type { SortOrder } from '../columnar/sort-key.js'
import type { Updates } from '../columnar/updates.js'
import type { Blob } from '../location/blob.js'
import { fetchPart } from '../engine/part-cache.js'
import { runMergeTask } from '../engine/merge-task.js'
import { orderRuns } from '../engine/runs.js'
import { windowChunk } from '../engine/windows.js'
import type { WorkerPool } from '../engine/worker-pool.js'
import { latestSchema, tkOf, type ShardState } from './state.js'

export interface SnapshotDeps {
  readonly pool: WorkerPool
  readonly blob: Blob
  /** Parts larger than this are read one record batch at a time (compact/windows.ts). Default: `WINDOW_MIN_PART_BYTES`. */
  readonly windowMinBytes?: number
}

export interface SnapshotOptions {
  readonly signal?: AbortSignal
  /** About how many bytes of rows each yielded chunk holds. */
  readonly chunkBytes?: number
  /** The order runs are merged in (the shard's preferred order). */
  readonly order?: SortOrder
  readonly yieldAfterUpdates?: number
}

/**
 * Streams the snapshot of `state` at `asOf` (the caller checked `since ≤ asOf < upper`). Stopping
 * the iteration early aborts the merge.
 */
export async function* readSnapshot(deps: SnapshotDeps, state: ShardState, asOf: Timestamp, opts: SnapshotOptions = {}): AsyncGenerator<Updates> {
  const tk = tkOf(state)
  const schema = latestSchema(state)
  const order = opts.order ?? 'structured'
  const batches = allHollowBatches(state.trace)
  const planned = orderRuns(batches, order)
  if (planned.length === 0) return
  // Large parts are read a record batch at a time, as compaction reads them.
  const { chunk, windows } = await windowChunk(
    { runs: planned, memoryBytes: 0 },
    { blob: deps.blob, shardId: state.shardId, order, ...(deps.windowMinBytes === undefined ? {} : { minPartBytes: deps.windowMinBytes }), ...(opts.signal === undefined ? {} : { signal: opts.signal }) },
  )
  const runs = chunk.runs
  const abort = new AbortController()
  const onOuterAbort = (): void => abort.abort(opts.signal?.reason)
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true })

  // A one-slot hand-off between the merge (producer) and this generator (consumer).
  const ready: Updates[] = []
  let wake: (() => void) | null = null
  let taken: (() => void) | null = null
  let finished = false
  let failure: unknown = null
  const signalConsumer = (): void => {
    wake?.()
    wake = null
  }

  const merge = runMergeTask(
    deps.pool,
    {
      task: {
        timeKind: tk.name,
        since: [asOf],
        asOf,
        runs: runs.map((r) => {
          const desc = (batches[r.input] as (typeof batches)[number]).desc
          return { order: r.meta.order, parts: r.parts.map((p) => ({ registeredLower: desc.lower, registeredUpper: desc.upper, encodedSizeBytes: p.encodedSizeBytes })) }
        }),
        keyType: schema.key,
        valType: schema.val,
        order,
        targetSizeBytes: opts.chunkBytes ?? 1 << 20,
        yieldAfterUpdates: opts.yieldAfterUpdates ?? 100_000,
      },
      output: { kind: 'parts', desc: description([tk.minimum], [], [asOf]), schemaId: schema.id },
    },
    {
      partSizes: runs.map((r) => r.parts.map((p) => p.encodedSizeBytes)),
      prefetchBudgetBytes: 2 * (opts.chunkBytes ?? 1 << 20),
      maxOutstanding: 1,
      fetch: (run, part) => {
        const p = runs[run]!.parts[part]!
        return windows.get(p)?.fetch() ?? fetchPart(deps.blob, state.shardId, p)
      },
      onOutput: (out) =>
        new Promise<void>((resolve) => {
          ready.push(decodePart(out.bytes).updates)
          taken = resolve
          signalConsumer()
        }),
      signal: abort.signal,
    },
  ).then(
    () => {
      finished = true
      signalConsumer()
    },
    (err: unknown) => {
      failure = err
      finished = true
      signalConsumer()
    },
  )

  try {
    for (;;) {
      const next = ready.shift()
      if (next !== undefined) {
        yield next
        const resolve = taken as (() => void) | null
        taken = null
        resolve?.()
        continue
      }
      if (finished) break
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
    if (failure !== null) throw failure
  } finally {
    if (!finished) abort.abort(new Error('snapshot read stopped'))
    opts.signal?.removeEventListener('abort', onOuterAbort)
    ;(taken as (() => void) | null)?.()
    await merge
  }
}
