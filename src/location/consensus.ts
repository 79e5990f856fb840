/** Consensus: a durable, linearizable log of versions per key (shard state lives here). */
import type { Abortable } from './errors.js'

/** Sequence numbers of state versions; start at 0, strictly increasing per key. */
export type SeqNo = number

export interface VersionedData {
  readonly seqno: SeqNo
  readonly data: Uint8Array
}

export type CasResult = { readonly kind: 'committed' } | { readonly kind: 'mismatch'; readonly current: VersionedData | null }

export interface Consensus {
  /** The latest version under `key`, or null if the key has none. */
  head(key: string, opts?: Abortable): Promise<VersionedData | null>
  /**
   * Writes `data` iff the head's seqno is `expected` (null: the key has no versions yet).
   * `data.seqno` must be exactly `expected + 1` (0 when expected is null), else InvalidUsageError:
   * seqnos are contiguous, which is what lets every adapter detect a stale writer.
   * On mismatch nothing is written and the current head is returned.
   */
  compareAndSet(key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable): Promise<CasResult>
  /** Up to `limit` (≥ 1) versions with seqno ≥ `from`, ascending. */
  scan(key: string, from: SeqNo, limit: number, opts?: Abortable): Promise<VersionedData[]>
  /**
   * Deletes every version with seqno < `seqno`; returns how many were deleted. `seqno` beyond the
   * head (or a key with no versions) is an InvalidUsageError: the head is never truncated away.
   */
  truncate(key: string, seqno: SeqNo, opts?: Abortable): Promise<number>
  /**
   * Every key that has at least one version. With `exact: false`, possibly some that have none as
   * well (see ListOptions).
   */
  list(opts?: ListOptions): Promise<string[]>
  /** Releases connections and handles. Idempotent. */
  close(): Promise<void>
}

export interface ListOptions extends Abortable {
  /**
   * false: the keys may include some that have no version (on a file store, a first write cut
   * short leaves its key's directory), where telling those apart costs reads per key. For callers
   * that read the head of each key they use anyway and skip the ones without: a page of shards out
   * of thousands. Default true.
   */
  readonly exact?: boolean
  /**
   * A range of the keys, in ascending order: at most `limit` (≥ 1) of them, the first ones after
   * `after` (default: from the first). For callers that page through many keys (a page of shards),
   * so a page does not read every key. The order is the store's: code-unit order on mem and file
   * stores, the database's collation on PostgreSQL. They agree on the keys listed this way, shard
   * ids (`s` and lowercase hex digits with `-` at fixed places), and may not on other keys.
   */
  readonly after?: string
  readonly limit?: number
}
