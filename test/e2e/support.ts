/**
 * Support for end-to-end compaction tests: the real app (real executor in worker threads, real
 * shard service, real compactor) on mem:// stores, driven over HTTP with `app.inject`.
 *
 * - `GatedBlob`: a MemBlob whose `get`s can be held (`hold(match)`), so a compaction blocks at a
 *   chosen input read until the test releases it. Every hold is released before the app closes.
 *   Tests that await a hold carry a `timeout` (GATED), so a regression fails instead of hanging.
 * - `e2eApp(t)`: builds the app on a GatedBlob, without background GC, and closes it after `t`.
 * - HTTP helpers (shards, batches, configs, compactions, snapshots, parts) that assert the status.
 * - `scrape` / `countDelta`: the compaction counters of `GET /metrics`, and what moved between two
 *   scrapes, so a test asserts every lifecycle counter at once (what did not move included).
 * - `whenCompaction`: a compaction's state awaited on the compactor's change events.
 */
import assert from 'node:assert/strict'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import type { App } from '../../src/app.js'
import type { Services } from '../../src/services.js'
import type { Settings } from '../../src/settings.js'
import { buildTestApp } from '../helper.js'
import { GatedBlob } from '../support/gated-blob.js'

export { GatedBlob, type Hold } from '../support/gated-blob.js'

/** Options of a test that awaits a hold: fail rather than hang if the read never comes. */
export const GATED = { timeout: 20_000 } as const

export interface E2eApp {
  readonly app: App
  readonly services: Services
  readonly blob: GatedBlob
}

/**
 * The real app on mem:// stores with a GatedBlob, no background GC, and `workers` worker threads
 * (default 1: each app spawns its own). Closed after the test, holds released first.
 */
export async function e2eApp(t: { after(fn: () => Promise<void>): void }, opts: { readonly workers?: number } = {}): Promise<E2eApp> {
  const blob = new GatedBlob()
  const settings: Partial<Settings> = { workers: opts.workers ?? 1 }
  const { app, services, close } = await buildTestApp({ settings, services: { rawBlob: blob, gcIntervalMs: null } })
  t.after(async () => {
    blob.releaseAll()
    await close()
  })
  return { app, services, blob }
}

// ---- HTTP helpers ------------------------------------------------------------------------------

export type Json = Record<string, unknown>

export interface DescJson {
  lower: unknown[]
  upper: unknown[]
  since: unknown[]
}

export interface PartJson {
  key?: string
  encodedSizeBytes?: number
  inline?: { encodedSizeBytes: number; updates: string }
  [k: string]: unknown
}

export interface BatchJson {
  desc: DescJson
  len: number
  parts: PartJson[]
  runSplits: number[]
  runMeta: { order: string | null; schemaId: number | null }[]
}

export interface CompactionJson {
  id: string
  status: string
  result?: string
  output?: BatchJson
  error?: { code: string; message: string }
  timeoutMs?: number
  desc: DescJson
  [k: string]: unknown
}

export interface RowJson {
  key: string
  val: string
  time: number
  diff: number
}

export async function inject(app: App, opts: InjectOptions, status: number): Promise<LightMyRequestResponse> {
  const res = await app.inject(opts)
  assert.equal(res.statusCode, status, `${opts.method ?? 'GET'} ${opts.url as string}: ${res.body}`)
  return res
}

/** A u64 shard with utf8 keys and values. */
export async function createShard(app: App): Promise<string> {
  const res = await inject(app, { method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'utf8' } } }, 201)
  return res.json().shardId as string
}

export async function patchConfigs(app: App, configs: Json): Promise<void> {
  await inject(app, { method: 'PATCH', url: '/v1/configs', payload: configs }, 200)
}

/** Writes `[lower, upper)` (u64); appended unless `append: false`. Returns the batch. */
export async function writeBatch(app: App, shardId: string, lower: number, upper: number, updates: readonly RowJson[], append = true): Promise<BatchJson> {
  const res = await inject(app, { method: 'POST', url: `/v1/shards/${shardId}/batches`, payload: { lower: [lower], upper: [upper], updates, append } }, 201)
  assert.equal(res.json().appended, append)
  return res.json().batch as BatchJson
}

/** Appends `n` one-row batches `[i, i+1)` holding `(k<i>, v, i, +1)`. */
export async function appendOneRowBatches(app: App, shardId: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await writeBatch(app, shardId, i, i + 1, [{ key: `k${i}`, val: 'v', time: i, diff: 1 }])
}

export interface SpineBatchJson {
  id: string
  desc: DescJson
  len: number
  level: number
  batches: BatchJson[]
}

export interface ShardJson {
  seqno: number
  since: unknown[]
  upper: unknown[]
  trace: { batches: SpineBatchJson[] }
}

export async function getShard(app: App, shardId: string): Promise<ShardJson> {
  return (await inject(app, { method: 'GET', url: `/v1/shards/${shardId}` }, 200)).json() as ShardJson
}

export const submit = (app: App, shardId: string, body: Json, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
  app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: body, headers })

/** Submits with `wait: true` and expects `status`; returns the final Compaction. */
export async function compactAndWait(app: App, shardId: string, body: Json, status = 200): Promise<CompactionJson> {
  const res = await submit(app, shardId, { ...body, wait: true })
  assert.equal(res.statusCode, status, res.body)
  return res.json() as CompactionJson
}

