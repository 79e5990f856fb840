/**
 * The process entry, as an operator runs it: `node --import tsx src/main.ts`.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..')
/** Bounds every wait on the child: start-up under tsx on a loaded 2-core box is a few seconds. */
const WAIT_MS = 30_000

interface Child {
  readonly proc: ChildProcess
  readonly stderr: () => string
  readonly exit: Promise<[number | null, NodeJS.Signals | null]>
}

function start(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exit = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { proc, stderr: () => stderr, exit }
}

/** Resolves with the first stdout log line whose msg is `msg`, parsed. */
async function logLine(child: Child, msg: string): Promise<Record<string, unknown>> {
  const lines = createInterface({ input: child.proc.stdout! })
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), WAIT_MS)
  try {
    for await (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>
      if (entry.msg === msg) return entry
    }
    throw new Error(`the server exited before logging "${msg}": ${child.stderr()}`)
  } finally {
    clearTimeout(timer)
  }
}

async function exited(child: Child): Promise<number | null> {
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), WAIT_MS)
  try {
    const [code] = await child.exit
    return code
  } finally {
    clearTimeout(timer)
  }
}

describe('main', () => {
  it('starts on the file stores under --data-dir, serves, and exits 0 on SIGTERM', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const child = start(['--port', '0', '--data-dir', dataDir])
    t.after(() => child.proc.kill('SIGKILL'))

    const listening = await logLine(child, 'compactd listening')
    const address = listening.address as string
    assert.match(address, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.equal((listening.settings as Record<string, unknown>).blob, `file://${dataDir}/blob`)
    assert.equal((listening.settings as Record<string, unknown>).auth, 'off')

    const health = await fetch(`${address}/healthz`)
    assert.equal(health.status, 200)
    assert.deepEqual(await health.json(), { status: 'ok' })
    const ready = await fetch(`${address}/readyz`)
    assert.equal(ready.status, 200)
    assert.equal(ready.headers.get('x-request-id')?.length, 36)
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { blob: 'ok', consensus: 'ok', scheduler: 'running' } })

    child.proc.kill('SIGTERM')
    assert.equal(await exited(child), 0, child.stderr())
    assert.deepEqual((await readdir(dataDir)).sort(), ['blob', 'consensus'])
  })

  it('exits 2 with one line naming a bad setting', async () => {
    const child = start(['--port', 'http'])
    assert.equal(await exited(child), 2)
    assert.equal(child.stderr(), 'compactd: --port/COMPACTD_PORT: must be an integer in [0, 65535]\n')
  })

  it('exits 2 refusing a non-loopback host without a token', async () => {
    const child = start([], { COMPACTD_HOST: '0.0.0.0' })
    assert.equal(await exited(child), 2)
    assert.match(child.stderr(), /^compactd: --host\/COMPACTD_HOST: refusing to listen on 0\.0\.0\.0 without COMPACTD_AUTH_TOKEN;[^\n]*\n$/)
  })

  it('prints usage for --help and exits 0', async () => {
    const child = start(['--help'])
    let stdout = ''
    child.proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    assert.equal(await exited(child), 0)
    assert.match(stdout, /^Usage: compactd/)
  })
})
