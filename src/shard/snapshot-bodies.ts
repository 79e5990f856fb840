/**
 * SnapshotBodies: the encoded bodies of small snapshots read recently, so that many reads of the
 * same small snapshot cost one worker task between them instead of one each.
 *
 * A snapshot is a function of the state version read and the read's parameters: the state at a
 * seqno of a shard never changes (consensus commits each seqno once), and the body is the merge of
 * that state's parts at `asOf`, encoded in `format`, sorted in `order`. So a body is remembered
 * under exactly `(shardId, seqno, asOf, format, order)`, and serving it again answers byte for byte
 * what a fresh read of that version would. Nothing else is a key: a write, a compaction or a lease
 * commit makes a new seqno, and the next read of it misses and runs its own task.
 *
 * A hit reads no part, so it needs no lease against GC (the bytes are already here). Reads of a
 * key that arrive while a read of it is in flight wait for that one (`inFlight`) instead of
 * running tasks of their own, so a burst of reads of a version just committed costs one task; a
 * waiter whose leader keeps nothing (its body too big, its read failed or abandoned) reads itself.
 *
 * Bounds: only bodies of one chunk (the worker said `last` on the first) of at most
 * `maxBodyBytes` (default 64 KiB) are kept, and at most `maxBytes` (default 4 MiB) in all, the
 * least recently used dropped first. A body is kept only once the worker finished it: a read that
 * fails or is abandoned leaves nothing behind.
 */
import type { ShardId } from '../core/ids.js'
import type { SortOrder } from '../columnar/sort-key.js'
import type { BodyChunk } from '../engine/read-task.js'
import type { SeqNo } from '../location/consensus.js'
import type { SnapshotFormat } from './snapshot.js'

/** Default largest body kept. */
export const SNAPSHOT_BODY_MAX_BYTES = 64 * 1024

/** Default bytes of bodies kept in all. */
export const SNAPSHOT_BODIES_MAX_BYTES = 4 * 1024 * 1024

/** What a snapshot's body is a function of. `asOf` is the timestamp as its kind formats it. */
export interface SnapshotBodyKey {
  readonly shardId: ShardId
  readonly seqno: SeqNo
  readonly asOf: string
  readonly format: SnapshotFormat
  readonly order: SortOrder
}

export class SnapshotBodies {
  readonly #maxBodyBytes: number
  readonly #maxBytes: number
  /** In least recently used order. */
  readonly #entries = new Map<string, BodyChunk>()
  /** Reads in flight: what each will keep (null: nothing). */
  readonly #reading = new Map<string, Promise<BodyChunk | null>>()
  #bytes = 0

  constructor(opts: { readonly maxBodyBytes?: number; readonly maxBytes?: number } = {}) {
    this.#maxBytes = Math.max(0, opts.maxBytes ?? SNAPSHOT_BODIES_MAX_BYTES)
    this.#maxBodyBytes = Math.min(this.#maxBytes, Math.max(0, opts.maxBodyBytes ?? SNAPSHOT_BODY_MAX_BYTES))
  }

  /** Bytes of bodies kept now. */
  get bytes(): number {
    return this.#bytes
  }

  /** The whole body of the snapshot `key`, as one last chunk, or null. */
  get(key: SnapshotBodyKey): BodyChunk | null {
    const k = keyText(key)
    const hit = this.#entries.get(k)
    if (hit === undefined) return null
    this.#entries.delete(k)
    this.#entries.set(k, hit)
    return hit
  }

  /** What the read of `key` in flight will keep (null: nothing), or null when none is in flight. */
  inFlight(key: SnapshotBodyKey): Promise<BodyChunk | null> | null {
    return this.#reading.get(keyText(key)) ?? null
  }

  /**
   * Marks a read of `key` as in flight until the returned `settle` is called (with what it kept,
   * or null). NB: the reader must settle on every path (`remember` settles when the body's first
   * chunk is in, or its iteration ends); extra calls do nothing.
   */
  begin(key: SnapshotBodyKey): (kept: BodyChunk | null) => void {
    const k = keyText(key)
    if (this.#maxBodyBytes === 0 || this.#reading.has(k)) return () => undefined
    let resolve: (kept: BodyChunk | null) => void = () => undefined
    const p = new Promise<BodyChunk | null>((r) => (resolve = r))
    this.#reading.set(k, p)
    return (kept) => {
      if (this.#reading.get(k) === p) this.#reading.delete(k)
      resolve(kept)
    }
  }

  /**
   * `body` as it is, remembering it under `key` when its first chunk is the whole of it and small
   * enough. A copy is kept (the chunk's bytes may be lent, or reused once written); what `get`
   * returns is shared by every hit, so whoever takes it must not modify it (routes only write it out).
   */
  async *remember(key: SnapshotBodyKey, body: AsyncGenerator<BodyChunk>, settle: (kept: BodyChunk | null) => void = () => undefined): AsyncGenerator<BodyChunk> {
    let first = true
    try {
      for await (const chunk of body) {
        if (first) settle(chunk.last ? this.#put(keyText(key), chunk) : null)
        first = false
        yield chunk
      }
    } finally {
      settle(null)
    }
  }

  /** Keeps `chunk` under `k` if it is small enough; what is kept, or null. */
  #put(k: string, chunk: BodyChunk): BodyChunk | null {
    const size = chunk.bytes.byteLength
    if (size > this.#maxBodyBytes) return null
    const had = this.#entries.get(k)
    if (had !== undefined) return had
    const kept = { bytes: chunk.bytes.slice(), rows: chunk.rows, last: true }
    this.#entries.set(k, kept)
    this.#bytes += size
    for (const [old, c] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break
      this.#entries.delete(old)
      this.#bytes -= c.bytes.byteLength
    }
    return kept
  }
}

/** NB: no part of a key contains a NUL (ids, digits, enum words), so joining with one is unambiguous. */
const keyText = (key: SnapshotBodyKey): string => `${key.shardId}\0${key.seqno}\0${key.asOf}\0${key.format}\0${key.order}`
