import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { register as globalRegistry, Registry } from 'prom-client'
import { createMetrics } from '../../src/metrics/metrics.js'
import { buildTestApp } from '../helper.js'
import { whenCompaction } from '../support/when-compaction.js'

/** Every family docs/metrics.md lists, with its type and label names. */
const FAMILIES: Array<[string, 'counter' | 'gauge' | 'histogram', string[]]> = [
  ...[
    'requested', 'dropped', 'disabled', 'skipped', 'started', 'applied', 'timed_out', 'failed', 'noop', 'seconds',
    'queued_seconds', 'concurrency_waits', 'memory_violations', 'runs_compacted', 'chunks_compacted',
    'not_all_prefetched', 'parts_prefetched', 'parts_waited', 'fast_path_eligible', 'applied_exact_match',
    'applied_subset_match', 'not_applied_too_many_updates', 'rejected',
    'bytes', 'goodbytes', 'write_batch_part_seconds', 'write_stall', 'step_stats_seconds', 'step_part_writing_seconds',
    'step_inline_seconds', 'key_lower_too_big',
  ].map((s): [string, 'counter', string[]] => [`persist_compaction_${s}_total`, 'counter', []]),
  ['persist_compaction_schema_selection_total', 'counter', ['selection']],
  ['persist_compaction_step_seconds_total', 'counter', ['step']],
  ['persist_compaction_write_batch_order_total', 'counter', ['order']],
  ['persist_shard_compaction_applied_total', 'counter', ['shard']],
  ['persist_compaction_queue_depth', 'gauge', []],
  ['persist_compaction_running', 'gauge', []],
  ['persist_compaction_queue_size_limit', 'gauge', []],
  ['persist_compaction_concurrency_limit', 'gauge', []],
  ['persist_compaction_paused', 'gauge', []],
  ['persist_shard_backlog_batches', 'gauge', ['shard']],
  ['persist_shard_backlog_bytes', 'gauge', ['shard']],
  ['persist_shard_series', 'gauge', []],
  ['persist_shard_series_limit', 'gauge', []],
  ['persist_shard_series_evicted_total', 'counter', []],
  ['persist_backlog_batches', 'gauge', []],
  ['persist_backlog_bytes', 'gauge', []],
  ['persist_backlog_shards', 'gauge', []],
  ['persist_compaction_jobs', 'gauge', ['status']],
  ...['claims', 'lease_renewals', 'rescued', 'store_retries', 'fenced', 'chunks_applied', 'idle_sweeps', 'idle_sweep_submitted'].map(
    (s): [string, 'counter', string[]] => [`persist_compaction_${s}_total`, 'counter', []],
  ),
  ['persist_shard_reader_leases', 'gauge', []],
  ['persist_shard_reader_lease_writes_total', 'counter', ['op']],
  ['persist_cluster_instances', 'gauge', []],
  ...['parts_fetched', 'parts_skipped', 'parts_wasted', 'wrong_sort'].map((s): [string, 'counter', string[]] => [`persist_consolidation_${s}_total`, 'counter', []]),
  ...['started', 'finished', 'retries', 'sleep_seconds'].map((s): [string, 'counter', string[]] => [`persist_retry_${s}_total`, 'counter', ['op']]),
  ...['started', 'succeeded', 'failed', 'cas_mismatch', 'seconds'].map((s): [string, 'counter', string[]] => [`persist_cmd_${s}_total`, 'counter', ['cmd']]),
  ...['started', 'finished', 'noop', 'seconds', 'deleted_parts', 'deleted_bytes', 'state_rewrites'].map((s): [string, 'counter', string[]] => [`persist_gc_${s}_total`, 'counter', []]),
  ['persist_blob_operation_seconds', 'histogram', ['op', 'outcome']],
  ['persist_consensus_operation_seconds', 'histogram', ['op', 'outcome']],
  ['compactd_http_request_duration_seconds', 'histogram', ['method', 'route', 'status']],
]

