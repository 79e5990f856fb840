/**
 * A request body read into a worker task as it arrives (the main thread's half of a write's body):
 * socket chunks are copied into reused shared slots, each slot lent to the worker with a `body`
 * message, within a window of bytes in flight and the body limit.
 */
import { Buffer } from 'node:buffer'
import type { Readable } from 'node:stream'
import { AppError } from '../errors.js'
import { releaseSlot, SharedSlots } from './shared-slots.js'
import type { TaskChannel } from './worker-pool.js'

/** Body bytes posted to the worker and not yet consumed by it, at most. */
export const BODY_WINDOW_BYTES = 4 << 20
/**
 * Body bytes coalesced into one message at most (fewer when the worker would otherwise wait), and
 * the size of the slots they go into (one size, so slots are reused rather than replaced).
 */
export const BODY_CHUNK_BYTES = 1 << 20

/** Slots body chunks are copied into (reused: fresh memory is expensive to touch). */
const bodySlots = new SharedSlots()

/** Body slots lent and not yet released by their holders (for tests: none once every write has ended). */
export function bodySlotsLent(): number {
  return bodySlots.lent
}

/**
 * Reads a body into the worker, within the window and the limit. Socket chunks (about 64 KiB on
 * loopback) are copied, as they come, into the slot being filled; the slot is posted once full
 * (`BODY_CHUNK_BYTES`), or at once while the worker has nothing left to read (so a slow trickle is
 * not held back), or at the end. So a body crosses in about `BODY_CHUNK_BYTES` messages whenever
 * the worker is busy, not one message and one slot per socket chunk.
 *
 * NB: the slot being filled is held by the pump until posted; `stop` gives it back.
 */
export class BodyPump {
  readonly #body: Readable
  readonly #channel: TaskChannel
  readonly #max: number
  readonly #fail: (err: unknown) => void
  /** Bytes posted and not yet consumed by the worker. */
  #inFlight = 0
  /** The slot being filled (not posted yet), and how much of it is filled. */
  #pending: Uint8Array | null = null
  #pendingSize = 0
  #ended = false
  #stopped = false
  received = 0

  constructor(body: Readable, channel: TaskChannel, maxBytes: number, fail: (err: unknown) => void) {
    this.#body = body
    this.#channel = channel
    this.#max = maxBytes
    this.#fail = fail
    body.on('data', this.#data)
    body.on('end', this.#end)
    body.on('error', this.#error)
    body.on('close', this.#close)
  }

  /** The worker consumed `n` bytes: post what waits if it has nothing else, read more if the window allows. */
  taken(n: number): void {
    this.#inFlight -= n
    if (this.#stopped || this.#ended) return
    if (this.#inFlight === 0) this.#post()
    if (this.#inFlight + this.#pendingSize < BODY_WINDOW_BYTES) this.#body.resume()
  }

  /** Stops reading (the task ended); the body is left paused. */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#body.off('data', this.#data)
    this.#body.off('end', this.#end)
    this.#body.off('error', this.#error)
    this.#body.off('close', this.#close)
    this.#body.pause()
    if (this.#pending !== null) releaseSlot(this.#pending)
    this.#pending = null
  }

  readonly #data = (c: Uint8Array | string): void => {
    if (this.#stopped || this.#ended) return
    const bytes = typeof c === 'string' ? Buffer.from(c) : c
    this.received += bytes.byteLength
    if (this.received > this.#max) {
      this.stop()
      this.#fail(tooLarge(this.#max))
      return
    }
    // NB: a copy into a slot of our own: socket chunks may share their memory with others.
    for (let at = 0; at < bytes.byteLength; ) {
      this.#pending ??= bodySlots.acquire(BODY_CHUNK_BYTES)
      const n = Math.min(bytes.byteLength - at, this.#pending.byteLength - this.#pendingSize)
      this.#pending.set(bytes.subarray(at, at + n), this.#pendingSize)
      this.#pendingSize += n
      at += n
      if (this.#pendingSize === this.#pending.byteLength) this.#post()
    }
    if (this.#inFlight === 0) this.#post()
    if (this.#inFlight + this.#pendingSize >= BODY_WINDOW_BYTES) this.#body.pause()
  }

  /** Posts the filled part of the pending slot, if any (the worker's hold replaces ours). */
  #post(): void {
    const slot = this.#pending
    if (slot === null || this.#pendingSize === 0) return
    const size = this.#pendingSize
    this.#pending = null
    this.#pendingSize = 0
    this.#inFlight += size
    this.#channel.post({ type: 'body', bytes: slot.subarray(0, size), end: false })
  }

  readonly #end = (): void => {
    if (this.#stopped || this.#ended) return
    this.#post()
    this.#ended = true
    if (this.#pending !== null) releaseSlot(this.#pending)
    this.#pending = null
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

export function tooLarge(max: number): AppError {
  return new AppError('PAYLOAD_TOO_LARGE', `body: larger than the body limit of ${max} bytes (COMPACTD_BODY_LIMIT)`)
}
