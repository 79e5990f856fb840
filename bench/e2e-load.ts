/**
 * The load generator of the end-to-end scenario, a child process of its own: it generates the
 * dataset once (seeded, untimed) and runs the orchestrator's commands against the server over
 * loopback HTTP, one at a time, timing only the requests (a body is built before its request's
 * clock starts; a response is counted after it stops).
 *
 *   fork('bench/e2e-load.ts'); send LoadCommand; receive LoadReply; …
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http'
import * as arrow from 'apache-arrow'
import { generateRuns, RUN_SPAN, type GeneratedRuns } from './dataset.js'
import { arrowBody, jsonBody } from './e2e-data.js'
import { latencyStats, type LatencyStats } from './latency.js'

export type LoadCommand =
  | { readonly kind: 'generate'; readonly runs: number; readonly updates: number; readonly seed: number }
  | {
      readonly kind: 'write-arrow'
      readonly url: string
      readonly shardId: string
      readonly runs: readonly number[]
      readonly shuffle: boolean
      /** Compare-and-append every batch, none, or only the first (the others are written and returned). */
      readonly append: boolean | 'first'
    }
  /** The sorted Arrow bodies of `runs` posted to the HTTP floor (e2e-http-floor.ts) as `/bytes/run-<r>`. */
  | { readonly kind: 'floor-write'; readonly url: string; readonly runs: readonly number[] }
  /** `/bytes/run-<run>` of the HTTP floor read `rounds` times (rows: the run's, for a rate beside the snapshot's). */
  | { readonly kind: 'floor-read'; readonly url: string; readonly run: number; readonly rounds: number }
  | { readonly kind: 'write-json'; readonly url: string; readonly shardId: string; readonly requests: number; readonly rows: number; readonly seed: number }
  | { readonly kind: 'post'; readonly url: string; readonly path: string; readonly body: unknown }
  | { readonly kind: 'snapshot'; readonly url: string; readonly shardId: string; readonly asOf: number; readonly format: 'arrow' | 'json' }
  | {
      readonly kind: 'concurrent-snapshots'
      readonly url: string
      readonly shardId: string
      readonly asOf: number
      readonly clients: number
      readonly requests: number
      /** Request i reads at `asOf + i % asOfs` (default 1: every request at `asOf`). */
      readonly asOfs?: number
    }
  | { readonly kind: 'exit' }

/** One timed request. */
export interface Timed {
  readonly seconds: number
  readonly status: number
  readonly requestBytes: number
  readonly responseBytes: number
  /** Rows sent (writes) or received (snapshots). */
  readonly rows: number
  /** The response body as JSON (writes, compactions). */
  readonly json: unknown
}

export type LoadReply =
  | { readonly kind: 'generated'; readonly since: number; readonly upper: number; readonly updates: number; readonly rowsPerRun: readonly number[]; readonly expected: GeneratedRuns['expected']; readonly seconds: number }
  | { readonly kind: 'timed'; readonly requests: readonly Timed[] }
  | { readonly kind: 'concurrency'; readonly seconds: number; readonly requests: number; readonly failures: number; readonly latency: LatencyStats }
  | { readonly kind: 'error'; readonly message: string }

if (process.send === undefined) throw new Error('bench/e2e-load.ts must be forked with an IPC channel')

let data: GeneratedRuns | null = null

/** One request; resolves when the whole response has arrived. */
function send(url: string, method: string, path: string, headers: Record<string, string>, body: Uint8Array | null, agent?: Agent): Promise<{ status: number; bytes: Buffer; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const req = httpRequest(`${url}${path}`, { method, headers: body === null ? headers : { ...headers, 'content-length': String(body.byteLength) }, ...(agent === undefined ? {} : { agent }) }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        // NB: the clock stops at the last byte; joining the chunks (a fresh buffer of the whole
        // response, for the untimed row count) is the client's own work, not the request's.
        const seconds = (performance.now() - t0) / 1000
        resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks), seconds })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body === null ? undefined : Buffer.from(body.buffer, body.byteOffset, body.byteLength))
  })
}

const ARROW = 'application/vnd.apache.arrow.stream'

