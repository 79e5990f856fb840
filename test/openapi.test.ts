import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { renderOpenApi, sortKeys } from '../src/http/openapi.js'
import { buildTestApp } from './helper.js'

const COMMITTED = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'openapi', 'openapi.json')

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

describe('sortKeys', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    const sorted = sortKeys({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })
    assert.equal(JSON.stringify(sorted), '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}')
  })
})
