/**
 * Every Prometheus family compactd exports, created on an injected registry (never prom-client's
 * global one) and handed out as typed handles. docs/metrics.md lists each family with its type,
 * labels and meaning. Names follow persist's compaction, batch-write, consolidation, retry, cmd and
 * GC metrics, renamed to Prometheus conventions: `mz_persist_x` → `persist_x_total` for counters,
 * `_seconds_total` for seconds counters, `_count` suffixes dropped.
 *
 * NB: a registry refuses a second family of the same name, so call createMetrics once per registry.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { COMPACTION_OUTCOMES, CompactionObserver, type CompactionThroughputMetrics } from './compaction-observer.js'
import { DEFAULT_SHARD_SERIES_LIMIT, ShardSeries, type ShardBacklog } from './shard-series.js'

/** Label values of `persist_compaction_schema_selection_total{selection}` (docs/compaction.md#schema-selection). */
export const SCHEMA_SELECTIONS = ['recent_schema', 'disabled', 'no_schema'] as const
export type SchemaSelection = (typeof SCHEMA_SELECTIONS)[number]

/** Label values of `persist_compaction_step_seconds_total{step}`. */
export const COMPACTION_STEPS = ['part_fetch', 'heap_population'] as const
export type CompactionStep = (typeof COMPACTION_STEPS)[number]

/** Label values of `persist_compaction_write_batch_order_total{order}`. */
export const RUN_ORDERS = ['unordered', 'codec', 'structured'] as const

/**
 * Label values of `persist_compaction_jobs{status}`: the active statuses of a compaction job in the
 * cluster's store, the ones the store counts (JobStore.active). Finished jobs are history, counted
 * as they end by the compaction counters (applied, failed, ...), not by this gauge.
 */
export const COMPACTION_JOB_STATUSES = ['queued', 'running'] as const
export type CompactionJobStatus = (typeof COMPACTION_JOB_STATUSES)[number]

/** `op` of `persist_shard_reader_lease_writes_total` (shard/reader-leases.ts, shard/gc.ts). */
export const READER_LEASE_OPS = ['hold', 'renew', 'release', 'drop_expired'] as const

/**
 * prom-client's default Node metrics that are gauges named like counters (`…_total`): the sum of
 * their unsuffixed gauge over its `type` label, so dropping them loses nothing, and keeps
 * `promtool check metrics` quiet.
 */
export const DROPPED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const

/** One compaction's life, from heuristic to apply. */
export interface CompactionMetrics {
  readonly requested: Counter
  readonly dropped: Counter
  readonly disabled: Counter
  readonly skipped: Counter
  readonly started: Counter
  readonly applied: Counter
  readonly timedOut: Counter
  readonly failed: Counter
  readonly noop: Counter
  readonly seconds: Counter
  readonly queuedSeconds: Counter
  readonly concurrencyWaits: Counter
  readonly memoryViolations: Counter
  readonly runsCompacted: Counter
  readonly chunksCompacted: Counter
  readonly notAllPrefetched: Counter
  readonly partsPrefetched: Counter
  readonly partsWaited: Counter
  readonly fastPathEligible: Counter
  readonly appliedExactMatch: Counter
  readonly appliedSubsetMatch: Counter
  readonly notAppliedTooManyUpdates: Counter
  /** compactd only: a submitted request that failed validation (422); no other counter moves. */
  readonly rejected: Counter
  readonly schemaSelection: Counter<'selection'>
  readonly stepSeconds: Counter<'step'>
}

/** Parts written by compaction (persist's `BatchWriteMetrics` named "compaction"). */
export interface BatchWriteMetrics {
  readonly bytes: Counter
  readonly goodbytes: Counter
  readonly writeBatchPartSeconds: Counter
  readonly writeStall: Counter
  readonly stepStatsSeconds: Counter
  readonly stepPartWritingSeconds: Counter
  readonly stepInlineSeconds: Counter
  readonly keyLowerTooBig: Counter
  readonly writeBatchOrder: Counter<'order'>
}

