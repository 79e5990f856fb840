/**
 * Large parts read one record batch at a time (our addition to persist's Stage D). Before a chunk
 * is split and merged, each large part of a run in the compaction's order is replaced by its
 * windows (columnar/part-windows.ts): stand-in parts of one batch each, with the batch's key
 * lower, fetched by one ranged read. The key split, the prefetcher and the workers then see
 * ordinary parts, and a merge holds a window per run instead of a whole part, so its memory
 * follows the batch size rather than the part size.
 *
 * Reading the windows costs one small read per large part (its footer); parts written before
 * parts had several batches, or small enough to be one, are read whole.
 */
import type { BatchPart, HollowPart } from '../core/batch.js'
import type { ShardId } from '../core/ids.js'
import { blobKey } from '../core/paths.js'
import { PART_BATCH_BYTES } from '../columnar/part-format.js'
import { FOOTER_TAIL_BYTES, footerSpan, partWindows, type PartWindow } from '../columnar/part-windows.js'
import type { SortOrder } from '../columnar/sort-key.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import { sortedIn, type Chunk, type PlannedRun } from './runs.js'

/** Parts larger than this are read in windows by default: a part of two batches or fewer is read whole. */
export const WINDOW_MIN_PART_BYTES = 2 * PART_BATCH_BYTES

/** One window of a large part. */
export interface Window {
  /** Reads the window into the buffer `alloc` gives for its size (a fresh one without `alloc`). */
  fetch(alloc?: (size: number) => Uint8Array): Promise<Uint8Array>
  /** Whether it is its part's first window (fetch metrics count parts, not windows). */
  readonly first: boolean
}

export interface WindowedChunk {
  /** The chunk with each large part replaced by its windows, in order. */
  readonly chunk: Chunk
  /** The windows; parts not in the map are fetched whole. */
  readonly windows: ReadonlyMap<BatchPart, Window>
}

export interface WindowOptions {
  readonly blob: Blob
  readonly shardId: ShardId
  /** The compaction's order: only runs sorted in it are read in windows (see `windowChunk`). */
  readonly order: SortOrder
  /** Parts larger than this are read in windows (when they have several batches); default `WINDOW_MIN_PART_BYTES`. */
  readonly minPartBytes?: number
  readonly signal?: AbortSignal
}

/**
 * Replaces every large part of `chunk`'s runs in `opts.order` by its windows.
 *
 * NB: a run in another order (or exploded for it) is re-sorted part by part in the worker, so it
 * must keep whole parts: windows re-sorted one by one would not make a sorted run.
 */
export async function windowChunk(chunk: Chunk, opts: WindowOptions): Promise<WindowedChunk> {
  const windows = new Map<BatchPart, Window>()
  const runs = await Promise.all(
    chunk.runs.map(async (run): Promise<PlannedRun> => {
      if (!sortedIn(run, opts.order)) return run
      const parts = await Promise.all(run.parts.map((part) => windowPart(part, opts, windows)))
      return { ...run, parts: parts.flat() }
    }),
  )
  return { chunk: { runs, memoryBytes: chunk.memoryBytes }, windows }
}

async function windowPart(part: BatchPart, opts: WindowOptions, windows: Map<BatchPart, Window>): Promise<BatchPart[]> {
  if (part.kind !== 'hollow' || part.encodedSizeBytes <= (opts.minPartBytes ?? WINDOW_MIN_PART_BYTES)) return [part]
  const key = blobKey(opts.shardId, part.key)
  const read = async (offset: number, length: number, alloc?: (size: number) => Uint8Array): Promise<Uint8Array> => {
    const bytes = await opts.blob.get(key, { range: { offset, length }, ...(alloc === undefined ? {} : { alloc }), ...(opts.signal === undefined ? {} : { signal: opts.signal }) })
    if (bytes === null) throw new AppError('DATA_LOSS', `part ${part.key} of shard ${opts.shardId} is in the shard's state but missing from blob storage`)
    if (bytes.byteLength !== length) throw new AppError('INTERNAL', `part ${part.key} of shard ${opts.shardId} is shorter than its ${part.encodedSizeBytes} bytes`)
    return bytes
  }
  const size = part.encodedSizeBytes
  const tailLength = Math.min(size, FOOTER_TAIL_BYTES)
  const tail = await read(size - tailLength, tailLength)
  const span = footerSpan(tail, size)
  const inTail = span.offset - (size - tailLength)
  const footer = inTail >= 0 ? tail.subarray(inTail, inTail + span.length) : await read(span.offset, span.length)
  const found = partWindows(footer)
  if (found === null) return [part]
  return found.map((w, i) => {
    const window: HollowPart = {
      kind: 'hollow',
      key: part.key,
      encodedSizeBytes: w.byteLength,
      keyLower: i === 0 ? part.keyLower : w.info.keyLower,
      diffsSum: w.info.diffsSum,
      schemaId: part.schemaId,
      stats: { updates: w.info.rows },
    }
    windows.set(window, { fetch: (alloc) => fetchWindow(w, read, alloc), first: i === 0 })
    return window
  })
}

async function fetchWindow(w: PartWindow, read: (offset: number, length: number, alloc?: (size: number) => Uint8Array) => Promise<Uint8Array>, alloc?: (size: number) => Uint8Array): Promise<Uint8Array> {
  const out = alloc === undefined ? new Uint8Array(w.byteLength) : alloc(w.byteLength)
  await read(w.offset, w.length, () => out.subarray(w.batchAt, w.batchAt + w.length))
  w.finish(out)
  return out
}
