/**
 * The monitoring package as data: the alerting rules (YAML), their promtool unit tests, the
 * Grafana dashboard (JSON) and the runbook's section anchors, read from the repository.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url))

export const RULES_DIR = root('monitoring/prometheus')
export const RULES_FILE = root('monitoring/prometheus/compactd-alerts.yml')
export const RULES_TEST_FILE = root('monitoring/prometheus/compactd-alerts.test.yml')
export const DASHBOARD_FILE = root('monitoring/grafana/compactd-dashboard.json')
export const RUNBOOK_FILE = root('docs/runbook.md')
export const README_FILE = root('monitoring/README.md')

/** The job of the README's scrape example that has `marker` in it (`scheme: https`), as Prometheus reads it. */
export async function readmeScrapeConfig(marker: string): Promise<Record<string, unknown>> {
  const blocks = [...(await readFile(README_FILE, 'utf8')).matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '')
  const block = blocks.find((b) => b.includes(marker))
  if (block === undefined) throw new Error(`monitoring/README.md has no yaml block with ${marker}`)
  const job = (parse(block) as { scrape_configs?: Array<Record<string, unknown>> }).scrape_configs?.[0]
  if (job === undefined) throw new Error(`monitoring/README.md: the block with ${marker} has no scrape_configs`)
  return job
}

export interface AlertRule {
  readonly alert: string
  readonly expr: string
  readonly for?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly annotations?: Readonly<Record<string, string>>
}

export async function alertRules(): Promise<AlertRule[]> {
  const doc = parse(await readFile(RULES_FILE, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> }
  return doc.groups.flatMap((g) => g.rules)
}

export interface RuleTestCase {
  readonly alertname: string
  readonly eval_time: string
  readonly exp_alerts?: ReadonlyArray<{ exp_labels?: Record<string, string> }>
}

/** Every alert_rule_test of the promtool unit test file. */
export async function ruleTests(): Promise<RuleTestCase[]> {
  const doc = parse(await readFile(RULES_TEST_FILE, 'utf8')) as { tests: Array<{ alert_rule_test?: RuleTestCase[] }> }
  return doc.tests.flatMap((t) => t.alert_rule_test ?? [])
}

export interface Target {
  readonly expr: string
  readonly refId: string
  readonly datasource?: { readonly type?: string; readonly uid?: string }
}

export interface Panel {
  readonly id: number
  readonly type: string
  readonly title: string
  readonly description?: string
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number }
  readonly datasource?: { readonly type?: string; readonly uid?: string }
  readonly targets?: readonly Target[]
  readonly panels?: readonly Panel[]
}

export interface Dashboard {
  readonly __inputs: ReadonlyArray<{ readonly name: string; readonly type: string; readonly pluginId: string }>
  readonly schemaVersion: number
  readonly uid: string
  readonly title: string
  readonly id: null
  readonly panels: readonly Panel[]
  readonly templating: { readonly list: ReadonlyArray<{ readonly name: string; readonly type: string; readonly definition?: string; readonly query?: { readonly query?: string }; readonly datasource?: { readonly uid?: string } }> }
}

export async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD_FILE, 'utf8')) as Dashboard
}

/** Every panel, those inside collapsed rows included. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])])
}

/** Every PromQL expression of the dashboard: panel targets and variable queries. */
export function dashboardExprs(d: Dashboard): string[] {
  return [
    ...allPanels(d).flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...d.templating.list.flatMap((v) => (v.type === 'query' ? [v.query?.query ?? v.definition ?? ''] : [])),
  ]
}

/** GitHub's anchors of the markdown headings of the runbook (`## CompactdQueueSaturated` → `compactdqueuesaturated`). */
export async function runbookAnchors(): Promise<Set<string>> {
  const text = await readFile(RUNBOOK_FILE, 'utf8')
  return new Set(
    [...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) =>
      (m[1] ?? '')
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    ),
  )
}
