/**
 * An Arrow IPC stream read as its bytes arrive: chunks go in, complete messages come out (the
 * schema, then record batches), each checked as `readIpcStream` checks them (ipc-reader.ts).
 *
 * Memory: the reader copies a record batch's body into a buffer of its own (from `alloc`: 8-byte
 * aligned, so its columns load as views), and what it keeps of an unfinished message header into
 * a small buffer of its own, so a caller may reuse each chunk as soon as `push` returns. A body
 * larger than `maxMessageBytes` is refused before anything is allocated for it.
 */
import { Flat, HEADER_DICTIONARY_BATCH, HEADER_RECORD_BATCH, HEADER_SCHEMA, IpcError, IpcTooLargeError, readBatchHeader, readMessage, readSchema, type IpcBatchRef, type IpcSchema, type Message } from './ipc-reader.js'

export type IpcStreamMessage = { readonly kind: 'schema'; readonly schema: IpcSchema } | { readonly kind: 'batch'; readonly batch: IpcBatchRef }

export interface IpcStreamReaderOptions {
  /** Largest message (metadata or body) accepted, in bytes. */
  readonly maxMessageBytes: number
  /** Read the schema's custom metadata too. */
  readonly metadata?: boolean
  /** Where a record batch's body goes (default: a new buffer); it must start 8-byte aligned. */
  readonly alloc?: (size: number) => Uint8Array
}

type State =
  | { readonly at: 'length' }
  | { readonly at: 'meta'; readonly length: number }
  | { readonly at: 'body'; readonly fb: Flat; readonly msg: Message; readonly body: Uint8Array; filled: number }
  | { readonly at: 'ended' }

export class IpcStreamReader {
  readonly #opts: IpcStreamReaderOptions
  /** Bytes received and not yet consumed, oldest first; the first starts at `#offset`. */
  readonly #chunks: Uint8Array[] = []
  #offset = 0
  #buffered = 0
  #state: State = { at: 'length' }
  #schema: IpcSchema | null = null

  constructor(opts: IpcStreamReaderOptions) {
    this.#opts = opts
  }

  /** The schema, once its message has been read. */
  get schema(): IpcSchema | null {
    return this.#schema
  }

