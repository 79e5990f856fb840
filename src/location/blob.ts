/** Blob: a durable key → bytes store (parts live here). Keys are built by `core/paths.ts`. */
import type { Abortable } from './errors.js'

export interface BlobMeta {
  readonly key: string
  readonly sizeBytes: number
  /** When the object was last written (used by GC's grace period for unreferenced blobs). */
  readonly lastModified: Date
}

/** A byte range of a value: `offset` and `length` are non-negative safe integers. */
export interface BlobRange {
  readonly offset: number
  readonly length: number
}

export interface GetOptions extends Abortable {
  /**
   * Supplies the buffer to read into: called once with the value's size, it returns a view of
   * exactly that many bytes (e.g. in shared or reused memory), and `get` returns that view.
   * Not called for a missing key.
   */
  readonly alloc?: (size: number) => Uint8Array
  /**
   * Only bytes [offset, offset + length) of the value, cut at its end (an offset at or past the end
   * gives zero bytes). With `alloc`, it is called with the size of that range. A missing key is
   * still null.
   */
  readonly range?: BlobRange
}

/** The buffer `alloc` gave for `size` bytes, checked. */
export function allocated(alloc: (size: number) => Uint8Array, size: number): Uint8Array {
  const out = alloc(size)
  if (out.byteLength !== size) throw new RangeError(`alloc gave ${out.byteLength} bytes for a value of ${size}`)
  return out
}

export interface Blob {
  /** The value under `key`, or null if absent. The returned bytes are the caller's. */
  get(key: string, opts?: GetOptions): Promise<Uint8Array | null>
  /**
   * Stores `value` under `key` atomically: a reader sees all of it or nothing. Callers overwrite a
   * key only with the same bytes (keys are unique ids; a retry writes the same value again).
   */
  set(key: string, value: Uint8Array, opts?: Abortable): Promise<void>
  /** Deletes `key`; returns the deleted size, or null if it was absent (idempotent). */
  delete(key: string, opts?: Abortable): Promise<number | null>
  /** Every key that starts with `prefix`, in no particular order. */
  list(prefix: string, opts?: Abortable): AsyncIterable<BlobMeta>
  /**
   * Deletes what `set`s cut short (a crash mid-write) left under `prefix` and has not changed for
   * `olderThanMs`; resolves with the bytes freed. Stores where a cut-short write leaves nothing
   * (one S3 PUT, memory) free nothing. Never touches a key.
   */
  removeInterrupted(prefix: string, olderThanMs: number, opts?: Abortable): Promise<number>
  /** Releases connections and handles; calls after close are errors. Idempotent. */
  close(): Promise<void>
}
