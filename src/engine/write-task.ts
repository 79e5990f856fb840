/**
 * The main-thread half of a write task: forwards the request body to the worker as it arrives and
 * takes the parts the worker builds (`onPart`: upload, or keep inline). The main thread only moves
 * bytes: it copies what the socket gives into reused shared slots and lends them to the worker,
 * which releases each once read. A slot is posted when it holds `BODY_CHUNK_BYTES`, or sooner when
 * the worker has read everything posted before (so it never waits on a slot being filled): a
 * socket read is ~64 KiB, and a message for each cost both threads a wake-up, ~700 for 45 MB.
 *
 * - Nothing is read until a worker takes the task, and at most `BODY_WINDOW_BYTES` of body are
 *   in flight (posted, not yet consumed by the worker): the rest waits in the socket (TCP
 *   backpressure), so a large body costs the window, not its size.
 * - A body that grows past `maxBodyBytes` stops being read: 413 PAYLOAD_TOO_LARGE.
 * - Parts: the worker encodes a built part only while fewer than `maxOutstanding` are unfinished
 *   (the same `ready`/`go` as merge tasks).
 * - A client that goes away (the body errors or closes before its end) aborts the task, also
 *   when it went while the task waited for a worker (its body is closed when the pump starts).
 * - A worker that has read all it was sent and waits on a slow client parks its task after
 *   `PARK_AFTER_MS` (worker-pool.ts `ClientWait`): uploads that stall do not hold the pool. A body
 *   from which no byte comes for `BODY_IDLE_TIMEOUT_MS` fails the write with 408 REQUEST_TIMEOUT
 *   (nginx's `client_body_timeout`): the server itself has no request timeout, so a client that
 *   never sends the rest would otherwise keep its parked task for good.
 */
import { Buffer } from 'node:buffer'
import type { Readable } from 'node:stream'
import { AppError } from '../errors.js'
import { noteShortLivedBytes } from './main-heap.js'
import { tooLarge } from './write-batch.js'
import { receiveOutput, type MergeTaskOutput } from './merge-task.js'
import type { TaskMessage, WriteHeader, WriteStats, WriteTaskPayload } from './protocol.js'
import { releaseSlot, SharedSlots } from './shared-slots.js'
import { ClientWait, type TaskChannel, type WorkerPool } from './worker-pool.js'

/** Body bytes posted to the worker and not yet consumed by it, at most. */
export const BODY_WINDOW_BYTES = 4 << 20
/** A body from which no byte comes this long fails its write (see the header). */
export const BODY_IDLE_TIMEOUT_MS = 60_000

/** Body bytes coalesced into one message while the worker is busy, about (it ends with the socket chunk that reaches this). */
export const BODY_CHUNK_BYTES = 1 << 20

/**
 * Size of the slots body chunks go into: a chunk plus room for the socket chunk that tops it up,
 * so that chunks fit one size of slot and slots are reused rather than replaced.
 */
const BODY_SLOT_BYTES = BODY_CHUNK_BYTES + (256 << 10)

/** Slots body chunks are copied into (reused: fresh memory is expensive to touch). */
const bodySlots = new SharedSlots()

/** A part as its receiver gets it. NB: `bytes` may be a lent slot, valid until `onPart` settles. */
export type WriteTaskPart = MergeTaskOutput

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
              const done = receiveOutput(msg.output, opts.onPart)
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

/** The body slots: kept, and how many are lent now (for tests). */
export function writeBodySlots(): { readonly size: number; readonly lent: number } {
  return { size: bodySlots.size, lent: bodySlots.lent }
}

/** Reads a body into the worker, within the window and the limit. Exported for its tests. */
export class BodyPump {
  readonly #body: Readable
  readonly #channel: TaskChannel
  readonly #max: number
  readonly #fail: (err: unknown) => void
  #inFlight = 0
  /** The slot being filled (not yet posted), and the bytes in it. */
  #slot: Uint8Array | null = null
  #filled = 0
  #ended = false
  #stopped = false
  received = 0
  /** Parks the task while the worker waits on the client for more body. */
  readonly #wait: ClientWait
  readonly #idleTimeoutMs: number
  /** Fails the write when the client sends nothing for `#idleTimeoutMs`. */
  #idle: ReturnType<typeof setTimeout> | null = null

