/**
 * The composition root: everything the HTTP layer and the background work share, built once from
 * the settings and closed once.
 *
 * Stores are layered by decorators, outermost first: metrics → retry → adapter. So the latency
 * histograms time whole calls as callers see them, retries included.
 *
 * NB: `close()` releases in the reverse order of creation and is idempotent (a second call returns
 * the first call's promise). Adding a service: create it after what it uses, push its closer.
 */
import { constants } from 'node:fs'
import { access, mkdir, statfs } from 'node:fs/promises'
import { Registry } from 'prom-client'
import type { Blob } from './location/blob.js'
import type { Consensus } from './location/consensus.js'
import { errorMessage, LocationError } from './location/errors.js'
import { FileBlob } from './location/file-blob.js'
import { FileConsensus } from './location/file-consensus.js'
import { describeUrl, openBlob, openConsensus, openJobStore } from './location/open.js'
import { withBlobMetrics, withConsensusMetrics } from './location/with-metrics.js'
import { withBlobRetry, withConsensusRetry, type RetryEvent, type RetryOptions } from './location/with-retry.js'
import { createMetrics, type CmdMetrics as CmdCounters, type Metrics, type RetryMetrics } from './metrics/metrics.js'
import type { CompactionView } from './metrics/compaction-observer.js'
import { traceStats } from './trace/trace-summary.js'
import type { Settings } from './settings.js'
import { setReuseIdleMs } from './engine/reuse-idle.js'
import { WorkerPool } from './engine/worker-pool.js'
import { newWriterKey } from './core/ids.js'
import { createDynamicConfigs, type DynamicConfigs } from './dyncfg/dynamic-configs.js'
import type { GcShare } from './shard/gc.js'
import { StateDeltaGate } from './shard/delta-gate.js'
import { Machine, STATE_FORMATS, type CmdMetrics } from './shard/machine.js'
import { Shards } from './shard/shards.js'
import { isDeleted, shardStateCodec, type ShardState } from './shard/state.js'
import { Compactor, DEFAULT_HEARTBEAT_MS } from './compact/compactor.js'
import type { CompactorDeps } from './compact/compactor-port.js'
import type { JobStore } from './location/job-store.js'
import { MemJobStore } from './location/mem-job-store.js'
import pkg from '../package.json' with { type: 'json' }
import type { Compaction } from './compact/compaction.js'
import { createExecutor } from './compact/executor.js'
import { createCompactorShards } from './compact/compactor-shards.js'
import { startWriterMaintenance } from './compact/maintenance.js'
import { IdleSweep } from './compact/idle-sweep.js'

/** The compaction scheduler as /readyz sees it. */
export interface SchedulerStatus {
  /** One word for /readyz: `running`, `paused`, `stopping`... */
  readonly state: string
  /** Whether this state counts as ready. */
  readonly ready: boolean
}

export interface Readiness {
  readonly ready: boolean
  /** `"ok"` per store (the scheduler: its state), or a one-line sentence saying what failed. */
  readonly checks: { readonly blob: string; readonly consensus: string; readonly scheduler: string }
}

export interface Services {
  readonly settings: Settings
  /** The app's own Prometheus registry; /metrics serves exactly this. */
  readonly registry: Registry
  readonly metrics: Metrics
  /** Metered, retried blob store. */
  readonly blob: Blob
  /** Metered, retried consensus store. */
  readonly consensus: Consensus
  /** Dynamic configs, loaded from consensus on the first `start()`: await it before `snapshot()`. */
  readonly dyncfg: DynamicConfigs
  /** The compare-and-set loop over shard states. */
  readonly machine: Machine<ShardState>
  /** Worker threads for writes, snapshots and compaction, spawned on first use (the server's entry calls it at start). */
  workerPool(): WorkerPool
  /** Shards: state, writes, reads, GC. */
  readonly shards: Shards
  /** The compaction scheduler and its operator controls. */
  readonly compactor: Compactor
  /** Submits maintenance for shards with merge work left and no appends (compact/idle-sweep.ts). */
  readonly idleSweep: IdleSweep
  /** Loads the dynamic configs and starts the scheduler. Idempotent; call before serving. */
  start(): Promise<void>
  /** Probes each dependency with a cheap real operation, each bounded by `timeoutMs`. Never throws. */
  checkReadiness(opts?: { readonly timeoutMs?: number }): Promise<Readiness>
  /** Releases everything, in reverse order of creation. Idempotent. */
  close(): Promise<void>
}

