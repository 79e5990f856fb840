/** MemBlob: the in-memory Blob adapter, for tests and `mem://`. */
import { checkBlobKey, checkBlobPrefix, checkBlobRange, checkBlobValue, rangeBounds } from './blob-args.js'
import { allocated, type Blob, type BlobMeta, type GetOptions } from './blob.js'
import { closedError, InvalidUsageError, type Abortable } from './errors.js'

interface Entry {
  readonly value: Uint8Array
  readonly lastModified: Date
}

export class MemBlob implements Blob {
  readonly #entries = new Map<string, Entry>()
  #closed = false

  async get(key: string, opts?: GetOptions): Promise<Uint8Array | null> {
    this.#check(opts)
    checkBlobKey(key)
    checkBlobRange(opts?.range)
    const entry = this.#entries.get(key)
    if (entry === undefined) return null
    const { start, end } = rangeBounds(opts?.range ?? { offset: 0, length: entry.value.byteLength }, entry.value.byteLength)
    const value = entry.value.subarray(start, end)
    if (opts?.alloc === undefined) return new Uint8Array(value)
    const out = allocated(opts.alloc, value.byteLength)
    out.set(value)
    return out
  }

  /** NB: overwriting a key with *different* bytes throws InvalidUsageError, to catch callers' bugs. */
  async set(key: string, value: Uint8Array, opts?: Abortable): Promise<void> {
    this.#check(opts)
    checkBlobKey(key)
    checkBlobValue(value)
    const existing = this.#entries.get(key)
    if (existing !== undefined && !sameBytes(existing.value, value)) {
      throw new InvalidUsageError(`blob key "${key}" overwritten with different bytes`)
    }
    this.#entries.set(key, { value: new Uint8Array(value), lastModified: new Date() })
  }

  async delete(key: string, opts?: Abortable): Promise<number | null> {
    this.#check(opts)
    checkBlobKey(key)
    const entry = this.#entries.get(key)
    if (entry === undefined) return null
    this.#entries.delete(key)
    return entry.value.byteLength
  }

  async *list(prefix: string, opts?: Abortable): AsyncIterable<BlobMeta> {
    this.#check(opts)
    checkBlobPrefix(prefix)
    const matches: BlobMeta[] = []
    for (const [key, entry] of this.#entries) {
      if (key.startsWith(prefix)) matches.push({ key, sizeBytes: entry.value.byteLength, lastModified: entry.lastModified })
    }
    yield* matches
  }

  /** A write here is whole or absent: nothing is ever left to remove. */
  async removeInterrupted(prefix: string, _olderThanMs: number, opts?: Abortable): Promise<number> {
    this.#check(opts)
    checkBlobPrefix(prefix)
    return 0
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#entries.clear()
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('mem blob')
    opts?.signal?.throwIfAborted()
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0
}
