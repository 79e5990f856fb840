/**
 * Every operation of the OpenAPI document (and the console's and docs' routes), sent random and
 * damaged requests over real HTTP: path parameters (malformed escapes and overlong segments too),
 * query strings, headers and bodies (random JSON, valid bodies with one field changed or cut short,
 * Arrow streams with bytes flipped or cut), four at a time. Whatever a client sends, the answer is
 * never a 5xx, every 4xx is the error body with one of compactd's codes (errors.ts) at that code's
 * status, a shard no request names keeps its snapshot, and every shard reads the same after a
 * restart or from another instance. Run on one server on file stores (restarted at the end), and
 * on two instances sharing PostgreSQL and an S3 bucket, each request going to either.
 *
 * The operations come from the document the routes generate, so a new route is fuzzed without
 * touching this file. `PATCH /v1/configs` has its own app: a random valid config (pausing the
 * scheduler, say) would change what every other operation does.
 *
 * `FUZZ_RUNS=300` (default 40 sequences of 20–40 requests) soaks; `FC_SEED` replays.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { Agent, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import fc from 'fast-check'
import { ERROR_CODES, STATUS_FOR_CODE, type ErrorCode } from '../../src/errors.js'
import { renderOpenApi } from '../../src/http/openapi.js'
import { announceSeed, seed } from '../columnar/arbitraries.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { startCluster, type Instance } from '../support/cluster.js'
import { ARROW, arrowRows } from './data-support.js'

announceSeed('test/routes/fuzz.test.ts')

/** Sequences of requests per run. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 40)
/** Requests in flight at once. */
const LANES = 4

interface Operation {
  readonly method: string
  readonly path: string
  readonly params: readonly { readonly name: string; readonly in: string }[]
  readonly contentTypes: readonly string[]
  readonly examples: readonly unknown[]
}

interface Request {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly payload?: string | Buffer
}

interface Answer {
  readonly statusCode: number
  readonly body: string
}

/** Sends one request; never throws on a status. */
type Send = (req: Request) => Promise<Answer>

interface OpenApiDocument {
  readonly paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, { examples?: Record<string, { value: unknown }> }> } }>>
}

/** Routes the document leaves out: the console and the interactive docs. */
const HIDDEN: readonly Operation[] = [
  { method: 'GET', path: '/', params: [], contentTypes: [], examples: [] },
  { method: 'GET', path: '/ui', params: [], contentTypes: [], examples: [] },
  { method: 'GET', path: '/ui/assets/{file}', params: [{ name: 'file', in: 'path' }], contentTypes: [], examples: [] },
  { method: 'GET', path: '/docs', params: [], contentTypes: [], examples: [] },
  { method: 'GET', path: '/docs/static/{file}', params: [{ name: 'file', in: 'path' }], contentTypes: [], examples: [] },
]

/** The document's operations, and the hidden routes. */
function operationsIn(doc: OpenApiDocument): Operation[] {
  const out: Operation[] = [...HIDDEN]
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = op.requestBody?.content ?? {}
      out.push({
        method: method.toUpperCase(),
        path,
        params: op.parameters ?? [],
        contentTypes: Object.keys(content),
        examples: Object.values(content).flatMap((c) => Object.values(c.examples ?? {}).map((e) => e.value)),
      })
    }
  }
  return out
}

/** Strings a careless or hostile client sends where an id, a number or a frontier belongs. */
const junk: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '%',
    '%00',
    '..',
    '../..',
    'null',
    '[]',
    '[',
    '{}',
    '[1,',
    '[[1,2]]',
    '[-1]',
    '["x"]',
    '-1',
    '0',
    '1.5',
    '1e309',
    'NaN',
    '18446744073709551616',
    '9007199254740993',
    'true',
    'x'.repeat(5000),
    '\u0000',
    's00000000-0000-4000-8000-000000000000',
  ),
)

/** Replaces, removes or adds one field somewhere inside `v` (`path` picks where). */
function mutate(v: unknown, path: readonly number[], replacement: unknown, action: number): unknown {
  if (path.length === 0 || v === null || typeof v !== 'object') return replacement
  const [step, ...rest] = path as [number, ...number[]]
  if (Array.isArray(v)) {
    if (v.length === 0) return [replacement]
    const i = step % v.length
    const copy = [...v]
    if (rest.length === 0 && action === 1) copy.splice(i, 1)
    else copy[i] = mutate(v[i], rest, replacement, action)
    return copy
  }
  const entries = Object.entries(v as Record<string, unknown>)
  if (entries.length === 0 || (rest.length === 0 && action === 2)) return { ...(v as object), [`extra${step}`]: replacement }
  const [key, inner] = entries[step % entries.length]!
  const copy: Record<string, unknown> = { ...(v as Record<string, unknown>) }
  if (rest.length === 0 && action === 1) delete copy[key]
  else copy[key] = mutate(inner, rest, replacement, action)
  return copy
}

