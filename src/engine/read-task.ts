/**
 * The main-thread half of a snapshot read: serves the merges' part requests (prefetching within a
 * budget, as compaction's merge tasks do) and hands out the response body that the workers merge
 * and encode, chunk by chunk.
 *
 * A body is one task's output, or, for a read split by key, the outputs of a task per key range one
 * after the other (`StreamOutput`: the first opens the body, the last closes it). Every task starts
 * at the first request for a chunk, in key order, so the pool's queue gives the first range a
 * worker before any later one.
 *
 * Backpressure: a task's next chunk is allowed (`go`) only when the consumer comes back for its
 * last one, i.e. when it has been written to the socket: a slow client slows the merge instead of
 * filling memory. At most `maxOutstanding` chunks of a task are ever encoded and not yet taken, so
 * a later range runs ahead of the body by at most that many, then waits for its turn.
 *
 * A task that has waited that way for `PARK_AFTER_MS` parks (worker-pool.ts `ClientWait`): its
 * worker takes other tasks meanwhile, so clients that stop reading do not stall the pool. It runs
 * again at the next `go`.
 */
import { AppError } from '../errors.js'
import { noteShortLivedBytes } from './main-heap.js'
import { servePart } from './merge-task.js'
import { Prefetcher } from './prefetcher.js'
import type { MergeRunsTask, StreamOutput, TaskMessage } from './protocol.js'
import { ClientWait, WorkerExitError, type TaskChannel, type WorkerPool } from './worker-pool.js'

/** One task of a read: its merge and where its parts come from. */
export interface ReadPart {
  readonly task: MergeRunsTask
  readonly output: StreamOutput
  /** Fetches the bytes of part `part` of run `run` (inline parts travel with the task and are never asked for). */
  fetch(run: number, part: number): Promise<Uint8Array>
  /** Sizes of every run's parts, for the prefetch plan. */
  readonly partSizes: readonly (readonly number[])[]
  readonly prefetchBudgetBytes: number
  /** The order the merge needs the parts in, when known (`PrefetcherOptions.plan`). */
  readonly plan?: readonly (readonly [number, number])[]
}

export interface ReadOptions {
  readonly signal?: AbortSignal
  /** Called once when the read is over (the body ended, failed or was abandoned): e.g. a lease's release. */
  onEnd?(): void
  /** Called once every task is done with its worker (before or after `onEnd`): nothing they were sent is read any more. */
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

const COMMA = new Uint8Array([0x2c])

/**
 * The response body of `parts` (at least one), each a key range after the one before. Returning
 * early (or the signal) aborts every merge; a failure of one is thrown by the iteration (a worker
 * that died as an AppError saying so) and aborts the others.
 */
export async function* readTasks(pool: WorkerPool, parts: readonly ReadPart[], opts: ReadOptions): AsyncGenerator<BodyChunk> {
  const abort = new AbortController()
  const onOuterAbort = (): void => abort.abort(opts.signal?.reason)
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true })
  let ended = false
  const end = (): void => {
    if (ended) return
    ended = true
    opts.onEnd?.()
  }
  const failure: ReadFailure = { abort, cause: null }
  // NB: started together, in key order: see the header.
  const tasks = parts.map((p) => new ReadRun(pool, p, failure))
  const settled = Promise.all(tasks.map((t) => t.settled)).then(() => opts.onSettled?.())
  const json = parts[0]?.output.format === 'json'
  let sawLast = false
  let rowsBefore = 0
  try {
    for (const [i, run] of tasks.entries()) {
      const lastTask = i === tasks.length - 1
      let rows = 0
      for (;;) {
        const next = await run.next()
        // NB: a JSON part after one with rows continues the array.
        if (json && rows === 0 && next.rows > 0 && rowsBefore > 0) yield { bytes: COMMA, rows: 0, last: false }
        rows += next.rows
        sawLast = next.last && lastTask
        if (sawLast) end()
        yield { bytes: next.bytes, rows: next.rows, last: sawLast }
        if (next.last) break
        // The consumer is back: the chunk is taken, the worker may encode one more.
        run.taken()
      }
      rowsBefore += rows
    }
  } finally {
    if (!sawLast) abort.abort(new Error('snapshot read stopped'))
    opts.signal?.removeEventListener('abort', onOuterAbort)
    end()
    // NB: after the last chunk only `done`s are left to come; nobody needs to wait for them.
    if (!sawLast) await settled
  }
}

/** What stops every task of a read, and the first failure among them (what the client is told). */
interface ReadFailure {
  readonly abort: AbortController
  /**
   * NB: the first failure is the cause: a part that cannot be fetched comes before the failure the
   * worker then reports, and one task's failure before the others' aborts.
   */
  cause: unknown
}

/** One task of a read, started: its chunks as they arrive. */
class ReadRun {
  /** Settles (never rejects) once the task is over. */
  readonly settled: Promise<void>
  readonly #chunks: BodyChunk[] = []
  readonly #failure: ReadFailure
  #channel: TaskChannel | null = null
  #wake: (() => void) | null = null
  #finished = false
  /** Chunks the worker may still encode before it waits for a `go`. */
  #credit: number
  /** Parks the task when its consumer stays away (see the header). */
  readonly #wait = new ClientWait(() => this.#channel)

  constructor(pool: WorkerPool, part: ReadPart, failure: ReadFailure) {
    this.#failure = failure
    this.#credit = part.output.maxOutstanding
    const fail = (err: unknown): void => {
      failure.cause ??= err
      failure.abort.abort(err)
    }
    const prefetch = new Prefetcher(part)
    this.settled = pool
      .run<void>(
        { kind: 'merge', payload: { task: part.task, output: part.output } },
        {
          onStart: (ch) => {
            this.#channel = ch
          },
          onMessage: (msg: TaskMessage, ch) => {
            if (msg.type === 'need') {
              servePart(prefetch, ch, msg.run, msg.part, fail)
            } else if (msg.type === 'chunk') {
              noteShortLivedBytes(msg.bytes.byteLength)
              this.#chunks.push({ bytes: msg.bytes, rows: msg.rows, last: msg.last })
              this.#credit--
              // The worker now waits for the consumer: park the task if it stays away.
              if (this.#credit <= 0 && !msg.last) this.#wait.begin()
              this.#signal()
            }
          },
          onDone: (r) => {
            if (r.kind !== 'merge') throw new Error(`a read task ended with a ${r.kind} result`)
          },
        },
        { signal: failure.abort.signal },
      )
      .then(() => undefined, fail)
      .finally(() => {
        this.#finished = true
        this.#wait.end()
        this.#signal()
      })
  }

  /** The next chunk (`last` ends this task's output); throws the task's failure. */
  async next(): Promise<BodyChunk> {
    for (;;) {
      const next = this.#chunks.shift()
      if (next !== undefined) return next
      if (this.#finished) throw readFailure(this.#failure.cause ?? new Error('a read task ended before its last chunk'))
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
  }

  /** The consumer took a chunk: the worker may encode one more. */
  taken(): void {
    this.#credit++
    this.#wait.end()
    this.#channel?.post({ type: 'go' })
  }

  #signal(): void {
    this.#wake?.()
    this.#wake = null
  }
}

/** A failure of a read as its client should see it. */
function readFailure(err: unknown): unknown {
  if (err instanceof WorkerExitError) return new AppError('INTERNAL', 'the worker thread serving this read stopped before it finished (retry it)', {}, { cause: err })
  return err
}
