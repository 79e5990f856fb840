/**
 * `npm run bench`, in two parts, in one session:
 *
 * - The compaction matrix: compactd's compaction (Stage D, in process) against the I/O floor and
 *   DuckDB on the same data. For each size (K runs × N updates): generate the data once
 *   (untimed), then for each round run every contender in its own child process, in the same
 *   order (interleaved rounds), check its output, delete it.
 * - The end-to-end scenario (e2e.ts): what a user sees over HTTP on the default file stores —
 *   writes, a restart, /v1/compact first and warm, snapshots, a one-row shard under concurrent
 *   reads — with /healthz probed throughout, DuckDB from Parquet and the codec floor beside it.
 *
 * Prints the figures and writes bench/RESULTS.md (the full default run only, unless `--write`).
 *
 *   npm run bench -- [--quick] [--only matrix|e2e] [--sizes 1M,10M] [--runs 4,16] [--rounds 3] [--large-rounds N]
 *     [--contenders compactd,floor-codec,floor-raw,duckdb-2t,duckdb-1t] [--threads 2]
 *     [--target 32MiB] [--bound 256MiB] [--healthz-interval-ms 5] [--no-warmup] [--seed 42] [--settle 10]
 *     [--e2e-updates 10M] [--e2e-runs 16] [--e2e-clients 50] [--e2e-requests 20000]
 *     [--cpu-prof] [--write | --no-write] [--keep-data]
 */
import { execFile, fork } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpus, release, totalmem, availableParallelism, platform } from 'node:os'
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { withHugePages } from '../src/engine/huge-pages.js'
import { FileBlob } from '../src/location/file-blob.js'
import { checkBatch, checkCopies, checkDuckDbOutput, compareDuckDbOutputs, type CheckResult } from './check.js'
import { CONTENDERS, type ChildJob, type ChildMessage, type ChildResult, type Contender } from './contenders.js'
import { formatProfile, summarizeProfiles } from './cpu-profile.js'
import { generateDataset, saveManifest, type DatasetManifest } from './dataset.js'
import { runE2e, type E2eResult } from './e2e.js'
import { consoleE2e, judgeE2eTargets, renderE2e } from './e2e-report.js'
import { consoleSummary, judgeTargets, previousNotes, renderResults, summarize, type Machine, type RoundRecord, type SizeInfo } from './report.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '..')
const WORK = join(HERE, '.work')
const RESULTS = join(HERE, 'RESULTS.md')
const MIB = 2 ** 20

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    runs: { type: 'string', default: '4,16' },
    rounds: { type: 'string' },
    'large-rounds': { type: 'string' },
    contenders: { type: 'string', default: CONTENDERS.join(',') },
    threads: { type: 'string', default: '2' },
    target: { type: 'string', default: '32MiB' },
    bound: { type: 'string', default: '256MiB' },
    'healthz-interval-ms': { type: 'string', default: '5' },
    'no-warmup': { type: 'boolean', default: false },
    settle: { type: 'string', default: '10' },
    seed: { type: 'string', default: '42' },
    'cpu-prof': { type: 'boolean', default: false },
    write: { type: 'boolean' },
    'no-write': { type: 'boolean', default: false },
    'keep-data': { type: 'boolean', default: false },
    only: { type: 'string' },
    'e2e-updates': { type: 'string' },
    'e2e-runs': { type: 'string' },
    'e2e-clients': { type: 'string', default: '50' },
    'e2e-requests': { type: 'string' },
  },
  strict: true,
})

/** `200k`, `1M`, `10M`, `1000000`. */
function count(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s.trim())
  if (m === null) throw new Error(`not a count: ${s}`)
  const n = Number(m[1]) * ({ k: 1e3, m: 1e6 }[(m[2] ?? '').toLowerCase()] ?? 1)
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`not a positive count: ${s}`)
  return n
}

/** `32MiB`, `256MiB`, `1GiB`, bytes. */
function bytes(s: string): number {
  const m = /^(\d+)\s*(B|KiB|MiB|GiB)?$/.exec(s.trim())
  if (m === null) throw new Error(`not a byte size: ${s}`)
  return Number(m[1]) * { B: 1, KiB: 1024, MiB: MIB, GiB: 1024 * MIB }[(m[2] ?? 'B') as 'B']
}

