import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { renderOpenApi, sortKeys } from '../src/http/openapi.js'
import { OPERATIONS, operationKey } from '../src/http/openapi-operations.js'
import { BEARER_SCHEME } from '../src/http/standard-responses.js'
import { buildTestApp } from './helper.js'

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..')
const COMMITTED = join(ROOT, 'openapi', 'openapi.json')

describe('openapi/openapi.json', () => {
  it('matches the document generated from the routes', async (t) => {
    const { app } = await buildTestApp({ t })
    const committed = await readFile(COMMITTED, 'utf8')
    assert.ok(committed === renderOpenApi(app), 'openapi/openapi.json is stale: run npm run openapi and commit the result')
  })

  it('is what GET /openapi.json serves, byte for byte, as JSON', async (t) => {
    const { app } = await buildTestApp({ t })
    const res = await app.inject({ method: 'GET', url: '/openapi.json' })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^application\/json/)
    assert.equal(res.body, await readFile(COMMITTED, 'utf8'))
  })

  it('documents every route with a summary, tags and a schema for each response', async (t) => {
    const { app } = await buildTestApp({ t })
    const doc = JSON.parse(renderOpenApi(app)) as {
      openapi: string
      paths: Record<string, Record<string, { summary?: string; tags?: string[]; responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }> }> }>>
    }
    assert.equal(doc.openapi, '3.1.0')
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) assert.ok(doc.paths[path]?.get, path)
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        assert.ok(op.summary, `${method} ${path} has no summary`)
        assert.ok(op.tags?.length, `${method} ${path} has no tags`)
        for (const [status, response] of Object.entries(op.responses)) {
          assert.notEqual(response.description, 'Default Response', `${method} ${path} ${status} has no description`)
          assert.ok(Object.values(response.content ?? {}).every((c) => c.schema !== undefined), `${method} ${path} ${status} has no schema`)
        }
      }
    }
  })
})

interface Operation {
  operationId?: string
  tags?: string[]
  security?: Array<Record<string, string[]>>
  requestBody?: { content?: Record<string, { examples?: Record<string, { summary?: string; value: unknown }> }> }
}
interface Document {
  info: { version: string; license?: { name: string } }
  servers?: Array<{ url: string }>
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, { type: string; scheme?: string }> }
}

async function document(t: { after(fn: () => Promise<void>): void }): Promise<Document> {
  const { app } = await buildTestApp({ t })
  return JSON.parse(renderOpenApi(app)) as Document
}

const operations = (doc: Document): Array<[string, string, Operation]> =>
  Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]): [string, string, Operation] => [method, path, op]))

