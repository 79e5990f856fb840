/**
 * What callers of `Shards` (shards.ts) give and get: its options, and the requests and results of
 * writes, appends, snapshots and part reads.
 */
import type { Readable } from 'node:stream'
import type { Antichain } from '../core/antichain.js'
import type { HollowBatch } from '../core/batch.js'
import type { Timestamp, TimestampKind, TimestampKindName } from '../core/timestamp.js'
import type { PartMeta } from '../columnar/part-format.js'
import type { Updates, UpdatesShape } from '../columnar/updates.js'
import type { BodyChunk } from '../engine/read-task.js'
import type { ShardId, WriterKey } from '../core/ids.js'
import type { DynamicConfigs } from '../dyncfg/dynamic-configs.js'
import type { WorkerPool } from '../engine/worker-pool.js'
import type { Blob } from '../location/blob.js'
import type { Consensus, SeqNo } from '../location/consensus.js'
import type { GcMetrics } from '../metrics/metrics.js'
import type { GcShare } from './gc.js'
import type { Leases } from './leases.js'
import type { Machine } from './machine.js'
import type { ReaderLeaseMetrics } from './reader-leases.js'
import type { SnapshotTuning } from './snapshot.js'
import type { ShardState } from './state.js'

export interface CreateShardRequest {
  readonly name?: string
  readonly timestamp: TimestampKindName
  readonly keySchema?: unknown
  readonly valSchema?: unknown
}

/** The frontiers and append fields of an Arrow write, as JSON values (from the query string). */
export interface ArrowWriteQuery {
  readonly lower?: unknown
  readonly upper?: unknown
  readonly append?: boolean
  readonly expectedUpper?: unknown
}

/**
 * A batch write: a request body streamed as it arrives (JSON with the frontiers in it, or an
 * Arrow IPC stream with them in the query), or the same held in memory (a parsed JSON body, a
 * whole Arrow stream), which is fed to the same write task.
 */
export type WriteBatchRequest =
  | { readonly kind: 'json-body'; readonly body: Readable }
  | ({ readonly kind: 'arrow-body'; readonly body: Readable } & ArrowWriteQuery)
  | { readonly kind: 'json'; readonly updates: unknown; readonly lower?: unknown; readonly upper?: unknown; readonly append?: unknown; readonly expectedUpper?: unknown }
  | ({ readonly kind: 'arrow'; readonly bytes: Uint8Array } & ArrowWriteQuery)

export interface WriteBatchResult {
  readonly tk: TimestampKind
  readonly batch: HollowBatch
  readonly appended: boolean
  /** When appended: the state version that holds the batch, and the shard's upper after it. */
  readonly seqno?: SeqNo
  readonly upper?: Antichain
}

export interface AppendBatchResult {
  readonly tk: TimestampKind
  readonly seqno: SeqNo
  readonly upper: Antichain
}

export interface SnapshotRead {
  readonly tk: TimestampKind
  readonly asOf: Timestamp
  /** The shape of its rows: the latest schema's types. */
  readonly shape: UpdatesShape
  /** The state version read. */
  readonly seqno: SeqNo
  /**
   * The response body (the JSON document or an Arrow IPC stream of the consolidated, sorted rows
   * with times = asOf), in chunks encoded by a worker; releases the lease when iteration ends.
   */
  readonly body: AsyncIterable<BodyChunk>
  /** Releases the lease (idempotent); call it if `body` is never iterated to the end. */
  release(): void
}

export interface PartRead {
  readonly tk: TimestampKind
  /** `<writerKey>/<partId>` */
  readonly key: string
  readonly meta: PartMeta
  /** The rows as stored: unconsolidated, in the part's own schema. */
  readonly updates: Updates
}

export interface ShardsOptions {
  readonly machine: Machine<ShardState>
  /** For listing shards and truncating their old versions. */
  readonly consensus: Consensus
  readonly blob: Blob
  /** Snapshot reads merge in these worker threads (compaction's pool); a function is called on first use. */
  readonly pool: WorkerPool | (() => WorkerPool)
  /** Started (loaded) by the service before its first read of a value. */
  readonly dyncfg: Pick<DynamicConfigs, 'start' | 'snapshot'>
  /** This process's writer key (`w<uuid>`): every part it uploads lives under it. */
  readonly writerKey: WriterKey
  readonly metrics: { readonly gc: GcMetrics; readonly cluster?: ReaderLeaseMetrics }
  /** This instance's id, recorded in its reader leases; default `local`. */
  readonly instanceId?: string
  readonly now?: () => Date
  /** Age before an unreferenced blob may be deleted; default 10 minutes. */
  readonly gcGraceMs?: number
  /** Period of the background GC over every shard once `start()`ed; null (default) for none. */
  readonly gcIntervalMs?: number | null
  /** This instance's share of the periodic GC pass (gc.ts `GcShare`); null or a failure: every shard. Default: every shard. */
  readonly gcShare?: () => Promise<GcShare | null>
  /** Shared with whatever else reads state or writes parts in this process (the compactor). */
  readonly leases?: Leases
  /** Errors of background work nobody awaits (periodic GC, throwing listeners). */
  readonly onError?: (err: unknown) => void
  /** How snapshot reads are cut up: windows, key splits (snapshot.ts `SnapshotTuning`); defaults where not given. */
  readonly snapshotTuning?: SnapshotTuning
  /** Sees every state a command commits or finds and every head `get` reads (metrics); a throw goes to `onError`. */
  readonly onState?: (shardId: ShardId, state: ShardState) => void
  /** Sees every state a listing reads (`list`: GET /v1/shards, the idle sweep, `readAll`); a throw goes to `onError`. */
  readonly onListed?: (shardId: ShardId, state: ShardState) => void
  /** Largest write body read; default `DEFAULT_BODY_LIMIT_BYTES`. */
  readonly bodyLimitBytes?: number
  /** Longest a state read earlier may serve a snapshot (recent-states.ts); default 1 s, and never more than half the GC grace. */
  readonly recentStateMaxAgeMs?: number
  /** Bounds of the small snapshot bodies kept for reads of the same version (snapshot-bodies.ts); `{ maxBytes: 0 }` keeps none. */
  readonly snapshotBodies?: { readonly maxBodyBytes?: number; readonly maxBytes?: number }
}
