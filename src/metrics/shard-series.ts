/**
 * Per-shard series, bounded. A label per shard id has no natural bound (shards are created over
 * HTTP), so at most `limit` shards carry per-shard series at once: the least recently updated
 * shard's series are removed when another shard needs room (docs/metrics.md "Per-shard series").
 *
 * Instance totals (`persist_backlog_*`) cover every shard this instance has seen, evicted or not,
 * so sums stay right when per-shard series are evicted.
 *
 * NB: an evicted counter that comes back starts again at 0; Prometheus' `rate`/`increase` read that
 * as a counter reset, which is what it is. The totals keep two numbers per shard with a backlog,
 * not per series; a deleted shard (`forget`) leaves the totals and its series go.
 */
import type { Counter, Gauge } from 'prom-client'

/** A shard's merge work as of one state: its non-compact spine batches and their encoded bytes. */
export interface ShardBacklog {
  readonly batches: number
  readonly bytes: number
}

/** The families a ShardSeries maintains; created by createMetrics. */
export interface ShardSeriesFamilies {
  readonly applied: Counter<'shard'>
  readonly backlogBatches: Gauge<'shard'>
  readonly backlogBytes: Gauge<'shard'>
  readonly tracked: Gauge
  readonly limit: Gauge
  readonly evicted: Counter
  readonly totalBatches: Gauge
  readonly totalBytes: Gauge
  readonly shardsWithBacklog: Gauge
}

/** Default of `COMPACTD_METRICS_SHARD_SERIES`. */
export const DEFAULT_SHARD_SERIES_LIMIT = 100

export class ShardSeries {
  readonly #families: ShardSeriesFamilies
  readonly #limit: number
  /** Shards with series, least recently updated first (a Map keeps insertion order). */
  readonly #recent = new Map<string, true>()
  /** Latest backlog of every shard seen with one (none: no entry), for the instance totals. */
  readonly #backlogs = new Map<string, ShardBacklog>()
  #totalBatches = 0
  #totalBytes = 0
  #withBacklog = 0

  constructor(families: ShardSeriesFamilies, limit: number) {
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`shard series limit must be a non-negative integer, got ${limit}`)
    this.#families = families
    this.#limit = limit
    families.limit.set(limit)
    families.tracked.set(0)
  }

  /** Counts `n` applied compaction results of `shard` (`persist_shard_compaction_applied_total`). */
  applied(shard: string, n = 1): void {
    if (this.#touch(shard)) this.#families.applied.inc({ shard }, n)
  }

  /** Records `shard`'s backlog as of a state this instance committed or read. */
  backlog(shard: string, b: ShardBacklog): void {
    this.#total(shard, b)
    if (!this.#touch(shard)) return
    this.#families.backlogBatches.set({ shard }, b.batches)
    this.#families.backlogBytes.set({ shard }, b.bytes)
  }

  /**
   * Records `shard`'s backlog as of a state a listing read (GET /v1/shards, the idle sweep, the
   * pass at start): the totals, and the shard's series if it has some, without making it the most
   * recently updated (listings walk every shard; they must not churn the per-shard series).
   */
  seen(shard: string, b: ShardBacklog): void {
    this.#total(shard, b)
    if (!this.#recent.has(shard)) return
    this.#families.backlogBatches.set({ shard }, b.batches)
    this.#families.backlogBytes.set({ shard }, b.bytes)
  }

  /** A deleted shard: out of the totals, and its series (if any) removed. */
  forget(shard: string): void {
    this.#total(shard, { batches: 0, bytes: 0 })
    if (!this.#recent.delete(shard)) return
    this.#removeSeries(shard)
    this.#families.tracked.set(this.#recent.size)
  }

  /** Shards whose backlog the totals hold (for tests). */
  get withBacklogKept(): number {
    return this.#backlogs.size
  }

  /** Puts `b` in the instance totals as `shard`'s backlog (a shard without one keeps no entry). */
  #total(shard: string, b: ShardBacklog): void {
    const before = this.#backlogs.get(shard)
    this.#totalBatches += b.batches - (before?.batches ?? 0)
    this.#totalBytes += b.bytes - (before?.bytes ?? 0)
    this.#withBacklog += Number(b.batches > 0) - Number((before?.batches ?? 0) > 0)
    if (b.batches === 0 && b.bytes === 0) this.#backlogs.delete(shard)
    else this.#backlogs.set(shard, { batches: b.batches, bytes: b.bytes })
    this.#families.totalBatches.set(this.#totalBatches)
    this.#families.totalBytes.set(this.#totalBytes)
    this.#families.shardsWithBacklog.set(this.#withBacklog)
  }

  /** Shards with series now, least recently updated first. */
  shards(): string[] {
    return [...this.#recent.keys()]
  }

  /**
   * Marks `shard` most recently updated, evicting the least recent shard when the limit is reached;
   * false when the limit is 0 (no per-shard series at all).
   */
  #touch(shard: string): boolean {
    if (this.#limit === 0) return false
    if (this.#recent.delete(shard)) {
      this.#recent.set(shard, true)
      return true
    }
    for (const oldest of this.#recent.keys()) {
      if (this.#recent.size < this.#limit) break
      this.#recent.delete(oldest)
      this.#remove(oldest)
    }
    this.#recent.set(shard, true)
    this.#families.tracked.set(this.#recent.size)
    // NB: the counter exists from 0, so `increase()` sees the shard's first applied result.
    this.#families.applied.inc({ shard }, 0)
    return true
  }

  #remove(shard: string): void {
    this.#removeSeries(shard)
    this.#families.evicted.inc()
  }

  #removeSeries(shard: string): void {
    const f = this.#families
    f.applied.remove({ shard })
    f.backlogBatches.remove({ shard })
    f.backlogBytes.remove({ shard })
  }
}
