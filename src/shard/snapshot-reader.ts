/**
 * SnapshotReader: the snapshot reads of this process (docs/api.md#reading-data), for `Shards`,
 * which delegates `snapshot` here and keeps the commands. A read:
 * 1. takes a state: one this process saw a moment ago (recent-states.ts; reads that miss share one
 *    head read), or the head when that one cannot serve its asOf;
 * 2. answers a small body already read from that very version at the same asOf, format and order
 *    (snapshot-bodies.ts, owned here): no lease, no task; reads of a key being read wait for it;
 * 3. otherwise takes this instance's reader lease in shard state (reader-leases.ts, owned here) and
 *    a lease of the process (leases.ts) on the version it reads, held until the body ends or is
 *    released, so GC on every instance keeps what the read needs;
 * 4. merges and encodes the body in a worker (snapshot.ts).
 *
 * What it shares with `Shards` is passed in, never reached through it: the recent states (commands
 * record what they commit there), the process's leases (GC reads them), the head read (which
 * records what it saw) and the command loop the reader leases commit through.
 *
 * NB: when the reader lease commits, the read uses the state that commit produced, never the one
 * it had (GC elsewhere may have taken that one's replaced parts meanwhile); its asOf is checked
 * again against it.
 */
import * as ac from '../core/antichain.js'
import type { ShardId } from '../core/ids.js'
import type { DynamicConfigs } from '../dyncfg/dynamic-configs.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import type { BodyChunk } from '../engine/read-task.js'
import type { WorkerPool } from '../engine/worker-pool.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import type { Leases } from './leases.js'
import type { Versioned } from './machine.js'
import { ReaderLeases, type CommitState, type ReaderLeaseMetrics } from './reader-leases.js'
import type { RecentStates } from './recent-states.js'
import { deletedError, notAvailable, notFound, timestampFromText } from './shard-errors.js'
import type { SnapshotRead } from './shards-api.js'
import { readSnapshot, type SnapshotFormat, type SnapshotTuning } from './snapshot.js'
import { SnapshotBodies } from './snapshot-bodies.js'
import { isDeleted, latestSchema, sinceOf, tkOf, upperOf, type ShardState } from './state.js'

export interface SnapshotReaderOptions {
  readonly blob: Blob
  /** The worker pool that merges and encodes (called on a read's first task). */
  readonly pool: () => WorkerPool
  /** How reads are cut up (snapshot.ts); defaults where not given. */
  readonly tuning?: SnapshotTuning
  /** Started (loaded) here before a read's first use of a value. */
  readonly dyncfg: Pick<DynamicConfigs, 'start' | 'snapshot'>
  /** The head state, recorded as seen (recent states included); SHARD_NOT_FOUND, SHARD_DELETED. */
  readonly head: (shardId: ShardId) => Promise<Versioned<ShardState>>
  /** States this process saw a moment ago; commands record theirs in the same instance. */
  readonly recent: RecentStates
  /** The leases of this process (GC in this process keeps what they hold). */
  readonly leases: Leases
  /** Commits reader-lease transitions (the command loop of `Shards`). */
  readonly commit: CommitState
  /** This instance's id, recorded in its reader leases. */
  readonly instance: string
  readonly now: () => Date
  readonly metrics?: ReaderLeaseMetrics
  /** Errors of the reader-lease renewer, which nobody awaits. */
  readonly onError: (err: unknown) => void
  /** Bounds of the small bodies kept (snapshot-bodies.ts); `{ maxBytes: 0 }` keeps none. */
  readonly bodies?: { readonly maxBodyBytes?: number; readonly maxBytes?: number }
}

export class SnapshotReader {
  readonly #o: SnapshotReaderOptions
  readonly #bodies: SnapshotBodies
  readonly #readers: ReaderLeases