/** An Arrow body with bytes changed or cut off. */
function damage(bytes: Buffer, edits: readonly (readonly [number, number])[], cut: number | null): Buffer {
  const out = Buffer.from(bytes)
  for (const [at, b] of edits) out[at % out.length] = b
  return cut === null ? out : out.subarray(0, cut % (out.length + 1))
}


interface Fixtures {
  readonly shardId: string
  /** A shard the fuzz may delete. */
  readonly victimId: string
  readonly compactionId: string
  readonly partPath: readonly [string, string]
  /** A batch written but not appended (valid `inputs` for the compaction routes). */
  readonly batch: unknown
  readonly desc: unknown
  readonly arrowBody: Buffer
}

/** POSTs JSON, asserting a 2xx; the JSON answer. */
async function postJson(send: Send, url: string, payload: unknown): Promise<Record<string, unknown>> {
  const res = await send({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
  assert.ok(res.statusCode < 300, `${url}: ${res.statusCode} ${res.body}`)
  return JSON.parse(res.body) as Record<string, unknown>
}

async function getJson(send: Send, url: string): Promise<Record<string, unknown>> {
  const res = await send({ method: 'GET', url, headers: {} })
  assert.equal(res.statusCode, 200, `${url}: ${res.body}`)
  return JSON.parse(res.body) as Record<string, unknown>
}

const U64_SHARD = { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

/** The shards, batches and compaction the requests name (needs persist_inline_writes_single_max_bytes 0: parts in blob storage). */
async function fixtures(send: Send): Promise<Fixtures> {
  const shardId = (await postJson(send, '/v1/shards', { ...U64_SHARD, name: 'fuzzed' })).shardId as string
  const victimId = (await postJson(send, '/v1/shards', U64_SHARD)).shardId as string
  const rows = (n: number, t0: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i % 7}`, val: i, time: t0 + (i % 5), diff: 1 }))
  await postJson(send, `/v1/shards/${shardId}/batches`, { lower: [0], upper: [10], updates: rows(40, 0) })
  await postJson(send, `/v1/shards/${shardId}/batches`, { lower: [10], upper: [20], updates: rows(40, 10) })
  const written = await postJson(send, `/v1/shards/${shardId}/batches`, { lower: [20], upper: [30], updates: rows(40, 20), append: false })
  const batch = written.batch as { parts: { key?: string }[]; desc: unknown }
  const compaction = await postJson(send, `/v1/shards/${shardId}/compactions`, { desc: { lower: [0], upper: [20] }, major: true, wait: true })
  // The part key is `<shard>/<writer key>/<part id>` (docs/api.md#parts).
  const key = batch.parts[0]?.key
  assert.ok(key !== undefined, 'the batch has its part inline: set persist_inline_writes_single_max_bytes to 0 first')
  const [, writerKey, partId] = key.split('/') as [string, string, string]
  const arrowBody = arrowRows(rows(12, 30).map((r) => ({ key: r.key, val: BigInt(r.val), time: BigInt(r.time), diff: 1n })))
  return { shardId, victimId, compactionId: compaction.id as string, partPath: [writerKey, partId], batch, desc: batch.desc, arrowBody }
}

/** A shard no request names, and its JSON snapshot at 9. */
async function witnessShard(send: Send): Promise<{ readonly shardId: string; readonly snapshot: string }> {
  const shardId = (await postJson(send, '/v1/shards', U64_SHARD)).shardId as string
  const rows = Array.from({ length: 30 }, (_, i) => ({ key: `w${i % 4}`, val: i % 3, time: i % 10, diff: 1 }))
  await postJson(send, `/v1/shards/${shardId}/batches`, { lower: [0], upper: [10], updates: rows })
  return { shardId, snapshot: await snapshotOf(send, shardId, '9') }
}

/** The JSON snapshot of `shardId` at `asOf` (asserting a 200). */
async function snapshotOf(send: Send, shardId: string, asOf: string): Promise<string> {
  const res = await send({ method: 'GET', url: `/v1/shards/${shardId}/snapshot?asOf=${asOf}`, headers: {} })
  assert.equal(res.statusCode, 200, res.body)
  return res.body
}

/** The fuzzed shard's snapshot at its since, or null when no time is left to read (since ≥ upper). */
async function snapshotAtSince(send: Send, shardId: string): Promise<{ readonly asOf: string; readonly body: string } | null> {
  const shard = (await getJson(send, `/v1/shards/${shardId}`)) as { since: number[]; upper: number[] }
  const since = shard.since[0]
  const upper = shard.upper[0]
  if (since === undefined || (upper !== undefined && since >= upper)) return null
  return { asOf: String(since), body: await snapshotOf(send, shardId, String(since)) }
}

/** Valid bodies to mutate, beyond the document's examples. */
function seedBodies(op: Operation, f: Fixtures): unknown[] {
  switch (`${op.method} ${op.path}`) {
    case 'POST /v1/compact':
      return [{ shardId: f.shardId, desc: f.desc, inputs: [f.batch] }]
    case 'POST /v1/shards/{shardId}/append':
      return [{ batch: f.batch }, { batch: f.batch, expectedUpper: [20] }]
    case 'POST /v1/shards/{shardId}/compactions':
      return [{ inputs: [f.batch], desc: f.desc }, { dryRun: true }, { major: true, wait: true }]
    case 'POST /v1/shards/{shardId}/schemas':
      return [{ keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }]
    case 'POST /v1/shards/{shardId}/since':
      return [{ since: [5] }]
    default:
      return []
  }
}

/** A value for each path parameter: mostly one that names something real, else junk. */
function pathValue(op: Operation, name: string, f: Fixtures): fc.Arbitrary<string> {
  const real: Record<string, string> = {
    shardId: op.method === 'DELETE' ? f.victimId : f.shardId,
    id: f.compactionId,
    name: 'compaction_process_requests',
    writerKey: f.partPath[0],
    partId: f.partPath[1],
  }
  const r = real[name]
  return r === undefined ? junk : fc.oneof({ weight: 3, arbitrary: fc.constant(r) }, { weight: 2, arbitrary: junk })
}

/** A value for each query parameter: mostly a sensible one for the fixtures, else junk. */
function queryValue(name: string, f: Fixtures): fc.Arbitrary<string> {
  const sensible: Record<string, fc.Arbitrary<string>> = {
    lower: fc.constantFrom('[30]', '[20]', '[0]'),
    upper: fc.constantFrom('[40]', '[35]', '[30]'),
    expectedUpper: fc.constantFrom('[30]', '[20]'),
    append: fc.constantFrom('true', 'false'),
    asOf: fc.constantFrom('19', '25', '29', '0', '[19]'),
    limit: fc.constantFrom('1', '10', '0', '100000'),
    shardId: fc.constant(f.shardId),
    status: fc.constantFrom('queued', 'running', 'succeeded'),
    source: fc.constantFrom('request', 'maintenance'),
    name: fc.constant('fuzzed'),
    namePrefix: fc.constant('fu'),
  }
  return fc.oneof({ weight: 3, arbitrary: sensible[name] ?? junk }, { weight: 1, arbitrary: junk })
}

function requestOf(op: Operation, f: Fixtures): fc.Arbitrary<Request> {
  const pathParams = op.params.filter((p) => p.in === 'path')
  const query = op.params.filter((p) => p.in === 'query')
  const pathArb = fc
    .tuple(
      fc.tuple(...pathParams.map((p) => pathValue(op, p.name, f))),
      // Now and then a path a careless client builds: a malformed escape, or an id 200 characters long.
      fc.option(fc.constantFrom('%', '%ZZ', '%E0%A4%A', 'x'.repeat(200)), { freq: 8 }),
    )
    .map(([values, raw]) => {
      let url = op.path
      values.forEach((v, i) => (url = url.replace(`{${pathParams[i]!.name}}`, raw ?? encodeURIComponent(v))))
      return raw !== null && pathParams.length === 0 ? `${url}/${raw}` : url
    })
  const queryArb = fc
    .tuple(
      fc.tuple(...query.map((p) => fc.option(queryValue(p.name, f), { freq: 4 }))),
      fc.option(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), junk), { freq: 1, nil: null }),
    )
    .map(([values, extra]) => {
      const q = new URLSearchParams()
      values.forEach((v, i) => v !== null && q.append(query[i]!.name, v))
      if (extra !== null) q.append(extra[0], extra[1])
      const s = q.toString()
      return s === '' ? '' : `?${s}`
    })
  const valid = [...op.examples, ...seedBodies(op, f)]
  const jsonBody: fc.Arbitrary<string> = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    ...(valid.length === 0
      ? []
      : [
          fc.constantFrom(...valid).map((v) => JSON.stringify(v)),
          fc
            .tuple(fc.constantFrom(...valid), fc.array(fc.nat(), { maxLength: 4 }), fc.oneof(fc.jsonValue({ maxDepth: 2 }), junk), fc.nat(2))
            .map(([v, path, replacement, action]) => JSON.stringify(mutate(v, path, replacement, action))),
          fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([v, n]) => {
            const s = JSON.stringify(v)
            return s.slice(0, n % (s.length + 1))
          }),
        ]),
  )
  const bodyArb: fc.Arbitrary<{ contentType: string | null; payload?: string | Buffer }> =
    op.contentTypes.length === 0
      ? fc.constant({ contentType: null })
      : fc.oneof(
          { weight: 4, arbitrary: jsonBody.map((payload) => ({ contentType: 'application/json', payload })) },
          {
            weight: op.contentTypes.includes(ARROW) ? 3 : 0,
            arbitrary: fc
              .tuple(fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }), fc.option(fc.nat()))
              .map(([edits, cut]) => ({ contentType: ARROW, payload: damage(f.arrowBody, edits, cut) })),
          },
          {
            weight: 1,
            arbitrary: fc
              .tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', ARROW, 'nonsense'), fc.uint8Array({ maxLength: 64 }))
              .map(([contentType, bytes]) => ({ contentType, payload: Buffer.from(bytes) })),
          },
          { weight: 1, arbitrary: fc.constant({ contentType: 'application/json', payload: '' }) },
        )
  const headerArb = fc.record(
    {
      accept: fc.constantFrom('*/*', 'application/json', ARROW, 'text/event-stream', 'text/html', 'nonsense/x'),
      'idempotency-key': fc.oneof(fc.uuid(), junk),
    },
    { requiredKeys: [] },
  )
  return fc.tuple(pathArb, queryArb, bodyArb, headerArb).map(([path, q, body, headers]) => {
    const h: Record<string, string> = { ...headers }
    if (body.contentType !== null) h['content-type'] = body.contentType
    return { method: op.method, url: path + q, headers: h, ...(body.payload === undefined ? {} : { payload: body.payload }) }
  })
}

/**
 * Answers that are fine for anything a client sends: everything below 500, and a 4xx is the error
 * body with one of compactd's codes and that code's status.
 */
function assertClientAnswer(req: Request, res: Answer): void {
  const what = `${req.method} ${req.url.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`
  assert.ok(res.statusCode < 500, what)
  if (res.statusCode >= 400) {
    const body = JSON.parse(res.body) as { code?: unknown; message?: unknown }
    assert.ok((ERROR_CODES as readonly unknown[]).includes(body.code), `not one of compactd's codes: ${what}`)
    assert.equal(res.statusCode, STATUS_FOR_CODE[body.code as ErrorCode], `not the status of its code: ${what}`)
    assert.equal(typeof body.message, 'string', what)
  }
}

/** A header value as a client library lets it through (printable ASCII). */
function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v)
}

/**
 * The fuzz: sequences of requests over every operation but `PATCH /v1/configs`, four at a time,
 * each to one of `servers` (with several instances, requests on one shard meet across them).
 */
async function fuzz(ops: readonly Operation[], f: Fixtures, servers: readonly Send[]): Promise<void> {
  const tested = ops.filter((op) => !(op.method === 'PATCH' && op.path === '/v1/configs'))
  assert.ok(tested.length >= 20, `only ${tested.length} operations in the document`)
  const aimed = fc.tuple(fc.oneof(...tested.map((op) => requestOf(op, f))), fc.nat(servers.length - 1))
  await fc.assert(
    fc.asyncProperty(fc.array(aimed, { minLength: 20, maxLength: 40 }), async (reqs) => {
      for (let at = 0; at < reqs.length; at += LANES) {
        await Promise.all(
          reqs.slice(at, at + LANES).map(async ([r, server]) => {
            const req = { ...r, headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, headerSafe(v)])) }
            assertClientAnswer(req, await servers[server]!(req))
          }),
        )
      }
    }),
    { seed, numRuns: RUNS },
  )
}

