/**
 * Identifiers: branded strings with a one-letter prefix and a UUID, so an id of one kind is never
 * passed where another is expected and every id says what it names when printed.
 *
 * - `s<uuid>` shard, `w<uuid>` writer (one per process that writes parts), `p<uuid>` part,
 *   `c<uuid>` compaction. A writer key may also be a version key `n` + 7 digits (persist's
 *   `n0011500` for v0.115.0); compactd never writes those but accepts them in part keys.
 * - New shard and compaction ids are time-ordered (UUID version 7, uuid-v7.ts): sorted as strings
 *   they are in creation order, which is what lets a listing page through ids without reading
 *   every record (and the job queue take the oldest first).
 *   Shards created before carry random (version 4) ids; they still parse, and sort by id.
 */
import { randomUUID } from 'node:crypto'
import { UuidV7 } from './uuid-v7.js'

declare const brand: unique symbol
type Brand<T, B extends string> = T & { readonly [brand]: B }

export type ShardId = Brand<string, 'ShardId'>
export type WriterKey = Brand<string, 'WriterKey'>
export type PartId = Brand<string, 'PartId'>
export type CompactionId = Brand<string, 'CompactionId'>

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
const SHARD_ID = new RegExp(`^s${UUID}$`)
const PART_ID = new RegExp(`^p${UUID}$`)
const COMPACTION_ID = new RegExp(`^c${UUID}$`)
const WRITER_KEY = new RegExp(`^(w${UUID}|n[0-9]{7})$`)

const shardUuids = new UuidV7()
const compactionUuids = new UuidV7()

export const newShardId = (): ShardId => `s${shardUuids.next()}` as ShardId
export const newWriterKey = (): WriterKey => `w${randomUUID()}` as WriterKey
export const newPartId = (): PartId => `p${randomUUID()}` as PartId
export const newCompactionId = (): CompactionId => `c${compactionUuids.next()}` as CompactionId

export const isShardId = (s: string): s is ShardId => SHARD_ID.test(s)
export const isWriterKey = (s: string): s is WriterKey => WRITER_KEY.test(s)
export const isPartId = (s: string): s is PartId => PART_ID.test(s)
export const isCompactionId = (s: string): s is CompactionId => COMPACTION_ID.test(s)

/** Source patterns, for request schemas (no anchors' flags needed). */
export const ID_PATTERNS = {
  shardId: SHARD_ID.source,
  writerKey: WRITER_KEY.source,
  partId: PART_ID.source,
  compactionId: COMPACTION_ID.source,
} as const
