/**
 * A real compactd server as a child process, started as `npm start` starts it (`tsx src/main.ts`,
 * with the malloc tunable `npm start` sets) with the default file stores under a data directory, on a free loopback port; stopped with
 * SIGTERM (its graceful shutdown) and restartable on the same data.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { withHugePages } from '../src/engine/huge-pages.js'

export interface ServerOptions {
  readonly root: string
  readonly dataDir: string
  readonly workers: number
  /** `warn` in the benchmark: request logging would be measured with everything else otherwise. */
  readonly logLevel: string
  /** Write a CPU profile of the server (and its workers) into this directory, or null. */
  readonly cpuProfDir: string | null
}

export interface ServerProcess {
  readonly url: string
  readonly pid: number
  /** This process's peak RSS since the last `resetPeak()` (Linux: VmHWM), or null. */
  peakRssBytes(): Promise<number | null>
  /** CPU seconds (user + system, every thread) the server has used (Linux: /proc/<pid>/stat), or null. */
  cpuSeconds(): Promise<number | null>
  /** CPU seconds per thread (Linux: /proc/<pid>/task/<tid>/stat), by "<tid> <name>"; empty elsewhere. `sys`: only the kernel's share. */
  threadCpuSeconds(sys?: boolean): Promise<Map<string, number>>
  /** Resets the peak RSS (Linux: /proc/<pid>/clear_refs). */
  resetPeak(): Promise<void>
  /** SIGTERM, then the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>
}

/** A port the kernel just had free on 127.0.0.1. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      s.close(() => resolve(port))
    })
  })
}

/** Node flags for the server from `BENCH_SERVER_NODE_FLAGS` (e.g. `--trace-gc`, which Node refuses in NODE_OPTIONS). */
function extraNodeFlags(): string[] {
  return (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f !== '')
}

export async function startServer(opts: ServerOptions): Promise<ServerProcess> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', ...extraNodeFlags(), ...(opts.cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`]), join(opts.root, 'src/main.ts'), '--port', String(port), '--host', '127.0.0.1', '--data-dir', opts.dataDir, '--workers', String(opts.workers), '--log-level', opts.logLevel],
    // NB: with the malloc tunable `npm start` sets (src/engine/huge-pages.ts), unless BENCH_NO_HUGE is set (an A/B).
    { cwd: opts.root, stdio: ['ignore', 'inherit', 'inherit'], env: process.env.BENCH_NO_HUGE === '1' ? process.env : withHugePages(process.env) },
  )
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = `http://127.0.0.1:${port}`
  // Ready when /readyz answers 200 (bounded: a minute).
  const deadline = performance.now() + 60_000
  for (;;) {
    const early = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 100))])
    if (early !== 'running') throw new Error(`compactd exited with ${early} before it was ready`)
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ok) break
    if (performance.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error('compactd was not ready within a minute')
    }
  }
  const pid = child.pid as number
  return {
    url,
    pid,
    async peakRssBytes() {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
      const m = /^VmHWM:\s+(\d+) kB$/m.exec(status)
      return m === null ? null : Number(m[1]) * 1024
    },
    async cpuSeconds() {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null)
      if (stat === null) return null
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return (Number(f[11]) + Number(f[12])) / 100
    },
    async threadCpuSeconds(sys = false) {
      const out = new Map<string, number>()
      const tids = await readdir(`/proc/${pid}/task`).catch(() => [])
      for (const tid of tids) {
        const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => null)
        if (stat === null) continue
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        out.set(`${tid} ${name}`, ((sys ? 0 : Number(f[11])) + Number(f[12])) / 100)
      }
      return out
    },
    async resetPeak() {
      await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined)
    },
    async stop(graceMs = 60_000) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * The CPU each thread of `server` used between two `threadCpuSeconds()` readings, per request:
 * "main 0.052, 5782 node 0.071, …" (threads under 10 ms a request left out). The main thread is
 * the one whose id is the pid; the others are the workers, V8's helpers (GC) and libuv's pool.
 */
export function threadCpuLine(server: ServerProcess, before: Map<string, number>, after: Map<string, number>, requests: number): string {
  const busy = [...after].map(([t, c]) => [t, (c - (before.get(t) ?? 0)) / requests] as const).filter(([, c]) => c >= 0.01)
  return busy.map(([t, c]) => `${t.startsWith(`${server.pid} `) ? 'main' : t} ${c.toFixed(3)}`).join(', ')
}

/** POSTs `body` (of content type `type`) to `url` + `path`: the status, the response text, and the seconds it took. */
export function postBody(url: string, path: string, type: string, body: Uint8Array): Promise<{ status: number; text: string; seconds: number }> {
  return new Promise((res, rej) => {
    const t0 = performance.now()
    const req = httpRequest(`${url}${path}`, { method: 'POST', headers: { 'content-type': type, 'content-length': String(body.byteLength) } }, (r: IncomingMessage) => {
      const chunks: Buffer[] = []
      r.on('data', (c: Buffer) => chunks.push(c))
      r.on('end', () => {
        const seconds = (performance.now() - t0) / 1000
        res({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), seconds })
      })
      r.on('error', rej)
    })
    req.on('error', rej)
    req.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength))
  })
}

/** A JSON API call; throws on a status of 300 or more. */
export async function api(url: string, method: string, path: string, body: unknown): Promise<unknown> {
  const r = await fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const json: unknown = await r.json()
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(json)}`)
  return json
}
