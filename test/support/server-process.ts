/**
 * compactd as a real process for tests: started as operators start it (`node --import tsx
 * src/main.ts`, or `npm start`), its JSON log lines read from stdout, its stderr kept, every wait
 * bounded (the child is SIGKILLed when a wait runs out, so a regression fails instead of hanging).
 *
 * - `detached`: the child leads its own process group, so `signalGroup` can send what a terminal's
 *   Ctrl-C sends (the signal to every process of the group) and `killGroup` can clean up npm's
 *   children too.
 * - Log lines are parsed as they come; lines that are not JSON (npm's banner) are kept as text.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

export const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..')

/** Bounds every wait on the child: start-up under tsx on a loaded 2-core box takes seconds. */
export const WAIT_MS = 60_000

export interface ServerProcess {
  readonly proc: ChildProcess
  /** Everything written to stderr so far. */
  stderr(): string
  /** Every stdout line so far: parsed JSON objects, or the raw text of other lines. */
  lines(): ReadonlyArray<Record<string, unknown> | string>
  /**
   * Resolves with the `nth` (1: the first) log entry, now or later, whose `msg` is `msg`; rejects
   * if the child exits first.
   */
  logLine(msg: string, nth?: number): Promise<Record<string, unknown>>
  /** The exit code (null if killed by a signal) and signal, bounded by WAIT_MS. */
  exited(): Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  /** Sends `signal` to every process of the child's group (needs `detached`). */
  signalGroup(signal: NodeJS.Signals): void
  /** SIGKILLs the child (and its group when detached); for `t.after`. Never throws. */
  kill(): void
}

export interface StartOptions {
  /** The whole environment of the child (PATH is added from this process when missing). */
  readonly env?: Readonly<Record<string, string>>
  readonly detached?: boolean
}

/** `node --import tsx src/main.ts ...args` on this process's Node. */
export function startMain(args: readonly string[], opts: StartOptions = {}): ServerProcess {
  return startProcess(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], opts)
}

/** `npm start -- ...args`, as an operator types it. */
export function startNpm(args: readonly string[], opts: StartOptions = {}): ServerProcess {
  return startProcess('npm', ['start', '--', ...args], opts)
}

function startProcess(command: string, args: readonly string[], opts: StartOptions): ServerProcess {
  const detached = opts.detached ?? false
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  })
  let stderr = ''
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const lines: Array<Record<string, unknown> | string> = []
  const waiters = new Set<() => void>()
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    lines.push(parse(line))
    for (const w of waiters) w()
  })
  // NB: 'close', not 'exit': every stdout line has been read by then.
  const exit = once(proc, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  let gone = false
  void exit.then(() => {
    gone = true
    for (const w of waiters) w()
  })

  const kill = (): void => {
    try {
      if (detached && proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL')
      else proc.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
  const bounded = async <T>(work: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        kill()
        reject(new Error(`${what}: no answer within ${WAIT_MS} ms; stderr: ${stderr}`))
      }, WAIT_MS)
    })
    try {
      return await Promise.race([work, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  return {
    proc,
    stderr: () => stderr,
    lines: () => lines,
    logLine: (msg, nth = 1) =>
      bounded(
        new Promise<Record<string, unknown>>((resolve, reject) => {
          const check = (): void => {
            const found = lines.filter((l): l is Record<string, unknown> => typeof l === 'object' && l.msg === msg)[nth - 1]
            if (found !== undefined) resolve(found)
            else if (gone) reject(new Error(`the server exited before logging "${msg}": ${stderr}`))
            else return
            waiters.delete(check)
          }
          waiters.add(check)
          check()
        }),
        `waiting for "${msg}"`,
      ),
    exited: () => bounded(exit.then(([code, signal]) => ({ code, signal })), 'waiting for the exit'),
    signalGroup: (signal) => {
      if (!detached || proc.pid === undefined) throw new Error('signalGroup needs a detached child')
      process.kill(-proc.pid, signal)
    },
    kill,
  }
}

function parse(line: string): Record<string, unknown> | string {
  try {
    const value = JSON.parse(line) as unknown
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : line
  } catch {
    return line
  }
}

/** True while a process with this pid exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