/** Sends requests over real HTTP to `baseUrl`, as they are: paths and bodies byte for byte. */
function overHttp(baseUrl: string): { readonly send: Send; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: LANES })
  return {
    send: (req) =>
      new Promise((resolve, reject) => {
        const r = httpRequest(baseUrl + req.url, { method: req.method, headers: req.headers, agent }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
          res.on('error', reject)
        })
        r.on('error', reject)
        r.end(req.payload)
      }),
    close: () => agent.destroy(),
  }
}

/** Sends requests to `t` in process (`app.inject`). */
function injecting(t: TestApp): Send {
  return async (req) => {
    const res = await t.app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, ...(req.payload === undefined ? {} : { payload: req.payload }) })
    return { statusCode: res.statusCode, body: res.body }
  }
}

describe('one server on file stores, fed what a client might send', () => {
  let dir: string
  let t: TestApp | null = null
  let http: { readonly send: Send; close(): void } | null = null

  const open = async (): Promise<Send> => {
    t = await buildTestApp({
      settings: { workers: 1, gcGraceMs: 0, bodyLimitBytes: 64 * 1024, blobUrl: pathToFileURL(join(dir, 'blob')).href, consensusUrl: pathToFileURL(join(dir, 'consensus')).href },
      services: { gcIntervalMs: null },
    })
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    http = overHttp(`http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`)
    return http.send
  }
  const close = async (): Promise<void> => {
    http?.close()
    await t?.close()
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'compactd-fuzz-'))
  })
  after(async () => {
    await close()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers below 500 with the error body, and every shard reads the same after a restart', async () => {
    let send = await open()
    await t!.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
    const f = await fixtures(send)
    const witness = await witnessShard(send)
    await fuzz(operationsIn(JSON.parse(renderOpenApi(t!.app)) as OpenApiDocument), f, [send])
    assert.equal((await send({ method: 'GET', url: '/healthz', headers: {} })).statusCode, 200)
    const fuzzed = await snapshotAtSince(send, f.shardId)
    await close()
    send = await open()
    assert.equal(await snapshotOf(send, witness.shardId, '9'), witness.snapshot)
    if (fuzzed !== null) assert.equal(await snapshotOf(send, f.shardId, fuzzed.asOf), fuzzed.body)
  })
})