const quick = args.quick
const updatesList = (args.sizes ?? (quick ? '200k' : '1M,10M')).split(',').map(count)
const runsList = args.runs.split(',').map(count)
const rounds = count(args.rounds ?? (quick ? '1' : '3'))
const largeRounds = args['large-rounds'] === undefined ? rounds : count(args['large-rounds'])
const contenders = args.contenders.split(',').map((c) => {
  if (!(CONTENDERS as readonly string[]).includes(c)) throw new Error(`unknown contender ${c}; one of ${CONTENDERS.join(', ')}`)
  return c as Contender
})
const threads = count(args.threads)
const targetBytes = bytes(args.target)
const memoryBoundBytes = bytes(args.bound)
const healthzIntervalMs = Number(args['healthz-interval-ms'])
const seed = count(args.seed)
const settleSeconds = Number(args.settle)
const cpuProf = args['cpu-prof']
if (args.only !== undefined && args.only !== 'matrix' && args.only !== 'e2e') throw new Error('--only takes matrix or e2e')
const doMatrix = args.only !== 'e2e'
const doE2e = args.only !== 'matrix'
/** Only the full default run rewrites RESULTS.md unless asked (a partial run must not replace it). */
const fullMatrix =
  args.sizes === undefined && args.runs === '4,16' && contenders.length === CONTENDERS.length && !quick && !cpuProf && args.only === undefined && args['e2e-updates'] === undefined && args['e2e-runs'] === undefined
const write = args.write ?? (fullMatrix && !args['no-write'])
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`

async function machine(): Promise<Machine> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '')
  const cpu = /^model name\s*:\s*(.+)$/m.exec(info)?.[1] ?? cpus()[0]?.model ?? 'unknown'
  const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules/@duckdb/node-api/package.json'), 'utf8')) as { version: string }
  const { DuckDBInstance } = await import('@duckdb/node-api')
  const db = await DuckDBInstance.create(':memory:')
  const conn = await db.connect()
  const version = String((await conn.runAndReadAll('SELECT version()')).getRows()[0]?.[0] ?? '?')
  conn.closeSync()
  db.closeSync()
  return { cpu, cores: availableParallelism(), ramBytes: totalmem(), node: process.version, duckdb: `${version} (node-api ${pkg.version})`, os: `${platform()} ${release()}` }
}

/**
 * The code under test: HEAD's short hash, plus "+ local changes" when src/ or routes/ differ from
 * it, and a digest of those sources to notice them changing during the run (others share the tree).
 */
async function codeVersion(): Promise<{ label: string; digest: string }> {
  const git = (...a: string[]): Promise<string> =>
    new Promise((res) => execFile('git', a, { cwd: ROOT, maxBuffer: 64 * MIB }, (err, out) => res(err === null ? out.trim() : '')))
  const head = await git('rev-parse', '--short', 'HEAD')
  const dirty = await git('status', '--porcelain', '--', 'src', 'routes')
  const diff = await git('diff', 'HEAD', '--', 'src', 'routes')
  const digest = createHash('sha256').update(head).update(dirty).update(diff).digest('hex').slice(0, 12)
  return { label: head === '' ? 'unknown' : `${head}${dirty === '' ? '' : ' + local changes to src/'}`, digest }
}

/** Machine-wide CPU counters from /proc/stat (jiffies): busy (steal excluded), steal, total. */
async function cpuCounters(): Promise<{ busy: number; steal: number; total: number } | null> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith('cpu '))
  if (line === undefined) return null
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number)
  return { busy: user + nice + system + irq + softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal }
}

/** Share of the machine's CPU in use over the next `ms` (0..1; steal excluded), or null without /proc. */
async function busyShare(ms: number): Promise<number | null> {
  const a = await cpuCounters()
  await new Promise((r) => setTimeout(r, ms))
  const b = await cpuCounters()
  return a === null || b === null || b.total <= a.total ? null : (b.busy - a.busy) / (b.total - a.total)
}

/**
 * Waits (at most `maxSeconds`) until other processes use under a quarter of the machine, so that a
 * contender starts on a quiet machine when there is one. NB: a bounded courtesy for shared
 * machines, not a guarantee: the load during each run is measured and reported anyway.
 */
async function settle(maxSeconds: number): Promise<void> {
  for (let waited = 0; waited < maxSeconds; waited++) {
    const busy = await busyShare(1000)
    if (busy === null || busy < 0.25) return
  }
}

interface ChildRun {
  readonly result: ChildResult
  readonly maxRssBytes: number
  /** Share of the machine's CPU used by other processes while the child lived (0..1). */
  readonly othersLoad: number | null
  /** Share of the machine's CPU stolen by the hypervisor while the child lived (0..1). */
  readonly steal: number | null
}

/** Runs one job in a fresh child process and waits for its result and its exit. */
async function runChild(job: ChildJob, profDir: string | null): Promise<ChildRun> {
  await settle(settleSeconds)
  const before = await cpuCounters()
  const { result, maxRssBytes, cpuSeconds, wallSeconds } = await forkChild(job, profDir)
  const after = await cpuCounters()
  if (before === null || after === null || after.total <= before.total) return { result, maxRssBytes, othersLoad: null, steal: null }
  const total = after.total - before.total
  const busy = (after.busy - before.busy) / total
  const mine = cpuSeconds / (wallSeconds * availableParallelism())
  return { result, maxRssBytes, othersLoad: Math.max(0, busy - mine), steal: (after.steal - before.steal) / total }
}

function forkChild(job: ChildJob, profDir: string | null): Promise<{ result: ChildResult; maxRssBytes: number; cpuSeconds: number; wallSeconds: number }> {
  const started = performance.now()
  const execArgv = ['--import', 'tsx']
  if (profDir !== null) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profDir}`)
  // NB: compactd's processes (and the floors, which run its codec and blob code) run with the
  // malloc tunable `npm start` sets (src/engine/huge-pages.ts); DuckDB as it comes.
  const env = job.contender.startsWith('duckdb') ? process.env : withHugePages(process.env)
  const child = fork(join(HERE, 'child.ts'), [], { execArgv, env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' })
  return new Promise((resolvePromise, reject) => {
    let reply: ChildMessage | null = null
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    }, 30 * 60_000)
    child.once('message', (msg: ChildMessage) => {
      reply = msg
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      const msg = reply as ChildMessage | null
      if (msg === null) reject(new Error(`${job.contender} exited (${signal ?? code}) without a result`))
      else if (!msg.ok) reject(new Error(`${job.contender} failed: ${msg.error}`))
      else resolvePromise({ result: msg.result, maxRssBytes: msg.maxRssBytes, cpuSeconds: msg.cpuSeconds, wallSeconds: (performance.now() - started) / 1000 })
    })
    child.send(job)
  })
}

