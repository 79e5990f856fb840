/**
 * Runs a command-line tool to completion and returns what it said; never throws for a non-zero
 * exit (the caller asserts on it). Bounded by `timeoutMs` (default 60 s).
 */
import { spawn } from 'node:child_process'

export interface ToolRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface ToolOptions {
  /** Piped to stdin (closed right after). */
  readonly stdin?: string
  readonly cwd?: string
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
  readonly timeoutMs?: number
  /** Said when the command is not found (ENOENT). */
  readonly missing?: string
}

export function runTool(cmd: string, args: readonly string[], opts: ToolOptions = {}): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 60_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new Error(opts.missing ?? `${cmd} not found`) : err))
    child.once('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(opts.stdin ?? '')
  })
}