export interface ServicesOptions {
  /** Defaults to a fresh Registry. */
  readonly registry?: Registry
  /** An undecorated blob store to use instead of opening `settings.blobUrl`; the services own it (and close it). */
  readonly rawBlob?: Blob
  /** An undecorated consensus store to use instead of opening `settings.consensusUrl`; owned likewise. */
  readonly rawConsensus?: Consensus
  /** The scheduler's status; defaults to always `running`. */
  readonly schedulerStatus?: () => SchedulerStatus
  /** Period of the background GC over every shard; null for none. Default 5 minutes. */
  readonly gcIntervalMs?: number | null
  /**
   * The cluster's job store to use instead of the one the consensus URL names (with `rawConsensus`,
   * the default is a new MemJobStore); the services own it.
   */
  readonly jobStore?: JobStore
  /** Periods of the compactor's background work (tests shorten them). */
  readonly compactorTimers?: CompactorDeps['timers']
}

export const DEFAULT_GC_INTERVAL_MS = 5 * 60 * 1000

export const READINESS_TIMEOUT_MS = 2000

/** How long start-up waits for the blob store's first answer. */
export const START_CHECK_TIMEOUT_MS = 15_000

/**
 * Keys the readiness probe reads. NB: valid for every adapter's key rules, and never written, so a
 * probe is a real round trip that finds nothing.
 */
export const PROBE_KEYS = { blob: '_compactd/readyz', consensus: '_compactd/readyz' } as const

/**
 * Free bytes below which /readyz counts a file store as full: every write of a part or a state
 * version is about to be refused (507 INSUFFICIENT_STORAGE), though reads still work.
 */
export const MIN_FREE_BYTES = 1 << 20

