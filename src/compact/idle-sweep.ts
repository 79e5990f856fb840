/**
 * The idle sweep: persist fuels its spine merges with appends, so a shard that stops receiving
 * appends keeps its merges in progress and its uncompacted spine batches forever. Every
 * `compaction_idle_sweep_interval`, one instance of the cluster walks the shards and submits
 * maintenance for each one whose spine still holds merge work and whose trace did not change for a
 * whole interval (no append, no compaction). The trace, not the state's seqno: reader leases and
 * compaction claims write state versions too, and a shard that is only read is still idle.
 *
 * - One instance at a time: the live instance with the smallest id sweeps (instances are known by
 *   their heartbeats). While membership changes two may sweep at once; that is harmless, because
 *   every submission carries the idempotency key `idle-sweep:<digest of the trace>`, so one trace
 *   yields at most one job, whichever instance submits it.
 * - A submission is a `merges` compaction of source `maintenance` that ignores the small-input
 *   heuristics: they exist to let work accumulate across appends, and none are coming.
 * - A shard whose state holds a compaction claim has a job at work on it already (claims change the
 *   seqno too): the sweep leaves it to that job.
 * - An instance that starts sweeping remembers nothing yet: a shard becomes idle for it one
 *   interval after it first sees the shard's current state.
 * - A pass reads each shard's head seqno only (`Shards.heads`), and the state only of those whose
 *   seqno moved since the pass before: an unchanged seqno is an unchanged trace. Decoding every
 *   state each minute cost an idle server of thousands of shards seconds of CPU a pass.
 */
import { createHash } from 'node:crypto'
import type { ShardId } from '../core/ids.js'
import type { DynamicConfigs } from '../dyncfg/dynamic-configs.js'
import { isAppError } from '../errors.js'
import type { Metrics } from '../metrics/metrics.js'
import type { Shards } from '../shard/shards.js'
import type { ShardState } from '../shard/state.js'
import type { Trace } from '../trace/trace.js'
import { traceToJson } from '../trace/trace-json.js'
import { traceStats } from '../trace/trace-summary.js'
import type { Compactor } from './compactor.js'

/** Shards read per listing page. */
const PAGE = 200
/** Pages per sweep at most (so a sweep is bounded: 200 000 shards). */
const MAX_PAGES = 1000

export interface IdleSweepDeps {
  readonly shards: Pick<Shards, 'heads' | 'get'>
  readonly compactor: Pick<Compactor, 'instanceId' | 'instances' | 'submit' | 'status'>
  readonly dyncfg: Pick<DynamicConfigs, 'snapshot'>
  readonly metrics: Pick<Metrics, 'cluster'>
  /** Errors of a pass (the sweep goes on at the next interval). Must not throw. */
  readonly onError: (err: unknown, context: string) => void
}

/** A shard as a pass saw it: its head seqno, and what the sweep decides on (digest null: deleted). */
interface Seen {
  readonly seqno: number
  readonly digest: string | null
  readonly claimed: boolean
  readonly mergeWork: boolean
}

export class IdleSweep {
  readonly #deps: IdleSweepDeps
  /** What the pass before saw of each shard: a trace unchanged for a whole interval means idle. */
  #seen = new Map<ShardId, Seen>()
  #timer: NodeJS.Timeout | null = null
  #busy = false

  constructor(deps: IdleSweepDeps) {
    this.#deps = deps
  }

  /** Checks every second whether a pass is due (the interval is a dyncfg, changed at runtime). */
  start(): void {
    if (this.#timer !== null) return
    let last = Date.now()
    this.#timer = setInterval(() => {
      const interval = this.#deps.dyncfg.snapshot().compaction_idle_sweep_interval
      if (interval <= 0 || Date.now() - last < interval || this.#busy) return
      last = Date.now()
      void this.sweep().catch((err: unknown) => this.#deps.onError(err, 'the idle sweep failed; it runs again at the next interval'))
    }, 1_000)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /**
   * One pass, when this instance is the one to sweep: submits maintenance for the shards idle since
   * the pass before. Returns the shards it submitted for (tests call it directly).
   */
  async sweep(): Promise<ShardId[]> {
    const { compactor, metrics } = this.#deps
    if (this.#busy || compactor.status() !== 'running' || !this.#deps.dyncfg.snapshot().compaction_maintenance_enabled || !(await this.#isSweeper())) return []
    this.#busy = true
    try {
      metrics.cluster.idleSweeps.inc()
      const seen = new Map<ShardId, Seen>()
      const submitted: ShardId[] = []
      let after: string | undefined
      for (let page = 0; page < MAX_PAGES; page++) {
        const p = await this.#deps.shards.heads(after, PAGE)
        for (const { shardId: id, seqno } of p.heads) {
          const before = this.#seen.get(id)
          const now = before?.seqno === seqno ? before : await this.#read(id, seqno)
          seen.set(id, now)
          if (now.digest === null || before?.digest !== now.digest || now.claimed || !now.mergeWork) continue
          if (await this.#submit(id, now.digest)) submitted.push(id)
        }
        if (p.next === undefined) break
        after = p.next
      }
      this.#seen = seen
      return submitted
    } finally {
      this.#busy = false
    }
  }

  /** What a pass needs of a shard's state (read now); a deleted or missing shard has no digest (and keeps `listed`, its head's seqno, so it is not read again). */
  async #read(id: ShardId, listed: number): Promise<Seen> {
    try {
      const { seqno, state } = await this.#deps.shards.get(id)
      return { seqno, digest: traceDigest(state.trace), claimed: (state.claims?.length ?? 0) > 0, mergeWork: hasMergeWork(state) }
    } catch (err) {
      if (isAppError(err) && (err.code === 'SHARD_DELETED' || err.code === 'SHARD_NOT_FOUND')) return { seqno: listed, digest: null, claimed: false, mergeWork: false }
      throw err
    }
  }

  async #isSweeper(): Promise<boolean> {
    const live = await this.#deps.compactor.instances()
    const first = live.map((i) => i.id).sort()[0]
    return first === undefined || first === this.#deps.compactor.instanceId
  }

  async #submit(shardId: ShardId, digest: string): Promise<boolean> {
    try {
      const r = await this.#deps.compactor.submit(shardId, {}, { source: 'maintenance', idempotencyKey: `idle-sweep:${digest}`, heuristics: false })
      if (r.kind === 'compaction' && r.compaction.status === 'queued') this.#deps.metrics.cluster.idleSweepSubmitted.inc()
      return true
    } catch (err) {
      // A shard deleted since the listing, a full queue, a stopping compactor: the next pass retries.
      if (isAppError(err) && ['SHARD_NOT_FOUND', 'SHARD_DELETED', 'QUEUE_FULL', 'SERVICE_UNAVAILABLE', 'INVALID_COMPACTION'].includes(err.code)) return false
      throw err
    }
  }
}

/** The spine has a merge in progress or a spine batch that is not one compact run. */
export function hasMergeWork(state: ShardState): boolean {
  return traceStats(state.trace).backlogBatches > 0 || mergesInProgress(state.trace)
}

/** A short digest of everything in `trace` (its batches, merges, frontiers). */
export function traceDigest(trace: Trace): string {
  return createHash('sha256').update(JSON.stringify(traceToJson(trace))).digest('base64url').slice(0, 22)
}

function mergesInProgress(trace: Trace): boolean {
  return trace.levels.some((l) => l.merge !== null)
}