describe('createMetrics', () => {
  it('registers every documented family, typed, with a help text, on the given registry only', async () => {
    const registry = new Registry()
    const globalBefore = (await globalRegistry.getMetricsAsJSON()).length
    createMetrics(registry)
    const byName = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, m]))
    for (const [name, type, labels] of FAMILIES) {
      const family = byName.get(name)
      assert.ok(family, `${name} is missing`)
      assert.equal(family.type, type, name)
      assert.ok(family.help.length > 15, `${name} needs a meaningful help text`)
      assert.deepEqual([...(registry.getSingleMetric(name) as unknown as { labelNames: string[] }).labelNames], labels, name)
    }
    assert.equal((await globalRegistry.getMetricsAsJSON()).length, globalBefore, 'nothing lands on the global registry')
  })

  it('follows the naming conventions: counters end in _total, seconds counters in _seconds_total', async () => {
    const registry = new Registry()
    createMetrics(registry)
    for (const m of await registry.getMetricsAsJSON()) {
      if (!m.name.startsWith('persist_') && !m.name.startsWith('compactd_')) continue
      if (String(m.type) === 'counter') assert.match(m.name, /_total$/, m.name)
      if (m.name.includes('seconds') && String(m.type) === 'counter') assert.match(m.name, /_seconds_total$/, m.name)
    }
  })

  it('includes Node process metrics on the same registry', async () => {
    const registry = new Registry()
    createMetrics(registry)
    const text = await registry.metrics()
    assert.match(text, /^process_cpu_user_seconds_total /m)
    assert.match(text, /^nodejs_eventloop_lag_seconds /m)
    assert.match(text, /^nodejs_active_handles\{/m)
  })

  it('names no gauge or histogram like a counter (promtool: non-counters must not end in _total)', async () => {
    const registry = new Registry()
    createMetrics(registry)
    for (const m of await registry.getMetricsAsJSON()) {
      if (String(m.type) !== 'counter') assert.doesNotMatch(m.name, /_total$/, `${m.name} is a ${String(m.type)}`)
    }
  })

  it('points help texts only into the repository (docs/...), never at documents outside it', async () => {
    const registry = new Registry()
    createMetrics(registry)
    const doc = await readFile(fileURLToPath(new URL('../../docs/metrics.md', import.meta.url)), 'utf8')
    const anchors = new Set([...doc.matchAll(/^#+ (.+)$/gm)].map((h) => (h[1] ?? '').toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-')))
    for (const m of await registry.getMetricsAsJSON()) {
      assert.doesNotMatch(m.help, new RegExp(`SPEC|PERSIST${'_'}SEMANTICS|API\\.md|\u00a7`), m.name)
      for (const ref of m.help.match(/docs\/[\w./#-]+/g) ?? []) {
        assert.match(ref, /^docs\/metrics\.md(#[a-z0-9-]+)?$/, `${m.name}: ${ref}`)
        const anchor = ref.split('#')[1]
        if (anchor !== undefined) assert.ok(anchors.has(anchor), `${m.name}: docs/metrics.md has no section #${anchor}`)
      }
    }
  })

  it('exposes the known label values of small vectors from the start, at 0', async () => {
    const registry = new Registry()
    createMetrics(registry)
    const text = await registry.metrics()
    for (const line of [
      'persist_compaction_schema_selection_total{selection="recent_schema"} 0',
      'persist_compaction_schema_selection_total{selection="disabled"} 0',
      'persist_compaction_schema_selection_total{selection="no_schema"} 0',
      'persist_compaction_step_seconds_total{step="part_fetch"} 0',
      'persist_compaction_step_seconds_total{step="heap_population"} 0',
      'persist_compaction_write_batch_order_total{order="structured"} 0',
      'persist_compaction_jobs{status="queued"} 0',
      'persist_compaction_jobs{status="running"} 0',
      'persist_compaction_paused 0',
    ]) {
      assert.ok(text.includes(line), line)
    }
  })

  it('hands out live handles: what a handle records is what the registry exposes', async () => {
    const registry = new Registry()
    const m = createMetrics(registry)
    m.compaction.requested.inc()
    m.compaction.schemaSelection.inc({ selection: 'recent_schema' })
    m.shard.compactionApplied.inc({ shard: 's1' }, 2)
    m.compactor.queueDepth.set(7)
    m.location.blobOperationSeconds.observe({ op: 'get', outcome: 'ok' }, 0.002)
    const text = await registry.metrics()
    assert.match(text, /^persist_compaction_requested_total 1$/m)
    assert.match(text, /^persist_compaction_schema_selection_total\{selection="recent_schema"\} 1$/m)
    assert.match(text, /^persist_shard_compaction_applied_total\{shard="s1"\} 2$/m)
    assert.match(text, /^persist_compaction_queue_depth 7$/m)
    assert.match(text, /^persist_blob_operation_seconds_count\{op="get",outcome="ok"\} 1$/m)
  })

  it('keeps registries independent, and refuses a second set on one registry', () => {
    const a = new Registry()
    const b = new Registry()
    const ma = createMetrics(a)
    const mb = createMetrics(b)
    ma.gc.started.inc()
    assert.notEqual(ma.gc.started, mb.gc.started)
    assert.throws(() => createMetrics(a), /already been registered/)
  })
})

describe('persist_compaction_jobs', () => {
  it('exports only statuses it counts, each equal to the jobs of that status in the store', async (t) => {
    const { app, services } = await buildTestApp({ t, services: { gcIntervalMs: null } })
    const created = await app.inject({ method: 'POST', url: '/v1/shards', payload: { name: 'jobs', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    const shardId = created.json<{ shardId: string }>().shardId
    await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/batches`, payload: { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] } })
    await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/since`, payload: { since: [4] } })
    const done = await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { major: true, wait: true } })
    assert.equal(done.json<{ status: string }>().status, 'succeeded', done.body)
    await services.compactor.heartbeat()
    const text = await services.registry.metrics()
    const exported = [...text.matchAll(/^persist_compaction_jobs\{status="([a-z_]+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])] as const)
    assert.deepEqual(exported.map(([status]) => status).sort(), ['queued', 'running'])
    for (const [status, value] of exported) {
      const listed = await app.inject({ method: 'GET', url: `/v1/compactions?status=${status}` })
      assert.equal(value, listed.json<{ compactions: unknown[] }>().compactions.length, status)
    }
  })
})

describe('persist_compaction_duration_seconds', () => {
  it('counts a compaction that ended not_applied under outcome not_applied, not failed', async (t) => {
    const { app, services } = await buildTestApp({ t, services: { gcIntervalMs: null } })
    await services.dyncfg.update({ compaction_concurrency_limit: 1, compaction_maintenance_enabled: false })
    const created = await app.inject({ method: 'POST', url: '/v1/shards', payload: { name: 'twice', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    const shardId = created.json<{ shardId: string }>().shardId
    for (let b = 0; b < 3; b++) await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/batches`, payload: { lower: [b], upper: [b + 1], updates: [{ key: 'a', val: 1, time: b, diff: 1 }] } })
    // Two major compactions queued at once: the second finds the first's work done, and ends not_applied.
    const ids: string[] = []
    for (let i = 0; i < 2; i++) ids.push((await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: { major: true } })).json<{ id: string }>().id)
    const final = await Promise.all(ids.map((id) => whenCompaction(services.compactor, id, (c) => c.finishedAt !== undefined, 'final')))
    assert.deepEqual(final.map((c) => c.status), ['succeeded', 'not_applied'])
    const counts = Object.fromEntries(
      [...(await services.registry.metrics()).matchAll(/^persist_compaction_duration_seconds_count\{outcome="([a-z_]+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]),
    )
    assert.deepEqual(counts, { applied: 1, not_applied: 1, failed: 0, timed_out: 0, cancelled: 0 })
  })
})