describe('two instances on one PostgreSQL and one S3 bucket, fed what a client might send', () => {
  it('answers below 500 with the error body on both, and both read every shard alike', { timeout: 300_000 }, async (ctx) => {
    const cluster = await startCluster({ ids: ['a', 'b'], env: { COMPACTD_GC_GRACE: '0s', COMPACTD_BODY_LIMIT: '65536' } })
    ctx.after(() => cluster.close())
    const clients = (cluster.instances as readonly Instance[]).map((i) => overHttp(i.url))
    ctx.after(() => clients.forEach((c) => c.close()))
    const [a, b] = clients.map((c) => c.send) as [Send, Send]
    await cluster.setConfigs({ persist_inline_writes_single_max_bytes: 0 })
    const f = await fixtures(a)
    const witness = await witnessShard(b)
    await fuzz(operationsIn((await getJson(a, '/openapi.json')) as unknown as OpenApiDocument), f, [a, b])
    for (const send of [a, b]) {
      assert.equal((await send({ method: 'GET', url: '/healthz', headers: {} })).statusCode, 200)
      assert.equal(await snapshotOf(send, witness.shardId, '9'), witness.snapshot)
    }
    const fuzzed = await snapshotAtSince(a, f.shardId)
    if (fuzzed !== null) assert.equal(await snapshotOf(b, f.shardId, fuzzed.asOf), fuzzed.body)
  })
})

