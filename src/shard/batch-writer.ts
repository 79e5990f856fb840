/**
 * The batch writer's main-thread half (persist's `BatchBuilder`; docs/data-path.md): the
 * parts a write task builds in a worker (engine/write-batch.ts) are kept inline or uploaded, and
 * put together into the HollowBatch.
 *
 * - A part whose encoded size is below `inlineSingleMaxBytes` stays inline; the others are
 *   uploaded under `<shardId>/<writerKey>/<partId>` as they arrive (the write task bounds how many
 *   are in flight).
 * - The batch has the runs the worker made (one for sorted input), each in the preferred order
 *   with the writer's schema id, since `[minimum]`.
 *
 * NB: `beforeUpload(key)` is called before each upload starts, so the caller can pin the key
 * against GC while the upload is in flight (a part may land even if `set` reports an error).
 */
import { Buffer } from 'node:buffer'
import * as ac from '../core/antichain.js'
import { KEY_LOWER_MAX_BYTES, type BatchPart, type HollowBatch, type HollowPart, type InlinePart } from '../core/batch.js'
import { description, type Description } from '../core/description.js'
import { newPartId, type ShardId, type WriterKey } from '../core/ids.js'
import { blobKey, partialBatchKey, type BlobKey } from '../core/paths.js'
import type { TimestampKind } from '../core/timestamp.js'
import { decodePart } from '../columnar/part-format.js'
import { sortKeyColumn, type SortKeyColumn, type SortOrder } from '../columnar/sort-key.js'
import type { Blob } from '../location/blob.js'

export interface BatchWriterTarget {
  readonly blob: Blob
  readonly shardId: ShardId
  readonly writerKey: WriterKey
  /** Called with each full blob key just before its upload starts. */
  readonly beforeUpload?: (key: BlobKey) => void
}

/** The description of a user-written batch: `[lower, upper)` at full fidelity. */
export function userBatchDesc(tk: TimestampKind, lower: ac.Antichain, upper: ac.Antichain): Description {
  return description(lower, upper, ac.minimumFrontier(tk))
}

/** A part a write task built: its bytes (valid until the call that takes it settles) and facts. */
export interface BuiltPart {
  readonly bytes: Uint8Array
  readonly rows: number
  readonly diffsSum: bigint
  /** Sort key of the first key (cut to `KEY_LOWER_MAX_BYTES` here). */
  readonly keyLower: Uint8Array
  /** Record batches in the part, and the bytes of the largest (compaction reads such parts in windows). */
  readonly batches: number
  readonly maxBatchBytes: number
}

/**
 * Keeps a built part inline (a copy, below `inlineSingleMaxBytes`) or uploads it. `onUploading`
 * hears every key before its upload starts (the part may land even if the upload fails).
 */
export async function takeBuiltPart(target: BatchWriterTarget, part: BuiltPart, schemaId: number, inlineSingleMaxBytes: number, onUploading: (key: BlobKey) => void): Promise<BatchPart> {
  if (part.bytes.byteLength < inlineSingleMaxBytes) return inlinePart(part.bytes.slice())
  const keyLower = part.keyLower.byteLength > KEY_LOWER_MAX_BYTES ? part.keyLower.subarray(0, KEY_LOWER_MAX_BYTES) : part.keyLower
  return uploadPart({ ...target, beforeUpload: (key) => (onUploading(key), target.beforeUpload?.(key)) }, part.bytes, {
    keyLower: Buffer.from(keyLower.buffer, keyLower.byteOffset, keyLower.byteLength).toString('base64'),
    diffsSum: part.diffsSum,
    schemaId,
    updates: part.rows,
    ...(part.batches > 1 ? { batchBytes: part.maxBatchBytes } : {}),
  })
}

/** The batch of `parts` (in order) whose runs hold `partsPerRun` parts each, all in `order` with `schemaId`. */
export function builtBatch(desc: Description, len: number, parts: readonly BatchPart[], partsPerRun: readonly number[], order: SortOrder, schemaId: number): HollowBatch {
  if (parts.length === 0) return { desc, len: 0, parts: [], runSplits: [], runMeta: [] }
  const runSplits: number[] = []
  let at = 0
  for (const n of partsPerRun.slice(0, -1)) runSplits.push((at += n))
  return { desc, len, parts, runSplits, runMeta: partsPerRun.map(() => ({ order, schemaId })) }
}

/** `batch` with every inline part uploaded to blob instead (for inline backpressure). */
export async function flushInlineParts(target: BatchWriterTarget, batch: HollowBatch, maxOutstandingParts: number): Promise<HollowBatch> {
  if (!batch.parts.some((p) => p.kind === 'inline')) return batch
  const jobs = batch.parts.map((p) => async (): Promise<BatchPart> => {
    if (p.kind !== 'inline') return p
    const { meta, updates } = decodePart(p.updates)
    const keyLower = meta.order === 'unordered' || updates.length === 0 ? '' : keyLowerAt(sortKeyColumn(updates.keys, updates.keyType, meta.order), 0)
    return uploadPart(target, p.updates, { keyLower, diffsSum: meta.diffsSum, schemaId: meta.schemaId, updates: updates.length })
  })
  return { ...batch, parts: await runLimited(jobs, maxOutstandingParts) }
}

/** Full blob keys of the batch's hollow parts. */
export function hollowKeys(shardId: ShardId, batch: HollowBatch): BlobKey[] {
  return batch.parts.flatMap((p) => (p.kind === 'hollow' ? [blobKey(shardId, p.key)] : []))
}

function inlinePart(bytes: Uint8Array): InlinePart {
  return { kind: 'inline', encodedSizeBytes: bytes.byteLength, updates: bytes }
}

async function uploadPart(
  target: BatchWriterTarget,
  bytes: Uint8Array,
  info: { keyLower: string; diffsSum: bigint; schemaId: number; updates: number; batchBytes?: number },
): Promise<HollowPart> {
  const partial = partialBatchKey(target.writerKey, newPartId())
  const key = blobKey(target.shardId, partial)
  target.beforeUpload?.(key)
  await target.blob.set(key, bytes)
  return {
    kind: 'hollow',
    key: partial,
    encodedSizeBytes: bytes.byteLength,
    keyLower: info.keyLower,
    diffsSum: info.diffsSum,
    schemaId: info.schemaId,
    stats: info.batchBytes === undefined ? { updates: info.updates } : { updates: info.updates, batchBytes: info.batchBytes },
  }
}

/** Base64 of row `row`'s sort key, cut to KEY_LOWER_MAX_BYTES (a prefix is still a lower bound). */
export function keyLowerAt(keys: SortKeyColumn, row: number): string {
  const start = keys.offsets[row] as number
  const end = Math.min(keys.offsets[row + 1] as number, start + KEY_LOWER_MAX_BYTES)
  const b = keys.bytes.subarray(start, end)
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
}

/** Runs `jobs` with at most `limit` in flight; results in job order. Fails with the first error after all settle. */
export async function runLimited<T>(jobs: ReadonlyArray<() => Promise<T>>, limit: number): Promise<T[]> {
  const results = new Array<T>(jobs.length)
  let next = 0
  let failure: { error: unknown } | null = null
  const worker = async (): Promise<void> => {
    while (next < jobs.length && failure === null) {
      const i = next++
      try {
        results[i] = await (jobs[i] as () => Promise<T>)()
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, worker))
  if (failure !== null) throw (failure as { error: unknown }).error
  return results
}
