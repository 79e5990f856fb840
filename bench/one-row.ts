/**
 * A focused run of the end-to-end scenario's last phase: a one-row shard read by `--clients`
 * keep-alive clients at once, against a real server child process (bench/e2e-server.ts) from the
 * load generator's own process (bench/e2e-load.ts), with the server's CPU time per request.
 * For profiling small reads without the 8-minute scenario; `npm run bench` does not run it.
 *
 *   node --import tsx bench/one-row.ts [--clients 50] [--requests 20000] [--rounds 1] [--as-ofs 1] [--cpu-prof-dir DIR]
 *
 * `--as-ofs N`: request i of round r reads at asOf 5 + (r - 1) × N + i % N (the shard's upper is
 * far above), so that reads of the same version and asOf (which a kept body answers) are not all
 * there is; with N ≥ requests every read is of an asOf not read before.
 */
import { fork } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { LoadCommand, LoadReply } from './e2e-load.js'
import { startServer } from './e2e-server.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    requests: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '1' },
    'as-ofs': { type: 'string', default: '1' },
    'cpu-prof-dir': { type: 'string' },
  },
})

async function api(url: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const json: unknown = await res.json()
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

const dir = await mkdtemp(join(tmpdir(), 'compactd-one-row-'))
const load = fork(join(HERE, 'e2e-load.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
const ask = (cmd: LoadCommand): Promise<LoadReply> =>
  new Promise((resolve) => {
    load.once('message', (m: LoadReply) => resolve(m))
    load.send(cmd)
  })
const server = await startServer({ root: join(HERE, '..'), dataDir: join(dir, 'data'), workers: availableParallelism(), logLevel: 'warn', cpuProfDir: args['cpu-prof-dir'] ?? null })
try {
  const { shardId } = (await api(server.url, 'POST', '/v1/shards', { name: 'one-row', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })) as { shardId: string }
  await api(server.url, 'POST', `/v1/shards/${shardId}/batches`, { lower: [0], upper: [1_000_000_000], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] })
  for (let round = 1; round <= Number(args.rounds); round++) {
    const cpu0 = await server.cpuSeconds()
    const c = await ask({ kind: 'concurrent-snapshots', url: server.url, shardId, asOf: 5 + (round - 1) * Number(args['as-ofs']), clients: Number(args.clients), requests: Number(args.requests), asOfs: Number(args['as-ofs']) })
    const cpu1 = await server.cpuSeconds()
    if (c.kind !== 'concurrency') throw new Error(c.kind === 'error' ? c.message : `unexpected ${c.kind}`)
    const cpu = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0
    console.log(
      `round ${round}: ${c.requests} requests (${c.failures} failed) in ${c.seconds.toFixed(2)} s: ${(c.requests / c.seconds).toFixed(0)} req/s, p50 ${c.latency.p50Ms.toFixed(1)} ms, p99 ${c.latency.p99Ms.toFixed(1)} ms, max ${c.latency.maxMs.toFixed(1)} ms; server CPU ${cpu === null ? '?' : `${cpu.toFixed(2)} s (${((1000 * cpu) / c.requests).toFixed(3)} ms/request)`}`,
    )
  }
} finally {
  load.send({ kind: 'exit' } satisfies LoadCommand)
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