/** The compactor's queue and its runtime limits. */
export interface CompactorMetrics {
  readonly queueDepth: Gauge
  readonly running: Gauge
  readonly queueSizeLimit: Gauge
  readonly concurrencyLimit: Gauge
  /** 1 while the kill switch pauses compaction (`compaction_process_requests` false and obeyed), else 0. */
  readonly paused: Gauge
}

/** Per-shard series (bounded, see shard-series.ts) and the instance's backlog totals. */
export interface ShardMetrics {
  /** `persist_shard_compaction_applied_total{shard}`: increments go through the bounded series. */
  readonly compactionApplied: Pick<Counter<'shard'>, 'get'> & { inc(labels: { readonly shard: string }, value?: number): void }
  /** Records a shard's backlog as of a state this instance committed or read. */
  backlog(shard: string, backlog: ShardBacklog): void
  /** Records a shard's backlog as of a state a listing read: the totals, without touching its per-shard series' recency. */
  seen(shard: string, backlog: ShardBacklog): void
  /** A deleted shard: out of the backlog totals, its per-shard series removed. */
  forget(shard: string): void
  readonly series: ShardSeries
}

/**
 * Compaction jobs shared by a cluster of instances. Registered here so dashboards and alerts can
 * name them; the cluster's job store and leases bump them.
 */
export interface ClusterMetrics {
  /** Jobs in the cluster's store by status, as this instance last saw them. */
  readonly jobs: Gauge<'status'>
  readonly claims: Counter
  readonly leaseRenewals: Counter
  readonly rescued: Counter
  readonly storeRetries: Counter
  readonly fenced: Counter
  readonly chunksApplied: Counter
  readonly readerLeases: Gauge
  /** Reader lease writes to shard state by `op`: `hold`, `renew`, `release`, `drop_expired` (by GC). */
  readonly readerLeaseWrites: Counter<'op'>
  readonly idleSweeps: Counter
  readonly idleSweepSubmitted: Counter
  readonly instances: Gauge
}

/** The streaming consolidator (docs/compaction.md#consolidation). */
export interface ConsolidationMetrics {
  readonly partsFetched: Counter
  readonly partsSkipped: Counter
  readonly partsWasted: Counter
  readonly wrongSort: Counter
}

/** Bounded retry loops, by operation (`op="compaction_noop::delete"`, `op="batch::delete"`...). */
export interface RetryMetrics {
  readonly started: Counter<'op'>
  readonly finished: Counter<'op'>
  readonly retries: Counter<'op'>
  readonly sleepSeconds: Counter<'op'>
}

/** State commands (one CAS loop each), by command (`cmd="merge_res"`...). */
export interface CmdMetrics {
  readonly started: Counter<'cmd'>
  readonly succeeded: Counter<'cmd'>
  readonly failed: Counter<'cmd'>
  readonly casMismatch: Counter<'cmd'>
  readonly seconds: Counter<'cmd'>
}

export interface GcMetrics {
  readonly started: Counter
  readonly finished: Counter
  readonly noop: Counter
  readonly seconds: Counter
  readonly deletedParts: Counter
  readonly deletedBytes: Counter
  /** Shard states GC wrote again whole (gc.ts): their latest version was a delta while deltas were off. */
  readonly stateRewrites: Counter
}

export interface LocationMetrics {
  /** Per blob call (retries included), by `op` (get, set, delete, list) and `outcome` (see location/with-metrics.ts). */
  readonly blobOperationSeconds: Histogram<'op' | 'outcome'>
  /** Per consensus call (retries included), by `op` (head, compare_and_set, scan, truncate, list) and `outcome`. */
  readonly consensusOperationSeconds: Histogram<'op' | 'outcome'>
}

export interface WorkerMetrics {
  /** Tasks parked now while they wait on their client (engine/worker-pool.ts). */
  readonly parked: Gauge
}

