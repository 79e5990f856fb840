/**
 * `npm start` as operators run it, stopped as they stop it, with a compaction running:
 *
 * - Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the compaction cannot
 *   finish: the shutdown grace is used, the compaction is aborted at its end and the parts it had
 *   written are deleted from blob storage, the waiting client gets its answer, exit 0.
 * - SIGTERM to the npm process alone (what `kill <pid>` does) while the compaction can still
 *   finish: it finishes within the grace and applies, the waiting client gets 200, exit 0.
 *
 * Either way no process is left behind. The blob store is the real S3-protocol server behind a
 * loopback proxy that can hold the compaction's uploads (GatedS3), so "still running when the
 * signal arrives" is an event the test waits for, not a matter of timing.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { S3Blob } from '../src/location/s3-blob.js'
import { S3_TEST_BUCKET, startS3, type S3Server } from './support/s3.js'
import { alive, startNpm, type ServerProcess } from './support/server-process.js'

/** The grace the Ctrl-C test waits out (its compaction is held past it). */
const GRACE_MS = 2_000
/**
 * The SIGTERM test's grace: only a bound on a compaction that is released at once, so generous (a
 * machine busy with other tests may take seconds to finish it; the test waits only as long as that).
 */
const LONG_GRACE_MS = 30_000

interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
}

/** NB: Promise.withResolvers is Node 22+; the suite also runs on Node 20. */
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
/** S3 credentials for s3rver, and npm quiet about its own updates (HOME is a temp dir without ~/.npmrc). */
const ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', npm_config_update_notifier: 'false' }

/**
 * A proxy in front of s3rver. Once `armed(n)`, it lets `n` more PUTs through (resolving `passed`
 * when their answers are back) and holds every later PUT until `release()`; `held` resolves at the
 * first held one, `heldAborted` when its client gave up on it.
 */
class GatedS3 {
  readonly #server: Server
  readonly #target: URL
  #allowance = Infinity
  #released = false
  #waiting: Array<() => void> = []
  #passed = deferred<string[]>()
  #passedKeys: string[] = []
  #passedTarget = 0
  readonly held = deferred<void>()
  readonly heldAborted = deferred<void>()

  constructor(target: string) {
    this.#target = new URL(target)
    this.#server = createServer((req, res) => this.#handle(req, res))
  }

