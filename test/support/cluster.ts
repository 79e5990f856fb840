/**
 * A compactd cluster for tests, run as operators run one: N instances as real child processes
 * (`node --import tsx src/main.ts`), all on ONE real PostgreSQL database (consensus and jobs) and
 * ONE s3rver bucket (blob), each with its own `COMPACTD_INSTANCE_ID` and a random port on
 * 127.0.0.1. Tests speak to them over HTTP only.
 *
 * - `startCluster` starts PostgreSQL, s3rver and the instances (in parallel); `close` stops every
 *   process it started (instances first, then the stores). Call it from the test that started it.
 * - `kill9(i)` SIGKILLs an instance (no shutdown: its leases stay until they expire);
 *   `stop(i)` is SIGTERM and a clean exit; `restart(i)` starts it again under the same id (a new
 *   port).
 * - `setConfigs` PATCHes the dynamic configs on one instance and waits until every live instance
 *   has read them (each polls consensus every few seconds), so a test never races the poll.
 * - `eventually` is the one way to wait for cross-process state: a bounded loop of short awaits
 *   polling HTTP. Its bound is the assertion's; nothing here sleeps for a fixed time to let
 *   something happen.
 *
 * NB: instances share the blob store and the job store, so tests of one file should use distinct
 * shards. GC grace and other start-up settings are per cluster (`ClusterOptions.env`).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { readSse } from '../../src/client/sse.js'
import { startPostgres, type PostgresServer } from './postgres.js'
import { S3_TEST_BUCKET, startS3, type S3Server } from './s3.js'
import { startMain, WAIT_MS, type ServerProcess } from './server-process.js'

export type Json = Record<string, unknown>

/** One instance of the cluster; `url` and `process` change when it restarts. */
export interface Instance {
  readonly id: string
  /** `http://127.0.0.1:<port>` of the running process (the last one, once it is gone). */
  url: string
  process: ServerProcess | null
  /** True between a start and a kill or stop. */
  alive: boolean
}

export interface HttpAnswer {
  readonly status: number
  readonly body: Json
  readonly headers: Headers
}

export interface ClusterOptions {
  /** Instance ids, in order (default `a`, `b`, `c`). */
  readonly ids?: readonly string[]
  /** Extra environment of every instance (e.g. `COMPACTD_GC_GRACE`). */
  readonly env?: Readonly<Record<string, string>>
  /** Dynamic configs set (and seen by every instance) before `startCluster` returns. */
  readonly configs?: Json
}

/** Most time a cross-process condition may take to hold (lease expiries, heartbeats, config polls). */
export const EVENTUALLY_MS = 60_000
/** Pause between two polls of `eventually`. */
const POLL_MS = 100

