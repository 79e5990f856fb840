/**
 * Turns the rounds' records into medians, ratios and target verdicts, prints them as a table, and
 * renders bench/RESULTS.md. The hand-written notes between NOTES_BEGIN and NOTES_END of the previous
 * RESULTS.md are carried over unchanged.
 */
import type { CheckResult } from './check.js'
import { CONTENDER_LABELS, CONTENDERS, type Contender } from './contenders.js'
import type { LatencyStats } from './healthz-probe.js'

export interface SizeInfo {
  readonly name: string
  readonly runs: number
  readonly updates: number
  readonly inputBytes: number
  readonly inputParts: number
  readonly expectedRows: number
  readonly collidingUpdates: number
  readonly cancelledPairs: number
  readonly since: number
  readonly generationSeconds: number
  readonly duckdbInputBytes: number | null
}

export interface RoundRecord {
  readonly size: string
  readonly round: number
  readonly contender: Contender
  readonly seconds: number
  readonly maxRssBytes: number
  /** Share of the machine's CPU other processes used while this contender's process lived. */
  readonly othersLoad: number | null
  /** Share stolen by the hypervisor meanwhile. */
  readonly steal: number | null
  readonly check: CheckResult
  readonly healthz: LatencyStats | null
  readonly notes: Readonly<Record<string, number | string>>
}

export interface ContenderSummary {
  readonly contender: Contender
  readonly rounds: number
  readonly seconds: number
  readonly updatesPerSec: number
  readonly mbPerSec: number
  readonly rssBytes: number
  readonly rssMaxBytes: number
  /** Median share of the machine other processes used during this contender's rounds. */
  readonly othersLoad: number | null
  readonly allAgree: boolean
}

export interface SizeSummary {
  readonly size: SizeInfo
  readonly contenders: readonly ContenderSummary[]
  /** compactd's throughput over each other contender's (medians of the same session). */
  readonly ratios: Partial<Record<Contender, number>>
  /** /healthz while compactd ran: the round with the median compaction time. */
  readonly healthz: LatencyStats | null
}

export interface Target {
  readonly name: string
  readonly met: boolean | null
  readonly detail: string
}

export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly ramBytes: number
  readonly node: string
  readonly duckdb: string
  readonly os: string
}

export interface ReportInput {
  readonly date: string
  readonly command: string
  /** The commit measured (and whether src/ had local changes or changed during the run). */
  readonly code: string
  readonly machine: Machine
  readonly targetBytes: number
  readonly memoryBoundBytes: number
  readonly threads: number
  readonly roundsBySize: Readonly<Record<string, number>>
  readonly warmup: string | null
  readonly settleSeconds: number
  readonly sizes: readonly SizeInfo[]
  readonly records: readonly RoundRecord[]
  readonly totalSeconds: number
}

export const NOTES_BEGIN = '<!-- notes:begin (kept across runs by bench/run.ts) -->'
export const NOTES_END = '<!-- notes:end -->'

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export function summarize(size: SizeInfo, records: readonly RoundRecord[]): SizeSummary {
  const contenders: ContenderSummary[] = []
  for (const c of CONTENDERS) {
    const mine = records.filter((r) => r.size === size.name && r.contender === c)
    if (mine.length === 0) continue
    const seconds = median(mine.map((r) => r.seconds))
    contenders.push({
      contender: c,
      rounds: mine.length,
      seconds,
      updatesPerSec: size.updates / seconds,
      mbPerSec: size.inputBytes / 1e6 / seconds,
      rssBytes: median(mine.map((r) => r.maxRssBytes)),
      rssMaxBytes: Math.max(...mine.map((r) => r.maxRssBytes)),
      othersLoad: mine.some((r) => r.othersLoad === null) ? null : median(mine.map((r) => r.othersLoad as number)),
      allAgree: mine.every((r) => r.check.ok),
    })
  }
  const ours = contenders.find((c) => c.contender === 'compactd')
  const ratios: Partial<Record<Contender, number>> = {}
  if (ours !== undefined) for (const c of contenders) if (c.contender !== 'compactd') ratios[c.contender] = ours.updatesPerSec / c.updatesPerSec
  const compactdRounds = records.filter((r) => r.size === size.name && r.contender === 'compactd').sort((a, b) => a.seconds - b.seconds)
  const mid = compactdRounds[(compactdRounds.length - 1) >> 1]
  return { size, contenders, ratios, healthz: mid?.healthz ?? null }
}

