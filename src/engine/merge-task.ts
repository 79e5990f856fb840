/**
 * The main-thread half of a merge task: serves the worker's part requests (prefetching within a
 * byte budget, persist's `start_prefetches`) and hands each output to `onOutput`. The worker
 * builds the next output while up to `maxOutstanding` are in flight (persist's pipelined part
 * uploads), and encodes a built output only when fewer are: so at most `maxOutstanding` encoded
 * outputs exist at once (persist may hold one more, between pushing a part and waiting).
 */
import { markPageAligned } from '../location/direct-io.js'
import { Prefetcher } from './prefetcher.js'
import type { EncodedOutput, MergeProgress, MergeRunsStats, MergeTaskPayload, TaskMessage } from './protocol.js'
import { isLentHere, releaseSlot } from './shared-slots.js'
import type { TaskChannel, WorkerPool } from './worker-pool.js'

/** An output as its receiver gets it (whether its bytes were lent is the task's business). */
export type MergeTaskOutput = Omit<EncodedOutput, 'lent' | 'pageAligned'>

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
  onProgress?(p: MergeProgress): void
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
    channel.post({ type: 'abort' })
  }
  try {
    const stats = await pool.run<MergeRunsStats>(
      { kind: 'merge', payload },
      {
        onMessage: (msg: TaskMessage, channel) => {
          switch (msg.type) {
            case 'need':
              servePart(prefetch, channel, msg.run, msg.part, (err) => fail(err, channel))
              return
            case 'ready':
              if (unfinished < opts.maxOutstanding) {
                channel.post({ type: 'go' })
              } else {
                opts.onWriteStall?.()
                ready.push(() => channel.post({ type: 'go' }))
              }
              return
            case 'output': {
              const done = receiveOutput(msg.output, opts.onOutput)
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
              return
            }
            case 'progress':
              opts.onProgress?.(msg.progress)
              return
          }
        },
        onDone: (result) => {
          if (result.kind !== 'merge') throw new Error(`a merge task ended with a ${result.kind} result`)
          return result.stats
        },
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

/**
 * Hands an output a worker posted to `receive`, without the fields that say how its bytes crossed:
 * page-aligned memory is marked so on this thread (for direct writes), and a lent slot goes back to
 * the worker once `receive` settles. Returns what `receive` returned. Merge and write tasks both.
 */
export function receiveOutput(output: EncodedOutput, receive: (out: MergeTaskOutput) => Promise<void>): Promise<void> {
  const { lent, pageAligned, ...out } = output
  if (pageAligned) markPageAligned(out.bytes.buffer)
  const done = receive(out)
  if (lent) {
    const release = (): void => releaseSlot(out.bytes)
    done.then(release, release)
  }
  return done
}

/**
 * Answers a worker's request for part `part` of run `run` with its bytes (taken from `prefetch`,
 * posted as `partReply` says) or, when the fetch fails, `part-failed` (then `onError`).
 */
export function servePart(prefetch: Prefetcher, channel: TaskChannel, run: number, part: number, onError: (err: unknown) => void): void {
  prefetch.take(run, part).then(
    (bytes) => {
      const reply = partReply(run, part, bytes)
      channel.post(reply, reply.lent ? [] : transferOf(reply.bytes))
    },
    (err: unknown) => {
      channel.post({ type: 'part-failed', run, part, message: err instanceof Error ? err.message : String(err) })
      onError(err)
    },
  )
}

/**
 * The `part` answer for `bytes`. A lent slot is posted with the hold its fetch gave this task (the
 * worker releases it); other shared memory is posted as is; bytes that own their whole buffer are
 * transferred without a copy unless they are kept elsewhere (an inline part held in state), and
 * anything else is copied first (see `transferOf`).
 */
function partReply(run: number, part: number, bytes: Uint8Array): { type: 'part'; run: number; part: number; bytes: Uint8Array; lent: boolean } {
  if (isLentHere(bytes)) return { type: 'part', run, part, bytes, lent: true }
  if (bytes.buffer instanceof SharedArrayBuffer || transferable(bytes)) return { type: 'part', run, part, bytes, lent: false }
  return { type: 'part', run, part, bytes: bytes.slice(), lent: false }
}

/** Whether `bytes` own their whole (non-shared) buffer and nobody else keeps it. */
function transferable(bytes: Uint8Array): boolean {
  return !(bytes.buffer instanceof SharedArrayBuffer) && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && !inlineBuffers.has(bytes.buffer)
}

/** The transfer list for bytes about to be posted: their buffer when it may be moved. */
function transferOf(bytes: Uint8Array): ArrayBuffer[] {
  return transferable(bytes) ? [bytes.buffer as ArrayBuffer] : []
}