export interface HttpMetrics {
  /** `route` is the route pattern (`/v1/shards/:shardId`), never the raw URL; `unmatched` for 404s. */
  readonly requestDuration: Histogram<'method' | 'route' | 'status'>
  /**
   * The notAfter of the certificate served to new connections, by its subject; no series without
   * HTTPS (http/watched-files.ts showCertificate).
   */
  readonly tlsCertificateExpiry: Gauge<'subject'>
}

export interface Metrics {
  readonly compaction: CompactionMetrics
  readonly compactionWrites: BatchWriteMetrics
  /** Updates and bytes moved by compactions, and their durations by outcome; fed by `observer`. */
  readonly throughput: CompactionThroughputMetrics & { readonly observer: CompactionObserver }
  readonly compactor: CompactorMetrics
  readonly shard: ShardMetrics
  readonly cluster: ClusterMetrics
  readonly consolidation: ConsolidationMetrics
  readonly retry: RetryMetrics
  readonly cmd: CmdMetrics
  readonly gc: GcMetrics
  readonly location: LocationMetrics
  readonly http: HttpMetrics
  readonly worker: WorkerMetrics
}

/** Compaction durations: 10 ms (a tiny merge) to 1 h (past the default timeout of a large one). */
const COMPACTION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]
/** Store latencies: 0.5 ms (mem, warm file) to ~33 s (a slow S3 or a Postgres failover). */
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 33]
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export interface MetricsOptions {
  /** Most shards with per-shard series at once; default DEFAULT_SHARD_SERIES_LIMIT (100). */
  readonly shardSeriesLimit?: number
}

