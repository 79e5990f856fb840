import { fork } from 'node:child_process'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { startServer } from './e2e-server.js'
import { RUN_SPAN } from './dataset.js'
import { summarizeProfiles, formatProfile } from './cpu-profile.js'

const ROOT = process.cwd()
const work = join(ROOT, 'bench/.work', `dbg-${Date.now()}`)
const dataDir = join(work, 'data')
await mkdir(dataDir, { recursive: true })
const child = fork(join(ROOT, 'bench/e2e-load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
const ask = (cmd: object): Promise<any> => new Promise((res) => { child.once('message', res); child.send(cmd) })
const api = async (url: string, method: string, path: string, body?: unknown) => {
  const r = await fetch(`${url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const j = await r.json(); if (r.status >= 300) throw new Error(JSON.stringify(j)); return j as any
}
const runs = 16
const gen = await ask({ kind: 'generate', runs, updates: 10_000_000, seed: 42 })
console.log('generated', gen.seconds)
let server = await startServer({ root: ROOT, dataDir, workers: 2, logLevel: 'warn', cpuProfDir: null })
await api(server.url, 'PATCH', '/v1/configs', { persist_blob_target_size: 32 * 1024 * 1024, persist_compaction_memory_bound_bytes: 256 * 1024 * 1024, compaction_process_requests: false })
const shard = (await api(server.url, 'POST', '/v1/shards', { name: 'x', timestamp: 'u64', keySchema: { type: 'binary' }, valSchema: { type: 'binary' } })).shardId
const w = await ask({ kind: 'write-arrow', url: server.url, shardId: shard, runs: Array.from({ length: runs }, (_, i) => i), shuffle: false, append: false })
const inputs = w.requests.map((t: any) => t.json.batch)
console.log('written', w.requests.reduce((s: number, t: any) => s + t.seconds, 0).toFixed(2), 's')
await server.stop()
const prof = process.env.PROF === '1' ? join(work, 'prof') : null
server = await startServer({ root: ROOT, dataDir, workers: 2, logLevel: 'warn', cpuProfDir: prof })
await api(server.url, 'PATCH', '/v1/configs', { compaction_process_requests: true })
if (process.env.DELAY) await new Promise((r) => setTimeout(r, Number(process.env.DELAY)))
const desc = { lower: [0], upper: [runs * RUN_SPAN], since: [gen.since] }
for (const name of ['first', 'warm', 'warm2'].slice(0, Number(process.env.N ?? 3))) {
  const ut = async () => { const st = (await import('node:fs/promises')).readFile(`/proc/${server.pid}/stat`, 'utf8'); const f = (await st).split(') ')[1]!.split(' '); return [Number(f[11]) / 100, Number(f[12]) / 100] }
  const [u0, s0] = await ut()
  const cpu0 = await server.cpuSeconds()
  const r = await ask({ kind: 'post', url: server.url, path: '/v1/compact', body: { shardId: shard, desc, inputs } })
  const t = r.requests[0]
  console.log(name, t.seconds.toFixed(2), 's', t.status, 'runs', t.json.output?.runMeta?.length, 'rows', t.json.output?.len, 'cpu', ((await server.cpuSeconds())! - cpu0!).toFixed(2), 'user', ((await ut())[0]! - u0!).toFixed(2), 'sys', ((await ut())[1]! - s0!).toFixed(2))
  for (const p of t.json.output.parts) if ('key' in p) await rm(join(dataDir, 'blob', shard, p.key), { force: true })
}
await server.stop()
child.send({ kind: 'exit' })
if (prof !== null) for (const s of (await summarizeProfiles(prof, ROOT)).sort((a, b) => b.busyMs - a.busyMs).slice(0, 4)) console.log(formatProfile(s, 45))
await rm(work, { recursive: true, force: true })