export interface Cluster {
  readonly instances: readonly Instance[]
  readonly s3: S3Server
  readonly pg: PostgresServer
  /** The instance named `id`. */
  get(id: string): Instance
  /** The instances alive now. */
  live(): Instance[]
  /** An HTTP request to `inst`; the body is JSON when one is given. Never throws on a status. */
  request(inst: Instance, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpAnswer>
  /** `request`, asserting the status; the JSON body. */
  call(inst: Instance, method: string, path: string, expect: number, body?: unknown, headers?: Record<string, string>): Promise<Json>
  /** Every SSE event of `/v1/compactions/{id}/events` on `inst` until the stream ends (bounded). */
  follow(inst: Instance, id: string): Promise<Array<{ readonly event: string; readonly data: Json }>>
  /** PATCHes configs on the first live instance, then waits until every live instance shows them. */
  setConfigs(configs: Json): Promise<void>
  /** SIGKILL: the process dies at once, leaving its leases and heartbeats to expire. */
  kill9(inst: Instance): Promise<void>
  /** SIGTERM, then a clean exit (0). */
  stop(inst: Instance): Promise<void>
  /** Starts a stopped or killed instance again, with the same id. */
  restart(inst: Instance): Promise<void>
  /**
   * One more compactd process with the cluster's environment under `id`, not one of `instances`
   * (a start-up check: it may well exit). `close` kills it if it still runs.
   */
  startExtra(id: string): ServerProcess
  /** Every blob key under `prefix` in the bucket, listed with the AWS SDK (not through compactd). */
  bucketKeys(prefix: string): Promise<string[]>
  /** Stops every process this cluster started, and its stores. Idempotent. */
  close(): Promise<void>
}

/**
 * Polls `probe` until it returns something other than undefined, for at most `timeoutMs`; throws
 * saying `what` (and the last value seen, from `describe`) when it never does.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = EVENTUALLY_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (let i = 0; Date.now() < deadline && i < timeoutMs / POLL_MS + 1; i++) {
    try {
      const got = await probe()
      if (got !== undefined) return got
      last = undefined
    } catch (err) {
      last = err
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last === undefined ? '' : `; last error: ${last instanceof Error ? last.message : String(last)}`}`)
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const ids = opts.ids ?? ['a', 'b', 'c']
  const [pg, s3, home] = await Promise.all([startPostgres(), startS3(), mkdtemp(join(tmpdir(), 'compactd-cluster-'))])
  const s3Client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } })
  const instances: Instance[] = ids.map((id) => ({ id, url: '', process: null, alive: false }))
  const extras: ServerProcess[] = []
  const env = (id: string): Record<string, string> => ({
    HOME: home,
    NODE_NO_WARNINGS: '1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_EC2_METADATA_DISABLED: 'true',
    COMPACTD_INSTANCE_ID: id,
    COMPACTD_PORT: '0',
    COMPACTD_HOST: '127.0.0.1',
    COMPACTD_DATA_DIR: join(home, id),
    COMPACTD_BLOB: s3.url,
    COMPACTD_CONSENSUS: pg.url,
    COMPACTD_WORKERS: '1',
    COMPACTD_SHUTDOWN_GRACE: '2s',
    ...opts.env,
  })

  const launch = async (inst: Instance): Promise<void> => {
    const child = startMain([], { env: env(inst.id) })
    inst.process = child
    inst.alive = true
    const line = await child.logLine('compactd listening').catch((err: unknown) => {
      inst.alive = false
      throw err
    })
    inst.url = String(line.address)
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const inst of instances) {
        inst.alive = false
        inst.process?.kill()
      }
      for (const extra of extras) extra.kill()
      await Promise.all([...instances.map((i) => i.process), ...extras].map((p) => (p === null ? Promise.resolve() : p.exited().catch(() => undefined))))
      s3Client.destroy()
      await Promise.allSettled([s3.stop(), pg.stop()])
      await rm(home, { recursive: true, force: true })
    })())

  const request = async (inst: Instance, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> => {
    const res = await fetch(`${inst.url}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(WAIT_MS),
    })
    const text = await res.text()
    let parsed: Json = {}
    try {
      parsed = text === '' ? {} : (JSON.parse(text) as Json)
    } catch {
      parsed = { text }
    }
    return { status: res.status, body: parsed, headers: res.headers }
  }

  const call = async (inst: Instance, method: string, path: string, expect: number, body?: unknown, headers?: Record<string, string>): Promise<Json> => {
    const res = await request(inst, method, path, body, headers)
    assert.equal(res.status, expect, `${method} ${path} on ${inst.id}: ${JSON.stringify(res.body)}`)
    return res.body
  }

  const configsOf = async (inst: Instance): Promise<Json> => {
    const { configs } = (await call(inst, 'GET', '/v1/configs', 200)) as { configs: Array<{ name: string; value: unknown }> }
    return Object.fromEntries(configs.map((c) => [c.name, c.value]))
  }

  const live = (): Instance[] => instances.filter((i) => i.alive)

  const cluster: Cluster = {
    instances,
    s3,
    pg,
    get: (id) => {
      const inst = instances.find((i) => i.id === id)
      if (inst === undefined) throw new Error(`no instance ${id}`)
      return inst
    },
    live,
    request,
    call,
    async follow(inst, id) {
      const res = await fetch(`${inst.url}/v1/compactions/${id}/events`, { signal: AbortSignal.timeout(EVENTUALLY_MS) })
      assert.equal(res.status, 200, `events of ${id} on ${inst.id}: ${await res.clone().text()}`)
      assert.ok(res.body !== null)
      const events: Array<{ event: string; data: Json }> = []
      for await (const m of readSse(res.body)) events.push({ event: m.event, data: JSON.parse(m.data) as Json })
      return events
    },
    async setConfigs(configs) {
      const first = live()[0]
      assert.ok(first !== undefined, 'no live instance to set configs on')
      await call(first, 'PATCH', '/v1/configs', 200, configs)
      // The values as the patched instance shows them (durations formatted), which the others must reach.
      const wanted = pick(await configsOf(first), Object.keys(configs))
      await Promise.all(
        live().map((inst) =>
          eventually(`instance ${inst.id} reads the configs ${JSON.stringify(wanted)}`, async () =>
            JSON.stringify(pick(await configsOf(inst), Object.keys(configs))) === JSON.stringify(wanted) ? true : undefined,
          ),
        ),
      )
    },
    async kill9(inst) {
      assert.ok(inst.alive && inst.process !== null, `instance ${inst.id} is not running`)
      inst.alive = false
      inst.process.proc.kill('SIGKILL')
      const { signal } = await inst.process.exited()
      assert.equal(signal, 'SIGKILL')
    },
    async stop(inst) {
      assert.ok(inst.alive && inst.process !== null, `instance ${inst.id} is not running`)
      inst.alive = false
      inst.process.proc.kill('SIGTERM')
      const { code } = await inst.process.exited()
      assert.equal(code, 0, inst.process.stderr())
    },
    async restart(inst) {
      assert.ok(!inst.alive, `instance ${inst.id} is still running`)
      await launch(inst)
    },
    startExtra(id) {
      const child = startMain([], { env: env(id) })
      extras.push(child)
      return child
    },
    async bucketKeys(prefix) {
      const keys: string[] = []
      let token: string | undefined
      for (let page = 0; page < 1000; page++) {
        const out = await s3Client.send(new ListObjectsV2Command({ Bucket: S3_TEST_BUCKET, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }))
        for (const o of out.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key)
        if (out.IsTruncated !== true) break
        token = out.NextContinuationToken
      }
      return keys.sort()
    },
    close,
  }

  try {
    await Promise.all(instances.map(launch))
    if (opts.configs !== undefined) await cluster.setConfigs(opts.configs)
    return cluster
  } catch (err) {
    const stderr = instances.map((i) => `${i.id}: ${i.process?.stderr() ?? ''}`).join('\n')
    await close()
    throw new Error(`the cluster did not start: ${err instanceof Error ? err.message : String(err)}\n${stderr}`, { cause: err })
  }
}

function pick(values: Json, names: readonly string[]): Json {
  return Object.fromEntries(names.map((n) => [n, values[n]]))
}

// ---- shards over HTTP ----------------------------------------------------------------------------

export interface RowJson {
  readonly key: string
  readonly val: string
  readonly time: number
  readonly diff: number
}

/** A u64 shard with utf8 keys and values, created on `inst`; its id. */
export async function createShard(cluster: Cluster, inst: Instance): Promise<string> {
  const body = await cluster.call(inst, 'POST', '/v1/shards', 201, { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'utf8' } })
  return String(body.shardId)
}

