/**
 * The end-to-end scenario of `npm run bench`: what a user sees over HTTP on the default file
 * stores. A real compactd child process (started as `npm start` starts it, on a temp data dir)
 * takes load from a separate process on loopback while another process probes /healthz every
 * `healthzIntervalMs` throughout:
 *
 * 1. writes: K runs of sorted rows as Arrow bodies (POST /batches, append=false: they are the
 *    compaction's inputs), some runs with their rows shuffled, and JSON bodies (utf8 keys, int64
 *    values);
 * 2. a restart (SIGTERM, start again on the same data);
 *    (compactd starts no compaction on its own, `compaction_maintenance_enabled` false, so that
 *    each phase measures its own path);
 * 3. POST /v1/compact of the K written runs, first after the restart, then again warm;
 * 4. snapshots: Arrow (the first shuffled request's batch: the write sorts rows in buffers of the
 *    target size, each a run, so 626k rows of 45 MB are two runs the read merges; then, as a
 *    reference, a shard of the first sorted run alone, one run read as it is) and JSON (the JSON shard, and the
 *    shuffled one);
 * 5. a one-row shard read by `clients` keep-alive clients at once;
 * 6. the HTTP floor (e2e-http-floor.ts, compactd stopped): the sorted Arrow bodies posted to a bare
 *    `node:http` server that stores them durably as they are, and one read back as often as the
 *    Arrow snapshot is read, /healthz probed there too: what this machine allows a server that
 *    parses nothing.
 *
 * In the same session: DuckDB (2 threads) consolidating the same rows from Parquet files it wrote
 * itself (untimed), the codec floor (every written part decoded and encoded again) and the raw I/O
 * floor (every written part read and written back as it is: what the disk allows). Every
 * compaction output is checked against the generator's expectation (check.ts).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HollowBatchJson } from '../src/core/batch.js'
import { withHugePages } from '../src/engine/huge-pages.js'
import { FileBlob } from '../src/location/file-blob.js'
import { checkBatch, type CheckResult } from './check.js'
import type { ChildJob, ChildMessage } from './contenders.js'
import { RUN_SPAN, type DatasetManifest } from './dataset.js'
import type { DuckJob, DuckReply } from './e2e-duckdb.js'
import type { LoadCommand, LoadReply, Timed } from './e2e-load.js'
import { PROBE_READY, type ProbeCommand, type ProbeReport } from './e2e-messages.js'
import type { HttpFloorReady } from './e2e-http-floor.js'
import { startServer, type ServerProcess } from './e2e-server.js'
import type { LatencyStats } from './latency.js'

const HERE = dirname(fileURLToPath(import.meta.url))

/** The HTTP floor's phases (judged beside compactd's sorted writes and Arrow snapshot). */
export const HTTP_FLOOR_WRITE_PHASE = 'HTTP floor: the sorted Arrow bodies stored'
export const HTTP_FLOOR_READ_PHASE = 'HTTP floor: one body read back'

export interface E2eOptions {
  readonly root: string
  /** Scratch directory (deleted as the run goes unless `keepData`). */
  readonly work: string
  readonly runs: number
  readonly updates: number
  readonly seed: number
  readonly targetBytes: number
  readonly boundBytes: number
  readonly workers: number
  /** Runs also written with their rows shuffled (the first one is the Arrow snapshot's shard). */
  readonly shuffledWrites: number
  readonly jsonRequests: number
  readonly jsonRows: number
  readonly snapshotRounds: number
  readonly clients: number
  readonly concurrentRequests: number
  readonly duckRounds: number
  readonly duckThreads: number
  readonly healthzIntervalMs: number
  readonly keepData: boolean
  /** Profile the server processes (`--cpu-prof` into this directory), or null. */
  readonly serverCpuProfDir: string | null
  readonly log: (line: string) => void
}

export interface CompactionRun {
  readonly timed: Timed
  readonly runs: number
  readonly rows: number
  readonly parts: number
  readonly check: CheckResult
}

