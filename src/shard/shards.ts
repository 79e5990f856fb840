/**
 * Shards: the service behind the shard and data routes (docs/api.md#shards, docs/api.md#writing-data,
 * docs/api.md#reading-data). Every state change is one pure transition of state.ts committed by the machine; every
 * failure a client can cause is an AppError with a 4xx code and a message naming the field.
 *
 * Writes: the request body (JSON or an Arrow IPC stream) goes to a write task in a worker as it
 * arrives (engine/write-task.ts), which validates it against the latest schema and the batch
 * description, sorts what is not sorted, consolidates and builds parts; here the parts are kept
 * inline or uploaded (batch-writer.ts) and the batch is compare-and-appended. A write that fails
 * (bad rows, a body over the limit, a worker that died) deletes the parts it uploaded; so does an
 * upper mismatch or an invalid append. On inline backpressure inline parts move to blob and the
 * append is retried once. Appends hand the trace's merge requests to `onMergeRequests` listeners
 * (the compactor's maintenance).
 *
 * Reads are delegated to the snapshot reader (snapshot-reader.ts): it holds the leases a read
 * needs, keeps small bodies and may serve a state this process saw a moment ago; what it shares with
 * the commands (the recent states they record, the process's leases, the command loop its reader
 * leases commit through) is handed to it here.
 *
 * Lifecycle: `create` claims a non-empty name in the name index (name-index.ts) before it writes
 * the shard's first state; `delete` turns the state into a tombstone (state.ts), after which every
 * read and command answers SHARD_DELETED (410) and GC collects the shard's blobs; `list` pages
 * through shards by id or by name (shard-listing.ts).
 *
 * NB: a batch given to `append` is the client's: on a mismatch its parts are NOT deleted (it may
 * be a batch the shard already references, appended a second time); unreferenced ones are
 * collected by GC after the grace period.
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import { parseBatch, type HollowBatch } from '../core/batch.js'
import { isShardId, newShardId, type PartId, type ShardId, type WriterKey } from '../core/ids.js'
import { blobKeyForShard, partialBatchKey, type BlobKey } from '../core/paths.js'
import { TIMESTAMP_KINDS } from '../core/timestamp.js'
import { parseDataType } from '../columnar/data-type.js'
import { decodePart } from '../columnar/part-format.js'
import type { DynamicConfigs } from '../dyncfg/dynamic-configs.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import type { Consensus } from '../location/consensus.js'
import type { ReaderLeases } from './reader-leases.js'
import { bodyOf, deletedError, notFound, parseBatchFrontier, writeError } from './shard-errors.js'
import type { AppendBatchResult, CreateShardRequest, PartRead, ShardsOptions, SnapshotRead, WriteBatchRequest, WriteBatchResult } from './shards-api.js'
import type { BatchPart } from '../core/batch.js'
import type { WriteTaskPayload } from '../engine/protocol.js'
import type { WorkerPool } from '../engine/worker-pool.js'
import { parseWriteHeader, refuseUnreachableAppend, upperMismatch } from '../engine/write-header.js'
import { runWriteTask } from '../engine/write-task.js'
import type { ApplyMode } from '../trace/apply-result.js'
import { WHOLE_BATCHES, type CompactionInput } from '../trace/compaction-input.js'
import type { FueledMergeReq } from '../trace/fueled-merge-req.js'
import { allHollowBatches } from '../trace/trace.js'
import { checkClientBatch } from './batch-check.js'
import { builtBatch, flushInlineParts, hollowKeys, runLimited, takeBuiltPart, userBatchDesc, type BatchWriterTarget } from './batch-writer.js'
import { ShardGc, type GcResult, type GcShare } from './gc.js'
import { Leases, type Release } from './leases.js'
import { PeriodicGc } from './periodic-gc.js'
import { breakWith, continueWith, type Machine, type Transition, type Versioned } from './machine.js'
import { checkShardName, NameIndex, type ClaimHolders } from './name-index.js'
import { RECENT_STATE_MAX_AGE_MS, RecentStates } from './recent-states.js'
import { listEvery, listHeads, listShards, type ListShardsQuery, type ShardPage } from './shard-listing.js'
import type { SnapshotFormat } from './snapshot.js'
import { SnapshotReader } from './snapshot-reader.js'
import {
  applyMergeRes,
  claimCompaction,
  compareAndAppend,
  completeMerges,
  deleteShard,
  downgradeSince,
  isDeleted,
  latestSchema,
  newShardState,
  registerSchema,
  releaseClaim,
  tkOf,
  upperOf,
  type AppendResult,
  type ApplyOutcome,
  type Fence,
  type ShardState,
} from './state.js'

export type { AppendBatchResult, ArrowWriteQuery, CreateShardRequest, PartRead, ShardsOptions, SnapshotRead, WriteBatchRequest, WriteBatchResult } from './shards-api.js'

export const DEFAULT_GC_GRACE_MS = 10 * 60 * 1000

/** Default largest write body (the HTTP default of `COMPACTD_BODY_LIMIT`). */
export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024 * 1024

