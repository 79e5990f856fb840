/**
 * The end-to-end scenario's figures (e2e.ts): the issue's table with its targets judged, the
 * /healthz latencies and the server's peak RSS per phase, as markdown for RESULTS.md and for the
 * console.
 */
import { HTTP_FLOOR_READ_PHASE, HTTP_FLOOR_WRITE_PHASE, type CompactionRun, type E2eResult } from './e2e.js'
import type { Timed } from './e2e-load.js'
import { fmtMiB, median, type Target } from './report.js'

const M = (x: number): string => (x / 1e6).toFixed(2)
const ms = (x: number): string => (Number.isNaN(x) ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1))

/** Median rows per second over the requests (each request's rows over its time). */
function rate(ts: readonly Timed[]): number {
  return median(ts.map((t) => t.rows / t.seconds))
}

function spread(ts: readonly Timed[]): string {
  const r = ts.map((t) => t.rows / t.seconds / 1e6)
  return r.length <= 1 ? '' : ` (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)} over ${r.length} requests)`
}

const WRITE_AND_READ_PHASES = ['writes: Arrow, sorted', 'writes: Arrow, random order', 'writes: JSON', 'snapshot: Arrow', 'snapshot: Arrow, one run', 'snapshot: JSON', 'snapshot: JSON of binary rows']

export function judgeE2eTargets(r: E2eResult): Target[] {
  const duck = median(r.duck.seconds)
  const t: Target[] = []
  const at = (name: string, value: number, min: number, detail: string): void => void t.push({ name, met: value >= min, detail })
  const floorWrite = rate(r.httpFloor.writes)
  const floorRead = rate(r.httpFloor.reads)
  const ofFloor = (x: number, floor: number): string => `; the HTTP floor ${M(floor)} M/s, so ${((100 * x) / floor).toFixed(0)}% of it${floor < 5e6 ? ', and the floor itself is below 5' : ''}`
  at('Arrow write, sorted rows ≥ 5 M updates/s', rate(r.writesSorted), 5e6, `${M(rate(r.writesSorted))} M/s${ofFloor(rate(r.writesSorted), floorWrite)}`)
  at('Arrow write, rows in random order ≥ 1.5 M updates/s', rate(r.writesRandom), 1.5e6, `${M(rate(r.writesRandom))} M/s`)
  at('JSON write ≥ 1 M updates/s', rate(r.writesJson), 1e6, `${M(rate(r.writesJson))} M/s`)
  at('Arrow snapshot ≥ 5 M updates/s', rate(r.snapshotArrow), 5e6, `${M(rate(r.snapshotArrow))} M/s${ofFloor(rate(r.snapshotArrow), floorRead)}`)
  at('JSON snapshot ≥ 1 M updates/s', rate(r.snapshotJson), 1e6, `${M(rate(r.snapshotJson))} M/s`)
  const phases = WRITE_AND_READ_PHASES.map((p) => r.healthz[p]).filter((h) => h !== undefined)
  const p99 = Math.max(...phases.map((h) => h.p99Ms))
  const max = Math.max(...phases.map((h) => h.maxMs))
  const bare = [HTTP_FLOOR_WRITE_PHASE, HTTP_FLOOR_READ_PHASE].map((p) => r.healthz[p]).filter((h) => h !== undefined)
  const bareDetail = bare.length === 0 ? '' : `; the bare HTTP server under the same load: worst p99 ${ms(Math.max(...bare.map((h) => h.p99Ms)))} ms, max ${ms(Math.max(...bare.map((h) => h.maxMs)))} ms`
  t.push({ name: '/healthz while writes and snapshots run: p99 ≤ 10 ms, max ≤ 50 ms', met: p99 <= 10 && max <= 50, detail: `worst phase p99 ${ms(p99)} ms, max ${ms(max)} ms${bareDetail}` })
  const one = r.oneRow
  const rps = one.requests / one.seconds
  t.push({
    name: `snapshot of a one-row shard, ${r.options.clients} concurrent clients: ≥ 5,000 req/s, p99 ≤ 20 ms`,
    met: rps >= 5000 && one.latency.p99Ms <= 20 && one.failures === 0,
    detail: `${rps.toFixed(0)} req/s, p50 ${ms(one.latency.p50Ms)} ms, p99 ${ms(one.latency.p99Ms)} ms, ${one.failures} failed`,
  })
  const ratio = (c: CompactionRun): number => duck / c.timed.seconds
  at('/v1/compact, first after restart ≥ 4× DuckDB', ratio(r.compactFirst), 4, `${r.compactFirst.timed.seconds.toFixed(2)} s, ${ratio(r.compactFirst).toFixed(2)}× DuckDB (${duck.toFixed(2)} s)`)
  at('/v1/compact, warm ≥ 6× DuckDB', ratio(r.compactWarm), 6, `${r.compactWarm.timed.seconds.toFixed(2)} s, ${ratio(r.compactWarm).toFixed(2)}× DuckDB`)
  t.push({
    name: `compaction output at a ${fmtMiB(r.options.boundBytes)} bound: one run, fully consolidated`,
    met: r.compactWarm.runs === 1 && r.compactWarm.rows === r.expectedRows && r.compactWarm.check.ok,
    detail: `${r.compactWarm.runs} runs, ${r.compactWarm.rows} rows (${r.expectedRows} consolidated; ${(100 * (r.compactWarm.rows / r.expectedRows - 1)).toFixed(0)}% more)`,
  })
  return t
}