  constructor(opts: SnapshotReaderOptions) {
    this.#o = opts
    this.#bodies = new SnapshotBodies(opts.bodies ?? {})
    this.#readers = new ReaderLeases({
      instance: opts.instance,
      leases: opts.leases,
      commit: opts.commit,
      now: opts.now,
      durationMs: () => opts.dyncfg.snapshot().persist_reader_lease_duration,
      ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }),
      onError: opts.onError,
    })
  }

  /** This instance's reader leases in shard state. */
  get readerLeases(): ReaderLeases {
    return this.#readers
  }

  /**
   * The snapshot at `asOf` (JSON: a timestamp, or its text from a query string), its body in
   * `format`; the caller releases it when it does not iterate the body to its end. BAD_REQUEST for
   * an asOf of the wrong kind; AS_OF_NOT_AVAILABLE unless `since ≤ asOf` and not `upper ≤ asOf`;
   * SHARD_NOT_FOUND, SHARD_DELETED. Aborting `opts.abort` stops the read; its signal is taken only
   * by a read that runs a task (a body kept in memory needs none, and a signal is not free to make).
   */
  async read(shardId: ShardId, asOfJson: unknown, opts: { readonly format: SnapshotFormat; readonly abort?: AbortController }): Promise<SnapshotRead> {
    let head = await this.#o.recent.getOrRead(shardId, () => this.#o.head(shardId))
    if (isDeleted(head.state)) throw deletedError(head.state)
    const tk = tkOf(head.state)
    const parsed = tk.parse(typeof asOfJson === 'string' ? timestampFromText(asOfJson) : asOfJson)
    if (!parsed.ok) throw new AppError('BAD_REQUEST', `query.asOf: ${parsed.error}`)
    const asOf = parsed.value
    const available = (s: ShardState): boolean => ac.lessEqual(tk, sinceOf(s), asOf) && !ac.lessEqual(tk, upperOf(s), asOf)
    // NB: a remembered state that cannot serve this asOf may be behind the head: ask the head.
    if (!available(head.state)) head = await this.#o.head(shardId)
    if (!available(head.state)) throw notAvailable(tk, asOf, head.state)
    const cfg = await this.#cfg()
    const key = { shardId, asOf: tk.format(asOf), format: opts.format, order: cfg.persist_batch_preferred_order }
    // A small body read from this very version a moment ago is this read's answer (snapshot-bodies.ts).
    const headKey = { ...key, seqno: head.seqno }
    // NB: no await between a miss and `begin`, or reads arriving together would all miss and begin.
    const inFlight = this.#bodies.inFlight(headKey)
    const kept = this.#bodies.get(headKey) ?? (inFlight === null ? null : await inFlight)
    if (kept !== null) return { tk, asOf, shape: shapeOf(head.state), seqno: head.seqno, body: oneChunk(kept), release: () => undefined }
    // Reads of this key that come meanwhile wait for this one's body.
    const settle = this.#bodies.begin(headKey)
    // NB: the lease may commit, and then the read must use the state that commit produced.
    const leased = await this.#readers.acquire(shardId, head, cfg.persist_reader_lease_duration).catch((err: unknown) => {
      settle(null)
      throw err
    })
    if (leased.kind !== 'read') settle(null)
    if (leased.kind === 'not_found') throw notFound(shardId)
    if (leased.kind === 'deleted') throw deletedError(leased.state)
    const { read, release } = leased
    const state = read.state
    // NB: a body of another version than the one waited for is not the waiters' answer.
    const settleHead = (body: BodyChunk | null): void => settle(read.seqno === head.seqno ? body : null)
    try {
      if (!available(state)) throw notAvailable(tk, asOf, state)
      const deps = { ...this.#o.tuning, blob: this.#o.blob, pool: this.#o.pool() }
      const body = await readSnapshot(deps, state, asOf, {
        format: opts.format,
        ...(opts.abort === undefined ? {} : { signal: opts.abort.signal }),
        order: cfg.persist_batch_preferred_order,
        yieldAfterUpdates: cfg.compaction_yield_after_n_updates,
        onEnd: release,
      })
      return { tk, asOf, shape: shapeOf(state), seqno: read.seqno, body: this.#bodies.remember({ ...key, seqno: read.seqno }, body, settleHead), release }
    } catch (err) {
      settle(null)
      release()
      throw err
    }
  }

  /** Stops renewing reader leases and releases those no read holds. Idempotent. */
  async stop(): Promise<void> {
    await this.#readers.stop()
  }

  /** The current config values, once loaded. */
  async #cfg(): Promise<ConfigValues> {
    await this.#o.dyncfg.start()
    return this.#o.dyncfg.snapshot()
  }
}

/** The shape of a snapshot's rows: the latest schema's types. */
function shapeOf(state: ShardState): SnapshotRead['shape'] {
  const schema = latestSchema(state)
  return { keyType: schema.key, valType: schema.val, timeKind: tkOf(state).name }
}

/** A body of one chunk already encoded. */
async function* oneChunk(chunk: BodyChunk): AsyncGenerator<BodyChunk> {
  yield chunk
}