/** The issue's targets, judged on whatever sizes this run measured. */
export function judgeTargets(summaries: readonly SizeSummary[]): Target[] {
  const find = (runs: number, updates: number): SizeSummary | undefined =>
    summaries.find((s) => s.size.runs === runs && Math.abs(s.size.updates - updates) / updates < 0.01)
  const big = find(16, 10_000_000)
  const targets: Target[] = []
  const duck = big?.ratios['duckdb-2t']
  targets.push({
    name: 'compactd ≥ 3× DuckDB (2 threads) at 10M updates in 16 runs',
    met: duck === undefined ? null : duck >= 3,
    detail: duck === undefined ? 'not measured in this run' : `${fmtRatio(duck)} DuckDB's throughput`,
  })
  const floor = big?.ratios['floor-codec']
  targets.push({
    name: 'compactd ≥ 20% of the I/O floor (codec) at 10M updates in 16 runs',
    met: floor === undefined ? null : floor >= 0.2,
    detail: floor === undefined ? 'not measured in this run' : `${(100 * floor).toFixed(0)}% of the floor's throughput`,
  })
  for (const runs of [4, 16]) {
    const small = find(runs, 1_000_000)?.contenders.find((c) => c.contender === 'compactd')
    const large = find(runs, 10_000_000)?.contenders.find((c) => c.contender === 'compactd')
    const growth = small !== undefined && large !== undefined ? large.rssBytes / small.rssBytes : undefined
    targets.push({
      name: `compactd's peak RSS flat (within 20%) from 1M to 10M updates, ${runs} runs`,
      met: growth === undefined ? null : growth <= 1.2,
      detail: growth === undefined ? 'not measured in this run' : `${fmtMiB(small!.rssBytes)} → ${fmtMiB(large!.rssBytes)} (${growth >= 1 ? '+' : ''}${(100 * (growth - 1)).toFixed(0)}%)`,
    })
  }
  return targets
}

export const fmtMiB = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`
export const fmtRatio = (x: number): string => `${x.toFixed(2)}×`
const fmtM = (x: number): string => (x / 1e6).toFixed(2)
const fmtMs = (x: number): string => (Number.isNaN(x) ? '–' : x < 10 ? x.toFixed(2) : x.toFixed(1))
const fmtCount = (n: number): string => (n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n))

export function sizeTitle(s: SizeInfo): string {
  return `${fmtCount(s.updates)} updates in ${s.runs} runs`
}

function table(rows: readonly (readonly string[])[]): string {
  const [head, ...body] = rows
  if (head === undefined) return ''
  const line = (r: readonly string[]): string => `| ${r.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...body.map(line)].join('\n')
}

export function sizeTable(s: SizeSummary): string {
  const rows: string[][] = [['contender', 'rounds', 'median s', 'M updates/s', 'MB/s', 'peak RSS (median / max)', 'compactd ÷ this', 'others\' CPU', 'outputs agree']]
  for (const c of s.contenders) {
    const ratio = s.ratios[c.contender]
    rows.push([
      CONTENDER_LABELS[c.contender],
      String(c.rounds),
      c.seconds.toFixed(2),
      fmtM(c.updatesPerSec),
      c.mbPerSec.toFixed(0),
      `${fmtMiB(c.rssBytes)} / ${fmtMiB(c.rssMaxBytes)}`,
      ratio === undefined ? '–' : fmtRatio(ratio),
      c.othersLoad === null ? '?' : `${(100 * c.othersLoad).toFixed(0)}%`,
      c.allAgree ? 'yes' : '**NO**',
    ])
  }
  return table(rows)
}

function healthzLine(h: LatencyStats | null): string {
  if (h === null) return 'not measured'
  return `p50 ${fmtMs(h.p50Ms)} ms, p99 ${fmtMs(h.p99Ms)} ms, max ${fmtMs(h.maxMs)} ms over ${h.count} requests (${h.failures} failed)`
}

/** The console summary of one size. */
export function consoleSummary(s: SizeSummary): string {
  return [
    `\n== ${sizeTitle(s.size)} (${(s.size.inputBytes / 1e6).toFixed(0)} MB in ${s.size.inputParts} parts; output ${s.size.expectedRows} rows) ==`,
    sizeTable(s),
    `/healthz during compactd's compaction: ${healthzLine(s.healthz)}`,
  ].join('\n')
}