async function check(blob: FileBlob, m: DatasetManifest, r: ChildResult, duckRef: { path: string | null }): Promise<CheckResult> {
  const out = r.output
  if (out.kind === 'batch') return checkBatch(blob, m, out.batch)
  if (out.kind === 'parts') return checkCopies(blob, m, out.inputKeys, out.keys)
  if (duckRef.path === null) {
    const res = await checkDuckDbOutput(m, out.path)
    duckRef.path = out.path
    return res
  }
  return compareDuckDbOutputs(m, duckRef.path, out.path)
}

/** Deletes a contender's output (the DuckDB reference is kept until the size is done). */
async function cleanup(blob: FileBlob, m: DatasetManifest, r: ChildResult, duckRef: { path: string | null }): Promise<void> {
  const out = r.output
  if (out.kind === 'batch') {
    for (const p of out.batch.parts) if ('key' in p) await blob.delete(`${m.shardId}/${p.key}`)
  } else if (out.kind === 'parts') {
    for (const k of out.keys) await blob.delete(k)
  } else if (out.path !== duckRef.path) {
    await rm(out.path, { force: true })
    await rm(`${out.path}.wal`, { force: true })
  }
}

async function deleteDataset(blob: FileBlob, m: DatasetManifest, dir: string): Promise<void> {
  for (const b of m.inputs) for (const p of b.parts) if ('key' in p) await blob.delete(`${m.shardId}/${p.key}`)
  await rm(dir, { recursive: true, force: true })
}

