/**
 * monitoring/prometheus: promtool accepts the rules and their unit tests pass; every alert the
 * operators asked for exists, has a unit test that fires it and one that does not, a severity,
 * a summary, a description and a runbook section; every metric a rule names is exported.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { compactOnce } from '../support/http-traffic.js'
import { liveApp } from '../support/live-app.js'
import { alertRules, RULES_DIR, RULES_FILE, RULES_TEST_FILE, ruleTests, runbookAnchors } from '../support/monitoring-files.js'
import { exposedFamilies, familyOf, metricNames } from '../support/promql.js'
import { promtool } from '../support/promtool.js'

/** The alerts issue 14 asks for, by what they watch. */
const REQUIRED = {
  'no successful compaction for a shard with merge work': 'CompactdShardNotCompacting',
  'failure ratio': 'CompactdCompactionFailureRatio',
  'queue saturated': 'CompactdQueueSaturated',
  'kill switch left off': 'CompactdKillSwitchLeftOff',
  'store errors': 'CompactdStoreErrors',
  'backlog growing': 'CompactdBacklogGrowing',
  'jobs rescued': 'CompactdJobsRescued',
} as const

describe('alerting rules', () => {
  it('pass promtool check rules', async () => {
    const r = await promtool(['check', 'rules', RULES_FILE])
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`)
    assert.match(r.stdout, /SUCCESS: \d+ rules found/)
  })

  it('pass their promtool unit tests', async () => {
    const r = await promtool(['test', 'rules', RULES_TEST_FILE], { cwd: RULES_DIR })
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`)
    assert.match(r.stdout, /SUCCESS/)
  })

  it('cover every alert asked for, each unit-tested both firing and quiet', async () => {
    const rules = await alertRules()
    const names = rules.map((r) => r.alert)
    for (const [what, alert] of Object.entries(REQUIRED)) assert.ok(names.includes(alert), `no alert for ${what} (${alert})`)
    const tests = await ruleTests()
    for (const alert of names) {
      const cases = tests.filter((c) => c.alertname === alert)
      assert.ok(cases.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} has no unit test where it fires`)
      assert.ok(cases.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} has no unit test where it stays quiet`)
    }
  })

  it('carry a severity, a summary, a description and a runbook section each', async () => {
    const anchors = await runbookAnchors()
    for (const rule of await alertRules()) {
      assert.match(rule.labels?.['severity'] ?? '', /^(critical|warning|info)$/, `${rule.alert}: severity`)
      assert.ok((rule.annotations?.['summary'] ?? '').length > 10, `${rule.alert}: summary`)
      assert.ok((rule.annotations?.['description'] ?? '').length > 20, `${rule.alert}: description`)
      const url = rule.annotations?.['runbook_url'] ?? ''
      assert.equal(url, `docs/runbook.md#${rule.alert.toLowerCase()}`, `${rule.alert}: runbook_url`)
      assert.ok(anchors.has(rule.alert.toLowerCase()), `docs/runbook.md has no section ${rule.alert}`)
    }
  })

  it('name only metrics a live compactd exports', async (t) => {
    const { baseUrl } = await liveApp(t)
    await compactOnce(baseUrl)
    const families = exposedFamilies(await (await fetch(`${baseUrl}/metrics`)).text())
    for (const rule of await alertRules()) {
      const names = metricNames(rule.expr)
      assert.ok(names.length > 0, `${rule.alert} names no metric`)
      for (const name of names) assert.ok(familyOf(name, families) !== null, `${rule.alert} uses ${name}, which /metrics does not export`)
    }
  })
})