describe('PATCH /v1/configs, fed what a client might send', () => {
  it('answers below 500 with the error body, and stays up', async (ctx) => {
    const t = await buildTestApp({ t: ctx, settings: { workers: 1 } })
    await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
    const send = injecting(t)
    const f = await fixtures(send)
    const op = operationsIn(JSON.parse(renderOpenApi(t.app)) as OpenApiDocument).find((o) => o.method === 'PATCH' && o.path === '/v1/configs')!
    const configs = ((await getJson(send, '/v1/configs')) as { configs: { name: string; value: unknown }[] }).configs
    const oneConfig = fc
      .tuple(fc.constantFrom(...configs), fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 1 }), junk, fc.integer(), fc.boolean()))
      .map(([c, v]) => JSON.stringify({ [c.name]: v ?? c.value }))
    const requests = fc.oneof(
      requestOf(op, f),
      oneConfig.map((payload): Request => ({ method: 'PATCH', url: '/v1/configs', headers: { 'content-type': 'application/json' }, payload })),
    )
    await fc.assert(
      fc.asyncProperty(requests, async (req) => assertClientAnswer(req, await send(req))),
      { seed, numRuns: RUNS * 4 },
    )
    assert.equal((await send({ method: 'GET', url: '/healthz', headers: {} })).statusCode, 200)
  })
})
