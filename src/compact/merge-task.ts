/**
 * The main-thread half of a merge task: serves the worker's part requests (prefetching within a
 * byte budget, persist's `start_prefetches`), hands each output to `onOutput`, and acknowledges
 * outputs so that the worker builds the next output while up to `maxOutstanding` are taken
 * (persist's pipelined part uploads: after pushing a part, wait for the oldest while more than
 * `max_outstanding` are in flight).
 */
import type { MergeRunsStats } from './merge-runs.js'
import { Prefetcher } from './prefetcher.js'
import { isLentHere, releaseSlot } from './shared-slots.js'
import type { MergeTaskPayload } from './worker.js'
import type { TaskChannel, WorkerMessage, WorkerPool } from './worker-pool.js'

export interface MergeTaskOutput {
  readonly bytes: Uint8Array
  readonly rows: number
  readonly diffsSum?: bigint
  readonly keyLower?: Uint8Array
  /** Logical bytes of the rows (column data before encoding). */
  readonly goodBytes?: number
  readonly statsSeconds?: number
}

/** Buffers that must never be transferred away (they stay referenced by state or callers). */
const inlineBuffers = new WeakSet<ArrayBufferLike>()

/** Marks `bytes` as owned elsewhere: merge tasks copy it before handing it to a worker. */
export function keepBuffer(bytes: Uint8Array): Uint8Array {
  inlineBuffers.add(bytes.buffer)
  return bytes
}

export interface MergeTaskOptions {
  /**
   * Fetches the bytes of part `part` of run `run` (blob get, or an inline part's bytes). Bytes
   * lent from a `SharedSlots` pool must come with one hold for this task: they are posted without
   * a copy and the worker releases the hold.
   */
  fetch(run: number, part: number): Promise<Uint8Array>
  /** Sizes of every run's parts, for the prefetch plan. */
  readonly partSizes: readonly (readonly number[])[]
  /** Extra memory for fetching ahead, not counted against the memory bound (2 × target size). */
  readonly prefetchBudgetBytes: number
  /**
   * Takes one output (e.g. uploads it). The worker goes on with the next while at most
   * `maxOutstanding` are unfinished, and otherwise waits for the oldest.
   */
  onOutput(out: MergeTaskOutput): Promise<void>
  readonly maxOutstanding: number
  onProgress?(p: { updatesRead: number; bytesRead: number; updatesWritten: number }): void
  /** Metric hooks. */
  onPrefetchPlan?(allStarted: boolean): void
  onPartTaken?(prefetched: boolean): void
  onWriteStall?(): void
  readonly signal?: AbortSignal
}

/** Runs a merge task to the end: every output taken (and uploaded). */
export async function runMergeTask(pool: WorkerPool, payload: MergeTaskPayload, opts: MergeTaskOptions): Promise<MergeRunsStats> {
  return startMergeTask(pool, payload, opts).finished
}

export interface MergeTaskHandle {
  /** Resolves (never rejects) when the worker is free again: its last output is handed over. */
  readonly workerDone: Promise<void>
  /** Resolves when every output has been taken; rejects with the task's first failure. */
  readonly finished: Promise<MergeRunsStats>
}

/**
 * Queues a merge task on the pool. Nothing is fetched until a worker starts it, so tasks may be
 * queued ahead without holding memory.
 */
export function startMergeTask(pool: WorkerPool, payload: MergeTaskPayload, opts: MergeTaskOptions): MergeTaskHandle {
  let workerDone!: () => void
  const done = new Promise<void>((resolve) => {
    workerDone = resolve
  })
  const finished = finishMergeTask(pool, payload, opts, workerDone)
  finished.then(workerDone, workerDone)
  return { workerDone: done, finished }
}

async function finishMergeTask(pool: WorkerPool, payload: MergeTaskPayload, opts: MergeTaskOptions, workerDone: () => void): Promise<MergeRunsStats> {
  const prefetch = new Prefetcher(opts)
  const inFlight: Promise<void>[] = []
  let failure: unknown = null
  const fail = (err: unknown, channel: TaskChannel): void => {
    if (failure === null) failure = err
    channel.post('abort')
  }
  try {
    const stats = await pool.run<MergeRunsStats>(
      'merge',
      payload,
      {
        onMessage: (msg: WorkerMessage, channel) => {
          if (msg.type === 'need') {
            const run = msg.run as number
            const part = msg.part as number
            prefetch.take(run, part).then(
              (bytes) => {
                // Transfer without a copy when the bytes own their whole buffer (not a view into a
                // pooled or shared one, such as an inline part held in state).
                // A lent slot is posted with the hold its fetch gave this task; the worker
                // releases it when done. Other shared memory is posted as is.
                if (isLentHere(bytes)) {
                  channel.post('part', { run, part, bytes, slot: true })
                  return
                }
                if (bytes.buffer instanceof SharedArrayBuffer) {
                  channel.post('part', { run, part, bytes })
                  return
                }
                const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
                const payload = owned && !inlineBuffers.has(bytes.buffer) ? bytes : bytes.slice()
                channel.post('part', { run, part, bytes: payload }, [payload.buffer as ArrayBuffer])
              },
              (err: unknown) => fail(err, channel),
            )
          } else if (msg.type === 'output') {
            const release = (): void => releaseSlot(msg.bytes as Uint8Array)
            const done = opts.onOutput({
              bytes: msg.bytes as Uint8Array,
              rows: msg.rows as number,
              diffsSum: msg.diffsSum as bigint | undefined,
              keyLower: msg.keyLower as Uint8Array | undefined,
              goodBytes: msg.goodBytes as number | undefined,
              statsSeconds: msg.statsSeconds as number | undefined,
            })
            // A lent output's slot goes back to the worker once its receiver is done with it.
            if (msg.lent === true) done.then(release, release)
            done.catch((err: unknown) => fail(err, channel))
            inFlight.push(done)
            const pending = inFlight.length
            if (pending <= opts.maxOutstanding) {
              channel.post('ack')
            } else {
              opts.onWriteStall?.()
              const oldest = inFlight.shift() as Promise<void>
              oldest.then(
                () => channel.post('ack'),
                () => undefined,
              )
            }
          } else if (msg.type === 'progress') {
            opts.onProgress?.(msg as unknown as { updatesRead: number; bytesRead: number; updatesWritten: number })
          }
        },
        onDone: (msg) => msg.stats as MergeRunsStats,
      },
      { signal: opts.signal },
    )
    workerDone()
    await Promise.all(inFlight)
    if (failure !== null) throw failure
    return stats
  } catch (err) {
    // Let started outputs settle so the caller knows every part that may have been written.
    await Promise.allSettled(inFlight)
    throw failure ?? err
  }
}