export function renderResults(input: ReportInput, summaries: readonly SizeSummary[], targets: readonly Target[], notes: string, e2e: string | null = null): string {
  const m = input.machine
  const verdict = (t: Target): string => (t.met === null ? 'not measured' : t.met ? '**met**' : '**not met**')
  const rounds = [...new Set(Object.values(input.roundsBySize))]
  const out: string[] = []
  out.push('# compactd benchmark results', '')
  out.push(`Generated by \`npm run bench\` (bench/run.ts) on ${input.date}; the whole run took ${(input.totalSeconds / 60).toFixed(1)} min.`, '')
  out.push('```', input.command, '```', '')
  out.push(`Code measured: ${input.code}.`, '')
  out.push('## Machine', '')
  out.push(`- CPU: ${m.cpu}, ${m.cores} cores; RAM ${(m.ramBytes / 2 ** 30).toFixed(1)} GiB; ${m.os}`)
  out.push(`- Node ${m.node}; DuckDB ${m.duckdb} (@duckdb/node-api)`)
  out.push(
    `- compactd config: persist_blob_target_size ${fmtMiB(input.targetBytes)}, persist_compaction_memory_bound_bytes ${fmtMiB(input.memoryBoundBytes)}, ${input.threads} worker threads; everything else DEFAULT_CONFIG_VALUES`,
  )
  out.push(`- Rounds: ${rounds.length === 1 ? rounds[0] : JSON.stringify(input.roundsBySize)}, contenders interleaved within each round, medians reported`, '')

  out.push('## Targets', '')
  for (const t of targets) out.push(`- ${t.name}: ${verdict(t)} (${t.detail})`)
  out.push('')

  if (e2e !== null) out.push(e2e, '')
  out.push('## Compaction in process (Stage D)', '')
  out.push(
    'Throughput is input updates (and input encoded bytes, MB = 10^6 bytes) per second of the timed section; ratios are compactd\'s median throughput over the other contender\'s, from the same session. Peak RSS is each child process\'s high-water RSS (`VmHWM` of /proc/self/status, not `maxRSS`, which on Linux also counts the orchestrator\'s RSS at the fork; it includes Node, tsx, the HTTP app, the worker threads and the warm-up; `rssBeforeMiB` in the per-round notes is the RSS just before the timed section). "Others\' CPU" is the median share of the whole machine that other processes used while the contender\'s process lived (from /proc/stat, minus the child\'s own CPU time): this machine is shared, and the figures of loaded rounds are slower and noisier.',
    '',
  )
  for (const s of summaries) {
    out.push(`### ${sizeTitle(s.size)}`, '')
    out.push(
      `${(s.size.inputBytes / 1e6).toFixed(0)} MB of input in ${s.size.inputParts} parts; ${s.size.collidingUpdates} updates (${((100 * s.size.collidingUpdates) / s.size.updates).toFixed(1)}%) share their (key, val) with another run, ${s.size.cancelledPairs} pairs cancel; since ${s.size.since}; the consolidated output has ${s.size.expectedRows} rows (${((100 * s.size.expectedRows) / s.size.updates).toFixed(1)}% of the input). Generation took ${s.size.generationSeconds.toFixed(1)} s (untimed).`,
      '',
    )
    out.push(sizeTable(s), '')
    out.push(`/healthz while compactd compacted (round with the median time): ${healthzLine(s.healthz)}.`, '')
  }

  out.push('## What is timed', '')
  out.push(
    '- **Data**: generated once per size before any contender runs (untimed, bench/dataset.ts): binary keys of 16 bytes (an 8-byte big-endian counter with random gaps, then 8 random bytes), binary values of 32 random bytes, u64 times, i64 diffs 1..3. Each (key, val) goes to one random run; enough also go to a second run that 30% of all updates collide across runs. Run r is a batch with description [1000·r, 1000·(r+1)) and times uniform in it; the since is ⌈3K/4⌉·1000, so three quarters of the runs advance to it; half of the colliding pairs that land on the same time cancel. Parts are cut at ≤ the target size and written through a `FileBlob` with buffered writes (fsynced) under `bench/.work/` (page cache warm: every contender reads files the generator just wrote).',
    `- **compactd**: one child process builds the real app (settings → createServices → buildApp, mem:// stores, listening on 127.0.0.1:0), a \`WorkerPool(${input.threads})\` and \`createExecutor\` over a \`FileBlob\` with the app's metrics; ${input.warmup === null ? 'no warm-up' : `first compacts a small warm-up dataset (${input.warmup}) untimed, as a long-lived server would be warm`}; then times \`execute()\` over the dataset (every part fetched, merged by the pool's workers, encoded and written with O_DIRECT and fsync, as \`FileBlob\` does by default). GET /healthz is probed on a keep-alive connection throughout the timed section.`,
    '- **I/O floor (codec)**: every input part `blob.get` → `decodePart` → `encodePart` → `blob.set` to a new key through the same `FileBlob` (O_DIRECT, fsync), unmerged; two parts in flight so I/O and CPU overlap. **I/O floor (raw)**: the same without the codec. Same warm-up as compactd.',
    '- **DuckDB**: the rows were loaded (untimed, by the generator, through the appender) into a native table in a DuckDB database file, because DuckDB cannot read our Arrow IPC parts without its `arrow` extension (no network here to fetch it). Timed: `CREATE TABLE o.out AS SELECT key, val, greatest(time, since) AS time, sum(diff) AS diff FROM input GROUP BY key, val, greatest(time, since) HAVING sum(diff) <> 0 ORDER BY key, val, time` into a freshly attached database file, then `CHECKPOINT`. So DuckDB reads its own columnar format (from the page cache) rather than our Arrow files, and writes its own. DuckDB settings other than `threads` are its defaults (memory_limit 80% of RAM).',
    `- **Order and quiet**: per size, rounds run the contenders in the order of the table, each in a fresh process; before each, the orchestrator waits up to ${input.settleSeconds} s for other processes to use under 25% of the machine (a courtesy on a shared machine; the load is measured and reported either way).`,
    '- **Not timed anywhere**: process start (Node, tsx, module loading), opening stores and databases, warm-up, the agreement checks.',
    '',
  )
  out.push('## Agreement checks', '')
  out.push(
    'Every output of every round is checked after its process exits (bench/check.ts), in bounded memory. The reference is the generator\'s own expectation: the consolidated row count and a fingerprint of the consolidated input, `(Σ diff·h₁(row), Σ diff·h₂(row)) mod 2^32` with two seeded 32-bit row hashes of (key, val, time) plus the i64 sum of the diffs, which is linear in the diffs and therefore unchanged by consolidation and independent of row order and of how rows are split into runs. compactd\'s output (one run per chunk) must match the fingerprint, with every run strictly sorted by (key, val, time), no zero diff and no time below the since, and exactly the expected rows when it is one run. The floor\'s copies must equal their inputs byte for byte. DuckDB\'s first output is streamed back and checked the same way (exactly the expected rows, sorted); its later outputs must equal that one (`EXCEPT ALL` both ways, in DuckDB).',
    '',
  )
  const failed = input.records.filter((r) => !r.check.ok)
  out.push(failed.length === 0 ? `All ${input.records.length} outputs agree.` : `**${failed.length} of ${input.records.length} outputs disagree**: ${failed.map((r) => `${r.size} round ${r.round} ${r.contender}: ${r.check.detail}`).join('; ')}`, '')

  out.push('## Per-round figures', '')
  const rows: string[][] = [['size', 'round', 'contender', 's', 'peak RSS', 'others\' CPU / steal', '/healthz p50 / p99 ms', 'notes']]
  for (const r of input.records) {
    rows.push([
      r.size,
      String(r.round),
      r.contender,
      r.seconds.toFixed(2),
      fmtMiB(r.maxRssBytes),
      r.othersLoad === null ? '?' : `${(100 * r.othersLoad).toFixed(0)}% / ${(100 * (r.steal ?? 0)).toFixed(0)}%`,
      r.healthz === null ? '' : `${fmtMs(r.healthz.p50Ms)} / ${fmtMs(r.healthz.p99Ms)} (${r.healthz.count})`,
      Object.entries(r.notes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ])
  }
  out.push(table(rows), '')
  out.push(NOTES_BEGIN, notes.trim(), NOTES_END, '')
  out.push('## How to rerun', '')
  out.push(
    '```',
    'npm run bench                      # K ∈ {4, 16} × N ∈ {1M, 10M}, 3 rounds, writes bench/RESULTS.md',
    'npm run bench -- --quick           # N = 200k, 1 round, prints only',
    'npm run bench -- --sizes 1M --runs 16 --rounds 5 --contenders compactd,duckdb-2t   # partial runs print only (add --write to record)',
    'npm run bench -- --sizes 10M --runs 16 --rounds 1 --contenders compactd --cpu-prof   # profiles, prints only',
    '```',
    '',
    'Scratch data lives in `bench/.work/` (gitignored) and is deleted as the run goes; about 2.5 GB of free disk is needed at 10M updates.',
    '',
  )
  return out.join('\n')
}

/** The notes section of a previous RESULTS.md, or a placeholder. */
export function previousNotes(text: string | null): string {
  if (text !== null) {
    const a = text.indexOf(NOTES_BEGIN)
    const b = text.indexOf(NOTES_END)
    if (a >= 0 && b > a) return text.slice(a + NOTES_BEGIN.length, b)
  }
  return '## Where the time goes\n\n(not profiled yet: run with `--cpu-prof` and summarize here)'
}