describe('the contract clients generate from', () => {
  it('gives every operation the operationId of OPERATIONS, unique, and OPERATIONS names no missing operation', async (t) => {
    const doc = await document(t)
    const ids = new Set<string>()
    const keys = new Set<string>()
    for (const [method, path, op] of operations(doc)) {
      const key = operationKey(method, path)
      keys.add(key)
      assert.ok(OPERATIONS[key] !== undefined, `${key} has no entry in OPERATIONS (src/http/openapi-operations.ts): add its operationId there`)
      assert.equal(op.operationId, OPERATIONS[key]?.operationId, key)
      assert.match(op.operationId ?? '', /^[a-z][a-zA-Z]+$/, `${key}: operationIds are camelCase verbs`)
      assert.ok(!ids.has(op.operationId ?? ''), `${op.operationId} is used twice`)
      ids.add(op.operationId ?? '')
    }
    for (const key of Object.keys(OPERATIONS)) assert.ok(keys.has(key), `OPERATIONS names ${key}, which no route serves`)
  })

  it('declares the bearer scheme, applies it to every /v1 operation, and says the others need none', async (t) => {
    const doc = await document(t)
    assert.deepEqual(doc.components.securitySchemes[BEARER_SCHEME], { ...doc.components.securitySchemes[BEARER_SCHEME], type: 'http', scheme: 'bearer' })
    for (const [method, path, op] of operations(doc)) {
      if (path.startsWith('/v1/')) assert.deepEqual(op.security, [{ [BEARER_SCHEME]: [] }], `${method} ${path}`)
      else assert.deepEqual(op.security, [], `${method} ${path}`)
    }
  })

  it("lists a server, and carries package.json's version and license", async (t) => {
    const doc = await document(t)
    assert.deepEqual(doc.servers?.map((s) => s.url), ['http://127.0.0.1:6880'])
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string; license: string }
    assert.equal(doc.info.version, pkg.version)
    assert.equal(doc.info.license?.name, pkg.license)
  })

  it('has each schema once, and only schemas some operation uses', async (t) => {
    const doc = await document(t)
    const names = Object.keys(doc.components.schemas)
    for (const name of names) assert.ok(!(name.endsWith('Input') && names.includes(name.slice(0, -'Input'.length))), `${name} duplicates ${name.slice(0, -5)}`)
    const text = JSON.stringify(doc.paths)
    const reached = new Set<string>()
    const visit = (json: string): void => {
      for (const m of json.matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
        const name = m[1] ?? ''
        if (reached.has(name)) continue
        reached.add(name)
        visit(JSON.stringify(doc.components.schemas[name]))
      }
    }
    visit(text)
    assert.deepEqual(names.filter((n) => !reached.has(n)), [], 'unused components')
    for (const name of reached) assert.ok(name in doc.components.schemas, `a $ref to the missing component ${name}`)
  })

  it('serves the same document to /docs', async (t) => {
    const { app } = await buildTestApp({ t })
    const res = await app.inject({ method: 'GET', url: '/docs/json' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(sortKeys(res.json()), JSON.parse(renderOpenApi(app)))
  })

  it('has example bodies for the main requests, and a real server accepts each of them', async (t) => {
    const doc = await document(t)
    const examples = (method: string, path: string) => Object.values(doc.paths[path]?.[method]?.requestBody?.content?.['application/json']?.examples ?? {})
    for (const [method, path] of [['post', '/v1/shards'], ['post', '/v1/shards/{shardId}/batches'], ['post', '/v1/shards/{shardId}/compactions'], ['patch', '/v1/configs']] as const) {
      assert.ok(examples(method, path).length > 0, `${method} ${path} has no example`)
    }

    const { app } = await buildTestApp({ t, settings: { workers: 1 }, services: { gcIntervalMs: null } })
    const send = async (method: 'POST' | 'PATCH', url: string, payload: unknown, ok: readonly number[]) => {
      const res = await app.inject({ method, url, payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } })
      assert.ok(ok.includes(res.statusCode), `${method} ${url} ${JSON.stringify(payload)}: ${res.statusCode} ${res.body}`)
      return res.json() as Record<string, unknown>
    }
    let u64Shard = ''
    for (const ex of examples('post', '/v1/shards')) {
      const created = await send('POST', '/v1/shards', ex.value, [201])
      if ((ex.value as { timestamp: string }).timestamp === 'u64') u64Shard = String(created['shardId'])
    }
    assert.notEqual(u64Shard, '', 'an example creates a u64 shard')
    // The shard created by the u64 example takes the batch examples in order, then the compactions.
    for (const ex of examples('post', '/v1/shards/{shardId}/batches')) await send('POST', `/v1/shards/${u64Shard}/batches`, ex.value, [201])
    await send('PATCH', '/v1/configs', { persist_compaction_heuristic_min_inputs: 1 }, [200])
    for (const ex of examples('post', '/v1/shards/{shardId}/compactions')) {
      const answer = await send('POST', `/v1/shards/${u64Shard}/compactions`, ex.value, [200, 202])
      assert.notEqual(answer['status'], 'failed', JSON.stringify(answer))
    }
    for (const ex of examples('patch', '/v1/configs')) await send('PATCH', '/v1/configs', ex.value, [200])
  })
})

describe('sortKeys', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    const sorted = sortKeys({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })
    assert.equal(JSON.stringify(sorted), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}')
  })
})
