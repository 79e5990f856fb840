/**
 * /metrics as a real scraper sees it: `promtool check metrics` accepts it without a complaint,
 * docs/metrics.md documents exactly the families it exposes, and the backlog gauges agree with
 * what GET /v1/shards/{id} reports.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { backlogOf, call, compactOnce } from '../support/http-traffic.js'
import { liveApp } from '../support/live-app.js'
import { promtool } from '../support/promtool.js'
import { exposedFamilies } from '../support/promql.js'

const METRICS_DOC = fileURLToPath(new URL('../../docs/metrics.md', import.meta.url))

async function scrapeText(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`)
  assert.equal(res.status, 200)
  return res.text()
}

/** The value of one series exactly as printed (`name{labels}`), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('GET /metrics on a live server', () => {
  it('passes promtool check metrics with no complaint, after real traffic', async (t) => {
    const { baseUrl } = await liveApp(t)
    const { compaction } = await compactOnce(baseUrl)
    assert.equal(compaction.status, 'succeeded')
    await call(baseUrl, 'GET', '/v1/shards/s00000000-0000-0000-0000-000000000000', undefined, 404)
    const text = await scrapeText(baseUrl)
    const checked = await promtool(['check', 'metrics'], { stdin: text })
    assert.equal(`${checked.stdout}${checked.stderr}`, '', 'promtool check metrics complained')
    assert.equal(checked.code, 0)
  })

  it('shows each shard\'s backlog as GET /v1/shards/{id} counts it, and the instance totals', async (t) => {
    const { baseUrl } = await liveApp(t)
    // NB: the idle shard is written first: compactOnce lowers min_inputs, after which appends
    // start maintenance compactions that would change states behind the scrape's back.
    const idle = ((await call(baseUrl, 'POST', '/v1/shards', { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }, 201)) as { shardId: string }).shardId
    for (let i = 0; i < 5; i++) await call(baseUrl, 'POST', `/v1/shards/${idle}/batches`, { lower: [i], upper: [i + 1], updates: [{ key: 'k', val: i, time: i, diff: 1 }] }, 201)
    const compacted = await compactOnce(baseUrl)

    const text = await scrapeText(baseUrl)
    let batches = 0
    let bytes = 0
    for (const shardId of [compacted.shardId, idle]) {
      const { stats } = await backlogOf(baseUrl, shardId)
      assert.equal(sample(text, `persist_shard_backlog_batches{shard="${shardId}"}`), stats.backlogBatches, shardId)
      assert.equal(sample(text, `persist_shard_backlog_bytes{shard="${shardId}"}`), stats.backlogBytes, shardId)
      batches += stats.backlogBatches
      bytes += stats.backlogBytes
    }
    assert.ok((await backlogOf(baseUrl, idle)).stats.backlogBatches > 0, 'five appends leave merge work')
    assert.equal(sample(text, 'persist_backlog_batches'), batches)
    assert.equal(sample(text, 'persist_backlog_bytes'), bytes)
    assert.equal(sample(text, `persist_shard_compaction_applied_total{shard="${compacted.shardId}"}`), 1)
    assert.equal(sample(text, 'persist_compaction_duration_seconds_count{outcome="applied"}'), 1)
    assert.ok((sample(text, 'persist_compaction_updates_read_total') ?? 0) > 0, 'updates read moved')
  })

  it('shows the kill switch: persist_compaction_paused follows compaction_process_requests', async (t) => {
    const { baseUrl } = await liveApp(t)
    assert.equal(sample(await scrapeText(baseUrl), 'persist_compaction_paused'), 0)
    await call(baseUrl, 'PATCH', '/v1/configs', { compaction_process_requests: false })
    assert.equal(sample(await scrapeText(baseUrl), 'persist_compaction_paused'), 1)
    await call(baseUrl, 'PATCH', '/v1/configs', { compaction_process_requests: true })
    assert.equal(sample(await scrapeText(baseUrl), 'persist_compaction_paused'), 0)
  })

  it('is documented family by family in docs/metrics.md, and the document names nothing else', async (t) => {
    const { baseUrl } = await liveApp(t)
    await compactOnce(baseUrl)
    const families = exposedFamilies(await scrapeText(baseUrl))
    const doc = await readFile(METRICS_DOC, 'utf8')
    // Rows of the family tables: | `name` | type | labels | meaning |
    const documented = new Map([...doc.matchAll(/^\| `([a-z_:]+)` \| (counter|gauge|histogram) \|/gm)].map((m) => [m[1] ?? '', m[2] ?? '']))
    for (const [name, type] of families) {
      if (name.startsWith('process_') || name.startsWith('nodejs_')) continue // Node's own, documented as a group
      assert.equal(documented.get(name), type, `${name} (${type}) is not in docs/metrics.md with its type`)
    }
    for (const name of documented.keys()) assert.ok(families.has(name), `docs/metrics.md lists ${name}, which /metrics does not expose`)
    for (const name of families.keys()) if (name.startsWith('nodejs_') || name.startsWith('process_')) assert.match(doc, new RegExp(`\\b${name}\\b`), `${name} is not mentioned in docs/metrics.md`)
  })
})