export function createMetrics(registry: Registry, opts: MetricsOptions = {}): Metrics {
  const registers = [registry]
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
    new Counter<L>({ name, help, labelNames, registers })
  const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> =>
    new Gauge<L>({ name, help, labelNames, registers })
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> =>
    new Histogram<L>({ name, help, labelNames, buckets, registers })

  const c = (suffix: string, help: string): Counter => counter(`persist_compaction_${suffix}`, help)

  const compaction: CompactionMetrics = {
    requested: c('requested_total', 'Compaction requests that passed the heuristic and were offered to the queue (includes later-dropped ones).'),
    dropped: c('dropped_total', 'Compaction requests dropped because the queue was full.'),
    disabled: c('disabled_total', 'Compaction requests the scheduler dropped because the kill switch was on.'),
    skipped: c('skipped_total', 'Compaction requests below every size heuristic, not compacted.'),
    started: c('started_total', 'Compactions that got a permit and began.'),
    applied: c('applied_total', 'Compaction results applied to the trace (exact or subset match).'),
    timedOut: c('timed_out_total', 'Compactions that ran past their timeout.'),
    failed: c('failed_total', 'Compactions that ended in an error, timeouts included.'),
    noop: c('noop_total', 'Compaction results not applied (any not_applied outcome); their outputs are deleted.'),
    seconds: c('seconds_total', 'Seconds spent compacting, from permit to result.'),
    queuedSeconds: c('queued_seconds_total', 'Seconds compaction requests waited between enqueue and permit.'),
    concurrencyWaits: c('concurrency_waits_total', 'Compactions that found no free concurrency permit on the first try.'),
    memoryViolations: c('memory_violations_total', 'Chunks forced over the per-run memory reservation.'),
    runsCompacted: c('runs_compacted_total', 'Input runs merged, summed over chunks.'),
    chunksCompacted: c('chunks_compacted_total', 'Chunks of runs merged.'),
    notAllPrefetched: c('not_all_prefetched_total', 'Chunk merges whose prefetch budget ran out before every part was prefetched.'),
    partsPrefetched: c('parts_prefetched_total', 'Parts already prefetched when the merge needed them.'),
    partsWaited: c('parts_waited_total', 'Parts the merge had to wait for or fetch on demand.'),
    fastPathEligible: c('fast_path_eligible_total', 'Compactions whose inputs were eligible for the fast path: one input run, nothing to merge (docs/metrics.md).'),
    appliedExactMatch: c('applied_exact_match_total', 'Results applied by replacing exactly one spine batch.'),
    appliedSubsetMatch: c('applied_subset_match_total', 'Results applied by replacing a subset of a fueled merge.'),
    notAppliedTooManyUpdates: c('not_applied_too_many_updates_total', 'Results not applied because they had more updates than the batches they would replace.'),
    rejected: c('rejected_total', 'Submitted compaction requests rejected by validation (422) before queueing.'),
    schemaSelection: counter(
      'persist_compaction_schema_selection_total',
      'Schema chosen for compaction output: the most recent of the inputs (recent_schema), the writer schema because the choice is disabled (disabled), or none known (no_schema).',
      ['selection'],
    ),
    stepSeconds: counter('persist_compaction_step_seconds_total', 'Seconds spent in compaction steps (part_fetch, heap_population).', ['step']),
  }

  const w = (suffix: string, help: string): Counter => counter(`persist_compaction_${suffix}`, help)
  const compactionWrites: BatchWriteMetrics = {
    bytes: w('bytes_total', 'Encoded bytes of parts written by compaction.'),
    goodbytes: w('goodbytes_total', 'Logical (column data) bytes of parts written by compaction.'),
    writeBatchPartSeconds: w('write_batch_part_seconds_total', 'Seconds spent uploading parts written by compaction.'),
    writeStall: w('write_stall_total', 'Times compaction output waited for an outstanding part upload to finish.'),
    stepStatsSeconds: w('step_stats_seconds_total', 'Seconds spent computing part statistics for compaction output.'),
    stepPartWritingSeconds: w('step_part_writing_seconds_total', 'Seconds spent encoding and flushing parts of compaction output.'),
    stepInlineSeconds: w('step_inline_seconds_total', 'Seconds spent writing inline parts of compaction output.'),
    keyLowerTooBig: w('key_lower_too_big_total', 'Parts whose lower key bound was too large to store and was truncated.'),
    writeBatchOrder: counter('persist_compaction_write_batch_order_total', 'Runs written by compaction, by run order.', ['order']),
  }

  const throughputFamilies: CompactionThroughputMetrics = {
    updatesRead: c('updates_read_total', 'Updates read by compaction merges (input rows, before consolidation).'),
    updatesWritten: c('updates_written_total', 'Updates written by compaction merges (output rows, after consolidation).'),
    bytesRead: c('bytes_read_total', 'Encoded bytes of input parts read by compaction merges.'),
    duration: histogram(
      'persist_compaction_duration_seconds',
      'Seconds from permit to result of compactions that ran, by outcome (applied, not_applied, failed, timed_out, cancelled).',
      ['outcome'],
      COMPACTION_BUCKETS,
    ),
  }
  const throughput = { ...throughputFamilies, observer: new CompactionObserver(throughputFamilies) }

  const compactor: CompactorMetrics = {
    queueDepth: gauge('persist_compaction_queue_depth', 'Compaction requests waiting in the queue.'),
    running: gauge('persist_compaction_running', 'Compactions running now.'),
    queueSizeLimit: gauge('persist_compaction_queue_size_limit', 'Configured queue capacity (compaction_queue_size).'),
    concurrencyLimit: gauge('persist_compaction_concurrency_limit', 'Configured concurrent compactions (compaction_concurrency_limit).'),
    paused: gauge('persist_compaction_paused', '1 while the kill switch pauses compaction (compaction_process_requests is false and obeyed), else 0.'),
  }

  const perShard = '; per-shard series are bounded (docs/metrics.md#per-shard-series)'
  const applied = counter<'shard'>('persist_shard_compaction_applied_total', `Compaction results applied, by shard${perShard}.`, ['shard'])
  const series = new ShardSeries(
    {
      applied,
      backlogBatches: gauge('persist_shard_backlog_batches', `Non-compact spine batches (merge work) in the shard's latest state this instance saw${perShard}.`, ['shard']),
      backlogBytes: gauge('persist_shard_backlog_bytes', `Encoded bytes of the shard's non-compact spine batches, as last seen${perShard}.`, ['shard']),
      tracked: gauge('persist_shard_series', 'Shards that have per-shard series now (at most persist_shard_series_limit).'),
      limit: gauge('persist_shard_series_limit', 'Most shards with per-shard series at once (COMPACTD_METRICS_SHARD_SERIES).'),
      evicted: counter('persist_shard_series_evicted_total', "Shards whose per-shard series were removed to make room (least recently updated first)."),
      totalBatches: gauge('persist_backlog_batches', 'Non-compact spine batches summed over every shard this instance has seen, as last seen.'),
      totalBytes: gauge('persist_backlog_bytes', 'Encoded bytes of non-compact spine batches summed over every shard this instance has seen.'),
      shardsWithBacklog: gauge('persist_backlog_shards', 'Shards this instance has seen with at least one non-compact spine batch.'),
    },
    opts.shardSeriesLimit ?? DEFAULT_SHARD_SERIES_LIMIT,
  )
  const shard: ShardMetrics = {
    compactionApplied: { inc: (labels, value = 1) => series.applied(labels.shard, value), get: () => applied.get() },
    backlog: (id, b) => series.backlog(id, b),
    seen: (id, b) => series.seen(id, b),
    forget: (id) => series.forget(id),
    series,
  }

  const cluster: ClusterMetrics = {
    jobs: gauge('persist_compaction_jobs', "Active compaction jobs in the cluster's store by status (queued, running), as this instance last saw them.", ['status']),
    claims: counter('persist_compaction_claims_total', 'Compaction jobs this instance claimed from the cluster queue.'),
    leaseRenewals: counter('persist_compaction_lease_renewals_total', 'Lease renewals of compaction jobs this instance runs.'),
    rescued: counter('persist_compaction_rescued_total', "Compaction jobs this instance requeued after their owner's lease expired."),
    storeRetries: counter(
      'persist_compaction_store_retries_total',
      'Compaction attempts of this instance that a store failed under (down, restarting) and that left their job to be rescued and run again.',
    ),
    fenced: counter('persist_compaction_fenced_total', 'Compaction attempts of this instance fenced off because their lease was lost; their outputs are not applied.'),
    chunksApplied: counter('persist_compaction_chunks_applied_total', 'Compaction chunks applied to the trace incrementally, before the whole job ended.'),
    readerLeases: gauge('persist_shard_reader_leases', 'Reader leases this instance holds in shard states (one per shard it reads).'),
    readerLeaseWrites: counter(
      'persist_shard_reader_lease_writes_total',
      'Reader lease writes to shard state, by op: hold (a read took one), renew, release, drop_expired (GC dropped leases that lapsed).',
      ['op'],
    ),
    idleSweeps: counter('persist_compaction_idle_sweeps_total', 'Sweeps over idle shards looking for merge work left behind.'),
    idleSweepSubmitted: counter('persist_compaction_idle_sweep_submitted_total', 'Compactions submitted by idle sweeps.'),
    instances: gauge('persist_cluster_instances', 'Live compactd instances in the cluster, as this instance last saw them.'),
  }

  const consolidation: ConsolidationMetrics = {
    partsFetched: counter('persist_consolidation_parts_fetched_total', 'Parts the consolidator fetched.'),
    partsSkipped: counter('persist_consolidation_parts_skipped_total', 'Parts the consolidator skipped (nothing in them was needed).'),
    partsWasted: counter('persist_consolidation_parts_wasted_total', 'Parts the consolidator fetched but never used.'),
    wrongSort: counter('persist_consolidation_wrong_sort_total', 'Runs the consolidator found not in the order they declared.'),
  }

  const retry: RetryMetrics = {
    started: counter('persist_retry_started_total', 'Retry loops started, by operation.', ['op']),
    finished: counter('persist_retry_finished_total', 'Retry loops that finished (success or giving up), by operation.', ['op']),
    retries: counter('persist_retry_retries_total', 'Attempts after the first, by operation.', ['op']),
    sleepSeconds: counter('persist_retry_sleep_seconds_total', 'Seconds spent backing off between attempts, by operation.', ['op']),
  }

  const cmd: CmdMetrics = {
    started: counter('persist_cmd_started_total', 'State commands started, by command.', ['cmd']),
    succeeded: counter('persist_cmd_succeeded_total', 'State commands that committed, by command.', ['cmd']),
    failed: counter('persist_cmd_failed_total', 'State commands that failed, by command.', ['cmd']),
    casMismatch: counter('persist_cmd_cas_mismatch_total', 'Compare-and-set mismatches inside state commands (each one retried), by command.', ['cmd']),
    seconds: counter('persist_cmd_seconds_total', 'Seconds spent in state commands, by command.', ['cmd']),
  }

  const gc: GcMetrics = {
    started: counter('persist_gc_started_total', 'Garbage collections started.'),
    finished: counter('persist_gc_finished_total', 'Garbage collections finished.'),
    noop: counter('persist_gc_noop_total', 'Garbage collections that found nothing to delete.'),
    seconds: counter('persist_gc_seconds_total', 'Seconds spent collecting garbage.'),
    deletedParts: counter('persist_gc_deleted_parts_total', 'Blob parts deleted by garbage collection.'),
    deletedBytes: counter('persist_gc_deleted_bytes_total', 'Bytes of blob parts deleted by garbage collection.'),
    stateRewrites: counter(
      'persist_gc_state_rewrites_total',
      'Shard states garbage collection wrote again whole because their latest version was a delta while deltas were off (persist_state_deltas_enabled, or a live instance that reads whole versions only).',
    ),
  }

  const location: LocationMetrics = {
    blobOperationSeconds: histogram(
      'persist_blob_operation_seconds',
      'Latency of blob store operations, by operation and outcome (ok, no_space, determinate, indeterminate, invalid).',
      ['op', 'outcome'],
      STORE_BUCKETS,
    ),
    consensusOperationSeconds: histogram(
      'persist_consensus_operation_seconds',
      'Latency of consensus store operations, by operation and outcome (ok, mismatch, no_space, determinate, indeterminate, invalid).',
      ['op', 'outcome'],
      STORE_BUCKETS,
    ),
  }

  const http: HttpMetrics = {
    requestDuration: histogram(
      'compactd_http_request_duration_seconds',
      'HTTP request duration by method, route pattern and status code.',
      ['method', 'route', 'status'],
      HTTP_BUCKETS,
    ),
    tlsCertificateExpiry: gauge(
      'compactd_tls_certificate_expiry_timestamp_seconds',
      'When the TLS certificate served to new connections expires (its notAfter), in Unix seconds, by its subject. Absent without HTTPS.',
      ['subject'],
    ),
  }
  const worker: WorkerMetrics = {
    parked: gauge('compactd_worker_tasks_parked', 'Tasks parked now while they wait on their client (a snapshot reader that takes no data, an upload that stalls); their workers run other tasks meanwhile.'),
  }

  // Series with a small, known label set exist from the start, so dashboards and rate() see 0.
  for (const selection of SCHEMA_SELECTIONS) compaction.schemaSelection.inc({ selection }, 0)
  for (const step of COMPACTION_STEPS) compaction.stepSeconds.inc({ step }, 0)
  for (const order of RUN_ORDERS) compactionWrites.writeBatchOrder.inc({ order }, 0)
  for (const status of COMPACTION_JOB_STATUSES) cluster.jobs.set({ status }, 0)
  for (const op of READER_LEASE_OPS) cluster.readerLeaseWrites.inc({ op }, 0)
  for (const outcome of COMPACTION_OUTCOMES) throughput.duration.zero({ outcome })
  compactor.paused.set(0)

  collectDefaultMetrics({ register: registry })
  for (const name of DROPPED_DEFAULT_METRICS) registry.removeSingleMetric(name)

  return { compaction, compactionWrites, throughput, compactor, shard, cluster, consolidation, retry, cmd, gc, location, http, worker }
}