  async listen(): Promise<string> {
    this.#server.listen(0, '127.0.0.1')
    await once(this.#server, 'listening')
    return `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`
  }

  /** Lets `n` more PUTs through, then holds the rest; resolves with the keys that passed. */
  armed(n: number): Promise<string[]> {
    this.#allowance = n
    this.#passedTarget = n
    return this.#passed.promise
  }

  /** Lets every held PUT whose client still waits through, and every later one. */
  release(): void {
    this.#released = true
    for (const go of this.#waiting.splice(0)) go()
  }

  /** NB: held PUTs are dropped, never forwarded: one whose client is gone would leave s3rver waiting for its body. */
  async close(): Promise<void> {
    this.#released = true
    this.#waiting.length = 0
    this.#server.closeAllConnections()
    this.#server.close()
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const forward = (): void => {
      const up = request(
        { host: this.#target.hostname, port: this.#target.port, method: req.method, path: req.url, headers: req.headers, agent: false },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
          if (req.method === 'PUT' && counted) {
            answer.on('end', () => {
              this.#passedKeys.push(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname))
              if (this.#passedKeys.length === this.#passedTarget) this.#passed.resolve(this.#passedKeys)
            })
          }
        },
      )
      up.on('error', () => res.destroy())
      req.pipe(up)
    }
    let counted = false
    if (req.method !== 'PUT' || this.#released || this.#allowance === Infinity) return forward()
    if (this.#allowance > 0) {
      this.#allowance--
      counted = true
      return forward()
    }
    this.held.resolve()
    let aborted = false
    res.on('close', () => {
      if (res.writableFinished) return
      aborted = true
      this.heldAborted.resolve()
    })
    this.#waiting.push(() => {
      if (!aborted) forward()
    })
  }
}

interface Run {
  readonly npm: ServerProcess
  readonly address: string
  readonly gate: GatedS3
  readonly shardId: string
  /** The shard's keys in the bucket before the compaction. */
  readonly keysBefore: readonly string[]
  /** The POST of the compaction with `wait: true`, still in flight. */
  readonly waiting: Promise<Response>
  /** Keys of the compaction's outputs that reached the bucket before the hold. */
  readonly written: readonly string[]
}

async function json(res: Response | Promise<Response>, status: number): Promise<Record<string, unknown>> {
  const r = await res
  const body = (await r.json()) as Record<string, unknown>
  assert.equal(r.status, status, JSON.stringify(body))
  return body
}

describe('npm start: signals with a compaction running', () => {
  let s3: S3Server
  let home: string
  let direct: S3Blob
  before(async () => {
    s3 = await startS3()
    home = await mkdtemp(join(tmpdir(), 'compactd-npm-'))
    direct = new S3Blob({ bucket: S3_TEST_BUCKET, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true })
  })
  after(async () => {
    await direct?.close()
    await s3?.stop()
    await rm(home, { recursive: true, force: true })
  })

  /** The shard's keys in the bucket, under the run's prefix `name/`, without it. */
  const keysOf = async (name: string, shardId: string): Promise<string[]> => {
    const keys: string[] = []
    for await (const meta of direct.list(`${name}/${shardId}/`)) keys.push(meta.key.slice(`${name}/`.length))
    return keys.sort()
  }

  /** npm start on the gated store, one shard with a 1-KiB-part batch, and its compaction held after one output part. */
  async function startRun(t: { after(fn: () => unknown): void }, name: string, graceMs: number): Promise<Run> {
    const gate = new GatedS3(s3.endpoint)
    const proxy = await gate.listen()
    t.after(() => gate.close())
    const blob = `s3://${S3_TEST_BUCKET}/${name}/?endpoint=${encodeURIComponent(proxy)}&region=us-east-1&forcePathStyle=true`
    const npm = startNpm(['--port', '0', '--data-dir', join(home, name), '--blob', blob, '--shutdown-grace', `${graceMs}ms`, '--workers', '1'], {
      env: { HOME: home, ...ENV },
      detached: true,
    })
    t.after(npm.kill)
    const listening = await npm.logLine('compactd listening')
    assert.equal(listening.mallocHugePages, true, 'npm start asks malloc for huge pages (src/engine/huge-pages.ts)')
    const address = listening.address as string
    const v1 = (path: string, method: string, body?: unknown): Promise<Response> =>
      fetch(`${address}/v1${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })

    await json(v1('/configs', 'PATCH', { persist_inline_writes_single_max_bytes: 0, persist_blob_target_size: 1024 }), 200)
    const shard = await json(v1('/shards', 'POST', { name, timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }), 201)
    const shardId = shard.shardId as string
    const updates = Array.from({ length: 600 }, (_, i) => ({ key: `key-${String(i).padStart(5, '0')}`, val: i, time: i % 4, diff: 1 }))
    await json(v1(`/shards/${shardId}/batches`, 'POST', { lower: [0], upper: [5], updates }), 201)
    const trace = (await json(v1(`/shards/${shardId}`, 'GET'), 200)).trace as { batches: Array<{ desc: unknown }> }
    assert.equal(trace.batches.length, 1)
    const keysBefore = await keysOf(name, shardId)
    assert.ok(keysBefore.length >= 8, `the batch is several parts: ${keysBefore.length}`)

    const passed = gate.armed(1)
    const waiting = v1(`/shards/${shardId}/compactions`, 'POST', { desc: trace.batches[0]?.desc, wait: true })
    waiting.catch(() => undefined) // awaited by the test; a failure elsewhere must not leave it unhandled
    const [written] = await Promise.all([passed, gate.held.promise])
    const writtenKeys = written.map((path: string) => path.slice(`/${S3_TEST_BUCKET}/${name}/`.length))
    assert.ok(writtenKeys.every((k: string) => k.startsWith(`${shardId}/`) && !keysBefore.includes(k)), `outputs: ${writtenKeys.join(', ')}`)
    assert.deepEqual(await keysOf(name, shardId), [...keysBefore, ...writtenKeys].sort(), 'the output part is in the bucket')
    return { npm, address, gate, shardId, keysBefore, waiting, written: writtenKeys }
  }

  /** The server's pid, from its log lines (npm's child). */
  const serverPid = (npm: ServerProcess): number => {
    const line = npm.lines().find((l): l is Record<string, unknown> => typeof l === 'object' && typeof l.pid === 'number')
    assert.ok(line !== undefined)
    return line.pid as number
  }

  it('Ctrl-C: uses the grace, aborts the compaction at its end, deletes what it wrote, exits 0', async (t) => {
    const run = await startRun(t, 'ctrl-c', GRACE_MS)
    const pid = serverPid(run.npm)
    const signalledAt = Date.now()
    run.npm.signalGroup('SIGINT')

    // The compaction outlived the grace: it goes back to the cluster's queue, and the waiting client
    // is told to follow it on another instance.
    const answer = await json(run.waiting, 503)
    assert.equal(answer.code, 'SERVICE_UNAVAILABLE')
    assert.match(String(answer.message), /this instance is stopping; compaction c[0-9a-f-]+ is queued and another instance finishes it/)
    const { code, signal } = await run.npm.exited()
    const elapsed = Date.now() - signalledAt
    assert.equal(code, 0, `${String(signal)} ${run.npm.stderr()}`)
    assert.ok(elapsed >= GRACE_MS, `exited after ${elapsed} ms, before the ${GRACE_MS} ms grace`)
    await run.gate.heldAborted.promise
    assert.equal(alive(pid), false, 'the server process is gone')

    assert.deepEqual(await keysOf('ctrl-c', run.shardId), run.keysBefore, 'the compaction’s outputs were deleted, its inputs kept')
    const messages = run.npm.lines().flatMap((l) => (typeof l === 'object' ? [l.msg] : []))
    assert.equal(messages.filter((m) => m === 'shutting down').length, 1, 'the relayed second SIGINT is the same request')
    assert.ok(messages.includes('stopped'))
  })

  it('SIGTERM to npm: the compaction finishes within the grace and applies, exits 0', async (t) => {
    const run = await startRun(t, 'sigterm', LONG_GRACE_MS)
    const pid = serverPid(run.npm)
    assert.ok(run.npm.proc.pid !== undefined)
    process.kill(run.npm.proc.pid, 'SIGTERM')
    await run.npm.logLine('shutting down')
    run.gate.release()

    const answer = await json(run.waiting, 200)
    assert.equal(answer.status, 'succeeded')
    assert.equal(answer.result, 'applied_exact')
    const { code, signal } = await run.npm.exited()
    assert.equal(code, 0, `${String(signal)} ${run.npm.stderr()} ${JSON.stringify(run.npm.lines().slice(-8))}`)
    assert.equal(alive(pid), false, 'the server process is gone')
    const keysAfter = await keysOf('sigterm', run.shardId)
    for (const k of run.written) assert.ok(keysAfter.includes(k), `output ${k} kept`)
  })
})
