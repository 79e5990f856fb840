/**
 * A focused Arrow snapshot measurement (a minute, not the whole e2e scenario): a real server child
 * process on file stores, one sorted Arrow run of the e2e data written (626k updates, ~43 MiB at
 * the default 10M updates), then its Arrow snapshot read `--reads` times back to back; prints wall
 * seconds, M updates/s and the server's CPU seconds per read, and checks every body is the same
 * size and row count. One untimed read warms the server up first (it compiles the read path).
 * `--format json` reads the JSON snapshot instead. `--shuffle` writes the run's rows in random order
 * (the server sorts them), as the e2e scenario's Arrow snapshot shard is written. `--cpu-prof DIR` profiles the server (one file
 * per thread; summaries: cpu-profile.ts).
 *
 *   node --import tsx bench/snapshot-probe.ts [--reads 5] [--format arrow] [--shuffle] [--cpu-prof DIR]
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import * as arrow from 'apache-arrow'
import { generateRuns, RUN_SPAN } from './dataset.js'
import { arrowBody } from './e2e-data.js'
import { api, postBody, startServer, threadCpuLine } from './e2e-server.js'

const { values: args } = parseArgs({
  options: {
    reads: { type: 'string', default: '5' },
    format: { type: 'string', default: 'arrow' },
    updates: { type: 'string', default: '10000000' },
    'cpu-prof': { type: 'string' },
    shuffle: { type: 'boolean', default: false },
  },
})
const ROOT = resolve(import.meta.dirname, '..')
const ARROW = 'application/vnd.apache.arrow.stream'
const format = args.format === 'json' ? 'json' : 'arrow'

/** One request; the body's bytes are counted, not kept (as a streaming client would). */
function get(url: string, accept: string): Promise<{ status: number; bytes: Uint8Array[]; length: number; seconds: number; firstByteSeconds: number }> {
  return new Promise((res, rej) => {
    const t0 = performance.now()
    const req = httpRequest(url, { headers: { accept } }, (r: IncomingMessage) => {
      const bytes: Uint8Array[] = []
      let length = 0
      let firstByteSeconds = -1
      r.on('data', (c: Buffer) => {
        if (firstByteSeconds < 0) firstByteSeconds = (performance.now() - t0) / 1000
        length += c.byteLength
        bytes.push(c)
      })
      r.on('end', () => res({ status: r.statusCode ?? 0, bytes, length, seconds: (performance.now() - t0) / 1000, firstByteSeconds }))
      r.on('error', rej)
    })
    req.on('error', rej)
    req.end()
  })
}

const reads = Number(args.reads)
const gen = generateRuns({ runs: 16, updates: Number(args.updates), seed: 42 })
const run = gen.runs[0]!
const body = arrowBody(run, args.shuffle ? 1000 : null)
const dir = await mkdtemp(join(tmpdir(), 'snapshot-probe-'))
const server = await startServer({ root: ROOT, dataDir: join(dir, 'data'), workers: 2, logLevel: 'warn', cpuProfDir: args['cpu-prof'] ?? null })
try {
  const url = server.url
  await api(url, 'PATCH', '/v1/configs', { persist_blob_target_size: 32 << 20, compaction_process_requests: false })
  const id = ((await api(url, 'POST', '/v1/shards', { name: 'sp', timestamp: 'u64', keySchema: { type: 'binary' }, valSchema: { type: 'binary' } })) as { shardId: string }).shardId
  const w = await postBody(url, `/v1/shards/${id}/batches?lower=[0]&upper=[${RUN_SPAN}]&append=true`, ARROW, body)
  if (w.status !== 200 && w.status !== 201) throw new Error(`write: ${w.status} ${w.text}`)
  const snapshot = `${url}/v1/shards/${id}/snapshot?asOf=${RUN_SPAN - 1}`
  const accept = format === 'arrow' ? ARROW : 'application/json'
  // Warm-up (untimed); its body is checked: the rows the run holds, once each.
  const warm = await get(snapshot, accept)
  if (warm.status !== 200) throw new Error(`snapshot: ${warm.status} ${Buffer.concat(warm.bytes).toString()}`)
  if (format === 'arrow') {
    const table = arrow.tableFromIPC(Buffer.concat(warm.bytes))
    console.log(`body: ${(warm.length / 2 ** 20).toFixed(1)} MiB, ${table.numRows} rows in ${table.batches.length} record batches (run: ${run.rows} updates)`)
  } else console.log(`body: ${(warm.length / 2 ** 20).toFixed(1)} MiB`)
  let cpuTotal = 0
  let wallTotal = 0
  const threads0 = await server.threadCpuSeconds()
  const sys0 = await server.threadCpuSeconds(true)
  for (let i = 0; i < reads; i++) {
    const cpu0 = (await server.cpuSeconds()) ?? 0
    const r = await get(snapshot, accept)
    const cpu = ((await server.cpuSeconds()) ?? 0) - cpu0
    if (r.status !== 200 || r.length !== warm.length) throw new Error(`read ${i}: ${r.status}, ${r.length} bytes (warm-up: ${warm.length})`)
    cpuTotal += cpu
    wallTotal += r.seconds
    console.log(`read ${i}: ${r.seconds.toFixed(3)} s wall (first byte ${r.firstByteSeconds.toFixed(3)}), ${(run.rows / r.seconds / 1e6).toFixed(2)} M/s, server CPU ${cpu.toFixed(3)} s`)
  }
  console.log(`server CPU s per read, by thread: ${threadCpuLine(server, threads0, await server.threadCpuSeconds(), reads)}; of which sys: ${threadCpuLine(server, sys0, await server.threadCpuSeconds(true), reads)}`)
  console.log(`${format} snapshot: mean ${(wallTotal / reads).toFixed(3)} s wall (${((run.rows * reads) / wallTotal / 1e6).toFixed(2)} M/s), server CPU ${(cpuTotal / reads).toFixed(3)} s per read`)
} catch (err) {
  console.error(err)
  process.exitCode = 1
} finally {
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
