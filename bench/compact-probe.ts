/**
 * A focused compaction measurement (a few minutes, not the whole e2e scenario): a real server
 * child process on file stores writes the e2e dataset's sorted Arrow runs (not appended), is
 * restarted, then compacts them with `POST /v1/compact` `--rounds` times, as e2e.ts's "first after
 * restart" and "warm" phases do (each output is deleted after its round). Prints per round the
 * wall seconds, the server's user and system CPU seconds (system time is the kernel's: page cache,
 * I/O) and CPU per thread (all, then the system share). `--warm-up N` first compacts N updates
 * of 4 runs of their own, untimed, right after the restart. `--cpu-prof DIR` profiles the restarted server.
 *
 *   node --import tsx bench/compact-probe.ts [--updates 10000000] [--runs 16] [--rounds 3] [--cpu-prof DIR]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { FileBlob } from '../src/location/file-blob.js'
import { generateRuns, RUN_SPAN } from './dataset.js'
import { arrowBody } from './e2e-data.js'
import { api, postBody, startServer, threadCpuLine, type ServerProcess } from './e2e-server.js'

const { values: args } = parseArgs({
  options: {
    updates: { type: 'string', default: '10000000' },
    runs: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    'warm-up': { type: 'string', default: '0' },
    'cpu-prof': { type: 'string' },
  },
})
const ROOT = resolve(import.meta.dirname, '..')
const ARROW = 'application/vnd.apache.arrow.stream'
const runs = Number(args.runs)

/** User and system CPU seconds of the whole server process (Linux: /proc/<pid>/stat). */
async function cpuSplit(server: ServerProcess): Promise<{ user: number; sys: number }> {
  const stat = await readFile(`/proc/${server.pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 }
}

const gen = generateRuns({ runs, updates: Number(args.updates), seed: 42 })
const dir = await mkdtemp(join(tmpdir(), 'compact-probe-'))
const dataDir = join(dir, 'data')
const configs = { persist_blob_target_size: 32 << 20, persist_compaction_memory_bound_bytes: 256 << 20, compaction_maintenance_enabled: false }
let server = await startServer({ root: ROOT, dataDir, workers: 2, logLevel: 'warn', cpuProfDir: null })
try {
  await api(server.url, 'PATCH', '/v1/configs', configs)
  const shardId = ((await api(server.url, 'POST', '/v1/shards', { name: 'cp', timestamp: 'u64', keySchema: { type: 'binary' }, valSchema: { type: 'binary' } })) as { shardId: string }).shardId
  const inputs: unknown[] = []
  for (let r = 0; r < runs; r++) {
    const w = await postBody(server.url, `/v1/shards/${shardId}/batches?lower=[${r * RUN_SPAN}]&upper=[${(r + 1) * RUN_SPAN}]&append=false`, ARROW, arrowBody(gen.runs[r]!, null))
    if (w.status !== 200 && w.status !== 201) throw new Error(`write ${r}: ${w.status} ${w.text}`)
    inputs.push((JSON.parse(w.text) as { batch: unknown }).batch)
  }
  console.log(`wrote ${gen.updates} updates in ${runs} runs`)
  // A small dataset of its own, compacted right after the restart when --warm-up N > 0 (N updates).
  const warmUpdates = Number(args['warm-up'])
  const small = warmUpdates > 0 ? generateRuns({ runs: 4, updates: warmUpdates, seed: 7 }) : null
  const warmInputs: unknown[] = []
  if (small !== null) {
    for (let r = 0; r < 4; r++) {
      const w = await postBody(server.url, `/v1/shards/${shardId}/batches?lower=[${r * RUN_SPAN}]&upper=[${(r + 1) * RUN_SPAN}]&append=false`, ARROW, arrowBody(small.runs[r]!, null))
      warmInputs.push((JSON.parse(w.text) as { batch: unknown }).batch)
    }
  }
  await server.stop()
  server = await startServer({ root: ROOT, dataDir, workers: 2, logLevel: 'warn', cpuProfDir: args['cpu-prof'] ?? null })
  await api(server.url, 'PATCH', '/v1/configs', configs)
  const blob = new FileBlob(join(dataDir, 'blob'))
  if (small !== null) {
    const t0 = performance.now()
    const w = await postBody(server.url, '/v1/compact', 'application/json', new TextEncoder().encode(JSON.stringify({ shardId, desc: { lower: [0], upper: [4 * RUN_SPAN], since: [small.since] }, inputs: warmInputs })))
    if (w.status !== 200) throw new Error(`warm-up: ${w.status} ${w.text}`)
    console.log(`warm-up compaction of ${small.updates} updates: ${((performance.now() - t0) / 1000).toFixed(2)} s`)
  }
  const body = new TextEncoder().encode(JSON.stringify({ shardId, desc: { lower: [0], upper: [runs * RUN_SPAN], since: [gen.since] }, inputs }))
  for (let round = 0; round < Number(args.rounds); round++) {
    const cpu0 = await cpuSplit(server)
    const threads0 = await server.threadCpuSeconds()
    const sys0 = await server.threadCpuSeconds(true)
    const r = await postBody(server.url, '/v1/compact', 'application/json', body)
    const cpu1 = await cpuSplit(server)
    if (r.status !== 200) throw new Error(`compact: ${r.status} ${r.text}`)
    const output = (JSON.parse(r.text) as { output: { len: number; runMeta: unknown[]; parts: { key?: string }[] } }).output
    console.log(
      `round ${round}: ${r.seconds.toFixed(2)} s, ${output.len} rows in ${output.runMeta.length} run(s); server CPU user ${(cpu1.user - cpu0.user).toFixed(2)} s, sys ${(cpu1.sys - cpu0.sys).toFixed(2)} s; by thread: ${threadCpuLine(server, threads0, await server.threadCpuSeconds(), 1)}; of which sys: ${threadCpuLine(server, sys0, await server.threadCpuSeconds(true), 1)}`,
    )
    for (const p of output.parts) if (p.key !== undefined) await blob.delete(`${shardId}/${p.key}`)
  }
} catch (err) {
  console.error(err)
  process.exitCode = 1
} finally {
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
