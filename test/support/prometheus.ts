/**
 * A real Prometheus for tests (Debian package `prometheus`): listens on 127.0.0.1 on a free port,
 * keeps its TSDB in a temp dir, scrapes the given targets every second and evaluates the given
 * rule files every second. `stop()` sends SIGTERM (SIGKILL after 10 s), waits for the exit and
 * removes the dir.
 *
 * Readiness is `GET /-/ready` polled every 100 ms within a bound; a Prometheus that exits while
 * starting fails the start with its log.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { freePort } from './free-port.js'

export interface PrometheusOptions {
  /** `host:port` targets of the one scrape job. */
  readonly targets: readonly string[]
  readonly job: string
  /** Absolute paths of rule files to load. */
  readonly ruleFiles?: readonly string[]
  /** More of the job's scrape config (`scheme`, `tls_config`, ...), as a doc's example gives it. */
  readonly scrape?: Readonly<Record<string, unknown>>
  readonly startTimeoutMs?: number
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>
  readonly value: number
}

export interface PrometheusServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** An instant query through `/api/v1/query`. */
  query(expr: string): Promise<Sample[]>
  /** GET `/api/v1/<path>`'s `data`. */
  api(path: string): Promise<unknown>
  stop(): Promise<void>
}

export async function startPrometheus(opts: PrometheusOptions): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'compactd-prometheus-'))
  try {
    const config = join(dir, 'prometheus.yml')
    await writeFile(config, JSON.stringify(configOf(opts), null, 2)) // YAML is a superset of JSON
    // A port found free may be taken before Prometheus binds it: try a few.
    let lastError: unknown
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      try {
        return await launch(dir, config, port, opts.startTimeoutMs ?? 60_000)
      } catch (err) {
        lastError = err
      }
    }
    throw lastError
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
}

function configOf(opts: PrometheusOptions): unknown {
  return {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: opts.ruleFiles ?? [],
    scrape_configs: [{ ...opts.scrape, job_name: opts.job, static_configs: [{ targets: opts.targets }] }],
  }
}

async function launch(dir: string, config: string, port: number, startTimeoutMs: number): Promise<PrometheusServer> {
  const url = `http://127.0.0.1:${port}`
  const child = spawn(
    'prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let log = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (log = `${log}${d}`.slice(-8000)))
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'ENOENT' ? 'prometheus not found: install the Debian package prometheus (npm test does, through scripts/ensure-test-deps.sh)' : err.message),
    )
    child.once('exit', (code, signal) => resolve(`prometheus exited (${code ?? signal}) while starting:\n${log}`))
  })

  const deadline = Date.now() + startTimeoutMs
  for (;;) {
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ready) break
    const outcome = await Promise.race([exited, delay(100).then(() => null)])
    if (outcome !== null) throw new Error(outcome)
    if (Date.now() > deadline) {
      await stopChild(child)
      throw new Error(`prometheus was not ready within ${startTimeoutMs} ms:\n${log}`)
    }
  }

  let stopping: Promise<void> | undefined
  const api = async (path: string): Promise<unknown> => {
    const res = await fetch(`${url}/api/v1/${path}`)
    const body = (await res.json()) as { status: string; data?: unknown; error?: string }
    if (body.status !== 'success') throw new Error(`prometheus /api/v1/${path}: ${body.error ?? res.status}`)
    return body.data
  }
  return {
    url,
    api,
    async query(expr: string): Promise<Sample[]> {
      const data = (await api(`query?query=${encodeURIComponent(expr)}`)) as { result: Array<{ metric: Record<string, string>; value: [number, string] }> }
      return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }))
    },
    stop: () =>
      (stopping ??= (async () => {
        await stopChild(child)
        await rm(dir, { recursive: true, force: true })
      })()),
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exit = once(child, 'exit')
  child.kill('SIGTERM')
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  try {
    await exit
  } finally {
    clearTimeout(killer)
  }
}

/** Calls `probe` every 100 ms until it returns a value that is not undefined, within `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last === undefined ? '' : ` (last error: ${String(last)})`}`)
    await delay(100)
  }
}
