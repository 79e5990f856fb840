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
 * A hit reads no part, so it needs no lease against GC (the bytes are already here).
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

  /**
   * `body` as it is, remembering it under `key` when its first chunk is the whole of it and small
   * enough. A copy is kept (the chunk's bytes may be lent, or reused once written); what `get`
   * returns is shared by every hit, so whoever takes it must not modify it (routes only write it out).
   */
  async *remember(key: SnapshotBodyKey, body: AsyncGenerator<BodyChunk>): AsyncGenerator<BodyChunk> {
    let first = true
    for await (const chunk of body) {
      if (first && chunk.last) this.#put(keyText(key), chunk)
      first = false
      yield chunk
    }
  }

  #put(k: string, chunk: BodyChunk): void {
    const size = chunk.bytes.byteLength
    if (size > this.#maxBodyBytes || this.#entries.has(k)) return
    this.#entries.set(k, { bytes: chunk.bytes.slice(), rows: chunk.rows, last: true })
    this.#bytes += size
    for (const [old, c] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break
      this.#entries.delete(old)
      this.#bytes -= c.bytes.byteLength
    }
  }
}

/** NB: no part of a key contains a NUL (ids, digits, enum words), so joining with one is unambiguous. */
const keyText = (key: SnapshotBodyKey): string => `${key.shardId}\0${key.seqno}\0${key.asOf}\0${key.format}\0${key.order}`
