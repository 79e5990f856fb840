/**
 * monitoring/grafana: the dashboard is importable JSON (a datasource input, a recent schema,
 * unique ids, panels that do not overlap), covers what operators watch, and every expression
 * names only metrics a live compactd exports.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compactOnce } from '../support/http-traffic.js'
import { liveApp } from '../support/live-app.js'
import { allPanels, dashboard, dashboardExprs, type Panel } from '../support/monitoring-files.js'
import { exposedFamilies, familyOf, metricNames } from '../support/promql.js'

const DS = '${DS_PROMETHEUS}'

/** What the dashboard must show, as a metric some panel must query. */
const COVERS: Record<string, string> = {
  'queue depth': 'persist_compaction_queue_depth',
  'running jobs': 'persist_compaction_running',
  'finished jobs by outcome': 'persist_compaction_duration_seconds_count',
  'throughput in updates': 'persist_compaction_updates_read_total',
  'throughput in bytes': 'persist_compaction_bytes_total',
  durations: 'persist_compaction_duration_seconds_bucket',
  timeouts: 'persist_compaction_timed_out_total',
  'memory violations': 'persist_compaction_memory_violations_total',
  'store latency': 'persist_blob_operation_seconds_bucket',
  'store errors': 'persist_consensus_operation_seconds_count',
  'blob GC': 'persist_gc_deleted_parts_total',
  'V8 GC': 'nodejs_gc_duration_seconds_sum',
  HTTP: 'compactd_http_request_duration_seconds_bucket',
  'per-shard backlog': 'persist_shard_backlog_bytes',
  'cluster jobs by status': 'persist_compaction_jobs',
}

function overlap(a: Panel['gridPos'], b: Panel['gridPos']): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

describe('Grafana dashboard', () => {
  it('is importable: a Prometheus datasource input, schemaVersion ≥ 39, no fixed id', async () => {
    const d = await dashboard()
    assert.ok(d.schemaVersion >= 39, `schemaVersion ${d.schemaVersion}`)
    assert.equal(d.id, null)
    assert.ok(d.uid.length > 0 && d.title.length > 0)
    assert.deepEqual(
      d.__inputs.map((i) => [i.name, i.type, i.pluginId]),
      [['DS_PROMETHEUS', 'datasource', 'prometheus']],
    )
    for (const v of d.templating.list) if (v.type === 'query') assert.equal(v.datasource?.uid, DS, `variable ${v.name}`)
  })

  it('has unique panel ids, a title and description per panel, every query on the input datasource, no overlaps', async () => {
    const d = await dashboard()
    const panels = allPanels(d)
    const ids = panels.map((p) => p.id)
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique')
    const shown = panels.filter((p) => p.type !== 'row')
    assert.ok(shown.length >= 20, 'a dashboard worth importing')
    for (const p of shown) {
      assert.ok(p.title.length > 0 && (p.description ?? '').length > 10, `panel ${p.id} needs a title and a description`)
      assert.equal(p.datasource?.uid, DS, p.title)
      assert.ok((p.targets ?? []).length > 0, `${p.title} has no query`)
      for (const t of p.targets ?? []) {
        assert.equal(t.datasource?.uid, DS, `${p.title} ${t.refId}`)
        assert.ok(t.expr.trim().length > 0, `${p.title} ${t.refId} is empty`)
      }
      assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} is outside the grid`)
    }
    const laid = d.panels
    for (let i = 0; i < laid.length; i++) {
      for (let j = i + 1; j < laid.length; j++) {
        const [a, b] = [laid[i], laid[j]]
        if (a !== undefined && b !== undefined) assert.ok(!overlap(a.gridPos, b.gridPos), `${a.title} overlaps ${b.title}`)
      }
    }
  })

  it('covers the queue, jobs by outcome, throughput, durations, timeouts, memory, stores, GC and HTTP', async () => {
    const used = new Set((dashboardExprs(await dashboard())).flatMap(metricNames))
    for (const [what, metric] of Object.entries(COVERS)) assert.ok(used.has(metric), `no panel shows ${what} (${metric})`)
  })

  it('names only metrics a live compactd exports', async (t) => {
    const { baseUrl } = await liveApp(t)
    await compactOnce(baseUrl)
    const families = exposedFamilies(await (await fetch(`${baseUrl}/metrics`)).text())
    for (const expr of dashboardExprs(await dashboard())) {
      for (const name of metricNames(expr)) {
        if (name === 'up') continue // Prometheus' own, per scrape target
        assert.ok(familyOf(name, families) !== null, `${name} (in ${expr}) is not exported by /metrics`)
      }
    }
  })
})
