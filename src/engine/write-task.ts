/**
 * The main-thread half of a write task: forwards the request body to the worker as it arrives and
 * takes the parts the worker builds (`onPart`: upload, or keep inline). The main thread only moves
 * bytes: it copies socket chunks into reused shared slots of about `BODY_CHUNK_BYTES` and lends
 * them to the worker, which releases each once read.
 *
 * - Nothing is read until a worker takes the task, and at most `BODY_WINDOW_BYTES` of body are
 *   in flight (posted, not yet consumed by the worker): the rest waits in the socket (TCP
 *   backpressure), so a large body costs the window, not its size.
 * - A body that grows past `maxBodyBytes` stops being read: 413 PAYLOAD_TOO_LARGE.
 * - Parts: the worker encodes a built part only while fewer than `maxOutstanding` are unfinished
 *   (the same `ready`/`go` as merge tasks).
 * - A client that goes away (the body errors or closes before its end) aborts the task.
 */
import type { Readable } from 'node:stream'
import type { EncodedOutput, TaskMessage, WriteHeader, WriteStats, WriteTaskPayload } from './protocol.js'
import { BodyPump } from './body-pump.js'
import { releaseSlot } from './shared-slots.js'
import type { WorkerPool } from './worker-pool.js'

/** A part as its receiver gets it. NB: `bytes` may be a lent slot, valid until `onPart` settles. */
export type WriteTaskPart = Omit<EncodedOutput, 'lent'>

export interface WriteTaskOptions {
  /** The request body, not yet read. */
  readonly body: Readable
  readonly maxBodyBytes: number
  /** Takes one part (uploads it, or keeps a copy inline). */
  onPart(part: WriteTaskPart): Promise<void>
  readonly maxOutstanding: number
  readonly signal?: AbortSignal
}

export interface WriteTaskResult {
  readonly header: WriteHeader
  readonly stats: WriteStats
  /** Body bytes read. */
  readonly bodyBytes: number
}

/**
 * Runs a write task to the end: the body read, every part taken. On failure, every part already
 * handed to `onPart` has settled before the promise rejects (so the caller knows what it uploaded).
 */
export async function runWriteTask(pool: WorkerPool, payload: WriteTaskPayload, opts: WriteTaskOptions): Promise<WriteTaskResult> {
  const inFlight: Promise<void>[] = []
  const ready: (() => void)[] = []
  let unfinished = 0
  let failure: unknown = null
  let pump: BodyPump | null = null
  const abort = new AbortController()
  const onOuterAbort = (): void => abort.abort(opts.signal?.reason)
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true })
  const fail = (err: unknown): void => {
    failure ??= err
    abort.abort(err)
  }
  try {
    const result = await pool.run(
      { kind: 'write', payload },
      {
        onStart: (channel) => {
          pump = new BodyPump(opts.body, channel, opts.maxBodyBytes, fail)
        },
        onMessage: (msg: TaskMessage, channel) => {
          switch (msg.type) {
            case 'body-taken':
              pump?.taken(msg.byteLength)
              return
            case 'ready':
              if (unfinished < opts.maxOutstanding) channel.post({ type: 'go' })
              else ready.push(() => channel.post({ type: 'go' }))
              return
            case 'output': {
              const { lent, ...part } = msg.output
              const done = opts.onPart(part)
              if (lent) {
                const release = (): void => releaseSlot(part.bytes)
                done.then(release, release)
              }
              done.catch(fail)
              inFlight.push(done)
              unfinished++
              done.then(
                () => {
                  unfinished--
                  if (unfinished < opts.maxOutstanding) ready.shift()?.()
                },
                () => undefined,
              )
              return
            }
            default:
              return
          }
        },
        onDone: (r) => {
          if (r.kind !== 'write') throw new Error(`a write task ended with a ${r.kind} result`)
          return { header: r.header, stats: r.stats }
        },
      },
      { signal: abort.signal },
    )
    await Promise.all(inFlight)
    if (failure !== null) throw failure
    return { ...result, bodyBytes: (pump as BodyPump | null)?.received ?? 0 }
  } catch (err) {
    await Promise.allSettled(inFlight)
    throw failure ?? err
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort)
    ;(pump as BodyPump | null)?.stop()
  }
}

/** The 413 of a body over the limit (routes refuse a declared length with it before reading). */
export { tooLarge } from './body-pump.js'
