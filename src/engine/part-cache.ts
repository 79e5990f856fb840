/**
 * Fetching parts for merges: a part's bytes from blob (hollow) or state (inline), and a cache that
 * fetches a part once for every task that reads it.
 */
import type { BatchPart } from '../core/batch.js'
import type { ShardId } from '../core/ids.js'
import { blobKey } from '../core/paths.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import { keepBuffer } from './merge-task.js'
import { isLentHere, retainSlot } from './shared-slots.js'

/**
 * Parts fetched once and read by every task that needs them (both halves of a split chunk, and
 * the split's key sampling), held until each expected reader has taken them.
 *
 * NB: a fetched part's slot carries one hold, the cache's. Each take but the last adds a hold for
 * its taker; the last take hands the cache's hold over. So every taker owns one hold, which its
 * worker releases, and the slot is free once every reader is done with it.
 */
export class PartCache {
  readonly #fetch: (part: BatchPart) => Promise<Uint8Array>
  readonly #entries = new Map<BatchPart, { bytes: Promise<Uint8Array> | null; left: number | null }>()

  constructor(fetch: (part: BatchPart) => Promise<Uint8Array>) {
    this.#fetch = fetch
  }

  /** Starts fetching `part` (once) and returns its bytes, kept until its `expect`ed takes. */
  fetch(part: BatchPart): Promise<Uint8Array> {
    const entry = this.#entry(part)
    entry.bytes ??= this.#fetch(part)
    return entry.bytes
  }

  /** `users` tasks will take `part` (at least one). */
  expect(part: BatchPart, users: number): void {
    this.#entry(part).left = Math.max(1, users)
  }

  /** One expected reader takes `part` (fetched now unless it already was), with one hold. */
  take(part: BatchPart): Promise<Uint8Array> {
    const bytes = this.fetch(part)
    const entry = this.#entries.get(part)
    if (entry !== undefined && entry.left !== null && --entry.left > 0) {
      return bytes.then((b) => {
        if (isLentHere(b)) retainSlot(b)
        return b
      })
    }
    this.#entries.delete(part)
    return bytes
  }

  #entry(part: BatchPart): { bytes: Promise<Uint8Array> | null; left: number | null } {
    let entry = this.#entries.get(part)
    if (entry === undefined) {
      entry = { bytes: null, left: null }
      this.#entries.set(part, entry)
    }
    return entry
  }
}


/**
 * A part's bytes: from blob for hollow parts, from state for inline ones. A missing blob is an
 * error. `alloc`: the buffer to read into (see `GetOptions.alloc`).
 */
export async function fetchPart(blob: Blob, shardId: ShardId, part: BatchPart, alloc?: (size: number) => Uint8Array): Promise<Uint8Array> {
  if (part.kind === 'inline') {
    if (alloc === undefined) return keepBuffer(part.updates)
    const copy = alloc(part.updates.byteLength)
    copy.set(part.updates)
    return copy
  }
  const bytes = await blob.get(blobKey(shardId, part.key), alloc === undefined ? {} : { alloc })
  if (bytes === null) throw new AppError('DATA_LOSS', `part ${part.key} of shard ${shardId} is in the shard's state but missing from blob storage`)
  return bytes
}

