/**
 * The main-thread half of a merge task: serves the worker's part requests (prefetching within a
 * byte budget, persist's `start_prefetches`) and hands each output to `onOutput`. The worker
 * builds the next output while up to `maxOutstanding` are in flight (persist's pipelined part
 * uploads), and encodes a built output only when fewer are: so at most `maxOutstanding` encoded
 * outputs exist at once (persist may hold one more, between pushing a part and waiting).
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
   * Takes one output (e.g. uploads it). A built output is encoded only while fewer than
   * `maxOutstanding` are unfinished; otherwise it waits for the oldest (a write stall).
   */
  onOutput(out: MergeTaskOutput): Promise<void>
  readonly maxOutstanding: number
  onProgress?(p: { updatesRead: number; bytesRead: number; updatesWritten: number }): void
  /** Metric hooks. */
  onPrefetchPlan?(allStarted: boolean): void
  onPartTaken?(prefetched: boolean, run: number, part: number): void
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
  // Every output taken (settled or not), and how many are unfinished.
  const inFlight: Promise<void>[] = []
  let unfinished = 0
  // Built outputs waiting for room to be encoded, oldest first.
  const ready: (() => void)[] = []
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
          } else if (msg.type === 'ready') {
            if (unfinished < opts.maxOutstanding) {
              channel.post('go')
            } else {
              opts.onWriteStall?.()
              ready.push(() => channel.post('go'))
            }
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
            unfinished += 1
            // NB: a failed output aborts the task, which wakes any waiting output in the worker.
            done.then(
              () => {
                unfinished -= 1
                if (unfinished < opts.maxOutstanding) ready.shift()?.()
              },
              () => undefined,
            )
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
