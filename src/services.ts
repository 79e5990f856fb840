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
import { access, mkdir } from 'node:fs/promises'
import { Registry } from 'prom-client'
import type { Blob } from './location/blob.js'
import type { Consensus } from './location/consensus.js'
import { LocationError } from './location/errors.js'
import { FileBlob } from './location/file-blob.js'
import { FileConsensus } from './location/file-consensus.js'
import { openBlob, openConsensus } from './location/open.js'
import { withBlobMetrics, withConsensusMetrics } from './location/with-metrics.js'
import { withBlobRetry, withConsensusRetry, type RetryEvent, type RetryOptions } from './location/with-retry.js'
import { createMetrics, type Metrics, type RetryMetrics } from './metrics/metrics.js'
import type { Settings } from './settings.js'

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
}

export const READINESS_TIMEOUT_MS = 2000

/**
 * Keys the readiness probe reads. NB: valid for every adapter's key rules, and never written, so a
 * probe is a real round trip that finds nothing.
 */
export const PROBE_KEYS = { blob: '_compactd/readyz', consensus: '_compactd/readyz' } as const

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
    const metrics = createMetrics(registry)

    const rawBlob = opts.rawBlob ?? (await openBlob(settings.blobUrl))
    closers.push(() => rawBlob.close())
    await ensureWritableRoot(rawBlob)
    const blob = withBlobMetrics(withBlobRetry(rawBlob, retryOptions('blob', metrics.retry)), metrics.location.blobOperationSeconds)

    const rawConsensus = opts.rawConsensus ?? (await openConsensus(settings.consensusUrl))
    closers.push(() => rawConsensus.close())
    await ensureWritableRoot(rawConsensus)
    const consensus = withConsensusMetrics(
      withConsensusRetry(rawConsensus, retryOptions('consensus', metrics.retry)),
      metrics.location.consensusOperationSeconds,
    )

    const schedulerStatus = opts.schedulerStatus ?? ((): SchedulerStatus => ({ state: 'running', ready: true }))

    // Probes go to the undecorated stores: a readiness answer reports the store as it is now,
    // and retries would only push it past the probe's deadline.
    const checkReadiness = async ({ timeoutMs = READINESS_TIMEOUT_MS } = {}): Promise<Readiness> => {
      const [blobCheck, consensusCheck] = await Promise.all([
        probe((signal) => rawBlob.get(PROBE_KEYS.blob, { signal }), timeoutMs),
        probe((signal) => rawConsensus.head(PROBE_KEYS.consensus, { signal }), timeoutMs),
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
      checkReadiness,
      close: () => (closing ??= closeAll()),
    })
  } catch (err) {
    await closeAll().catch(() => undefined)
    throw err
  }
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
  const kind = err instanceof LocationError ? `${err.kind} error` : 'error'
  const message = err instanceof Error ? err.message : String(err)
  const line = `${kind}: ${message}`.replace(/\s*[\r\n]+\s*/g, ' ')
  return line.length > 200 ? `${line.slice(0, 197)}...` : line
}
