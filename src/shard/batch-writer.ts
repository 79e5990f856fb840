/**
 * The batch writer: turns validated rows into a HollowBatch whose parts are encoded and uploaded
 * (or kept inline), persist's `BatchBuilder` for user writes (PERSIST_SEMANTICS.md §4.6).
 *
 * - Rows are sorted in the preferred order and consolidated, then cut into parts of about
 *   `targetSize` bytes (by the average row size; a target of 1 puts every row in its own part).
 * - A part whose encoded size is below `inlineSingleMaxBytes` stays inline; the others are
 *   uploaded under `<shardId>/<writerKey>/<partId>`, at most `maxOutstandingParts` at a time.
 * - The batch is one run in the preferred order with the writer's schema id, since `[minimum]`.
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
import { decodePart, encodePart } from '../columnar/part-format.js'
import { sortAndConsolidate } from '../columnar/sort-consolidate.js'
import { sortKeyColumn, type SortKeyColumn, type SortOrder } from '../columnar/sort-key.js'
import { shapeOf, sumDiffs, updatesByteLength, UpdatesBuilder, type Updates } from '../columnar/updates.js'
import type { Blob } from '../location/blob.js'

/** Longest stored key lower bound, in bytes (persist_batch_structured_key_lower_len). */

export interface BatchWriterConfig {
  readonly targetSize: number
  readonly inlineSingleMaxBytes: number
  readonly order: SortOrder
  readonly maxOutstandingParts: number
}

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

/**
 * Sorts and consolidates `updates` (already checked against the schema and `desc`) and writes them
 * as one batch with `desc`.
 */
export async function writeUserBatch(target: BatchWriterTarget, updates: Updates, desc: Description, schemaId: number, cfg: BatchWriterConfig): Promise<HollowBatch> {
  const sorted = sortAndConsolidate(updates, cfg.order)
  const n = sorted.length
  if (n === 0) return { desc, len: 0, parts: [], runSplits: [], runMeta: [] }
  const keyLowers = sortKeyColumn(sorted.keys, sorted.keyType, cfg.order)
  const avgRow = Math.max(1, updatesByteLength(sorted) / n)
  const rowsPerPart = Math.max(1, Math.floor(Math.max(1, cfg.targetSize) / avgRow))
  const jobs: Array<() => Promise<BatchPart>> = []
  for (let start = 0; start < n; start += rowsPerPart) {
    const end = Math.min(n, start + rowsPerPart)
    jobs.push(async () => {
      const slice = start === 0 && end === n ? sorted : copyRows(sorted, start, end)
      const bytes = encodePart(slice, { desc, order: cfg.order, schemaId })
      if (bytes.byteLength < cfg.inlineSingleMaxBytes) return inlinePart(bytes)
      return uploadPart(target, bytes, { keyLower: keyLowerAt(keyLowers, start), diffsSum: sumDiffs(slice), schemaId, updates: end - start })
    })
  }
  const parts = await runLimited(jobs, cfg.maxOutstandingParts)
  return { desc, len: n, parts, runSplits: [], runMeta: [{ order: cfg.order, schemaId }] }
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
  info: { keyLower: string; diffsSum: bigint; schemaId: number; updates: number },
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
    stats: { updates: info.updates },
  }
}

/**
 * Rows `[start, end)` of `u` in fresh buffers.
 * NB: not `sliceUpdates`: a sliced unit (Arrow Null) column encodes a null count of -1, which the
 * part decoder rightly refuses.
 */
function copyRows(u: Updates, start: number, end: number): Updates {
  const b = new UpdatesBuilder(shapeOf(u), { capacity: end - start })
  b.appendRange(b.bind(u), start, end)
  return b.finish()
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