async function run(cmd: LoadCommand): Promise<LoadReply> {
  switch (cmd.kind) {
    case 'generate': {
      const t0 = performance.now()
      data = generateRuns(cmd)
      return { kind: 'generated', since: data.since, upper: data.upper, updates: data.updates, rowsPerRun: data.runs.map((r) => r.rows), expected: data.expected, seconds: (performance.now() - t0) / 1000 }
    }
    case 'write-arrow': {
      if (data === null) throw new Error('generate first')
      const out: Timed[] = []
      // Every body is built before the first request: the requests go back to back, as a client's
      // would, and the server's reused buffers stay warm between them.
      const bodies = cmd.runs.map((r) => arrowBody(data!.runs[r]!, cmd.shuffle ? 1000 + r : null))
      for (const [i, r] of cmd.runs.entries()) {
        const run = data.runs[r]!
        const body = bodies[i]!
        const append = cmd.append === 'first' ? i === 0 : cmd.append
        const q = `lower=[${r * RUN_SPAN}]&upper=[${(r + 1) * RUN_SPAN}]&append=${append}`
        const res = await send(cmd.url, 'POST', `/v1/shards/${cmd.shardId}/batches?${q}`, { 'content-type': ARROW }, body)
        out.push({ seconds: res.seconds, status: res.status, requestBytes: body.byteLength, responseBytes: res.bytes.byteLength, rows: run.rows, json: JSON.parse(res.bytes.toString('utf8')) as unknown })
      }
      return { kind: 'timed', requests: out }
    }
    case 'floor-write': {
      if (data === null) throw new Error('generate first')
      const out: Timed[] = []
      const bodies = cmd.runs.map((r) => arrowBody(data!.runs[r]!, null))
      for (const [i, r] of cmd.runs.entries()) {
        const body = bodies[i]!
        const res = await send(cmd.url, 'POST', `/bytes/run-${r}`, { 'content-type': 'application/octet-stream' }, body)
        out.push({ seconds: res.seconds, status: res.status, requestBytes: body.byteLength, responseBytes: res.bytes.byteLength, rows: data.runs[r]!.rows, json: JSON.parse(res.bytes.toString('utf8')) as unknown })
      }
      return { kind: 'timed', requests: out }
    }
    case 'floor-read': {
      if (data === null) throw new Error('generate first')
      const out: Timed[] = []
      for (let i = 0; i < cmd.rounds; i++) {
        const res = await send(cmd.url, 'GET', `/bytes/run-${cmd.run}`, {}, null)
        out.push({ seconds: res.seconds, status: res.status, requestBytes: 0, responseBytes: res.bytes.byteLength, rows: data.runs[cmd.run]!.rows, json: res.status === 200 ? null : (JSON.parse(res.bytes.toString('utf8')) as unknown) })
      }
      return { kind: 'timed', requests: out }
    }
    case 'write-json': {
      const out: Timed[] = []
      const bodies = Array.from({ length: cmd.requests }, (_, i) => jsonBody(cmd.rows, cmd.seed + i, i * RUN_SPAN, RUN_SPAN))
      for (let i = 0; i < cmd.requests; i++) {
        const body = bodies[i]!
        const res = await send(cmd.url, 'POST', `/v1/shards/${cmd.shardId}/batches`, { 'content-type': 'application/json' }, body)
        out.push({ seconds: res.seconds, status: res.status, requestBytes: body.byteLength, responseBytes: res.bytes.byteLength, rows: cmd.rows, json: JSON.parse(res.bytes.toString('utf8')) as unknown })
      }
      return { kind: 'timed', requests: out }
    }
    case 'post': {
      const body = new TextEncoder().encode(JSON.stringify(cmd.body))
      const res = await send(cmd.url, 'POST', cmd.path, { 'content-type': 'application/json' }, body)
      return { kind: 'timed', requests: [{ seconds: res.seconds, status: res.status, requestBytes: body.byteLength, responseBytes: res.bytes.byteLength, rows: 0, json: JSON.parse(res.bytes.toString('utf8')) as unknown }] }
    }
    case 'snapshot': {
      const res = await send(cmd.url, 'GET', `/v1/shards/${cmd.shardId}/snapshot?asOf=${cmd.asOf}`, cmd.format === 'arrow' ? { accept: ARROW } : {}, null)
      // Untimed: counting what came back.
      let rows = -1
      if (res.status === 200) rows = cmd.format === 'arrow' ? arrow.tableFromIPC(res.bytes).numRows : (JSON.parse(res.bytes.toString('utf8')) as { updates: unknown[] }).updates.length
      return { kind: 'timed', requests: [{ seconds: res.seconds, status: res.status, requestBytes: 0, responseBytes: res.bytes.byteLength, rows, json: res.status === 200 ? null : (JSON.parse(res.bytes.toString('utf8')) as unknown) }] }
    }
    case 'concurrent-snapshots': {
      // `clients` keep-alive connections, each sending its next request when its last answer is in.
      const agent = new Agent({ keepAlive: true, maxSockets: cmd.clients })
      const latencies: number[] = []
      let failures = 0
      let next = 0
      const t0 = performance.now()
      await Promise.all(
        Array.from({ length: cmd.clients }, async () => {
          while (next < cmd.requests) {
            const asOf = cmd.asOf + (next++ % (cmd.asOfs ?? 1))
            const res = await send(cmd.url, 'GET', `/v1/shards/${cmd.shardId}/snapshot?asOf=${asOf}`, {}, null, agent).catch(() => null)
            if (res === null || res.status !== 200) failures++
            if (res !== null) latencies.push(res.seconds * 1000)
          }
        }),
      )
      const seconds = (performance.now() - t0) / 1000
      agent.destroy()
      return { kind: 'concurrency', seconds, requests: latencies.length, failures, latency: latencyStats(latencies, failures) }
    }
    case 'exit':
      throw new Error('exit is not a request')
  }
}

process.on('message', (cmd: LoadCommand) => {
  if (cmd.kind === 'exit') return void process.disconnect()
  run(cmd).then(
    (reply) => process.send?.(reply),
    (err: unknown) => process.send?.({ kind: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies LoadReply),
  )
})
