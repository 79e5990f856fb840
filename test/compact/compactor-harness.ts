/**
 * A compactor wired to real dynamic configs (over MemConsensus) and real metrics, with a scripted
 * Stage D and an in-memory shard service that records every call, for unit tests of scheduling.
 *
 * - `TestExecutor`: each `execute` call waits until the test settles it (`succeed`, `fail`); it may
 *   "write" part keys first (`write`), and on abort it rejects carrying them in `writtenParts`,
 *   as the real Stage D does; with incremental compaction it may hand chunks over (`hand`).
 * - `TestShards`: `resolve` parses and validates with the real core parsers and `validateRequest`;
 *   `applyMergeRes` answers from a script (default `applied_exact`), and `not_applied` (fenced) for
 *   an attempt that no longer holds the shard's claim; claims and deletes are recorded.
 */
import { EventEmitter, once } from 'node:events'
import type { Counter, Gauge } from 'prom-client'
import { Registry } from 'prom-client'
import { inputStats, type ApplyResult, type Compaction, type CompactionStatus, type MergePlan, type ResolvedRequest, type SubmitBody } from '../../src/compact/compaction.js'
import { Compactor } from '../../src/compact/compactor.js'
import { type CompactorDeps, type ExecuteContext, type Fence } from '../../src/compact/compactor-port.js'
import { heuristic, selectSchema, timeoutMs, validateRequest } from '../../src/compact/plan.js'
import { emptyBatch, parseBatch, type BatchPart, type HollowBatch, type HollowBatchJson } from '../../src/core/batch.js'
import { WHOLE_BATCHES } from '../../src/trace/compaction-input.js'
import * as descs from '../../src/core/description.js'
import { newPartId, newShardId, newWriterKey, type ShardId } from '../../src/core/ids.js'
import { partialBatchKey, type PartialBatchKey } from '../../src/core/paths.js'
import { u64 } from '../../src/core/timestamp.js'
import { createDynamicConfigs, type DynamicConfigs } from '../../src/dyncfg/dynamic-configs.js'
import type { ConfigValues } from '../../src/dyncfg/registry.js'
import { AppError } from '../../src/errors.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js'
import { whenCompaction } from '../support/when-compaction.js'

const writer = newWriterKey()
export const newKey = (): PartialBatchKey => partialBatchKey(writer, newPartId())

export interface BatchOpts {
  readonly len?: number
  readonly parts?: number
  readonly partBytes?: number
  readonly since?: number
  readonly schemaId?: number | null
}

/** A u64 input batch `[lo, hi)` of one run. */
export function batchJson(lo: number, hi: number, o: BatchOpts = {}): HollowBatchJson {
  const parts = o.parts ?? 1
  return {
    desc: { lower: [lo], upper: [hi], since: [o.since ?? 0] },
    len: o.len ?? 600,
    parts: Array.from({ length: parts }, () => ({
      key: newKey(),
      encodedSizeBytes: o.partBytes ?? 100,
      keyLower: '',
      diffsSum: null,
      schemaId: o.schemaId ?? 0,
      stats: { updates: 1 },
    })),
    runSplits: [],
    runMeta: parts === 0 ? [] : [{ order: 'structured', schemaId: o.schemaId === undefined ? 0 : o.schemaId }],
  }
}

/** A body with `n` consecutive inputs over `[0, n)`; by default it passes the heuristic (1200 updates). */
export function body(n = 2, o: BatchOpts & Omit<SubmitBody, 'desc' | 'inputs'> = {}): SubmitBody {
  const { len, parts, partBytes, since, schemaId, ...rest } = o
  return {
    desc: { lower: [0], upper: [n], since: [since ?? 0] },
    inputs: Array.from({ length: n }, (_, i) => batchJson(i, i + 1, { len, parts, partBytes, since, schemaId })),
    ...rest,
  }
}

/** Below every default heuristic: one input, one part, one update. */
export const smallBody = (): SubmitBody => body(1, { len: 1 })