  /**
   * The messages `chunk` completes, in order. Throws `IpcError` on malformed input. Nothing of
   * `chunk` is referred to once this returns.
   */
  push(chunk: Uint8Array): IpcStreamMessage[] {
    const out: IpcStreamMessage[] = []
    if (chunk.byteLength === 0) return out
    if (this.#state.at === 'ended') throw new IpcError('bytes follow the end-of-stream marker')
    this.#chunks.push(chunk)
    this.#buffered += chunk.byteLength
    this.#read(out)
    if (this.#buffered > 0) {
      // The start of a message header: kept as a copy of its own.
      const rest = new Uint8Array(this.#buffered)
      this.#gather(rest, this.#buffered)
      this.#chunks.length = 0
      this.#chunks.push(rest)
      this.#offset = 0
    }
    return out
  }

  #read(out: IpcStreamMessage[]): void {
    for (;;) {
      const state: State = this.#state
      switch (state.at) {
        case 'ended':
          if (this.#buffered > 0) throw new IpcError('bytes follow the end-of-stream marker')
          return
        case 'length': {
          const head = this.#peek(8)
          if (head === null || head.byteLength < 4) return
          const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
          // A length alone (pre-1.0 streams) or the continuation marker then the length.
          const continued = view.getInt32(0, true) === -1
          if (continued && head.byteLength < 8) return
          const length = continued ? view.getInt32(4, true) : view.getInt32(0, true)
          this.#consume(continued ? 8 : 4)
          if (length === 0) {
            this.#state = { at: 'ended' }
            continue
          }
          if (length < 0 || length > this.#opts.maxMessageBytes) throw new IpcError(`a message's metadata length ${length} is out of range`)
          this.#state = { at: 'meta', length }
          continue
        }
        case 'meta': {
          const meta = this.#take(state.length)
          if (meta === null) return
          const fb = new Flat(meta, 0, meta.byteLength)
          const msg = readMessage(fb)
          if (msg.bodyLength > this.#opts.maxMessageBytes) throw new IpcTooLargeError(msg.bodyLength, this.#opts.maxMessageBytes)
          const pooled = msg.headerType === HEADER_RECORD_BATCH && msg.bodyLength > 0 ? this.#opts.alloc : undefined
          this.#state = { at: 'body', fb, msg, body: pooled?.(msg.bodyLength) ?? new Uint8Array(msg.bodyLength), filled: 0 }
          continue
        }
        case 'body': {
          state.filled += this.#copyInto(state.body, state.filled)
          if (state.filled < state.body.byteLength) return
          this.#state = { at: 'length' }
          const message = this.#finish(state.fb, state.msg, state.body)
          if (message !== null) out.push(message)
          continue
        }
      }
    }
  }

  /** Checks that the stream is complete (the end-of-stream marker is optional). */
  end(): void {
    switch (this.#state.at) {
      case 'length':
        if (this.#buffered > 0) throw new IpcError('the stream ends inside a message length')
        break
      case 'meta':
        throw new IpcError('a message runs past the end of the stream')
      case 'body':
        throw new IpcError('a message body runs past the end of the stream')
      case 'ended':
        break
    }
    if (this.#schema === null) throw new IpcError('the stream has no schema message')
  }

  #finish(fb: Flat, msg: Message, body: Uint8Array): IpcStreamMessage | null {
    switch (msg.headerType) {
      case HEADER_SCHEMA:
        if (this.#schema !== null) throw new IpcError('the stream has a second schema message')
        this.#schema = readSchema(fb, msg.header, this.#opts.metadata ?? false)
        return { kind: 'schema', schema: this.#schema }
      case HEADER_RECORD_BATCH:
        if (this.#schema === null) throw new IpcError('a record batch comes before the schema')
        return { kind: 'batch', batch: readBatchHeader(fb, msg.header, body) }
      case HEADER_DICTIONARY_BATCH:
        throw new IpcError('dictionary batches are not supported')
      default:
        throw new IpcError(`unexpected IPC message type ${msg.headerType}`)
    }
  }

  /** Up to `n` buffered bytes from the front, contiguous (a copy when they span chunks), or null when none. */
  #peek(n: number): Uint8Array | null {
    if (this.#buffered === 0) return null
    const first = this.#chunks[0] as Uint8Array
    const want = Math.min(n, this.#buffered)
    if (first.byteLength - this.#offset >= want) return first.subarray(this.#offset, this.#offset + want)
    const out = new Uint8Array(want)
    this.#gather(out, want)
    return out
  }

  /** Exactly `n` bytes from the front, consumed, or null when fewer are buffered. */
  #take(n: number): Uint8Array | null {
    if (this.#buffered < n) return null
    const first = this.#chunks[0] as Uint8Array
    let out: Uint8Array
    if (first.byteLength - this.#offset >= n) {
      // A copy: the metadata outlives the chunk (the body's flatbuffer refers to it).
      out = first.slice(this.#offset, this.#offset + n)
    } else {
      out = new Uint8Array(n)
      this.#gather(out, n)
    }
    this.#consume(n)
    return out
  }

  /** Copies buffered bytes into `target` from `at` on, consuming them; returns how many. */
  #copyInto(target: Uint8Array, at: number): number {
    const n = Math.min(this.#buffered, target.byteLength - at)
    this.#gather(target.subarray(at, at + n), n)
    this.#consume(n)
    return n
  }

  /** Copies the first `n` buffered bytes into `target` without consuming them. */
  #gather(target: Uint8Array, n: number): void {
    let done = 0
    let offset = this.#offset
    for (const c of this.#chunks) {
      if (done === n) break
      const take = Math.min(n - done, c.byteLength - offset)
      target.set(c.subarray(offset, offset + take), done)
      done += take
      offset = 0
    }
  }

  #consume(n: number): void {
    this.#buffered -= n
    let left = n
    while (left > 0) {
      const first = this.#chunks[0] as Uint8Array
      const avail = first.byteLength - this.#offset
      if (avail > left) {
        this.#offset += left
        return
      }
      left -= avail
      this.#chunks.shift()
      this.#offset = 0
    }
  }
}