export interface E2eResult {
  readonly options: Omit<E2eOptions, 'log'>
  readonly generationSeconds: number
  readonly updates: number
  readonly rowsPerRun: readonly number[]
  readonly expectedRows: number
  readonly writesSorted: readonly Timed[]
  readonly writesRandom: readonly Timed[]
  readonly writesJson: readonly Timed[]
  readonly compactFirst: CompactionRun
  readonly compactWarm: CompactionRun
  readonly snapshotArrow: readonly Timed[]
  /** The Arrow snapshot of the sorted runs' shard at the first run's last time: one run, read as it is (a reference). */
  readonly snapshotArrowOneRun: readonly Timed[]
  readonly snapshotJson: readonly Timed[]
  readonly snapshotJsonBinary: readonly Timed[]
  readonly oneRow: { readonly seconds: number; readonly requests: number; readonly failures: number; readonly latency: LatencyStats }
  readonly healthz: ProbeReport
  /** Peak RSS of the server during each phase. */
  readonly serverPeakRss: Readonly<Record<string, number | null>>
  /** Per phase: the server's CPU seconds and the share of the whole machine busy (everyone's). */
  readonly phaseLoad: Readonly<Record<string, { readonly serverCpuSeconds: number | null; readonly machineBusy: number | null; readonly seconds: number }>>
  readonly duck: { readonly seconds: readonly number[]; readonly rows: number; readonly parquetBytes: number; readonly version: string }
  readonly floor: { readonly seconds: number; readonly parts: number; readonly bytes: number }
  /** Every written part read and written back durably, bytes unchanged: what the disk allows. */
  readonly rawFloor: { readonly seconds: number }
  /** The same Arrow bodies stored and read back by a bare HTTP server (e2e-http-floor.ts); `direct`: it wrote with O_DIRECT. */
  readonly httpFloor: { readonly writes: readonly Timed[]; readonly reads: readonly Timed[]; readonly direct: boolean }
  readonly inputBytes: number
}

/** Machine-wide CPU counters from /proc/stat (jiffies): busy (steal excluded) and total; null without /proc. */
async function cpuCounters(): Promise<{ busy: number; total: number } | null> {
  const line = (await readFile('/proc/stat', 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith('cpu '))
  if (line === undefined) return null
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number)
  return { busy: user + nice + system + irq + softirq, total: user + nice + system + idle + iowait + irq + softirq + steal }
}

/** A forked child that answers each message with one. */
class Child<Cmd, Reply> {
  readonly #child: ChildProcess
  readonly #replies: Reply[] = []
  #wait: ((r: Reply) => void) | null = null
  readonly exited: Promise<number | null>