export interface ExecuteCall {
  readonly req: ResolvedRequest
  readonly cfg: ConfigValues
  readonly ctx: ExecuteContext
  readonly written: PartialBatchKey[]
  /** When false, an abort is ignored (a Stage D that finishes anyway). Default true. */
  honourAbort: boolean
  /** Records `n` parts as written (what the real Stage D does before it fails or finishes). */
  write(n?: number): PartialBatchKey[]
  /** Resolves with an output holding the written parts (one written first if none was). */
  succeed(): HollowBatch
  fail(err: unknown): void
  /**
   * Incremental compaction: writes `n` parts as chunk `index` of `count` and hands them to Stage C
   * (`ctx.applyChunk`); resolves with its answer. Handed parts are Stage C's: never in `writtenParts`.
   */
  hand(index: number, count: number, n?: number): Promise<'continue' | 'stop'>
  /** Ends as Stage D does once every chunk was handed over: an output with no parts. */
  succeedHanded(): void
}

export class TestExecutor extends EventEmitter {
  readonly calls: ExecuteCall[] = []
  #next = 0

  readonly execute: CompactorDeps['execute'] = (req, cfg, ctx) =>
    new Promise((resolve, reject) => {
      const written: PartialBatchKey[] = []
      const handed = new Set<PartialBatchKey>()
      let settled = false
      const call: ExecuteCall = {
        req,
        cfg,
        ctx,
        written,
        honourAbort: true,
        write: (n = 1) => {
          const keys = Array.from({ length: n }, newKey)
          written.push(...keys)
          return keys
        },
        succeed: () => {
          if (written.length === 0) call.write()
          const output = outputOf(req, written)
          settled = true
          resolve({ output })
          return output
        },
        fail: (err) => {
          settled = true
          reject(err)
        },
        hand: async (index, count, n = 1) => {
          if (ctx.applyChunk === undefined) throw new Error('Stage C gave no applyChunk (incremental compaction off)')
          const keys = call.write(n)
          for (const k of keys) handed.add(k)
          const output = outputOf(req, keys)
          return ctx.applyChunk({ output, input: WHOLE_BATCHES, inputs: inputStats(req.inputs.slice(index, index + 1)), index, count })
        },
        succeedHanded: () => {
          settled = true
          resolve({ output: emptyBatch(req.desc) })
        },
      }
      ctx.signal.addEventListener(
        'abort',
        () => {
          if (settled || !call.honourAbort) return
          settled = true
          reject(Object.assign(new Error('aborted', { cause: ctx.signal.reason }), { writtenParts: written.filter((k) => !handed.has(k)) }))
        },
        { once: true },
      )
      this.calls.push(call)
      this.emit('call', call)
    })

