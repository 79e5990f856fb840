/**
 * The main-thread half of a snapshot read: serves the merge's part requests (prefetching within a
 * budget, as compaction's merge tasks do) and hands out the response body that the worker merges
 * and encodes, chunk by chunk. The next chunk is allowed (`go`) only when the consumer comes back
 * for it, i.e. when it has written the last one to the socket: a slow client slows the merge
 * instead of filling memory. At most `maxOutstanding` chunks are ever encoded and not yet taken.
 */
import { AppError } from '../errors.js'
import { noteShortLivedBytes } from './main-heap.js'
import { servePart } from './merge-task.js'
import { Prefetcher } from './prefetcher.js'
import type { MergeRunsTask, StreamOutput, TaskMessage } from './protocol.js'
import { WorkerExitError, type TaskChannel, type WorkerPool } from './worker-pool.js'

export interface ReadTaskOptions {
  /** Fetches the bytes of part `part` of run `run` (inline parts travel with the task and are never asked for). */
  fetch(run: number, part: number): Promise<Uint8Array>
  /** Sizes of every run's parts, for the prefetch plan. */
  readonly partSizes: readonly (readonly number[])[]
  readonly prefetchBudgetBytes: number
  /** The order the merge needs the parts in, when known (`PrefetcherOptions.plan`). */
  readonly plan?: readonly (readonly [number, number])[]
  readonly signal?: AbortSignal
  /** Called once when the read is over (the body ended, failed or was abandoned): e.g. a lease's release. */
  onEnd?(): void
  /** Called once the worker is done with the task (it may come before or after `onEnd`): nothing it was sent is read any more. */
  onSettled?(): void
}

/** One chunk of the response body. */
export interface BodyChunk {
  readonly bytes: Uint8Array
  /** Rows it holds. */
  readonly rows: number
  /** Whether it ends the body (every part has been read by then). */
  readonly last: boolean
}

/**
 * The response body, as the worker encodes it. Returning early (or the signal) aborts the merge;
 * a failure of the merge is thrown by the iteration (a worker that died as an AppError saying so).
 */
export async function* readTask(pool: WorkerPool, task: MergeRunsTask, output: StreamOutput, opts: ReadTaskOptions): AsyncGenerator<BodyChunk> {
  const prefetch = new Prefetcher(opts)
  const abort = new AbortController()
  const onOuterAbort = (): void => abort.abort(opts.signal?.reason)
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true })
  const chunks: BodyChunk[] = []
  let channel: TaskChannel | null = null
  let wake: (() => void) | null = null
  let finished = false
  let failure: unknown = null
  // NB: a part that cannot be fetched is the cause of the failure the worker then reports.
  let fetchError: unknown = null
  const signal = (): void => {
    wake?.()
    wake = null
  }
  const run = pool
    .run<void>(
      { kind: 'merge', payload: { task, output } },
      {
        onStart: (ch) => {
          channel = ch
        },
        onMessage: (msg: TaskMessage, ch) => {
          if (msg.type === 'need') servePart(prefetch, ch, msg.run, msg.part, (err) => {
              fetchError ??= err
              abort.abort(err)
            })
          else if (msg.type === 'chunk') {
            noteShortLivedBytes(msg.bytes.byteLength)
            chunks.push({ bytes: msg.bytes, rows: msg.rows, last: msg.last })
            signal()
          }
        },
        onDone: (r) => {
          if (r.kind !== 'merge') throw new Error(`a read task ended with a ${r.kind} result`)
        },
      },
      { signal: abort.signal },
    )
    .then(
      () => undefined,
      (err: unknown) => {
        failure = err
      },
    )
    .finally(() => {
      finished = true
      signal()
      opts.onSettled?.()
    })
  let sawLast = false
  try {
    for (;;) {
      const next = chunks.shift()
      if (next !== undefined) {
        sawLast = next.last
        if (sawLast) opts.onEnd?.()
        yield next
        if (sawLast) return
        // The consumer is back: the chunk is taken, the worker may encode one more.
        ;(channel as TaskChannel | null)?.post({ type: 'go' })
        continue
      }
      if (finished) break
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
    if (failure !== null) throw readFailure(fetchError ?? failure)
  } finally {
    if (!finished && !sawLast) abort.abort(new Error('snapshot read stopped'))
    opts.signal?.removeEventListener('abort', onOuterAbort)
    opts.onEnd?.()
    // NB: after the last chunk only `done` is left to come; nobody needs to wait for it.
    if (!sawLast) await run
  }
}

/** A failure of a read as its client should see it. */
function readFailure(err: unknown): unknown {
  if (err instanceof WorkerExitError) return new AppError('INTERNAL', 'the worker thread serving this read stopped before it finished (retry it)', {}, { cause: err })
  return err
}