async function main(): Promise<void> {
  const t0 = performance.now()
  await rm(join(WORK, 'blob'), { recursive: true, force: true })
  await rm(join(WORK, 'data'), { recursive: true, force: true })
  const profDir = cpuProf ? join(WORK, 'prof', new Date().toISOString().replace(/[:.]/g, '-')) : null
  if (profDir !== null) await mkdir(profDir, { recursive: true })
  // The generator writes through the page cache, so that every contender reads its input from
  // there (the contenders' own blobs write with O_DIRECT, as a server does).
  const blob = new FileBlob(join(WORK, 'blob'), { directWrites: false })
  const mach = await machine()
  const codeAtStart = await codeVersion()
  console.log(`compactd bench: ${mach.cpu}, ${mach.cores} cores, ${(mach.ramBytes / 2 ** 30).toFixed(1)} GiB, Node ${mach.node}, DuckDB ${mach.duckdb}`)
  console.log(`sizes ${updatesList.join(',')} × runs ${runsList.join(',')}, rounds ${rounds}${largeRounds !== rounds ? ` (${largeRounds} at ≥ 5M)` : ''}, contenders ${contenders.join(',')}`)

  let warmupPath: string | null = null
  if (!args['no-warmup']) {
    const dir = join(WORK, 'data', 'warmup')
    const w = await generateDataset({ name: 'warmup', dir, blob, runs: 4, updates: 100_000, seed: seed + 1, targetBytes, duckdb: false })
    warmupPath = join(dir, 'manifest.json')
    await saveManifest(warmupPath, w)
  }

  const sizes: SizeInfo[] = []
  const records: RoundRecord[] = []
  const roundsBySize: Record<string, number> = {}
  for (const updates of doMatrix ? updatesList : []) {
    for (const runs of runsList) {
      const name = `k${runs}-n${updates}`
      const dir = join(WORK, 'data', name)
      const needDuck = contenders.some((c) => c.startsWith('duckdb'))
      process.stdout.write(`\n[${name}] generating ${updates} updates in ${runs} runs${needDuck ? ' (and the DuckDB copy)' : ''}... `)
      const g0 = performance.now()
      const m = await generateDataset({ name, dir, blob, runs, updates, seed: seed + runs * 1000 + updates, targetBytes, duckdb: needDuck })
      const generationSeconds = (performance.now() - g0) / 1000
      const manifestPath = join(dir, 'manifest.json')
      await saveManifest(manifestPath, m)
      console.log(`${generationSeconds.toFixed(1)} s: ${(m.inputBytes / 1e6).toFixed(0)} MB in ${m.inputParts} parts, ${m.expected.rows} rows expected`)
      const size: SizeInfo = {
        name,
        runs,
        updates: m.updates,
        inputBytes: m.inputBytes,
        inputParts: m.inputParts,
        expectedRows: m.expected.rows,
        collidingUpdates: m.expected.collidingUpdates,
        cancelledPairs: m.expected.cancelledPairs,
        since: m.since,
        generationSeconds,
        duckdbInputBytes: m.duckdbPath === null ? null : (await stat(m.duckdbPath)).size,
      }
      sizes.push(size)
      const duckRef = { path: null as string | null }
      const n = updates >= 5_000_000 ? largeRounds : rounds
      roundsBySize[name] = n
      for (let round = 1; round <= n; round++) {
        for (const contender of contenders) {
          const job: ChildJob = {
            contender,
            manifest: manifestPath,
            warmup: contender.startsWith('duckdb') ? null : warmupPath,
            threads: contender === 'duckdb-1t' ? 1 : threads,
            duckdbOut: contender.startsWith('duckdb') ? join(dir, `out-${contender}-r${round}.duckdb`) : null,
            targetBytes,
            memoryBoundBytes,
            healthzIntervalMs,
          }
          const prof = profDir !== null && contender === 'compactd' ? join(profDir, `${name}-r${round}`) : null
          const { result, maxRssBytes, othersLoad, steal } = await runChild(job, prof)
          const verdict = await check(blob, m, result, duckRef)
          await cleanup(blob, m, result, duckRef)
          const rec: RoundRecord = { size: name, round, contender, seconds: result.seconds, maxRssBytes, othersLoad, steal, check: verdict, healthz: result.healthz, notes: result.notes }
          const load = othersLoad === null ? '' : `  others ${(100 * othersLoad).toFixed(0)}% steal ${(100 * (steal ?? 0)).toFixed(0)}%`
          records.push(rec)
          const hz = result.healthz === null ? '' : `, /healthz p50 ${result.healthz.p50Ms.toFixed(2)} ms p99 ${result.healthz.p99Ms.toFixed(2)} ms (${result.healthz.count})`
          console.log(
            `  round ${round} ${contender.padEnd(11)} ${result.seconds.toFixed(2).padStart(7)} s  ${(m.updates / result.seconds / 1e6).toFixed(2).padStart(6)} M upd/s  RSS ${(maxRssBytes / MIB).toFixed(0).padStart(5)} MiB${load}  ${verdict.ok ? 'ok' : `DISAGREES: ${verdict.detail}`}${hz}`,
          )
          console.log(`      ${Object.entries(result.notes).map(([k, v]) => `${k} ${v}`).join(', ')}`)
          if (prof !== null) {
            // The busiest threads: the merge workers and the main thread (tsx's loader threads trail).
            for (const p of (await summarizeProfiles(prof, ROOT)).slice(0, 3)) console.log(formatProfile(p, 25))
          }
        }
      }
      if (duckRef.path !== null) await rm(duckRef.path, { force: true })
      if (!args['keep-data']) await deleteDataset(blob, m, dir)
      console.log(consoleSummary(summarize(size, records)))
    }
  }

  let e2e: E2eResult | null = null
  if (doE2e) {
    e2e = await runE2e({
      root: ROOT,
      work: WORK,
      runs: count(args['e2e-runs'] ?? (quick ? '4' : '16')),
      updates: count(args['e2e-updates'] ?? (quick ? '400k' : '10M')),
      seed,
      targetBytes,
      boundBytes: memoryBoundBytes,
      workers: threads,
      shuffledWrites: quick ? 2 : 3,
      jsonRequests: quick ? 2 : 3,
      jsonRows: quick ? 50_000 : 200_000,
      snapshotRounds: quick ? 1 : 3,
      clients: count(args['e2e-clients']),
      concurrentRequests: count(args['e2e-requests'] ?? (quick ? '5000' : '20000')),
      duckRounds: quick ? 1 : 3,
      duckThreads: threads,
      healthzIntervalMs: 10,
      keepData: args['keep-data'],
      serverCpuProfDir: profDir,
      log: (line) => console.log(line),
    })
  }
  const e2eTargets = e2e === null ? [] : judgeE2eTargets(e2e)
  if (e2e !== null) console.log(`\n${consoleE2e(e2e, e2eTargets)}`)

  const summaries = sizes.map((s) => summarize(s, records))
  const targets = judgeTargets(summaries)
  console.log('\nTargets:')
  for (const t of targets) console.log(`  ${t.met === null ? '–' : t.met ? 'MET    ' : 'NOT MET'}  ${t.name}: ${t.detail}`)
  const codeAtEnd = await codeVersion()
  const codeChanged = codeAtEnd.digest !== codeAtStart.digest
  if (codeChanged) console.log(`\nWARNING: src/ changed during the run (${codeAtStart.label} → ${codeAtEnd.label}); rerun for figures of one version`)
  const totalSeconds = (performance.now() - t0) / 1000
  console.log(`\ntotal ${(totalSeconds / 60).toFixed(1)} min`)
  if (write) {
    const old = await readFile(RESULTS, 'utf8').catch(() => null)
    const text = renderResults(
      {
        date: new Date().toISOString(),
        command,
        code: codeChanged ? `${codeAtStart.label}, **changed during the run** (now ${codeAtEnd.label}): these figures mix versions` : codeAtStart.label,
        machine: mach,
        targetBytes,
        memoryBoundBytes,
        threads,
        roundsBySize,
        warmup: warmupPath === null ? null : '100k updates in 4 runs',
        settleSeconds,
        sizes,
        records,
        totalSeconds,
      },
      summaries,
      [...e2eTargets, ...targets],
      previousNotes(old),
      e2e === null ? null : renderE2e(e2e, e2eTargets),
    )
    await writeFile(RESULTS, text)
    console.log(`wrote ${relative(process.cwd(), RESULTS)}`)
  }
  if (records.some((r) => !r.check.ok) || (e2e !== null && (!e2e.compactFirst.check.ok || !e2e.compactWarm.check.ok))) process.exitCode = 1
}

await main()