/** Writes and appends `[lower, upper)` on `inst`. */
export async function appendRows(cluster: Cluster, inst: Instance, shardId: string, lower: number, upper: number, updates: readonly RowJson[]): Promise<void> {
  const body = await cluster.call(inst, 'POST', `/v1/shards/${shardId}/batches`, 201, { lower: [lower], upper: [upper], updates })
  assert.equal(body.appended, true)
}

/**
 * A shard of `batches` appended batches of `rows` rows each (keys spread over every batch, so a
 * merge interleaves them), written round-robin through `writers`. Written as blob parts.
 */
export async function bigShard(cluster: Cluster, writers: readonly Instance[], batches: number, rows: number): Promise<string> {
  const first = writers[0]
  assert.ok(first !== undefined)
  const shardId = await createShard(cluster, first)
  for (let b = 0; b < batches; b++) {
    const updates = Array.from({ length: rows }, (_, i) => ({ key: `k${String(i * batches + b).padStart(7, '0')}`, val: `v${b % 3}`, time: b, diff: 1 + (i % 2) }))
    await appendRows(cluster, writers[b % writers.length] ?? first, shardId, b, b + 1, updates)
  }
  return shardId
}

/** The snapshot rows of `shardId` at each of `asOfs`, read on `inst`. */
export async function snapshotsOf(cluster: Cluster, inst: Instance, shardId: string, asOfs: readonly number[]): Promise<Record<number, unknown>> {
  const out: Record<number, unknown> = {}
  for (const asOf of asOfs) out[asOf] = (await cluster.call(inst, 'GET', `/v1/shards/${shardId}/snapshot?asOf=${asOf}`, 200)).updates
  return out
}

/** Every blob key the shard's state references, as stored in the bucket (`<shardId>/<writerKey>/<partId>`), sorted. */
export async function referencedKeys(cluster: Cluster, inst: Instance, shardId: string): Promise<string[]> {
  const shard = (await cluster.call(inst, 'GET', `/v1/shards/${shardId}`, 200)) as { trace: { batches: Array<{ batches: Array<{ parts: Array<{ key?: string }> }> }> } }
  return shard.trace.batches.flatMap((sb) => sb.batches.flatMap((b) => b.parts.flatMap((p) => (p.key === undefined ? [] : [`${shardId}/${p.key}`])))).sort()
}
