/**
 * Blob keys, built and parsed here and nowhere else.
 *
 * A part's full key is `<shardId>/<writerKey>/<partId>`; state stores the partial key
 * `<writerKey>/<partId>`, completed with the shard id on use. Parsing is strict: a key that does
 * not parse, or that names another shard, is refused before any I/O, which is also what keeps a
 * `file://` blob store free of path traversal.
 */
import { isPartId, isShardId, isWriterKey, type PartId, type ShardId, type WriterKey } from './ids.js'

declare const brand: unique symbol
export type PartialBatchKey = string & { readonly [brand]: 'PartialBatchKey' }
export type BlobKey = string & { readonly [brand]: 'BlobKey' }

export interface ParsedBlobKey {
  readonly shardId: ShardId
  readonly writerKey: WriterKey
  readonly partId: PartId
}

export function partialBatchKey(writerKey: WriterKey, partId: PartId): PartialBatchKey {
  return `${writerKey}/${partId}` as PartialBatchKey
}

export function blobKey(shardId: ShardId, partial: PartialBatchKey): BlobKey {
  return `${shardId}/${partial}` as BlobKey
}

/** The prefix under which every part of a shard lives (for listing). */
export function shardPrefix(shardId: ShardId): string {
  return `${shardId}/`
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string }

export function parsePartialBatchKey(s: string): ParseResult<{ writerKey: WriterKey; partId: PartId; key: PartialBatchKey }> {
  const pieces = s.split('/')
  if (pieces.length !== 2) return { ok: false, error: `part key "${clip(s)}" must be <writerKey>/<partId>` }
  const [writerKey, partId] = pieces as [string, string]
  if (!isWriterKey(writerKey)) return { ok: false, error: `part key "${clip(s)}" has a malformed writer key` }
  if (!isPartId(partId)) return { ok: false, error: `part key "${clip(s)}" has a malformed part id` }
  return { ok: true, value: { writerKey, partId, key: s as PartialBatchKey } }
}

export function parseBlobKey(s: string): ParseResult<ParsedBlobKey> {
  const slash = s.indexOf('/')
  if (slash < 0) return { ok: false, error: `blob key "${clip(s)}" must be <shardId>/<writerKey>/<partId>` }
  const shardId = s.slice(0, slash)
  if (!isShardId(shardId)) return { ok: false, error: `blob key "${clip(s)}" has a malformed shard id` }
  const rest = parsePartialBatchKey(s.slice(slash + 1))
  if (!rest.ok) return rest
  return { ok: true, value: { shardId, writerKey: rest.value.writerKey, partId: rest.value.partId } }
}

/** Parses a partial key taken from a request and completes it for `shardId`. */
export function blobKeyForShard(shardId: ShardId, partial: string): ParseResult<BlobKey> {
  if (partial.startsWith('s')) {
    // A full key: accept it only if it names this shard.
    const full = parseBlobKey(partial)
    if (!full.ok) return full
    if (full.value.shardId !== shardId) return { ok: false, error: `part key "${clip(partial)}" belongs to another shard` }
    return { ok: true, value: partial as BlobKey }
  }
  const parsed = parsePartialBatchKey(partial)
  if (!parsed.ok) return parsed
  return { ok: true, value: blobKey(shardId, parsed.value.key) }
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s
}
