/**
 * Listing shards a page at a time, reading only the page's states.
 *
 * - By id (default): consensus keys that are shard ids, sorted as text. New ids are time-ordered
 *   (core/uuid-v7.ts), so this is creation order, oldest first; shards made before time-ordered
 *   ids sort by their random ids among the rest.
 * - `namePrefix`: the names in the name index (name-index.ts) that start with it, sorted as text:
 *   consensus keys carry the names, so the search itself reads nothing.
 * - `name`: the one live shard with exactly that name, or none.
 *
 * Only the candidates a page examines are read (a name candidate costs its claim and its
 * shard). Deleted shards and claims whose shard is not live are skipped, and at most
 * `2 × limit` candidates are examined per page: so a page may hold fewer than `limit` shards, even
 * none, and still have a `nextCursor`. A listing ends when a page has no `nextCursor`.
 *
 * Cursors are opaque to clients: base64url of `i:<shardId>` or `n:<name>`, the last candidate
 * examined. Pages are stable under concurrent creates and deletes: a shard created after the
 * listing began appears on a later page (by id) or where its name sorts; none appears twice.
 */
import { isShardId, type ShardId } from '../core/ids.js'
import { AppError } from '../errors.js'
import { runLimited } from './batch-writer.js'
import type { SeqNo } from '../location/consensus.js'
import type { Versioned } from './machine.js'
import { checkShardName, MAX_NAME_BYTES, nameOfKey } from './name-index.js'
import { isDeleted, type ShardState } from './state.js'

export const DEFAULT_LIST_LIMIT = 100
export const MAX_LIST_LIMIT = 1000

/** Head reads in flight at once while filling a page. */
const READ_CONCURRENCY = 8

export interface ListShardsQuery {
  /** At most this many shards (1..1000, default 100). */
  readonly limit?: number
  /** A `nextCursor` of an earlier page of the same listing. */
  readonly cursor?: string
  /** Exactly this name: at most one shard, no cursor. */
  readonly name?: string
  /** Names starting with this, in name order. */
  readonly namePrefix?: string
}

export interface ShardPage {
  readonly shards: readonly Versioned<ShardState>[]
  readonly nextCursor?: string
}

/** What a listing reads. */
export interface ListingSource {
  /**
   * Consensus keys (shard ids, name claims and others), possibly some without a version: each is
   * read before it is shown. All of them, or with a range the first `limit` after `after`, sorted.
   */
  keys(range?: { readonly after: string; readonly limit: number }): Promise<readonly string[]>
  /** A shard's latest state, or null when it has none. */
  shard(shardId: ShardId): Promise<Versioned<ShardState> | null>
  /** The shard a name's claim names, or null when the name has no claim. */
  holder(name: string): Promise<ShardId | null>
}

export async function listShards(src: ListingSource, q: ListShardsQuery): Promise<ShardPage> {
  const limit = q.limit ?? DEFAULT_LIST_LIMIT
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw bad(`query.limit: must be an integer from 1 to ${MAX_LIST_LIMIT}`)
  if (q.name !== undefined && q.namePrefix !== undefined) throw bad('query.name: give name (exact) or namePrefix (search), not both')

  if (q.name !== undefined) {
    if (q.name === '') throw bad('query.name: must not be empty (unnamed shards are not indexed); leave it out to list every shard')
    const problem = checkShardName(q.name, 'query.name')
    if (problem !== null) throw bad(problem)
    if (q.cursor !== undefined) throw bad('query.cursor: a lookup by name has one page; leave the cursor out')
    const found = await byName(src, q.name)
    return { shards: found === null ? [] : [found] }
  }

  if (q.namePrefix !== undefined) {
    if (Buffer.byteLength(q.namePrefix, 'utf8') > MAX_NAME_BYTES) throw bad(`query.namePrefix: must be at most ${MAX_NAME_BYTES} bytes of UTF-8, like names`)
    const after = q.cursor === undefined ? null : decodeCursor(q.cursor, 'n')
    const prefix = q.namePrefix
    const names = (await src.keys())
      .map(nameOfKey)
      .filter((n): n is string => n !== null && n.startsWith(prefix) && (after === null || n > after))
      .sort()
    return fillPage(names, limit, (name) => byName(src, name), (name) => encodeCursor('n', name))
  }

  // Only the keys a page may examine: shard ids (`s…`) sort after every other key compactd writes.
  const { ids, next } = await shardIdsAfter(src, q.cursor === undefined ? undefined : decodeCursor(q.cursor, 'i'), 2 * limit + 1)
  const page = await fillPage(ids, limit, (id) => src.shard(id), (id) => encodeCursor('i', id))
  // NB: a range that came back full may have more keys after it, even when every id was examined.
  return page.nextCursor === undefined && next !== undefined ? { ...page, nextCursor: encodeCursor('i', next) } : page
}

