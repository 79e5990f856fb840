/**
 * Just enough PromQL and exposition-format reading to check that dashboards and rules name only
 * metrics compactd exports: the metric names an expression selects, and the families a /metrics
 * text declares.
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2'])

/**
 * The metric names `expr` selects: identifiers that are not functions, keywords, label names or
 * durations. Grafana variables (`$__rate_interval`, `${shard}`) are read as durations or values;
 * Grafana's `label_values(metric, label)` counts its metric.
 */
export function metricNames(expr: string): string[] {
  const names = new Set<string>()
  let s = expr
  for (const m of s.matchAll(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{[^}]*\})?\s*,/g)) names.add(m[1] ?? '')
  s = s.replace(/label_values\([^)]*\)/g, ' ')
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings
  s = s.replace(/\$\{[^}]*\}|\$[a-zA-Z_][a-zA-Z0-9_]*/g, ' 1 ') // Grafana variables
  s = s.replace(/\{[^}]*\}/g, ' ') // label matchers
  s = s.replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
  s = s.replace(/#[^\n]*/g, ' ') // comments
  for (const m of s.matchAll(/(?<![a-zA-Z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name = '', call] = m
    if (call !== undefined || KEYWORDS.has(name.toLowerCase())) continue
    if (/^\d/.test(name)) continue
    names.add(name)
  }
  return [...names].sort()
}

/** Family name → type, from the `# TYPE` lines of a Prometheus text exposition. */
export function exposedFamilies(text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1] ?? '', m[2] ?? '')
  return out
}

/** The family a selected name belongs to (a histogram's `_bucket`/`_sum`/`_count` → the histogram), or null. */
export function familyOf(name: string, families: ReadonlyMap<string, string>): string | null {
  if (families.has(name)) return name
  const m = /^(.*)_(bucket|sum|count)$/.exec(name)
  if (m !== null && ['histogram', 'summary'].includes(families.get(m[1] ?? '') ?? '')) return m[1] ?? null
  return null
}