/** Told about every committed append with the merge requests it produced (often none). Must not throw. */
export type MergeRequestListener = (shardId: ShardId, reqs: readonly FueledMergeReq[], state: Versioned<ShardState>) => void

export class Shards {
  readonly #machine: Machine<ShardState>
  readonly #consensus: Consensus
  readonly #blob: Blob
  readonly #pool: () => WorkerPool
  readonly #dyncfg: Pick<DynamicConfigs, 'start' | 'snapshot'>
  readonly #writerKey: WriterKey
  readonly #leases: Leases
  readonly #bodyLimitBytes: number
  /** Shared with the reader: commands and head reads record what they saw. */
  readonly #recent: RecentStates
  readonly #reader: SnapshotReader
  readonly #gc: ShardGc
  readonly #names: NameIndex
  /** What the name index asks of shards: their states, and creates rolled forward. */
  readonly #claimHolders: ClaimHolders = {
    state: async (shardId) => (await this.#machine.head(shardId))?.state ?? null,
    createIfAbsent: async (initial) => (await this.#createIfAbsent(initial)).state,
  }
  readonly #now: () => Date
  readonly #gcShare: () => Promise<GcShare | null>
  readonly #onError: (err: unknown) => void
  readonly #onState: ((shardId: ShardId, state: ShardState) => void) | undefined
  readonly #onListed: ((shardId: ShardId, state: ShardState) => void) | undefined
  readonly #listeners = new Set<MergeRequestListener>()
  readonly #periodicGc: PeriodicGc

  constructor(opts: ShardsOptions) {
    this.#machine = opts.machine
    this.#consensus = opts.consensus
    this.#blob = opts.blob
    const pool = opts.pool
    this.#pool = typeof pool === 'function' ? pool : () => pool
    this.#dyncfg = opts.dyncfg
    this.#writerKey = opts.writerKey
    this.#leases = opts.leases ?? new Leases()
    this.#bodyLimitBytes = opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES
    this.#recent = new RecentStates({ maxAgeMs: opts.recentStateMaxAgeMs ?? RECENT_STATE_MAX_AGE_MS, gcGraceMs: opts.gcGraceMs ?? DEFAULT_GC_GRACE_MS })
    this.#now = opts.now ?? (() => new Date())
    this.#gcShare = opts.gcShare ?? (async () => null)
    this.#onError = opts.onError ?? ((err) => process.emitWarning(err instanceof Error ? err : new Error(String(err))))
    this.#periodicGc = new PeriodicGc(opts.gcIntervalMs ?? null, (signal) => this.collectAll(signal), this.#onError)
    this.#onState = opts.onState
    this.#onListed = opts.onListed
    this.#gc = new ShardGc({
      blob: opts.blob,
      consensus: opts.consensus,
      machine: opts.machine,
      leases: this.#leases,
      metrics: opts.metrics.gc,
      ...(opts.metrics.cluster === undefined ? {} : { leaseWrites: opts.metrics.cluster.readerLeaseWrites }),
      now: this.#now,
      graceMs: opts.gcGraceMs ?? DEFAULT_GC_GRACE_MS,
      onError: this.#onError,
    })
    this.#names = new NameIndex(opts.consensus)
    this.#reader = new SnapshotReader({
      blob: opts.blob,
      pool: this.#pool,
      ...(opts.snapshotTuning === undefined ? {} : { tuning: opts.snapshotTuning }),
      dyncfg: opts.dyncfg,
      head: (shardId) => this.get(shardId),
      recent: this.#recent,
      leases: this.#leases,
      commit: (shardId, cmd, transition) => this.#command(shardId, cmd, transition),
      instance: opts.instanceId ?? 'local',
      now: this.#now,
      ...(opts.metrics.cluster === undefined ? {} : { metrics: opts.metrics.cluster }),
      onError: this.#onError,
      ...(opts.snapshotBodies === undefined ? {} : { bodies: opts.snapshotBodies }),
    })
  }

  get leases(): Leases {
    return this.#leases
  }

  /** This instance's reader leases in shard state. */
  get readerLeases(): ReaderLeases {
    return this.#reader.readerLeases
  }

  get writerKey(): WriterKey {
    return this.#writerKey
  }

  // ---- shards ----------------------------------------------------------------------------------

  /** A new shard; a non-empty name must be free (SHARD_NAME_TAKEN, with the holder's `shardId`). */
  async create(req: CreateShardRequest): Promise<Versioned<ShardState>> {
    if (!(TIMESTAMP_KINDS as readonly string[]).includes(req.timestamp)) {
      throw new AppError('BAD_REQUEST', `body.timestamp: must be one of ${TIMESTAMP_KINDS.join(', ')}`)
    }
    const name = req.name ?? ''
    const badName = checkShardName(name, 'body.name')
    if (badName !== null) throw new AppError('BAD_REQUEST', badName)
    const key = parseDataType(req.keySchema, 'body.keySchema')
    if (!key.ok) throw new AppError('BAD_REQUEST', key.error)
    const val = parseDataType(req.valSchema, 'body.valSchema')
    if (!val.ok) throw new AppError('BAD_REQUEST', val.error)
    const initial = newShardState(newShardId(), name, req.timestamp, key.value, val.value, this.#now().toISOString())
    if (name !== '') {
      const claim = await this.#names.claim(initial, this.#claimHolders)
      if (claim.kind === 'taken') {
        throw new AppError('SHARD_NAME_TAKEN', `body.name: "${name}" is the name of shard ${claim.holder}; choose another name, or delete that shard first`, { shardId: claim.holder })
      }
    }
    const created = await this.#createIfAbsent(initial)
    // NB: a fresh id exists already only when a create that found our claim rolled it forward.
    if (isDeleted(created.state)) throw deletedError(created.state)
    return created
  }

  /** A page of live shards, oldest first, or those with a name or name prefix (shard-listing.ts). */
  async list(query: ListShardsQuery = {}): Promise<ShardPage> {
    return listShards(
      {
        // NB: the page reads the head of each key it shows and skips those without one.
        keys: (range) => this.#consensus.list({ exact: false, ...range }),
        shard: async (id) => {
          const head = await this.#machine.head(id)
          if (head !== null) this.#notify(this.#onListed, id, head.state)
          return head
        },
        holder: (name) => this.#names.holder(name),
      },
      query,
    )
  }

  /** The latest state; SHARD_NOT_FOUND, or SHARD_DELETED for a tombstone. */
  async get(shardId: ShardId): Promise<Versioned<ShardState>> {
    const head = await this.#machine.head(shardId)
    if (head === null) throw notFound(shardId)
    this.#saw(shardId, head.state)
    this.#recent.saw(shardId, head)
    if (isDeleted(head.state)) throw deletedError(head.state)
    return head
  }

  /**
   * Deletes the shard: its state becomes a tombstone (by compare-and-set, so a write racing it
   * commits either before it, and is deleted with the shard, or not at all), its name is free
   * again, and GC collects its blobs. SHARD_NOT_FOUND; SHARD_DELETED when it was deleted already.
   */
  async delete(shardId: ShardId): Promise<{ readonly shardId: ShardId; readonly deletedAt: string }> {
    const at = this.#now().toISOString()
    const r = await this.#command(shardId, 'delete_shard', (cur) => (cur === null ? breakWith(null) : deleteShard(cur.state, at)))
    if (r.result === null || r.state === null) throw notFound(shardId)
    if (r.result.kind === 'already_deleted') throw deletedError(r.state)
    return { shardId, deletedAt: r.result.deletedAt }
  }

  /** Registers a schema evolved from the latest; returns its id (the latest's when equal). */
  async registerSchema(shardId: ShardId, keySchema: unknown, valSchema: unknown): Promise<{ id: number }> {
    const key = parseDataType(keySchema, 'body.keySchema')
    if (!key.ok) throw new AppError('BAD_REQUEST', key.error)
    const val = parseDataType(valSchema, 'body.valSchema')
    if (!val.ok) throw new AppError('BAD_REQUEST', val.error)
    const r = await this.#command(shardId, 'register_schema', (cur) => (cur === null ? breakWith(null) : registerSchema(cur.state, key.value, val.value)))
    if (r.result === null || r.state === null) throw notFound(shardId)
    if (r.result.kind === 'deleted') throw deletedError(r.state)
    if (r.result.kind === 'incompatible') throw new AppError('SCHEMA_INCOMPATIBLE', r.result.error)
    return { id: r.result.id }
  }

  /** Moves the since forward (or leaves it); SINCE_REGRESSION (409) with the current `since`. */
  async downgradeSince(shardId: ShardId, sinceJson: unknown): Promise<Versioned<ShardState>> {
    const { state } = await this.get(shardId)
    const tk = tkOf(state)
    const since = ac.parse(tk, sinceJson)
    if (!since.ok) throw new AppError('BAD_REQUEST', `body.since: ${since.error}`)
    const r = await this.#command(shardId, 'downgrade_since', (cur) => (cur === null ? breakWith(null) : downgradeSince(cur.state, since.value)))
    if (r.result === null || r.state === null) throw notFound(shardId)
    if (r.result.kind === 'deleted') throw deletedError(r.state)
    if (r.result.kind === 'regression') {
      throw new AppError('SINCE_REGRESSION', `body.since: ${ac.format(tk, since.value)} is behind the shard's since ${ac.format(tk, r.result.current)}; since only moves forward`, {
        since: ac.toJson(tk, r.result.current),
      })
    }
    return { seqno: r.seqno, state: r.state }
  }

  /**
   * Completes every merge the shard's spine has in progress (an operator's compaction does this
   * first, then compacts the merged batches); the state after it. SHARD_NOT_FOUND.
   */
  async completeMerges(shardId: ShardId): Promise<Versioned<ShardState>> {
    const r = await this.#command(shardId, 'complete_merges', (cur) => (cur === null ? breakWith(null) : completeMerges(cur.state)))
    if (r.state === null || r.result === null) throw notFound(shardId)
    if (isDeleted(r.state)) throw deletedError(r.state)
    return { seqno: r.seqno, state: r.state }
  }

  /**
   * Offers a compaction output to the shard's trace (the outcomes of trace/apply-result.ts: by desc,
   * over whole spine batches for `major`, or in place of named runs of one hollow batch for a `runs`
   * input), committed like every other command: exact knowledge of whether it landed. A shard that
   * no longer exists answers `not_applied_no_match`.
   */
  async applyMergeRes(shardId: ShardId, output: HollowBatch, mode: ApplyMode = 'merge', fence: Fence | null = null, input: CompactionInput = WHOLE_BATCHES): Promise<ApplyOutcome> {
    const gone: ApplyOutcome = { result: 'not_applied_no_match', detail: { why: 'range', message: `shard ${shardId} does not exist` } }
    const r = await this.#command(shardId, 'merge_res', (cur) => (cur === null ? breakWith(gone) : applyMergeRes(cur.state, output, mode, fence, input)))
    return r.result
  }

  /**
   * Gives attempt `token` of compaction `job` the right to change the shard's trace (see
   * state.ts `claims`); `fenced` when a newer attempt holds it. SHARD_NOT_FOUND, SHARD_DELETED.
   */
  async claimCompaction(shardId: ShardId, job: string, token: number): Promise<'claimed' | 'fenced'> {
    const r = await this.#command(shardId, 'claim_compaction', (cur) => (cur === null ? breakWith(null) : claimCompaction(cur.state, job, token, this.#now().toISOString())))
    if (r.result === null || r.state === null) throw notFound(shardId)
    if (r.result.kind === 'deleted') throw deletedError(r.state)
    return r.result.kind
  }

  /** Drops attempt `token`'s claim of `job` (nothing when a newer attempt holds it, or the shard is gone). */
  async releaseClaim(shardId: ShardId, job: string, token: number): Promise<void> {
    await this.#command(shardId, 'release_claim', (cur) => (cur === null ? breakWith(null) : releaseClaim(cur.state, job, token)))
  }

  // ---- data ------------------------------------------------------------------------------------

  /**
   * Writes a batch with the latest schema and, unless `append` is false, compare-and-appends it at
   * `expectedUpper` (default: its lower). The body is decoded, checked, sorted and encoded by a
   * write task in a worker as it arrives. INVALID_BATCH names the first bad field or row;
   * UPPER_MISMATCH (409) carries `currentUpper`; PAYLOAD_TOO_LARGE (413) for a body over the limit.
   */
  async writeBatch(shardId: ShardId, req: WriteBatchRequest): Promise<WriteBatchResult> {
    const { state } = await this.get(shardId)
    const tk = tkOf(state)
    const schema = latestSchema(state)
    const arrow = req.kind === 'arrow' || req.kind === 'arrow-body'
    // An Arrow body's header is checked before a byte of the body is read.
    const header = arrow ? parseWriteHeader(tk, { lower: req.lower, upper: req.upper, append: req.append, expectedUpper: req.expectedUpper }, 'query') : null
    // An append the shard's upper is already past is refused before its body is read (a JSON
    // body's, by the worker, once its header is in).
    const shardUpper = upperOf(state)
    if (header !== null) refuseUnreachableAppend(tk, header, shardUpper)
    const cfg = await this.#cfg()
    const payload: WriteTaskPayload = {
      format: arrow ? 'arrow' : 'json',
      keyType: schema.key,
      valType: schema.val,
      timeKind: tk.name,
      header,
      shardUpper,
      order: cfg.persist_batch_preferred_order,
      schemaId: schema.id,
      targetSizeBytes: cfg.persist_blob_target_size,
      maxBodyBytes: this.#bodyLimitBytes,
    }
    const pins: Release[] = []
    const target = this.#target(shardId, pins)
    const uploaded: BlobKey[] = []
    const parts: BatchPart[] = []
    try {
      let written
      try {
        written = await runWriteTask(this.#pool(), payload, {
          body: bodyOf(req),
          maxBodyBytes: this.#bodyLimitBytes,
          maxOutstanding: cfg.persist_batch_builder_max_outstanding_parts,
          onPart: async (part) => {
            // Parts are placed in the order they were built, whenever their uploads end.
            const at = parts.length
            parts.push(PENDING_PART)
            parts[at] = await takeBuiltPart(target, part, schema.id, cfg.persist_inline_writes_single_max_bytes, (key) => uploaded.push(key))
          },
        })
      } catch (err) {
        // The batch will never be appended: what it uploaded is garbage now.
        await this.#deleteParts(uploaded)
        throw writeError(err, tk, shardUpper)
      }
      const h = written.header
      const batch = builtBatch(userBatchDesc(tk, h.lower, h.upper), written.stats.rows, parts, written.stats.partsPerRun, cfg.persist_batch_preferred_order, schema.id)
      if (!h.append) return { tk, batch, appended: false }
      const done = await this.#compareAndAppend(shardId, batch, h.expectedUpper, target, true)
      return { tk, batch: done.batch, appended: true, seqno: done.seqno, upper: done.upper }
    } finally {
      for (const release of pins) release()
    }
  }

  /**
   * Appends a batch written earlier (`writeBatch` with append false), after checking every part
   * against blob storage (INVALID_BATCH names the first bad part).
   */
  async append(shardId: ShardId, batchJson: unknown, expectedUpperJson?: unknown): Promise<AppendBatchResult> {
    const { state } = await this.get(shardId)
    const tk = tkOf(state)
    const parsed = parseBatch(tk, shardId, batchJson, 'body.batch')
    if (!parsed.ok) throw new AppError('INVALID_BATCH', parsed.error)
    const expectedUpper = expectedUpperJson === undefined ? parsed.value.desc.lower : parseBatchFrontier(tk, expectedUpperJson, 'body.expectedUpper')
    const pins: Release[] = [this.#leases.pin(shardId, hollowKeys(shardId, parsed.value))]
    try {
      const cfg = await this.#cfg()
      const checked = await checkClientBatch(this.#blob, shardId, tk, state, parsed.value, 'body.batch', cfg.persist_batch_builder_max_outstanding_parts)
      if (!checked.ok) throw new AppError('INVALID_BATCH', checked.error)
      const done = await this.#compareAndAppend(shardId, checked.batch, expectedUpper, this.#target(shardId, pins), false)
      return { tk, seqno: done.seqno, upper: done.upper }
    } finally {
      for (const release of pins) release()
    }
  }

  /**
   * A snapshot at `asOf` (JSON: a timestamp, or its text from a query string): every update at or
   * before it, times advanced to it, consolidated and sorted, as a response body in `format`,
   * encoded by a worker. AS_OF_NOT_AVAILABLE unless `since ≤ asOf` and not `upper ≤ asOf`. A state
   * read a moment ago may serve, and a small body read from the same version is answered again
   * (snapshot-reader.ts). Aborting `opts.abort` stops the read; its signal is taken only by a read
   * that runs a task (a body kept in memory needs none, and a signal is not free to make).
   */
  async snapshot(shardId: ShardId, asOfJson: unknown, opts: { readonly format: SnapshotFormat; readonly abort?: AbortController }): Promise<SnapshotRead> {
    return this.#reader.read(shardId, asOfJson, opts)
  }

  /** A part as stored; PART_NOT_FOUND. */
  async readPart(shardId: ShardId, writerKey: WriterKey, partId: PartId): Promise<PartRead> {
    const { state } = await this.get(shardId)
    const partial = partialBatchKey(writerKey, partId)
    const key = blobKeyForShard(shardId, partial)
    if (!key.ok) throw new AppError('BAD_REQUEST', `params: ${key.error}`)
    const bytes = await this.#blob.get(key.value)
    if (bytes === null) throw new AppError('PART_NOT_FOUND', `part ${partial} does not exist in shard ${shardId}`)
    const { meta, updates } = decodePart(bytes)
    return { tk: tkOf(state), key: partial, meta, updates }
  }

  // ---- GC --------------------------------------------------------------------------------------

  /** One GC pass over a live shard; SHARD_NOT_FOUND, SHARD_DELETED (deleted shards are `collect`ed). */
  async gc(shardId: ShardId): Promise<GcResult> {
    await this.get(shardId)
    const r = await this.collect(shardId)
    if (r === null) throw notFound(shardId)
    return r
  }

  /** One GC pass over any shard, a deleted one included (all its blobs go); null when it has no state. */
  async collect(shardId: ShardId): Promise<GcResult | null> {
    return this.#gc.collect(shardId, (await this.#cfg()).persist_gc_blob_delete_concurrency_limit)
  }

  /** Starts the periodic GC over every shard (when an interval was configured). Idempotent. */
  start(): void {
    this.#periodicGc.start()
  }

  /** Stops the periodic GC and waits for a pass in flight; stops renewing reader leases and releases those no read holds. Idempotent. */
  async stop(): Promise<void> {
    await this.#periodicGc.stop()
    await this.#gc.settled()
    await this.#reader.stop()
  }

  /** One GC pass over this instance's share of the shards, one after another, until `signal` aborts (gc.ts `pass`); returns how many it collected. */
  async collectAll(signal?: AbortSignal): Promise<number> {
    const share = await this.#gcShare().catch(() => null)
    const ids = (await this.#consensus.list()).filter(isShardId)
    return this.#gc.pass(ids, share, (await this.#cfg()).persist_gc_blob_delete_concurrency_limit, signal)
  }

  // ---- merge requests --------------------------------------------------------------------------

  /** Registers a listener for committed appends and their merge requests; returns its unsubscribe. */
  onMergeRequests(listener: MergeRequestListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * Runs a machine command while holding back truncation of the versions it may scan; then tells
   * GC, which truncates the versions far behind every so often (gc.ts `committed`).
   */
  async #command<R>(shardId: ShardId, cmd: string, transition: (cur: Versioned<ShardState> | null) => Transition<ShardState, R>) {
    // NB: the command reads from the machine's cached version (or the head): holding back from
    // that seqno covers every version it may scan; with none cached, from 0 (nothing truncated).
    const release = this.#leases.acquire(shardId, this.#machine.cachedSeqno(shardId) ?? 0)
    let r
    try {
      r = await this.#machine.apply(shardId, cmd, transition)
      if (r.seqno >= 0) this.#saw(shardId, r.state)
      if (r.state !== null && r.seqno >= 0) this.#recent.saw(shardId, { seqno: r.seqno, state: r.state })
    } finally {
      release()
    }
    if (r.state !== null && r.seqno >= 0) this.#gc.committed(shardId, { seqno: r.seqno, state: r.state })
    return r
  }

  /** Creates the shard with `initial` unless it has a state; the state it has afterwards. */
  async #createIfAbsent(initial: ShardState): Promise<Versioned<ShardState>> {
    const r = await this.#command(initial.shardId, 'create', (cur) => (cur === null ? continueWith(initial, true) : breakWith(false)))
    if (r.state === null) throw new Error(`create of ${initial.shardId} left no state`)
    return { seqno: r.seqno, state: r.state }
  }

  /** The current config values, once loaded. */
  async #cfg(): Promise<ConfigValues> {
    await this.#dyncfg.start()
    return this.#dyncfg.snapshot()
  }

  #saw(shardId: ShardId, state: ShardState | null): void {
    if (state !== null) this.#notify(this.#onState, shardId, state)
  }

  #notify(listener: ((shardId: ShardId, state: ShardState) => void) | undefined, shardId: ShardId, state: ShardState): void {
    try {
      listener?.(shardId, state)
    } catch (err) {
      this.#onError(err)
    }
  }

  /** A page of shard ids with their heads' seqnos, no state decoded (shard-listing.ts `listHeads`). */
  heads(after: string | undefined, limit: number): ReturnType<typeof listHeads> {
    return listHeads({ keys: (range) => this.#consensus.list({ exact: false, ...range }), seqno: async (id) => (await this.#consensus.head(id))?.seqno ?? null }, after, limit)
  }

  /** Lists every live shard once, so `onListed` sees each (shard-listing.ts `listEvery`): the backlog totals of an instance that just started. */
  readAll(stopped: () => boolean, pageSize?: number, maxPages?: number): Promise<number> {
    return listEvery((q) => this.list(q), stopped, pageSize, maxPages)
  }

  #target(shardId: ShardId, pins: Release[]): BatchWriterTarget {
    return { blob: this.#blob, shardId, writerKey: this.#writerKey, beforeUpload: (key: BlobKey) => pins.push(this.#leases.pin(shardId, [key])) }
  }

  /**
   * Compare-and-appends `batch`; on inline backpressure moves its inline parts to blob and tries
   * once more. `own`: the parts were uploaded by this call and are deleted when the append fails.
   */
  async #compareAndAppend(shardId: ShardId, first: HollowBatch, expectedUpper: Antichain, target: BatchWriterTarget, own: boolean) {
    let batch = first
    const uploaded = new Set<BlobKey>(own ? hollowKeys(shardId, batch) : [])
    for (let attempt = 0; ; attempt++) {
      const totalMax = (await this.#cfg()).persist_inline_writes_total_max_bytes
      const r = await this.#command<AppendResult | { readonly kind: 'not_found' }>(shardId, 'compare_and_append', (cur) =>
        cur === null ? breakWith({ kind: 'not_found' }) : compareAndAppend(cur.state, batch, expectedUpper, totalMax),
      )
      const result = r.result
      if (result.kind === 'appended' && r.state !== null) {
        this.#emit(shardId, result.mergeReqs, { seqno: r.seqno, state: r.state })
        return { batch, seqno: r.seqno, upper: upperOf(r.state) }
      }
      if (result.kind === 'inline_backpressure' && attempt === 0) {
        const before = new Set(hollowKeys(shardId, batch))
        batch = await flushInlineParts(target, batch, (await this.#cfg()).persist_batch_builder_max_outstanding_parts)
        for (const k of hollowKeys(shardId, batch)) if (!before.has(k)) uploaded.add(k)
        continue
      }
      await this.#deleteParts([...uploaded])
      switch (result.kind) {
        case 'not_found':
          throw notFound(shardId)
        case 'deleted':
          throw deletedError(r.state as ShardState)
        case 'upper_mismatch': {
          const tk = tkOf(r.state as ShardState)
          if (!own) {
            // docs/api.md#write-now-append-later: a refused compare-and-append deletes the batch's parts. NB: only those the
            // shard does not reference: the same batch may have been appended before.
            const referenced = new Set(allHollowBatches((r.state as ShardState).trace).flatMap((b) => hollowKeys(shardId, b)))
            await this.#deleteParts(hollowKeys(shardId, batch).filter((k) => !referenced.has(k)))
          }
          throw upperMismatch(tk, expectedUpper, result.currentUpper)
        }
        case 'invalid':
          throw new AppError('INVALID_BATCH', `body: ${result.error}`)
        default:
          // NB: backpressure again after flushing every inline part cannot happen (no inline bytes left).
          throw new Error(`compare_and_append on ${shardId} ended in ${result.kind}`)
      }
    }
  }

  async #deleteParts(keys: readonly BlobKey[]): Promise<void> {
    if (keys.length === 0) return
    const limit = (await this.#cfg()).persist_gc_blob_delete_concurrency_limit
    await runLimited(
      keys.map((k) => () => this.#blob.delete(k)),
      limit,
    )
  }

  #emit(shardId: ShardId, reqs: readonly FueledMergeReq[], state: Versioned<ShardState>): void {
    for (const listener of this.#listeners) {
      try {
        listener(shardId, reqs, state)
      } catch (err) {
        this.#onError(err)
      }
    }
  }
}

/** Marks the place of a part whose upload is in flight (replaced before the batch is built). */
const PENDING_PART: BatchPart = { kind: 'inline', encodedSizeBytes: 0, updates: new Uint8Array(0) }