  /** The next call not yet taken, waiting for it if needed. */
  async take(): Promise<ExecuteCall> {
    for (let i = 0; i < 100 && this.#next >= this.calls.length; i++) await once(this, 'call')
    const call = this.calls[this.#next++]
    if (call === undefined) throw new Error('no execute call came')
    return call
  }
}

export function outputOf(req: ResolvedRequest, keys: readonly PartialBatchKey[]): HollowBatch {
  const parts: BatchPart[] = keys.map((key) => ({ kind: 'hollow', key, encodedSizeBytes: 10, keyLower: '', diffsSum: null, schemaId: 0, stats: { updates: 1 } }))
  return {
    desc: req.desc,
    len: req.inputs.reduce((s, b) => s + b.len, 0),
    parts,
    runSplits: [],
    runMeta: parts.length === 0 ? [] : [{ order: 'structured', schemaId: 0 }],
  }
}

type ApplyScript = ApplyResult | { readonly throws: unknown } | { readonly pending: Promise<ApplyResult> }

export class TestShards {
  readonly known = new Map<ShardId, { knownSchemaIds: Set<number>; latestSchema: number }>()
  readonly resolved: { shardId: ShardId; body: SubmitBody }[] = []
  readonly applied: { shardId: ShardId; output: HollowBatch; fence: Fence | null }[] = []
  /** The claims the shards hold now, by `<shard>/<job>` (the state machine's `claims`). */
  readonly claims = new Map<string, Fence>()
  readonly deleted: { shardId: ShardId; keys: PartialBatchKey[] }[] = []
  /** Errors the next claims of a shard throw, in order; none: they are granted. */
  readonly claimRefusals: unknown[] = []
  /** Answers of the next applies, in order; `applied_exact` when empty. */
  readonly applyScript: ApplyScript[] = []
  readonly events = new EventEmitter()
  /** What `inputsHeld` answers: whether the shards still reference the inputs of a merge. */
  inputsStillHeld = true

  addShard(knownSchemaIds: number[] = [0]): ShardId {
    const id = newShardId()
    this.known.set(id, { knownSchemaIds: new Set(knownSchemaIds), latestSchema: Math.max(...knownSchemaIds) })
    return id
  }

  readonly impl: CompactorDeps['shards'] = {
    resolve: async (shardId, b) => {
      this.resolved.push({ shardId, body: b })
      const shard = this.known.get(shardId)
      if (shard === undefined) throw new AppError('SHARD_NOT_FOUND', `shard ${shardId} does not exist`)
      // No desc and no inputs: "complete the merges in progress", of which the test shards have none.
      if (b.desc === undefined && b.inputs === undefined) return { kind: 'merges', shardId, tk: u64, writerSchemaId: shard.latestSchema, range: null, merges: [] }
      if (b.desc === undefined || b.inputs === undefined) throw new AppError('INVALID_COMPACTION', 'the test shards need desc and inputs')
      const desc = descs.parse(u64, b.desc)
      if (!desc.ok) throw new AppError('INVALID_COMPACTION', `desc.${desc.error}`)
      const inputs: HollowBatch[] = []
      for (const [i, json] of b.inputs.entries()) {
        const parsed = parseBatch(u64, shardId, json, `inputs[${i}]`)
        if (!parsed.ok) throw new AppError('INVALID_COMPACTION', parsed.error)
        inputs.push(parsed.value)
      }
      const invalid = validateRequest(u64, desc.value, inputs)
      if (invalid !== null) throw new AppError('INVALID_COMPACTION', invalid)
      const writerSchemaId = b.writerSchemaId ?? shard.latestSchema
      if (!shard.knownSchemaIds.has(writerSchemaId)) throw new AppError('INVALID_COMPACTION', `unknown schema id ${writerSchemaId}`)
      const merge = { shardId, tk: u64, desc: desc.value, inputs, writerSchemaId, knownSchemaIds: shard.knownSchemaIds, apply: 'merge' as const }
      return { kind: 'range', shardId, tk: u64, writerSchemaId, range: null, merges: [merge] }
    },
    replan: async (req) => ({ merges: req.merges, problem: null }),
    applyMergeRes: async (shardId, output, _mode, fence) => {
      const held = fence === null ? undefined : this.claims.get(`${shardId}/${fence.job}`)
      if (fence !== null && held?.token !== fence.token) {
        return { result: 'not_applied_invalid_since' as const, detail: { why: 'fenced' as const, message: `attempt ${fence.token} no longer holds the claim` } }
      }
      this.applied.push({ shardId, output, fence })
      this.events.emit('apply', output)
      const next = this.applyScript.shift() ?? 'applied_exact'
      const outcome = (result: ApplyResult) => ({ result, detail: result.startsWith('applied') ? null : { why: 'range' as const, message: `scripted ${result}` } })
      if (typeof next === 'string') return outcome(next)
      if ('throws' in next) throw next.throws
      return outcome(await next.pending)
    },
    claimCompaction: async (shardId, job, token) => {
      if (!this.known.has(shardId)) throw new AppError('SHARD_NOT_FOUND', `shard ${shardId} does not exist`)
      const refusal = this.claimRefusals.shift()
      if (refusal !== undefined) throw refusal
      const held = this.claims.get(`${shardId}/${job}`)
      if (held !== undefined && held.token > token) return 'fenced'
      this.claims.set(`${shardId}/${job}`, { job, token })
      return 'claimed'
    },
    releaseClaim: async (shardId, job, token) => {
      const held = this.claims.get(`${shardId}/${job}`)
      if (held !== undefined && held.token <= token) this.claims.delete(`${shardId}/${job}`)
    },
    inputsHeld: async () => this.inputsStillHeld,
    deleteOutputParts: async (shardId, output) => {
      const keys = 'parts' in output ? output.parts.flatMap((p) => (p.kind === 'hollow' ? [p.key] : [])) : [...output]
      this.deleted.push({ shardId, keys })
      this.events.emit('deleted', keys)
    },
  }

  /** Every key deleted, across calls. */
  deletedKeys(): PartialBatchKey[] {
    return this.deleted.flatMap((d) => d.keys)
  }
}

/** The dry-run plan from the real planning steps (the composition root wires Stage D's own). */
export function testPlan(req: ResolvedRequest, cfg: ConfigValues): MergePlan {
  const schema = selectSchema(req.inputs, req.knownSchemaIds, req.writerSchemaId, cfg.persist_compaction_use_most_recent_schema)
  return {
    heuristic: heuristic(req.inputs, {
      minInputs: cfg.persist_compaction_heuristic_min_inputs,
      minParts: cfg.persist_compaction_heuristic_min_parts,
      minUpdates: cfg.persist_compaction_heuristic_min_updates,
    }),
    timeoutMs: timeoutMs(req.inputs, cfg.persist_compaction_minimum_timeout),
    schemaSelection: schema.selection,
    schemaId: schema.schemaId,
    runs: [],
    chunks: [],
    memoryViolations: 0,
  }
}

export interface Harness {
  readonly compactor: Compactor
  readonly dyncfg: DynamicConfigs
  readonly metrics: Metrics
  readonly registry: Registry
  readonly exec: TestExecutor
  readonly shards: TestShards
  readonly shardId: ShardId
  readonly errors: { err: unknown; context: string }[]
  readonly store: MemJobStore
  /** Advances the fake wall clock. */
  advance(ms: number): void
  set(patch: Record<string, unknown>): Promise<void>
  close(): Promise<void>
}

export interface HarnessOptions {
  readonly configs?: Record<string, unknown>
  /** Another instance of the same cluster: its store and shards (and clock) are shared. */
  readonly peer?: Harness
  readonly instanceId?: string
  /** The job store (default a new MemJobStore; a peer's is shared). */
  readonly store?: MemJobStore
}

/**
 * A started compactor on a fake clock. Its background timers are an hour apart, so a test runs
 * sweeps itself (`compactor.sweep()`); claims follow submissions and the store's notifications.
 */
export async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const dyncfg = createDynamicConfigs({ consensus: new MemConsensus() })
  await dyncfg.start()
  // NB: an hour's lease, so advancing the fake clock never expires one unless a test asks.
  await dyncfg.update({ compaction_lease_timeout: '1h', ...opts.configs })
  const registry = new Registry()
  const metrics = createMetrics(registry)
  const exec = new TestExecutor()
  const shards = opts.peer?.shards ?? new TestShards()
  const shardId = opts.peer?.shardId ?? shards.addShard([0, 1])
  const store = opts.peer?.store ?? opts.store ?? new MemJobStore()
  const errors: { err: unknown; context: string }[] = []
  const clock = opts.peer === undefined ? { nowMs: Date.parse('2024-05-01T00:00:00.000Z') } : clocks.get(opts.peer)
  if (clock === undefined) throw new Error('the peer is not a harness')
  const hour = 3_600_000
  const compactor = new Compactor({
    dyncfg,
    metrics,
    shards: shards.impl,
    execute: exec.execute,
    plan: testPlan,
    store,
    instanceId: opts.instanceId ?? 'test-a',
    version: 'test',
    timers: { pollMs: hour, heartbeatMs: hour, purgeMs: hour, remotePollMs: 5 },
    now: () => new Date(clock.nowMs),
    onError: (err, context) => errors.push({ err, context }),
  })
  compactor.start()
  const h: Harness = {
    compactor,
    dyncfg,
    metrics,
    registry,
    exec,
    shards,
    shardId,
    errors,
    store,
    advance: (ms) => {
      clock.nowMs += ms
    },
    set: async (patch) => {
      await dyncfg.update(patch)
    },
    close: async () => {
      await compactor.stop({ graceMs: 0 })
      await dyncfg.stop()
    },
  }
  clocks.set(h, clock)
  return h
}

/** Each harness's clock, shared with its peers. */
const clocks = new WeakMap<Harness, { nowMs: number }>()

/** Waits (on `change` events, never a timer) until compaction `id` has `status`. */
export function until(compactor: Compactor, id: string, status: CompactionStatus): Promise<Compaction> {
  return whenCompaction(compactor, id, (c) => c.status === status, status)
}

async function valueOf(metric: Counter | Gauge, labels: Record<string, string> = {}): Promise<number> {
  const got = await metric.get()
  const v = got.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l))
  return v?.value ?? 0
}

