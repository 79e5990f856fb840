/**
 * A real Prometheus scrapes a live compactd: the target is up, a compaction's counters read back
 * through Prometheus' query API, and the alerting rules load and evaluate without error on the
 * scraped data. Over HTTPS, with monitoring/README.md's scrape example as written (its CA path
 * and target replaced): up, the certificate's expiry read back, and its alert pending.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compactOnce } from '../support/http-traffic.js'
import { liveApp } from '../support/live-app.js'
import { alertRules, readmeScrapeConfig, RULES_FILE } from '../support/monitoring-files.js'
import { startPrometheus, until } from '../support/prometheus.js'
import { tlsPairOf } from '../support/tls.js'

const JOB = 'compactd'

interface RuleState {
  readonly name: string
  readonly health: string
  readonly lastError?: string
  readonly lastEvaluation: string
}

describe('Prometheus scraping compactd', () => {
  it('reads a compaction counter back through the query API, and evaluates the alerting rules', { timeout: 180_000 }, async (t) => {
    const { baseUrl, hostPort } = await liveApp(t)
    const prometheus = await startPrometheus({ targets: [hostPort], job: JOB, ruleFiles: [RULES_FILE] })
    t.after(() => prometheus.stop())

    await until('the compactd target is up', async () => ((await prometheus.query(`up{job="${JOB}"}`))[0]?.value === 1 ? true : undefined))
    const before = await prometheus.query(`persist_compaction_applied_total{job="${JOB}"}`)
    assert.deepEqual(before.map((s) => s.value), [0], 'scraped before any compaction: 0')

    const { shardId, compaction } = await compactOnce(baseUrl)
    assert.equal(compaction.status, 'succeeded')
    assert.match(compaction.result ?? '', /^applied_/)

    const applied = await until('persist_compaction_applied_total reaches 1 in Prometheus', async () => {
      const [s] = await prometheus.query(`persist_compaction_applied_total{job="${JOB}", instance="${hostPort}"}`)
      return s !== undefined && s.value >= 1 ? s : undefined
    })
    assert.equal(applied.value, 1)
    const [perShard] = await prometheus.query(`persist_shard_compaction_applied_total{job="${JOB}", shard="${shardId}"}`)
    assert.equal(perShard?.value, 1)

    const targets = (await prometheus.api('targets')) as { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }
    assert.deepEqual(
      targets.activeTargets.map((a) => [a.scrapeUrl, a.health, a.lastError]),
      [[`${baseUrl}/metrics`, 'up', '']],
    )

    const names = (await alertRules()).map((r) => r.alert).sort()
    const rules = await until('every alerting rule evaluated', async () => {
      const data = (await prometheus.api('rules?type=alert')) as { groups: Array<{ rules: RuleState[] }> }
      const all = data.groups.flatMap((g) => g.rules)
      return all.length === names.length && all.every((r) => r.health !== 'unknown') ? all : undefined
    })
    assert.deepEqual(rules.map((r) => r.name).sort(), names)
    for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError ?? ''}`)
  })

  it('scrapes over HTTPS as monitoring/README.md says, and sees the certificate near its end', { timeout: 180_000 }, async (t) => {
    // Ten days left: inside CompactdTlsCertificateExpiring's 14.
    const { cert, pair } = await tlsPairOf(t, 'compactd', 10)
    const { baseUrl, hostPort } = await liveApp(t, {}, pair)
    const doc = await readmeScrapeConfig('scheme: https')
    assert.equal(doc['scheme'], 'https')
    const tlsConfig = doc['tls_config'] as Record<string, unknown>
    assert.ok(typeof tlsConfig['ca_file'] === 'string', 'the example names the CA file')
    // As written, but this test's CA (the self-signed certificate) and the example's interval kept.
    const { job_name: _job, static_configs: _targets, ...scrape } = doc
    const prometheus = await startPrometheus({ targets: [hostPort], job: JOB, ruleFiles: [RULES_FILE], scrape: { ...scrape, scrape_interval: '1s', scrape_timeout: '1s', tls_config: { ...tlsConfig, ca_file: cert.certPath } } })
    t.after(() => prometheus.stop())

    await until('the compactd target is up over HTTPS', async () => ((await prometheus.query(`up{job="${JOB}"}`))[0]?.value === 1 ? true : undefined))
    const targets = (await prometheus.api('targets')) as { activeTargets: Array<{ health: string; lastError: string; scrapeUrl: string }> }
    assert.deepEqual(targets.activeTargets.map((a) => [a.scrapeUrl, a.health, a.lastError]), [[`${baseUrl}/metrics`, 'up', '']])
    assert.match(baseUrl, /^https:/)
    const [expiry] = await prometheus.query('compactd_tls_certificate_expiry_timestamp_seconds')
    assert.equal(expiry?.metric['subject'], 'CN=compactd')
    assert.equal(expiry?.value, cert.notAfter)

    const rule = await until('CompactdTlsCertificateExpiring is pending', async () => {
      const data = (await prometheus.api('rules?type=alert')) as { groups: Array<{ rules: Array<RuleState & { state: string }> }> }
      const r = data.groups.flatMap((g) => g.rules).find((x) => x.name === 'CompactdTlsCertificateExpiring')
      return r?.state === 'pending' ? r : undefined
    })
    assert.equal(rule.health, 'ok', rule.lastError ?? '')
  })
})
