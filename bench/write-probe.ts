/**
 * A focused write measurement (a minute or two, not the whole e2e scenario): a real server child
 * process on file stores, `--arrow` sorted Arrow bodies of the e2e runs (626k updates, ~43 MiB
 * each at the default 10M updates) and `--json` JSON bodies of 200k rows posted back to back
 * (append=false / true, as e2e.ts does), a /healthz probe every 10 ms meanwhile; prints M
 * updates/s per request, the server's CPU seconds and the probe's latencies. One untimed request
 * of each kind warms the server up first (its first write compiles the worker's code), unless
 * `--cold`: then the first requests of a fresh server are timed too. `--pause-ms N` waits N ms
 * between requests (as an operator's occasional writes would come), so that what the server does
 * while idle shows (e.g. give back memory it keeps for reuse).
 * `--shuffle` posts the Arrow bodies with their rows in random order (seeded, as e2e.ts's shuffled
 * writes), the input the write worker sorts. `--cpu-prof DIR` profiles the server (one file per
 * thread; summaries: cpu-profile.ts).
 *
 * NB: the probe runs in this process, beside the client: its latencies include this process's
 * own scheduling, so they are a rougher figure than e2e.ts's separate prober process.
 *
 *   node --import tsx bench/write-probe.ts [--arrow 6] [--json 4] [--shuffle] [--cold] [--pause-ms N] [--cpu-prof DIR]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { generateRuns, RUN_SPAN } from './dataset.js'
import { arrowBody, jsonBody } from './e2e-data.js'
import { latencyStats } from './latency.js'
import { api, postBody, startServer, threadCpuLine } from './e2e-server.js'

const { values: args } = parseArgs({
  options: {
    arrow: { type: 'string', default: '6' },
    json: { type: 'string', default: '4' },
    updates: { type: 'string', default: '10000000' },
    shuffle: { type: 'boolean', default: false },
    cold: { type: 'boolean', default: false },
    'pause-ms': { type: 'string', default: '0' },
    'cpu-prof': { type: 'string' },
  },
})
const ROOT = resolve(import.meta.dirname, '..')

const nArrow = Number(args.arrow)
const pauseMs = Number(args['pause-ms'])
/** Waits `--pause-ms` between requests (nothing when 0). */
const pause = (): Promise<void> => (pauseMs > 0 ? new Promise((resolve) => setTimeout(resolve, pauseMs)) : Promise.resolve())
const nJson = Number(args.json)
const gen = generateRuns({ runs: 16, updates: Number(args.updates), seed: 42 })
const arrowBodies = gen.runs.slice(0, nArrow).map((r, i) => arrowBody(r, args.shuffle ? 1000 + i : null))
const jsonBodies = Array.from({ length: nJson }, (_, i) => jsonBody(200_000, 49 + i, i * RUN_SPAN, RUN_SPAN))
const dir = await mkdtemp(join(tmpdir(), 'write-probe-'))
let probing = false
const server = await startServer({ root: ROOT, dataDir: join(dir, 'data'), workers: 2, logLevel: 'warn', cpuProfDir: args['cpu-prof'] ?? null })
try {
  const url = server.url
  await api(url, 'PATCH', '/v1/configs', { persist_blob_target_size: 32 << 20, compaction_process_requests: false })
  const a = ((await api(url, 'POST', '/v1/shards', { name: 'wp-arrow', timestamp: 'u64', keySchema: { type: 'binary' }, valSchema: { type: 'binary' } })) as { shardId: string }).shardId
  const j = ((await api(url, 'POST', '/v1/shards', { name: 'wp-json', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })) as { shardId: string }).shardId
  probing = true
  const lat: number[] = []
  const probe = (async () => {
    while (probing) {
      const t0 = performance.now()
      const ok = await fetch(`${url}/healthz`).then(
        (r) => r.arrayBuffer().then(() => true),
        () => false,
      )
      if (ok) lat.push(performance.now() - t0)
      await new Promise((r) => setTimeout(r, 10))
    }
  })()
  // Warm-up (untimed), into shards of its own.
  const wa = ((await api(url, 'POST', '/v1/shards', { name: 'wp-warm-arrow', timestamp: 'u64', keySchema: { type: 'binary' }, valSchema: { type: 'binary' } })) as { shardId: string }).shardId
  const wj = ((await api(url, 'POST', '/v1/shards', { name: 'wp-warm-json', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })) as { shardId: string }).shardId
  if (arrowBodies.length > 0 && !args.cold) await postBody(url, `/v1/shards/${wa}/batches?lower=[0]&upper=[${RUN_SPAN}]&append=false`, 'application/vnd.apache.arrow.stream', arrowBodies[0]!)
  if (jsonBodies.length > 0 && !args.cold) await postBody(url, `/v1/shards/${wj}/batches`, 'application/json', jsonBodies[0]!)
  lat.length = 0
  const cpu0 = await server.cpuSeconds()
  const threads0 = await server.threadCpuSeconds()
  let rows = 0
  let secs = 0
  for (const [i, body] of arrowBodies.entries()) {
    if (i > 0) await pause()
    const q = `lower=[${i * RUN_SPAN}]&upper=[${(i + 1) * RUN_SPAN}]&append=false`
    const r = await postBody(url, `/v1/shards/${a}/batches?${q}`, 'application/vnd.apache.arrow.stream', body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`${r.status} ${r.text}`)
    rows += gen.runs[i]!.rows
    secs += r.seconds
    console.log(`arrow ${i}: ${(gen.runs[i]!.rows / r.seconds / 1e6).toFixed(2)} M/s (${r.seconds.toFixed(3)} s, ${(body.byteLength / 2 ** 20).toFixed(1)} MiB)`)
  }
  const cpu1 = await server.cpuSeconds()
  const threads1 = await server.threadCpuSeconds()
  if (arrowBodies.length > 0) console.log(`server CPU s per Arrow write, by thread: ${threadCpuLine(server, threads0, threads1, arrowBodies.length)}`)
  const arrowLat = latencyStats(lat.splice(0))
  console.log(`arrow ${args.shuffle ? 'shuffled' : 'sorted'}: ${(rows / secs / 1e6).toFixed(2)} M/s overall, server CPU ${((cpu1 ?? 0) - (cpu0 ?? 0)).toFixed(2)} s; healthz ${JSON.stringify(arrowLat)}`)
  rows = 0
  secs = 0
  for (const [i, body] of jsonBodies.entries()) {
    if (i > 0) await pause()
    const r = await postBody(url, `/v1/shards/${j}/batches`, 'application/json', body)
    if (r.status !== 200 && r.status !== 201) throw new Error(`${r.status} ${r.text}`)
    rows += 200_000
    secs += r.seconds
    console.log(`json ${i}: ${(200_000 / r.seconds / 1e6).toFixed(2)} M/s (${r.seconds.toFixed(3)} s)`)
  }
  const cpu2 = await server.cpuSeconds()
  if (jsonBodies.length > 0) console.log(`server CPU s per JSON write, by thread: ${threadCpuLine(server, threads1, await server.threadCpuSeconds(), jsonBodies.length)}`)
  console.log(`json: ${(rows / secs / 1e6).toFixed(2)} M/s overall, server CPU ${((cpu2 ?? 0) - (cpu1 ?? 0)).toFixed(2)} s; healthz ${JSON.stringify(latencyStats(lat))}`)
  probing = false
  await probe
} catch (err) {
  console.error(err)
  process.exitCode = 1
} finally {
  probing = false
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