export function renderE2e(r: E2eResult, targets: readonly Target[]): string {
  const o = r.options
  const duck = median(r.duck.seconds)
  const out: string[] = []
  out.push('## End to end, over HTTP', '')
  out.push(
    `${r.updates} updates in ${o.runs} runs (${r.rowsPerRun[0] ?? 0} in the first), 16-byte binary keys, 32-byte binary values; ${r.expectedRows} rows after consolidation; ${(r.inputBytes / 1e6).toFixed(0)} MB of parts as written. ` +
      `A compactd child process (\`tsx src/main.ts\`, default file stores on a temp data dir, ${o.workers} workers, \`--log-level warn\`), persist_blob_target_size ${fmtMiB(o.targetBytes)}, persist_compaction_memory_bound_bytes ${fmtMiB(o.boundBytes)}; load from a separate process on loopback; /healthz from a third, every ${o.healthzIntervalMs} ms throughout; compactd starts no compaction on its own (\`compaction_maintenance_enabled\` false); requests run as usual. Generation took ${r.generationSeconds.toFixed(1)} s (untimed).`,
    '',
  )
  out.push('| path | measured | target | verdict |', '| --- | --- | --- | --- |')
  const verdict = (name: string): string => {
    const t = targets.find((x) => x.name.startsWith(name))
    return t === undefined ? '–' : t.met === null ? 'not measured' : t.met ? '**met**' : '**not met**'
  }
  out.push(`| Arrow write, sorted rows (${r.writesSorted[0]?.rows ?? 0} updates, ${((r.writesSorted[0]?.requestBytes ?? 0) / 1e6).toFixed(0)} MB per request) | ${M(rate(r.writesSorted))} M updates/s${spread(r.writesSorted)} | ≥ 5 M/s | ${verdict('Arrow write, sorted')} |`)
  out.push(`| Arrow write, rows in random order | ${M(rate(r.writesRandom))} M/s${spread(r.writesRandom)} | ≥ 1.5 M/s | ${verdict('Arrow write, rows in random')} |`)
  out.push(`| JSON write (${o.jsonRows} rows, utf8 keys, int64 values) | ${M(rate(r.writesJson))} M/s${spread(r.writesJson)} | ≥ 1 M/s | ${verdict('JSON write')} |`)
  out.push(`| Arrow snapshot (${r.snapshotArrow[0]?.rows ?? 0} updates written in random order: the write sorts them in buffers of the target size, a run each) | ${M(rate(r.snapshotArrow))} M/s${spread(r.snapshotArrow)} | ≥ 5 M/s | ${verdict('Arrow snapshot')} |`)
  out.push(`| Arrow snapshot of one run (${r.snapshotArrowOneRun[0]?.rows ?? 0} updates written sorted: one run, read as it is) | ${M(rate(r.snapshotArrowOneRun))} M/s${spread(r.snapshotArrowOneRun)} | reference | – |`)
  out.push(`| JSON snapshot (${r.snapshotJson[0]?.rows ?? 0} utf8/int64 rows) | ${M(rate(r.snapshotJson))} M/s${spread(r.snapshotJson)} | ≥ 1 M/s | ${verdict('JSON snapshot')} |`)
  out.push(`| HTTP floor: the sorted Arrow bodies stored durably by a bare \`node:http\` server (${r.httpFloor.direct ? 'O_DIRECT' : 'page cache'} + fsync), nothing parsed | ${M(rate(r.httpFloor.writes))} M/s${spread(r.httpFloor.writes)} | reference | – |`)
  out.push(`| HTTP floor: one of those bodies read back and sent | ${M(rate(r.httpFloor.reads))} M/s${spread(r.httpFloor.reads)} | reference | – |`)
  out.push(`| JSON snapshot of the binary rows (base64) | ${M(rate(r.snapshotJsonBinary))} M/s${spread(r.snapshotJsonBinary)} | – | – |`)
  const hz = targets.find((x) => x.name.startsWith('/healthz'))
  out.push(`| \`/healthz\` while the above run | ${hz?.detail ?? '–'} | p99 ≤ 10 ms, max ≤ 50 ms | ${verdict('/healthz')} |`)
  const one = r.oneRow
  out.push(`| snapshot of a one-row shard, ${o.clients} concurrent clients (${one.requests} requests) | ${(one.requests / one.seconds).toFixed(0)} req/s, p50 ${ms(one.latency.p50Ms)} ms, p99 ${ms(one.latency.p99Ms)} ms | ≥ 5,000 req/s, p99 ≤ 20 ms | ${verdict('snapshot of a one-row')} |`)
  out.push(`| \`/v1/compact\` of ${o.runs} written runs, first after restart | ${r.compactFirst.timed.seconds.toFixed(2)} s (${(duck / r.compactFirst.timed.seconds).toFixed(2)}× DuckDB) | ≥ 4× DuckDB | ${verdict('/v1/compact, first')} |`)
  out.push(`| the same, again on the warm server | ${r.compactWarm.timed.seconds.toFixed(2)} s (${(duck / r.compactWarm.timed.seconds).toFixed(2)}× DuckDB) | ≥ 6× DuckDB | ${verdict('/v1/compact, warm')} |`)
  out.push(`| that compaction's output at a ${fmtMiB(o.boundBytes)} bound | ${r.compactWarm.runs} runs, ${r.compactWarm.rows} rows | one run, ${r.expectedRows} rows | ${verdict('compaction output')} |`)
  out.push('')
  out.push(
    `References in the same session: DuckDB ${r.duck.version}, ${o.duckThreads} threads, from ${(r.duck.parquetBytes / 1e6).toFixed(0)} MB of Parquet it wrote itself (one file per run), into a database file: ${r.duck.seconds.map((s) => s.toFixed(2)).join(', ')} s (median ${duck.toFixed(2)} s, ${M(r.updates / duck)} M updates/s); ` +
      `the codec floor (every written part read, \`decodePart\`, \`encodePart\`, written back, ${o.workers} lanes): ${r.floor.seconds.toFixed(2)} s (${M(r.updates / r.floor.seconds)} M updates/s), so the warm compaction runs at ${((100 * r.floor.seconds) / r.compactWarm.timed.seconds).toFixed(0)}% of the floor's throughput; ` +
      `the raw I/O floor (every written part read and written back durably, bytes unchanged, ${o.workers} lanes): ${r.rawFloor.seconds.toFixed(2)} s, against ${(duck / 6).toFixed(2)} s for 6× DuckDB and ${(duck / 4).toFixed(2)} s for 4×. ` +
      `Compaction outputs checked against the generator's fingerprint: first ${r.compactFirst.check.ok ? 'agrees' : `**disagrees** (${r.compactFirst.check.detail})`}, warm ${r.compactWarm.check.ok ? 'agrees' : `**disagrees** (${r.compactWarm.check.detail})`}.`,
    '',
  )
  out.push('/healthz latency (ms), the server\'s peak RSS and CPU, and how busy the whole machine was (everyone\'s processes: the load generator, the prober, and whatever else runs there), per phase:', '')
  out.push('| phase | seconds | /healthz requests | p50 | p99 | max | failed | server peak RSS | server CPU s | machine busy |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const [name, h] of Object.entries(r.healthz)) {
    if (name === 'idle' || name === 'done') continue
    const rss = r.serverPeakRss[name]
    const load = r.phaseLoad[name]
    out.push(
      `| ${name} | ${load === undefined ? '–' : load.seconds.toFixed(1)} | ${h.count} | ${ms(h.p50Ms)} | ${ms(h.p99Ms)} | ${ms(h.maxMs)} | ${h.failures} | ${rss === null || rss === undefined ? '–' : fmtMiB(rss)} | ${load?.serverCpuSeconds == null ? '–' : load.serverCpuSeconds.toFixed(2)} | ${load?.machineBusy == null ? '–' : `${(100 * load.machineBusy).toFixed(0)}%`} |`,
    )
  }
  out.push('', 'The restart phase counts the probes that found the server down; it is not judged.', '')
  return out.join('\n')
}

/** The console lines of the scenario. */
export function consoleE2e(r: E2eResult, targets: readonly Target[]): string {
  return [renderE2e(r, targets), 'Targets (end to end):', ...targets.map((t) => `  ${t.met === null ? '–' : t.met ? 'MET    ' : 'NOT MET'}  ${t.name}: ${t.detail}`)].join('\n')
}