/** Every non-zero compaction lifecycle counter (fresh registry per harness, so values are deltas), after a sweep settles the scheduler. */
export async function counters(h: Harness): Promise<Record<string, number>> {
  await h.compactor.sweep()
  const m = h.metrics.compaction
  const out: Record<string, number> = {}
  const plain = {
    requested: m.requested,
    dropped: m.dropped,
    disabled: m.disabled,
    skipped: m.skipped,
    started: m.started,
    applied: m.applied,
    timedOut: m.timedOut,
    failed: m.failed,
    noop: m.noop,
    concurrencyWaits: m.concurrencyWaits,
    fastPathEligible: m.fastPathEligible,
    appliedExactMatch: m.appliedExactMatch,
    appliedSubsetMatch: m.appliedSubsetMatch,
    notAppliedTooManyUpdates: m.notAppliedTooManyUpdates,
    rejected: m.rejected,
  }
  for (const [name, c] of Object.entries(plain)) {
    const v = await valueOf(c)
    if (v !== 0) out[name] = v
  }
  for (const selection of ['recent_schema', 'disabled', 'no_schema']) {
    const v = await valueOf(m.schemaSelection, { selection })
    if (v !== 0) out[`schemaSelection.${selection}`] = v
  }
  const shardApplied = await h.metrics.shard.compactionApplied.get()
  for (const v of shardApplied.values) if (v.value !== 0) out[`shardApplied.${String(v.labels.shard)}`] = v.value
  return out
}

export async function seconds(h: Harness): Promise<{ seconds: number; queuedSeconds: number }> {
  return { seconds: await valueOf(h.metrics.compaction.seconds), queuedSeconds: await valueOf(h.metrics.compaction.queuedSeconds) }
}

export async function gauges(h: Harness): Promise<{ queueDepth: number; running: number; queueSizeLimit: number; concurrencyLimit: number }> {
  await h.compactor.sweep()
  const g = h.metrics.compactor
  return {
    queueDepth: await valueOf(g.queueDepth),
    running: await valueOf(g.running),
    queueSizeLimit: await valueOf(g.queueSizeLimit),
    concurrencyLimit: await valueOf(g.concurrencyLimit),
  }
}

/** Submits and returns the compaction (fails the test on a plan). */
export async function submitted(h: Harness, b: SubmitBody = body(), opts: Parameters<Compactor['submit']>[2] = {}, shardId = h.shardId): Promise<Compaction> {
  const r = await h.compactor.submit(shardId, b, opts)
  if (r.kind !== 'compaction') throw new Error('expected a compaction, got a plan')
  return r.compaction
}