  constructor(body: Readable, channel: TaskChannel, maxBytes: number, fail: (err: unknown) => void, idleTimeoutMs = BODY_IDLE_TIMEOUT_MS) {
    this.#body = body
    this.#channel = channel
    this.#max = maxBytes
    this.#fail = fail
    this.#idleTimeoutMs = idleTimeoutMs
    this.#wait = new ClientWait(() => channel)
    body.on('readable', this.#read)
    body.on('end', this.#end)
    body.on('error', this.#error)
    body.on('close', this.#close)
    // NB: a client that went away while the task waited for a worker closed its body before these
    // listeners were on it, and a stream closes once: without this, the worker would wait (parked)
    // for bytes that cannot come until the idle timeout. What it had buffered is not a whole body.
    if (body.destroyed) queueMicrotask(this.#close)
    else this.#read()
  }

  /** The worker consumed `n` bytes: read more if the window allows. */
  taken(n: number): void {
    this.#inFlight -= n
    this.#read()
  }

  /** Stops reading (the task ended). */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#wait.end()
    this.#stopIdle()
    if (this.#slot !== null) releaseSlot(this.#slot)
    this.#slot = null
    this.#body.off('readable', this.#read)
    this.#body.off('end', this.#end)
    this.#body.off('error', this.#error)
    this.#body.off('close', this.#close)
  }

  readonly #read = (): void => {
    if (this.#stopped || this.#ended) return
    let drained = false
    while (this.#inFlight + this.#filled < BODY_WINDOW_BYTES) {
      const c = this.#body.read() as Uint8Array | string | null
      if (c === null) {
        drained = true
        break
      }
      const bytes = typeof c === 'string' ? Buffer.from(c) : c
      this.#stopIdle()
      this.received += bytes.byteLength
      noteShortLivedBytes(bytes.byteLength)
      if (this.received > this.#max) {
        this.stop()
        this.#fail(tooLarge(this.#max))
        return
      }
      this.#append(bytes)
      if (this.#filled >= BODY_CHUNK_BYTES) this.#post()
    }
    // The worker has read all it was sent: what has arrived goes now rather than when a chunk fills.
    if (this.#inFlight === 0) this.#post()
    // Nothing arrived: the worker waits on the client.
    if (this.#inFlight === 0) this.#wait.begin()
    // The socket has nothing more for now (not: the window is full): from here the client has
    // `#idleTimeoutMs` to send more.
    if (drained && this.#idle === null && this.#idleTimeoutMs > 0) {
      this.#idle = setTimeout(() => {
        this.#idle = null
        this.stop()
        this.#fail(new AppError('REQUEST_TIMEOUT', `body: no byte of it came for ${this.#idleTimeoutMs / 1000} s; the write was abandoned (send the body without pauses)`))
      }, this.#idleTimeoutMs)
      this.#idle.unref()
    }
  }

  #stopIdle(): void {
    if (this.#idle !== null) clearTimeout(this.#idle)
    this.#idle = null
  }

  /** Copies socket bytes into the slot being filled (posting it first when they do not fit). */
  #append(bytes: Uint8Array): void {
    // NB: a copy into a slot of our own: socket chunks may share their memory with others.
    if (this.#slot !== null && this.#filled + bytes.byteLength > this.#slot.byteLength) this.#post()
    this.#slot ??= bodySlots.acquire(Math.max(bytes.byteLength, BODY_SLOT_BYTES))
    this.#slot.set(bytes, this.#filled)
    this.#filled += bytes.byteLength
  }

  /** Lends the filled part of the slot to the worker. */
  #post(): void {
    const slot = this.#slot
    if (slot === null || this.#filled === 0) return
    const chunk = slot.subarray(0, this.#filled)
    this.#wait.end()
    this.#inFlight += this.#filled
    this.#slot = null
    this.#filled = 0
    this.#channel.post({ type: 'body', bytes: chunk, end: false })
  }

  readonly #end = (): void => {
    if (this.#stopped || this.#ended) return
    this.#post()
    this.#ended = true
    this.#wait.end()
    this.#stopIdle()
    this.#channel.post({ type: 'body', bytes: new Uint8Array(0), end: true })
  }

  readonly #error = (err: Error): void => {
    if (this.#stopped) return
    this.stop()
    this.#fail(new AppError('BAD_REQUEST', `body: the request body could not be read (${err.message})`))
  }

  readonly #close = (): void => {
    if (this.#stopped || this.#ended) return
    this.stop()
    this.#fail(new AppError('BAD_REQUEST', 'body: the client closed the request before the body ended'))
  }
}