export async function createServices(settings: Settings, opts: ServicesOptions = {}): Promise<Services> {
  const closers: Array<() => Promise<void>> = []
  const closeAll = async (): Promise<void> => {
    const errors: unknown[] = []
    for (const close of [...closers].reverse()) {
      try {
        await close()
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, 'closing services failed')
  }

  try {
    const registry = opts.registry ?? new Registry()
    const metrics = createMetrics(registry, { shardSeriesLimit: settings.metricsShardSeries })

    const rawBlob = opts.rawBlob ?? (await openBlob(settings.blobUrl))
    closers.push(() => rawBlob.close())
    await ensureWritableRoot(rawBlob)
    if (opts.rawBlob === undefined) await checkBlobWorks(rawBlob, settings.blobUrl)
    const blob = withBlobMetrics(withBlobRetry(rawBlob, retryOptions('blob', metrics.retry)), metrics.location.blobOperationSeconds)

    const rawConsensus = opts.rawConsensus ?? (await openConsensus(settings.consensusUrl))
    closers.push(() => rawConsensus.close())
    await ensureWritableRoot(rawConsensus)
    const consensus = withConsensusMetrics(
      withConsensusRetry(rawConsensus, retryOptions('consensus', metrics.retry)),
      metrics.location.consensusOperationSeconds,
    )

    // NB: not loaded here (creating the services does no store I/O beyond the bounded blob check,
    // so a hanging store cannot hang start-up; /readyz reports it). Users await `dyncfg.start()` (idempotent, retried after
    // a failure) before `snapshot()`.
    const dyncfg = createDynamicConfigs({ consensus })
    closers.push(() => dyncfg.stop())

    // Deltas while the config allows them and every live instance reads them (delta-gate.ts): the
    // compactor's heartbeat reads the membership.
    const deltaGate = new StateDeltaGate({
      enabled: () => configsLoaded(dyncfg) && dyncfg.snapshot().persist_state_deltas_enabled,
      now: () => Date.now(),
      staleMs: 3 * (opts.compactorTimers?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS),
    })
    const machine = new Machine<ShardState>(consensus, shardStateCodec, { metrics: cmdMetrics(metrics.cmd), writeDeltas: () => deltaGate.writeDeltas() })

    let pool: WorkerPool | null = null
    // This thread's pools hold free memory as long as the workers' do.
    setReuseIdleMs(settings.reuseIdleMs)
    const workerPool = (): WorkerPool => {
      if (pool === null) {
        pool = new WorkerPool(settings.workers, { nice: settings.workerNice, reuseIdleMs: settings.reuseIdleMs })
        pool.on('parked', (n: number) => metrics.worker.parked.set(n))
      }
      return pool
    }
    closers.push(async () => {
      await pool?.close()
    })

    const writerKey = newWriterKey()
    const shards = new Shards({
      machine,
      consensus,
      blob,
      pool: workerPool,
      dyncfg,
      writerKey,
      metrics,
      instanceId: settings.instanceId,
      gcGraceMs: settings.gcGraceMs,
      gcIntervalMs: opts.gcIntervalMs === undefined ? DEFAULT_GC_INTERVAL_MS : opts.gcIntervalMs,
      // Each live instance collects its share of the shards (gc.ts); the compactor knows who is live.
      gcShare: async () => gcShareOf(await compactor.instances()),
      onState: (shardId, state) => {
        // NB: a tombstone keeps its trace, but its merge work is gone for good.
        if (isDeleted(state)) return metrics.shard.forget(shardId)
        const stats = traceStats(state.trace)
        metrics.shard.backlog(shardId, { batches: stats.backlogBatches, bytes: stats.backlogBytes })
      },
      onListed: (shardId, state) => {
        if (isDeleted(state)) return metrics.shard.forget(shardId)
        const stats = traceStats(state.trace)
        metrics.shard.seen(shardId, { batches: stats.backlogBatches, bytes: stats.backlogBytes })
      },
      bodyLimitBytes: settings.bodyLimitBytes,
    })
    shards.start()
    closers.push(() => shards.stop())

    const compactorShards = createCompactorShards({ shards, blob, dyncfg })
    const executor = createExecutor({
      pool: workerPool,
      blob,
      writerKey,
      metrics,
      lookupSchema: compactorShards.lookupSchema,
      pinOutput: compactorShards.pinOutput,
    })
    const warn = (err: unknown, context: string): void => process.emitWarning(`${context}: ${err instanceof Error ? err.message : String(err)}`)
    // The jobs live beside the consensus store its URL names (one store per cluster); a test's own
    // consensus store goes with a job store of this process.
    const jobs = opts.jobStore ?? (opts.rawConsensus === undefined ? await openJobStore(settings.consensusUrl) : new MemJobStore())
    closers.push(() => jobs.close())
    const compactor = new Compactor({
      dyncfg,
      metrics,
      shards: compactorShards,
      execute: executor.execute,
      plan: executor.plan,
      store: jobs,
      instanceId: settings.instanceId,
      version: pkg.version,
      stateFormats: STATE_FORMATS,
      onMembership: (live) => deltaGate.observe(live),
      ...(opts.compactorTimers === undefined ? {} : { timers: opts.compactorTimers }),
      onError: warn,
    })
    compactor.on('change', (c) => metrics.throughput.observer.observe(compactionView(c)))
    const stopMaintenance = startWriterMaintenance(shards, compactor, compactorShards, warn, () => dyncfg.snapshot().compaction_maintenance_enabled)
    closers.push(async () => stopMaintenance())
    const idleSweep = new IdleSweep({ shards, compactor, dyncfg, metrics, onError: warn })
    closers.push(async () => idleSweep.stop())
    closers.push(() => compactor.stop({ graceMs: settings.shutdownGraceMs }))

    let started: Promise<void> | undefined
    const start = (): Promise<void> =>
      (started ??= (async () => {
        await dyncfg.start()
        dyncfg.watch(5_000)
        compactor.start()
        idleSweep.start()
        // persist_compaction_paused follows the kill switch: set now, then on every config change.
        const showPaused = (): void => metrics.compactor.paused.set(compactor.status() === 'paused' ? 1 : 0)
        showPaused()
        const unsubscribe = dyncfg.onChange(showPaused)
        closers.push(async () => unsubscribe())
        // The backlog totals (persist_backlog_*) of a fresh process know no shard: one listing of
        // every shard, in the background, fills them within seconds of the start.
        let closed = false
        const reading = shards.readAll(() => closed).catch((err: unknown) => warn(err, 'reading every shard for the backlog metrics failed; they cover the shards used since'))
        closers.push(async () => {
          closed = true
          await reading
        })
      })())

    const schedulerStatus =
      opts.schedulerStatus ??
      ((): SchedulerStatus => {
        const state = compactor.status()
        return { state, ready: state !== 'stopped' }
      })

    // Probes go to the undecorated stores: a readiness answer reports the store as it is now,
    // and retries would only push it past the probe's deadline.
    const checkReadiness = async ({ timeoutMs = READINESS_TIMEOUT_MS } = {}): Promise<Readiness> => {
      const [blobCheck, consensusCheck] = await Promise.all([
        probe(async (signal) => {
          await rawBlob.get(PROBE_KEYS.blob, { signal })
          await checkSpace(rawBlob)
        }, timeoutMs),
        probe(async (signal) => {
          await rawConsensus.head(PROBE_KEYS.consensus, { signal })
          await checkSpace(rawConsensus)
        }, timeoutMs),
      ])
      const scheduler = schedulerStatus()
      return {
        ready: blobCheck === 'ok' && consensusCheck === 'ok' && scheduler.ready,
        checks: { blob: blobCheck, consensus: consensusCheck, scheduler: scheduler.state },
      }
    }

    let closing: Promise<void> | undefined
    return Object.freeze({
      settings,
      registry,
      metrics,
      blob,
      consensus,
      dyncfg,
      machine,
      workerPool,
      shards,
      compactor,
      idleSweep,
      start,
      checkReadiness,
      close: () => (closing ??= closeAll()),
    })
  } catch (err) {
    await closeAll().catch(() => undefined)
    throw err
  }
}

/** Whether `dyncfg` was loaded (its `snapshot` throws before). */
function configsLoaded(dyncfg: DynamicConfigs): boolean {
  try {
    dyncfg.snapshot()
    return true
  } catch {
    return false
  }
}

/** This instance's place among the live instances by id, or null when it is not among them (its first heartbeat is not in yet). */
function gcShareOf(instances: ReadonlyArray<{ readonly id: string; readonly self: boolean }>): GcShare | null {
  const ids = instances.map((i) => i.id).sort()
  const self = instances.find((i) => i.self)
  return self === undefined ? null : { index: ids.indexOf(self.id), count: ids.length }
}

/**
 * Store retries counted as `persist_retry_retries_total` / `_sleep_seconds_total` with
 * `op="blob::get"`, `op="consensus::compare_and_set"`...
 * NB: the store decorators report only retries, not loops, so `persist_retry_started_total` and
 * `_finished_total` count explicit retry loops (state commands, deletes), not store calls.
 */
function retryOptions(store: 'blob' | 'consensus', metrics: RetryMetrics): RetryOptions {
  return {
    onRetry: (event: RetryEvent) => {
      const op = `${store}::${event.op}`
      metrics.retries.inc({ op })
      metrics.sleepSeconds.inc({ op }, event.delayMs / 1000)
    },
  }
}

/** A compactor snapshot as the throughput observer sees it: progress, and how a final one that ran ended. */
function compactionView(c: Compaction): CompactionView {
  const final = c.finishedAt !== undefined
  const ran = final && c.startedAt !== undefined ? { outcome: outcomeOf(c), seconds: Math.max(0, (c.finishedAt.getTime() - c.startedAt.getTime()) / 1000) } : null
  return { id: c.id, progress: c.progress, final, ran }
}

function outcomeOf(c: Compaction): NonNullable<CompactionView['ran']>['outcome'] {
  if (c.status === 'succeeded') return c.result === 'applied_exact' || c.result === 'applied_subset' ? 'applied' : 'not_applied'
  if (c.status === 'not_applied') return 'not_applied'
  if (c.status === 'cancelled') return 'cancelled'
  return c.error?.code === 'TIMED_OUT' ? 'timed_out' : 'failed'
}

/** The machine's command callbacks on the `persist_cmd_*` counters. */
function cmdMetrics(c: CmdCounters): CmdMetrics {
  return {
    started: (cmd) => c.started.inc({ cmd }),
    succeeded: (cmd, seconds) => {
      c.succeeded.inc({ cmd })
      c.seconds.inc({ cmd }, seconds)
    },
    failed: (cmd, seconds) => {
      c.failed.inc({ cmd })
      c.seconds.inc({ cmd }, seconds)
    },
    casMismatch: (cmd) => c.casMismatch.inc({ cmd }),
  }
}

/**
 * Creates the directory of a file store up front and checks it is writable, so a missing or
 * read-only data volume stops start-up instead of failing the first write. Other stores: nothing.
 */
async function ensureWritableRoot(store: Blob | Consensus): Promise<void> {
  if (!(store instanceof FileBlob) && !(store instanceof FileConsensus)) return
  try {
    await mkdir(store.root, { recursive: true })
    await access(store.root, constants.W_OK)
  } catch (err) {
    throw new Error(`data directory ${store.root} is not usable: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

/**
 * One real read of the blob store at start-up, so a store that cannot work (no credentials, a
 * missing bucket, an unreachable endpoint) stops start-up with one line naming the store and the
 * cause, as a bad consensus URL does. NB: bounded; a store that does not answer in time is refused.
 */
async function checkBlobWorks(blob: Blob, url: string): Promise<void> {
  const signal = AbortSignal.timeout(START_CHECK_TIMEOUT_MS)
  try {
    await blob.get(PROBE_KEYS.blob, { signal })
  } catch (err) {
    const cause = signal.aborted ? `no answer within ${START_CHECK_TIMEOUT_MS / 1000} s` : errorMessage(err)
    throw new Error(`blob store ${describeUrl(url)}: ${cause}`, { cause: err })
  }
}

/**
 * For a file store: throws when its file system has less than MIN_FREE_BYTES free (root may also
 * use the blocks ext4 reserves for it, so root counts those). Other stores: nothing to check.
 */
async function checkSpace(store: Blob | Consensus): Promise<void> {
  if (!(store instanceof FileBlob) && !(store instanceof FileConsensus)) return
  const st = await statfs(store.root)
  const free = (process.getuid?.() === 0 ? st.bfree : st.bavail) * st.bsize
  if (free < MIN_FREE_BYTES) throw new Error(`no space left on the file system of ${store.root} (${free} bytes free): writes are refused until space is freed`)
}

/** Runs `op` with a deadline; "ok", or a one-line sentence saying what went wrong. */
async function probe(op: (signal: AbortSignal) => Promise<unknown>, timeoutMs: number): Promise<string> {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      controller.abort()
      resolve(`timed out after ${timeoutMs} ms`)
    }, timeoutMs)
  })
  try {
    return await Promise.race([op(controller.signal).then(() => 'ok', describeFailure), deadline])
  } finally {
    clearTimeout(timer)
  }
}

function describeFailure(err: unknown): string {
  const kind = err instanceof LocationError ? `${err.permanent ? 'permanent' : err.kind} error` : 'error'
  const message = err instanceof Error ? err.message : String(err)
  const line = `${kind}: ${message}`.replace(/\s*[\r\n]+\s*/g, ' ')
  return line.length > 200 ? `${line.slice(0, 197)}...` : line
}
