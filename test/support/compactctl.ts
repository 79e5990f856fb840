/**
 * compactctl as operators run it, for tests: the real launcher (`bin/compactctl.js`, as `npx
 * compactctl` runs it) in a child process, with the server's URL and token in its environment.
 * Every run is bounded (the child is killed past `timeoutMs`, so a hang fails instead of stalling).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createReadStream } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TOKEN, type OperatorServer } from './operator-server.js'
import { ROOT } from './server-process.js'

const BIN = join(ROOT, 'bin', 'compactctl.js')
const PEAK_RSS = join(ROOT, 'test', 'support', 'report-peak-rss.ts')

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  /** The child's peak resident set (VmHWM), when asked for with `peakRss`. */
  readonly peakRssBytes?: number
}

export interface CtlOptions {
  /** Extra environment (overrides the server's URL and token). */
  readonly env?: Record<string, string>
  /** A file piped to the child's stdin (else stdin is empty). */
  readonly stdinFile?: string
  /** Report the child's peak RSS (Linux: VmHWM of /proc/self/status as it exits). */
  readonly peakRss?: boolean
  readonly timeoutMs?: number
}

export interface CtlChild {
  readonly proc: ChildProcess
  readonly done: Promise<Run>
}

/** Starts compactctl with `args`; `done` resolves when it has exited. */
export function startCtl(s: OperatorServer | null, args: readonly string[], opts: CtlOptions = {}): CtlChild {
  const base: Record<string, string> = s === null ? {} : { COMPACTD_URL: s.url, COMPACTD_TOKEN: TOKEN }
  const rssFile = join(tmpdir(), `compactctl-rss-${process.pid}-${Math.random().toString(16).slice(2)}`)
  const env = { ...process.env, COMPACTD_URL: '', COMPACTD_TOKEN: '', COMPACTD_TOKEN_FILE: '', ...base, ...opts.env, ...(opts.peakRss === true ? { COMPACTCTL_TEST_PEAK_RSS_FILE: rssFile } : {}) }
  const node = opts.peakRss === true ? ['--import', 'tsx', '--import', PEAK_RSS] : []
  const proc = spawn(process.execPath, [...node, BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c))
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c))
  if (opts.stdinFile === undefined) proc.stdin?.end()
  else createReadStream(opts.stdinFile).pipe(proc.stdin!)
  // NB: the child may exit before reading all of stdin (a usage error); that is not this helper's error.
  proc.stdin?.on('error', () => undefined)
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
  const done = new Promise<Run>((resolve, reject) => {
    proc.once('error', reject)
    proc.once('close', (code, signal) => {
      clearTimeout(timer)
      void (async () => {
        const rss = opts.peakRss === true ? Number(await readFile(rssFile, 'utf8').catch(() => 'NaN')) : undefined
        await rm(rssFile, { force: true })
        resolve({ code: code ?? (signal === null ? -1 : 128), stdout, stderr, ...(rss === undefined ? {} : { peakRssBytes: rss }) })
      })()
    })
  })
  return { proc, done }
}

/** Runs compactctl with the server's URL and token in its environment (unless `env` overrides). */
export function ctl(s: OperatorServer | null, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return startCtl(s, args, { env }).done
}

/** The same in a pseudo-terminal (util-linux `script`): stdout is a terminal. */
export function ctlOnTerminal(s: OperatorServer, args: readonly string[]): Promise<Run> {
  const quote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`
  const command = [process.execPath, BIN, ...args].map(quote).join(' ')
  const env = { ...process.env, COMPACTD_URL: s.url, COMPACTD_TOKEN: TOKEN }
  return new Promise((resolve) => {
    execFile('script', ['-qec', command, '/dev/null'], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

export const json = <T>(r: Run): T => JSON.parse(r.stdout) as T
