/**
 * Runs Prometheus' `promtool` (Debian package `prometheus`; scripts/ensure-test-deps.sh installs
 * it) and returns what it said. Never throws for a non-zero exit: the caller asserts on it.
 */
import { spawn } from 'node:child_process'

export interface ToolRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** `promtool <args>`, with `stdin` piped in when given; bounded by `timeoutMs`. */
export function promtool(args: readonly string[], opts: { readonly stdin?: string; readonly cwd?: string; readonly timeoutMs?: number } = {}): Promise<ToolRun> {
  return run('promtool', args, opts)
}

export function run(cmd: string, args: readonly string[], opts: { readonly stdin?: string; readonly cwd?: string; readonly timeoutMs?: number } = {}): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 60_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? new Error(`${cmd} not found: install the Debian package prometheus (npm test does, through scripts/ensure-test-deps.sh)`) : err),
    )
    child.once('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(opts.stdin ?? '')
  })
}