/** Every shard id sorts after this (`s` and more). */
const SHARD_IDS_AFTER = 's'

/**
 * The shard ids among the first `limit` consensus keys after `after` (from the first shard id when
 * undefined), sorted, and the key the next range starts after when this one came back full.
 */
async function shardIdsAfter(src: Pick<ListingSource, 'keys'>, after: string | undefined, limit: number): Promise<{ readonly ids: ShardId[]; readonly next?: string }> {
  const from = after ?? SHARD_IDS_AFTER
  const keys = await src.keys({ after: from, limit })
  const ids = keys.filter((k): k is ShardId => isShardId(k) && k > from).sort()
  const last = keys.at(-1)
  return keys.length === limit && last !== undefined ? { ids, next: last } : { ids }
}

/** The live shard holding `name`, or null. */
async function byName(src: ListingSource, name: string): Promise<Versioned<ShardState> | null> {
  const holder = await src.holder(name)
  if (holder === null) return null
  const v = await src.shard(holder)
  return v !== null && !isDeleted(v.state) && v.state.name === name ? v : null
}

/** Reads candidates in order until `limit` live shards are found or `2 × limit` were examined. */
async function fillPage<C>(candidates: readonly C[], limit: number, read: (c: C) => Promise<Versioned<ShardState> | null>, cursorOf: (c: C) => string): Promise<ShardPage> {
  const budget = Math.min(candidates.length, 2 * limit)
  const shards: Versioned<ShardState>[] = []
  let examined = 0
  while (shards.length < limit && examined < budget) {
    const take = Math.min(limit - shards.length, budget - examined)
    const batch = candidates.slice(examined, examined + take)
    const heads = await runLimited(
      batch.map((c) => () => read(c)),
      READ_CONCURRENCY,
    )
    for (const v of heads) if (v !== null && !isDeleted(v.state)) shards.push(v)
    examined += take
  }
  const last = candidates[examined - 1]
  return examined < candidates.length && last !== undefined ? { shards, nextCursor: cursorOf(last) } : { shards }
}

function encodeCursor(kind: 'i' | 'n', value: string): string {
  return Buffer.from(`${kind}:${value}`, 'utf8').toString('base64url')
}

function decodeCursor(cursor: string, kind: 'i' | 'n'): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  if (cursor === '' || encodeCursor(kind, text.slice(2)) !== cursor || !text.startsWith(`${kind}:`)) {
    throw bad(`query.cursor: not a cursor of this listing; pass back a nextCursor as received, with the same name filter`)
  }
  return text.slice(2)
}

function bad(message: string): AppError {
  return new AppError('BAD_REQUEST', message)
}

/**
 * Lists every live shard once through `list`, page by page (at most `maxPages` of `pageSize`),
 * stopping between pages once `stopped()`; returns how many it listed.
 */
export async function listEvery(list: (q: ListShardsQuery) => Promise<ShardPage>, stopped: () => boolean, pageSize = 200, maxPages = 1000): Promise<number> {
  let cursor: string | undefined
  let n = 0
  for (let page = 0; page < maxPages && !stopped(); page++) {
    const p = await list({ limit: pageSize, ...(cursor === undefined ? {} : { cursor }) })
    n += p.shards.length
    if (p.nextCursor === undefined) break
    cursor = p.nextCursor
  }
  return n
}

/** A shard id and the seqno of its latest version. */
export interface ShardHead {
  readonly shardId: ShardId
  readonly seqno: SeqNo
}

/** What a listing of heads reads: consensus keys in ranges, and a key's head seqno (no state decoded). */
export interface HeadsSource extends Pick<ListingSource, 'keys'> {
  seqno(shardId: ShardId): Promise<SeqNo | null>
}

/**
 * Up to `limit` shard ids after `after` (from the first when undefined), deleted ones included,
 * each with the seqno of its head, without decoding any state: for a pass over every shard that
 * only needs to read again those that changed since it last looked (the idle sweep). `next` is the
 * `after` of the next page, absent on the last.
 */
export async function listHeads(src: HeadsSource, after: string | undefined, limit: number): Promise<{ readonly heads: readonly ShardHead[]; readonly next?: string }> {
  const { ids, next } = await shardIdsAfter(src, after, limit)
  const seqnos = await runLimited(
    ids.map((id) => () => src.seqno(id)),
    READ_CONCURRENCY,
  )
  const heads = ids.flatMap((shardId, i) => (seqnos[i] == null ? [] : [{ shardId, seqno: seqnos[i] }]))
  return next === undefined ? { heads } : { heads, next }
}