export interface PlanJson {
  heuristic: { inputs: number; parts: number; updates: number; wouldCompact: boolean }
  timeoutMs: number
  schemaSelection: string
  schemaId: number
  runs: { input: number; order: string | null; schemaId: number | null; parts: number; encodedBytes: number; maxPartBytes: number; exploded: boolean }[]
  chunks: { runs: number[]; memoryBytes: number; kind: string; desc: DescJson }[]
  memoryViolations: number
}

export async function dryRun(app: App, shardId: string, body: Json): Promise<PlanJson> {
  const res = await submit(app, shardId, { ...body, dryRun: true })
  assert.equal(res.statusCode, 200, res.body)
  return res.json().plan as PlanJson
}

export { whenCompaction } from '../support/when-compaction.js'

/** The snapshot rows at every asOf in `asOfs`, keyed by asOf. */
export async function snapshots(app: App, shardId: string, asOfs: readonly number[]): Promise<Record<number, unknown>> {
  const out: Record<number, unknown> = {}
  for (const asOf of asOfs) {
    out[asOf] = (await inject(app, { method: 'GET', url: `/v1/shards/${shardId}/snapshot?asOf=${asOf}` }, 200)).json().updates
  }
  return out
}

/** The rows of each part of `batch`, one array per run (runSplits applied). */
export async function runRows(app: App, shardId: string, batch: BatchJson): Promise<RowJson[][]> {
  const cuts = [0, ...batch.runSplits, batch.parts.length]
  const runs: RowJson[][] = []
  for (let r = 0; r + 1 < cuts.length; r++) {
    const rows: RowJson[] = []
    for (const part of batch.parts.slice(cuts[r], cuts[r + 1])) {
      assert.ok(part.key !== undefined, 'compaction output parts are never inline')
      rows.push(...((await inject(app, { method: 'GET', url: `/v1/shards/${shardId}/parts/${part.key}` }, 200)).json().updates as RowJson[]))
    }
    runs.push(rows)
  }
  return runs
}

/** Every blob key under the shard, sorted. */
export async function blobKeys(services: Services, shardId: string): Promise<string[]> {
  const keys: string[] = []
  for await (const meta of services.blob.list(`${shardId}/`)) keys.push(meta.key)
  return keys.sort()
}

/** The full blob keys of a batch's hollow parts, sorted. */
export const partKeys = (shardId: string, batch: BatchJson): string[] =>
  batch.parts.flatMap((p) => (p.key === undefined ? [] : [`${shardId}/${p.key}`])).sort()

/** Sort-and-sum oracle: rows advanced to `since`, equal (key, val, time) summed, zeros dropped, sorted. */
export function consolidate(rows: readonly RowJson[], since: number): RowJson[] {
  const sums = new Map<string, RowJson>()
  for (const r of rows) {
    const time = Math.max(r.time, since)
    const k = JSON.stringify([r.key, r.val, time])
    const prev = sums.get(k)
    sums.set(k, { key: r.key, val: r.val, time, diff: (prev?.diff ?? 0) + r.diff })
  }
  return [...sums.values()]
    .filter((r) => r.diff !== 0)
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.val < b.val ? -1 : a.val > b.val ? 1 : a.time - b.time))
}

// ---- metrics -----------------------------------------------------------------------------------

export type Scrape = ReadonlyMap<string, number>

/** Every sample of `GET /metrics`, keyed by `name{labels}` as printed. */
export async function scrape(app: App): Promise<Scrape> {
  const res = await inject(app, { method: 'GET', url: '/metrics' }, 200)
  const samples = new Map<string, number>()
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const cut = line.lastIndexOf(' ')
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)))
  }
  return samples
}

/**
 * The integer compaction counters of docs/compaction.md#metrics-by-step (plus `rejected`), i.e. every one
 * a compaction's path through Stages A–D moves by a known amount. Seconds, byte and prefetch
 * counters are left out: their amounts depend on timing and sizes.
 */
export const LIFECYCLE = [
  'requested',
  'dropped',
  'disabled',
  'skipped',
  'started',
  'applied',
  'timed_out',
  'failed',
  'noop',
  'concurrency_waits',
  'memory_violations',
  'runs_compacted',
  'chunks_compacted',
  'fast_path_eligible',
  'applied_exact_match',
  'applied_subset_match',
  'not_applied_too_many_updates',
  'rejected',
] as const

const LIFECYCLE_SERIES = new Set<string>(LIFECYCLE.map((n) => `persist_compaction_${n}_total`))

/** Short name of a lifecycle series (`started`, `schema_selection{selection="recent_schema"}`...), else null. */
function lifecycleName(series: string): string | null {
  if (LIFECYCLE_SERIES.has(series)) return series.slice('persist_compaction_'.length, -'_total'.length)
  if (series.startsWith('persist_compaction_schema_selection_total{')) return `schema_selection${series.slice(series.indexOf('{'))}`
  if (series.startsWith('persist_shard_compaction_applied_total{')) return `shard_applied${series.slice(series.indexOf('{'))}`
  return null
}

/** What each lifecycle counter moved by between two scrapes; counters that did not move are absent. */
export function countDelta(before: Scrape, after: Scrape): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [series, value] of after) {
    const name = lifecycleName(series)
    if (name === null) continue
    const d = value - (before.get(series) ?? 0)
    if (d !== 0) out[name] = d
  }
  return out
}

/** How much one series (exactly as printed) moved. */
export const seriesDelta = (before: Scrape, after: Scrape, series: string): number => (after.get(series) ?? 0) - (before.get(series) ?? 0)

export const RECENT = 'schema_selection{selection="recent_schema"}'
export const shardApplied = (shardId: string): string => `shard_applied{shard="${shardId}"}`