  constructor(file: string, args: readonly string[] = []) {
    this.#child = fork(join(HERE, file), [...args], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)))
    this.#child.on('message', (m: Reply) => {
      const w = this.#wait
      this.#wait = null
      if (w !== null) w(m)
      else this.#replies.push(m)
    })
  }

  send(cmd: Cmd): void {
    this.#child.send(cmd as object)
  }

  async ask(cmd: Cmd): Promise<Reply> {
    this.send(cmd)
    return this.next()
  }

  next(): Promise<Reply> {
    const r = this.#replies.shift()
    if (r !== undefined) return Promise.resolve(r)
    return Promise.race([
      new Promise<Reply>((resolve) => (this.#wait = resolve)),
      this.exited.then((code): Reply => {
        throw new Error(`child ${this.#child.spawnargs.join(' ')} exited (${code}) without answering`)
      }),
    ])
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL')
  }
}

function timedOf(reply: LoadReply): readonly Timed[] {
  if (reply.kind === 'error') throw new Error(`load generator: ${reply.message}`)
  if (reply.kind !== 'timed') throw new Error(`load generator answered ${reply.kind}`)
  for (const t of reply.requests) if (t.status >= 300) throw new Error(`a request failed with ${t.status}: ${JSON.stringify(t.json).slice(0, 500)}`)
  return reply.requests
}

async function api(url: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const json: unknown = await res.json()
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

async function createShard(url: string, name: string, keyType: string, valType: string): Promise<string> {
  const r = (await api(url, 'POST', '/v1/shards', { name, timestamp: 'u64', keySchema: { type: keyType }, valSchema: { type: valType } })) as { shardId: string }
  return r.shardId
}

export async function runE2e(opts: E2eOptions): Promise<E2eResult> {
  const { log } = opts
  const dir = join(opts.work, `e2e-${Date.now()}`)
  const dataDir = join(dir, 'data')
  await mkdir(dataDir, { recursive: true })
  const load = new Child<LoadCommand, LoadReply>('e2e-load.ts')
  let server: ServerProcess | null = null
  let probe: Child<ProbeCommand, ProbeReport | typeof PROBE_READY> | null = null
  /** A prober of `url`, once it runs (it loads in a second or two); `probe` while it starts, so a failure stops it. */
  const startProbe = async (url: string): Promise<Child<ProbeCommand, ProbeReport | typeof PROBE_READY>> => {
    const p = new Child<ProbeCommand, ProbeReport | typeof PROBE_READY>('e2e-probe.ts', [url, String(opts.healthzIntervalMs)])
    probe = p
    if ((await p.next()) !== PROBE_READY) throw new Error('the prober did not start')
    return p
  }
  let httpFloor: Child<never, HttpFloorReady> | null = null
  const peaks: Record<string, number | null> = {}
  const loads: Record<string, { serverCpuSeconds: number | null; machineBusy: number | null; seconds: number }> = {}
  let phaseStart = { at: 0, cpu: null as number | null, stat: null as Awaited<ReturnType<typeof cpuCounters>> }
  /** /healthz figures of a prober replaced on a restart. */
  const before: Record<string, LatencyStats> = {}
  try {
    log(`[e2e] generating ${opts.updates} updates in ${opts.runs} runs (untimed)...`)
    const gen = await load.ask({ kind: 'generate', runs: opts.runs, updates: opts.updates, seed: opts.seed })
    if (gen.kind !== 'generated') throw new Error(gen.kind === 'error' ? gen.message : `unexpected ${gen.kind}`)
    log(`[e2e] generated in ${gen.seconds.toFixed(1)} s; ${gen.expected.rows} rows expected after consolidation`)

    server = await startServer({ root: opts.root, dataDir, workers: opts.workers, logLevel: 'warn', cpuProfDir: opts.serverCpuProfDir })
    const url = server.url
    // NB: compactd starts no compaction on its own here (writer maintenance after appends, the
    // idle sweep), so that each phase measures its own path only; requests run as usual.
    await api(url, 'PATCH', '/v1/configs', { persist_blob_target_size: opts.targetBytes, persist_compaction_memory_bound_bytes: opts.boundBytes, compaction_maintenance_enabled: false })
    // The phases start once the prober runs.
    probe = await startProbe(url)
    const phase = async (name: string): Promise<void> => {
      probe?.send({ phase: name })
      await server?.resetPeak()
      phaseStart = { at: performance.now(), cpu: (await server?.cpuSeconds()) ?? null, stat: await cpuCounters() }
      log(`[e2e] ${name}`)
    }
    const endPhase = async (name: string): Promise<void> => {
      peaks[name] = (await server?.peakRssBytes()) ?? null
      const cpu = (await server?.cpuSeconds()) ?? null
      const stat = await cpuCounters()
      const a = phaseStart.stat
      loads[name] = {
        seconds: (performance.now() - phaseStart.at) / 1000,
        serverCpuSeconds: cpu === null || phaseStart.cpu === null ? null : cpu - phaseStart.cpu,
        machineBusy: stat === null || a === null || stat.total <= a.total ? null : (stat.busy - a.busy) / (stat.total - a.total),
      }
    }

    const shardA = await createShard(url, 'e2e-runs', 'binary', 'binary')
    const shardB = await createShard(url, 'e2e-shuffled', 'binary', 'binary')
    const shardC = await createShard(url, 'e2e-json', 'utf8', 'int64')
    const shardOne = await createShard(url, 'e2e-one-run', 'binary', 'binary')
    const runs = Array.from({ length: opts.runs }, (_, i) => i)

    await phase('writes: Arrow, sorted')
    const writesSorted = timedOf(await load.ask({ kind: 'write-arrow', url, shardId: shardA, runs, shuffle: false, append: false }))
    await endPhase('writes: Arrow, sorted')
    await phase('writes: Arrow, random order')
    const writesRandom = timedOf(await load.ask({ kind: 'write-arrow', url, shardId: shardB, runs: runs.slice(0, opts.shuffledWrites), shuffle: true, append: 'first' }))
    await endPhase('writes: Arrow, random order')
    await phase('writes: JSON')
    const writesJson = timedOf(await load.ask({ kind: 'write-json', url, shardId: shardC, requests: opts.jsonRequests, rows: opts.jsonRows, seed: opts.seed + 7 }))
    await endPhase('writes: JSON')
    // Untimed: the first sorted run appended to a shard of its own, for the one-run snapshot.
    timedOf(await load.ask({ kind: 'write-arrow', url, shardId: shardOne, runs: [0], shuffle: false, append: 'first' }))

    await phase('restart')
    await server.stop()
    server = await startServer({ root: opts.root, dataDir, workers: opts.workers, logLevel: 'warn', cpuProfDir: opts.serverCpuProfDir })
    if (server.url !== url) {
      // A new port: the prober follows (its figures so far are kept).
      probe.send({ stop: true })
      Object.assign(before, report(await probe.next()))
      probe = await startProbe(server.url)
    }
    const url2 = server.url

    const inputs = writesSorted.map((t) => (t.json as { batch: HollowBatchJson }).batch)
    const desc = { lower: [0], upper: [opts.runs * RUN_SPAN], since: [gen.since] }
    const manifest: DatasetManifest = {
      name: 'e2e',
      runs: opts.runs,
      updates: gen.updates,
      since: gen.since,
      upper: gen.upper,
      shardId: shardA as DatasetManifest['shardId'],
      blobRoot: join(dataDir, 'blob'),
      duckdbPath: null,
      inputs,
      inputBytes: inputs.reduce((n, b) => n + b.parts.reduce((m, p) => m + ('key' in p ? p.encodedSizeBytes : 0), 0), 0),
      inputParts: inputs.reduce((n, b) => n + b.parts.length, 0),
      expected: gen.expected,
    }
    const blob = new FileBlob(manifest.blobRoot)
    const compact = async (name: string): Promise<CompactionRun> => {
      await phase(name)
      const [timed] = timedOf(await load.ask({ kind: 'post', url: url2, path: '/v1/compact', body: { shardId: shardA, desc, inputs } }))
      await endPhase(name)
      const output = (timed!.json as { output: HollowBatchJson }).output
      const check = await checkBatch(blob, manifest, output)
      for (const p of output.parts) if ('key' in p) await blob.delete(`${shardA}/${p.key}`)
      log(`[e2e]   ${timed!.seconds.toFixed(2)} s, ${output.runMeta.length} runs, ${output.len} rows: ${check.ok ? 'ok' : `DISAGREES: ${check.detail}`}`)
      return { timed: timed!, runs: output.runMeta.length, rows: output.len, parts: output.parts.length, check }
    }
    const compactFirst = await compact('/v1/compact, first after restart')
    const compactWarm = await compact('/v1/compact, warm')

    const snapshots = async (name: string, shardId: string, asOf: number, format: 'arrow' | 'json'): Promise<Timed[]> => {
      await phase(name)
      const out: Timed[] = []
      for (let i = 0; i < opts.snapshotRounds; i++) out.push(...timedOf(await load.ask({ kind: 'snapshot', url: url2, shardId, asOf, format })))
      await endPhase(name)
      return out
    }
    const snapshotArrow = await snapshots('snapshot: Arrow', shardB, RUN_SPAN - 1, 'arrow')
    // What a read of a shard compacted to one run costs, beside it.
    const snapshotArrowOneRun = await snapshots('snapshot: Arrow, one run', shardOne, RUN_SPAN - 1, 'arrow')
    const snapshotJson = await snapshots('snapshot: JSON', shardC, opts.jsonRequests * RUN_SPAN - 1, 'json')
    const snapshotJsonBinary = await snapshots('snapshot: JSON of binary rows', shardB, RUN_SPAN - 1, 'json')

    const shardD = await createShard(url2, 'e2e-one-row', 'utf8', 'int64')
    await api(url2, 'POST', `/v1/shards/${shardD}/batches`, { lower: [0], upper: [10], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] })
    await phase(`one-row snapshots, ${opts.clients} clients`)
    const c = await load.ask({ kind: 'concurrent-snapshots', url: url2, shardId: shardD, asOf: 5, clients: opts.clients, requests: opts.concurrentRequests })
    if (c.kind !== 'concurrency') throw new Error(c.kind === 'error' ? c.message : `unexpected ${c.kind}`)
    await endPhase(`one-row snapshots, ${opts.clients} clients`)
    probe.send({ phase: 'done' })
    probe.send({ stop: true })
    Object.assign(before, report(await probe.next()))
    probe = null
    await server.stop()
    server = null

    // The HTTP floor, with compactd stopped: the same load generator and prober against a bare server.
    const floorDir = join(dir, 'http-floor')
    await mkdir(floorDir, { recursive: true })
    httpFloor = new Child<never, HttpFloorReady>('e2e-http-floor.ts', [floorDir])
    const floorUrl = (await httpFloor.next()).url
    probe = await startProbe(floorUrl)
    await phase(HTTP_FLOOR_WRITE_PHASE)
    const floorWrites = timedOf(await load.ask({ kind: 'floor-write', url: floorUrl, runs }))
    await endPhase(HTTP_FLOOR_WRITE_PHASE)
    await phase(HTTP_FLOOR_READ_PHASE)
    const floorReads = timedOf(await load.ask({ kind: 'floor-read', url: floorUrl, run: 0, rounds: opts.snapshotRounds }))
    await endPhase(HTTP_FLOOR_READ_PHASE)
    probe.send({ phase: 'done' })
    probe.send({ stop: true })
    const healthz = { ...before, ...report(await probe.next()) }
    probe = null
    httpFloor.kill()
    await httpFloor.exited
    httpFloor = null
    await rm(floorDir, { recursive: true, force: true })
    const direct = floorWrites.every((t) => (t.json as { direct?: unknown }).direct === true)

    log('[e2e] codec floor over the written parts...')
    const floorManifest = join(dir, 'manifest.json')
    await writeFile(floorManifest, JSON.stringify(manifest))
    const floorJob: ChildJob = {
      contender: 'floor-codec',
      manifest: floorManifest,
      warmup: null,
      threads: opts.workers,
      duckdbOut: null,
      targetBytes: opts.targetBytes,
      memoryBoundBytes: opts.boundBytes,
      healthzIntervalMs: opts.healthzIntervalMs,
    }
    const floor = await runFloorChild(floorJob)
    for (const k of floor.keys) await blob.delete(k)
    const rawFloor = await runFloorChild({ ...floorJob, contender: 'floor-raw' })
    for (const k of rawFloor.keys) await blob.delete(k)

    log(`[e2e] DuckDB (${opts.duckThreads} threads) from Parquet...`)
    const duckChild = new Child<DuckJob, DuckReply>('e2e-duckdb.ts')
    const duck = await duckChild.ask({ runs: opts.runs, updates: opts.updates, seed: opts.seed, dir: join(dir, 'duckdb'), threads: opts.duckThreads, rounds: opts.duckRounds })
    await duckChild.exited
    if (!duck.ok) throw new Error(`DuckDB: ${duck.error}`)

    const { log: _log, ...options } = opts
    return {
      options,
      generationSeconds: gen.seconds,
      updates: gen.updates,
      rowsPerRun: gen.rowsPerRun,
      expectedRows: gen.expected.rows,
      writesSorted,
      writesRandom,
      writesJson,
      compactFirst,
      compactWarm,
      snapshotArrow,
      snapshotArrowOneRun,
      snapshotJson,
      snapshotJsonBinary,
      oneRow: { seconds: c.seconds, requests: c.requests, failures: c.failures, latency: c.latency },
      healthz,
      serverPeakRss: peaks,
      phaseLoad: loads,
      duck: { seconds: duck.seconds, rows: duck.rows, parquetBytes: duck.parquetBytes, version: duck.version },
      floor: { seconds: floor.seconds, parts: floor.keys.length, bytes: manifest.inputBytes },
      rawFloor: { seconds: rawFloor.seconds },
      httpFloor: { writes: floorWrites, reads: floorReads, direct },
      inputBytes: manifest.inputBytes,
    }
  } finally {
    probe?.kill()
    httpFloor?.kill()
    load.send({ kind: 'exit' })
    await Promise.race([load.exited, new Promise((r) => setTimeout(r, 5000))])
    load.kill()
    await server?.stop()
    if (!opts.keepData) await rm(dir, { recursive: true, force: true })
  }
}

function report(r: ProbeReport | typeof PROBE_READY): ProbeReport {
  if (r === PROBE_READY) throw new Error('the prober answered ready twice')
  return r
}

/** The codec floor over the written parts, in a contender process (child.ts) of its own. */
async function runFloorChild(job: ChildJob): Promise<{ seconds: number; keys: readonly string[] }> {
  // NB: with the malloc tunable, as the matrix's floors (run.ts).
  const child = fork(join(HERE, 'child.ts'), [], { execArgv: ['--import', 'tsx'], env: withHugePages(process.env), stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' })
  const reply = await new Promise<ChildMessage>((resolve, reject) => {
    child.once('message', (m: ChildMessage) => resolve(m))
    child.once('exit', (code) => reject(new Error(`the floor exited (${code}) without a result`)))
    child.send(job)
  })
  if (!reply.ok) throw new Error(`floor: ${reply.error}`)
  const out = reply.result.output
  if (out.kind !== 'parts') throw new Error('the floor wrote no parts')
  return { seconds: reply.result.seconds, keys: out.keys }
}
