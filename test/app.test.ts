import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { AppError } from '../src/errors.js'
import { INTERNAL_MESSAGE } from '../src/http/error-handler.js'
import type { Blob } from '../src/location/blob.js'
import type { Consensus } from '../src/location/consensus.js'
import { determinate } from '../src/location/errors.js'
import { openBlob, openConsensus } from '../src/location/open.js'
import { buildTestApp } from './helper.js'

const TOKEN = 'test-token-0123456789'

/** Test-only routes: one under /v1 with a body, one that throws a plain Error, one an AppError. */
const testRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/v1/echo',
    { schema: { body: z.object({ since: z.array(z.number()), note: z.string().optional() }), response: { 200: z.object({ since: z.array(z.number()) }) } } },
    async (req) => ({ since: req.body.since }),
  )
  app.get('/boom', async () => {
    throw new Error('secret detail at /etc/compactd/key')
  })
  app.get('/full', async () => {
    throw new AppError('QUEUE_FULL', 'the compaction queue is full', { queueDepth: 20 })
  })
  app.get('/v1/items/:id', { schema: { params: z.object({ id: z.string().regex(/^c[0-9]+$/) }) } }, async (req) => ({ id: req.params.id }))
  app.get('/v1/page', { schema: { querystring: z.object({ limit: z.coerce.number().int().optional() }) } }, async (req) => ({ limit: req.query.limit }))
}
const routes = [{ plugin: testRoutes }]

/** A store whose every call fails determinately (a disk or network that is down). */
function failingBlob(inner: Blob): Blob {
  const fail = async (): Promise<never> => {
    throw determinate('disk on fire')
  }
  return { get: fail, set: fail, delete: fail, list: inner.list.bind(inner), removeInterrupted: fail, close: () => inner.close() }
}
function hangingConsensus(inner: Consensus): Consensus {
  return { ...bindAll(inner), head: () => new Promise(() => undefined) }
}
function bindAll(c: Consensus): Consensus {
  return {
    head: c.head.bind(c),
    compareAndSet: c.compareAndSet.bind(c),
    scan: c.scan.bind(c),
    truncate: c.truncate.bind(c),
    list: c.list.bind(c),
    close: c.close.bind(c),
  }
}

describe('operations routes', () => {
  it('GET /healthz is 200 {"status":"ok"}', async (t) => {
    const { app } = await buildTestApp({ t })
    const res = await app.inject({ method: 'GET', url: '/healthz' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { status: 'ok' })
  })

  it('GET /readyz is 200 when both stores answer', async (t) => {
    const { app } = await buildTestApp({ t })
    const res = await app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { status: 'ready', checks: { blob: 'ok', consensus: 'ok', scheduler: 'running' } })
  })

  it('GET /readyz is 503 naming the store that fails', async (t) => {
    const { app } = await buildTestApp({ t, start: false, services: { rawBlob: failingBlob(await openBlob('mem://')), schedulerStatus: () => ({ state: 'running', ready: true }) } })
    const res = await app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(res.statusCode, 503)
    assert.deepEqual(res.json(), { status: 'not_ready', checks: { blob: 'determinate error: disk on fire', consensus: 'ok', scheduler: 'running' } })
  })

  it('readiness fails when a store hangs past the probe deadline', async (t) => {
    const { services } = await buildTestApp({ t, start: false, services: { rawConsensus: hangingConsensus(await openConsensus('mem://')), schedulerStatus: () => ({ state: 'running', ready: true }) } })
    const readiness = await services.checkReadiness({ timeoutMs: 50 })
    assert.deepEqual(readiness, { ready: false, checks: { blob: 'ok', consensus: 'timed out after 50 ms', scheduler: 'running' } })
  })

  it('GET /readyz is 503 when the scheduler is not ready', async (t) => {
    const { app } = await buildTestApp({ t, services: { schedulerStatus: () => ({ state: 'stopping', ready: false }) } })
    const res = await app.inject({ method: 'GET', url: '/readyz' })
    assert.equal(res.statusCode, 503)
    assert.equal(res.json().checks.scheduler, 'stopping')
  })

  it('GET /metrics serves the Prometheus text format with every family, including HTTP durations by route pattern', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    await app.inject({ method: 'GET', url: '/healthz' })
    await app.inject({ method: 'GET', url: '/v1/items/c7' })
    await app.inject({ method: 'GET', url: '/nope/123' })
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/)
    for (const family of [
      'persist_compaction_requested_total',
      'persist_compaction_schema_selection_total',
      'persist_compaction_goodbytes_total',
      'persist_shard_compaction_applied_total',
      'persist_compaction_queue_depth',
      'persist_consolidation_parts_fetched_total',
      'persist_retry_retries_total',
      'persist_cmd_cas_mismatch_total',
      'persist_gc_deleted_bytes_total',
      'persist_blob_operation_seconds',
      'persist_consensus_operation_seconds',
      'compactd_http_request_duration_seconds',
      'process_resident_memory_bytes',
    ]) {
      assert.match(res.body, new RegExp(`^# TYPE ${family} `, 'm'), family)
    }
    assert.match(res.body, /compactd_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} 1/)
    assert.match(res.body, /compactd_http_request_duration_seconds_count\{method="GET",route="\/v1\/items\/:id",status="200"\} 1/)
    assert.match(res.body, /compactd_http_request_duration_seconds_count\{method="GET",route="unmatched",status="404"\} 1/)
    assert.doesNotMatch(res.body, /route="\/v1\/items\/c7"/)
  })

  it('times store calls: /readyz probes bypass the decorated stores, service calls go through them', async (t) => {
    const { app, services } = await buildTestApp({ t, start: false })
    await services.blob.get('_compactd/x')
    await services.consensus.head('k')
    const text = await services.registry.metrics()
    assert.match(text, /persist_blob_operation_seconds_count\{op="get",outcome="ok"\} 1/)
    assert.match(text, /persist_consensus_operation_seconds_count\{op="head",outcome="ok"\} 1/)
    await app.inject({ method: 'GET', url: '/readyz' })
    assert.match(await services.registry.metrics(), /persist_blob_operation_seconds_count\{op="get",outcome="ok"\} 1/)
  })

  it('counts store retries under persist_retry_*{op="blob::<op>"}', async (t) => {
    let calls = 0
    const inner = await openBlob('mem://')
    const flaky: Blob = {
      get: async (key, opts) => {
        if (++calls === 1) throw determinate('blip')
        return inner.get(key, opts)
      },
      set: inner.set.bind(inner),
      delete: inner.delete.bind(inner),
      list: inner.list.bind(inner),
      removeInterrupted: inner.removeInterrupted.bind(inner),
      close: () => inner.close(),
    }
    const { services } = await buildTestApp({ t, services: { rawBlob: flaky } })
    assert.equal(await services.blob.get('a/b'), null)
    assert.equal(calls, 2)
    assert.match(await services.registry.metrics(), /persist_retry_retries_total\{op="blob::get"\} 1/)
  })
})

describe('errors', () => {
  it('an unknown route is 404 NOT_FOUND', async (t) => {
    const { app } = await buildTestApp({ t })
    const res = await app.inject({ method: 'GET', url: '/nope?x=1' })
    assert.equal(res.statusCode, 404)
    assert.deepEqual(res.json(), { code: 'NOT_FOUND', message: 'no route for GET /nope' })
  })

  it('a body that fails validation is 400 BAD_REQUEST naming the field path', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'POST', url: '/v1/echo', payload: { since: 5 } })
    assert.equal(res.statusCode, 400)
    assert.deepEqual(res.json(), {
      code: 'BAD_REQUEST',
      message: 'body.since: expected array, received number',
      field: 'body.since',
      fields: [{ field: 'body.since', message: 'expected array, received number' }],
    })
    const nested = await app.inject({ method: 'POST', url: '/v1/echo', payload: { since: [1, 'x'] } })
    assert.equal(nested.json().field, 'body.since[1]')
    assert.match(nested.json().message, /^body\.since\[1\]: expected number/)
  })

  it('every invalid field of a body is in one answer: the message names the first, `fields` lists them all', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'POST', url: '/v1/echo', payload: { since: [1, 'x', 'y'], note: 7 } })
    assert.equal(res.statusCode, 400)
    const body = res.json() as { message: string; field: string; fields: Array<{ field: string; message: string }> }
    assert.deepEqual(
      body.fields.map((f) => f.field),
      ['body.since[1]', 'body.since[2]', 'body.note'],
    )
    assert.equal(body.field, 'body.since[1]')
    assert.match(body.message, /^body\.since\[1\]: expected number, received string \(and 2 more: see fields\)$/)
  })

  it('a query parameter that fails validation is 400 naming query.<name>', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'GET', url: '/v1/page?limit=lots' })
    assert.equal(res.statusCode, 400)
    assert.equal(res.json().field, 'query.limit')
    assert.match(res.json().message, /^query\.limit: /)
  })

  it('a known path asked with another method is 405 METHOD_NOT_ALLOWED with Allow; an unknown path 404', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'DELETE', url: '/v1/echo' })
    assert.equal(res.statusCode, 405)
    assert.equal(res.headers.allow, 'POST')
    assert.deepEqual(res.json(), { code: 'METHOD_NOT_ALLOWED', message: 'DELETE is not allowed on /v1/echo; use POST', allowed: ['POST'] })
    const param = await app.inject({ method: 'PUT', url: '/v1/items/c12?x=1' })
    assert.equal(param.statusCode, 405)
    assert.equal(param.headers.allow, 'GET, HEAD')
    const health = await app.inject({ method: 'POST', url: '/healthz' })
    assert.equal(health.statusCode, 405)
    assert.equal(health.headers.allow, 'GET, HEAD')
    const unknown = await app.inject({ method: 'DELETE', url: '/v1/items/c12/more' })
    assert.equal(unknown.statusCode, 404)
  })

  it('a path parameter that fails validation is 400 naming params.<name>', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'GET', url: '/v1/items/zz' })
    assert.equal(res.statusCode, 400)
    assert.equal(res.json().code, 'BAD_REQUEST')
    assert.match(res.json().message, /^params\.id: /)
  })

  it('a path with a malformed escape or an overlong segment is 400 BAD_REQUEST in the error body, token or not', async () => {
    for (const authToken of [null, TOKEN]) {
      const { app, close } = await buildTestApp({ routes, settings: { authTokens: authToken === null ? null : [authToken] } })
      try {
        for (const [url, reason] of [
          ['/v1/items/%ZZ', /a % must start an escape/],
          ['/v1/items/%E0%A4%A', /a % must start an escape/],
          ['/%', /a % must start an escape/],
          [`/v1/items/${'c'.repeat(101)}`, /a segment is longer than 100 characters/],
        ] as const) {
          const res = await app.inject({ method: 'GET', url, headers: { 'x-request-id': 'bad-url-1' } })
          assert.equal(res.statusCode, 400, url)
          assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'message'], url)
          assert.equal(res.json().code, 'BAD_REQUEST', url)
          assert.match(res.json().message, reason, url)
          assert.equal(res.headers['x-request-id'], 'bad-url-1', url)
        }
        const metrics = await app.inject({ method: 'GET', url: '/metrics' })
        assert.match(metrics.body, /compactd_http_request_duration_seconds_count\{method="GET",route="unmatched",status="400"\} 4/)
        // At the limit, the segment is routed (and validated) as usual.
        const atLimit = await app.inject({ method: 'GET', url: `/v1/items/${'c'.repeat(100)}`, headers: authToken === null ? {} : { authorization: `Bearer ${TOKEN}` } })
        assert.match(atLimit.json().message, /^params\.id: /)
      } finally {
        await close()
      }
    }
  })

  it('malformed JSON is 400, an empty JSON body 400, an unsupported content type 415', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const bad = await app.inject({ method: 'POST', url: '/v1/echo', headers: { 'content-type': 'application/json' }, payload: '{"since": [1,' })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().code, 'BAD_REQUEST')
    const empty = await app.inject({ method: 'POST', url: '/v1/echo', headers: { 'content-type': 'application/json' }, payload: '' })
    assert.equal(empty.statusCode, 400)
    assert.equal(empty.json().code, 'BAD_REQUEST')
    const xml = await app.inject({ method: 'POST', url: '/v1/echo', headers: { 'content-type': 'application/xml' }, payload: '<since/>' })
    assert.equal(xml.statusCode, 415)
    assert.deepEqual(xml.json(), {
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: 'content type "application/xml" is not accepted here; send application/json',
      accepted: ['application/json'],
    })
    // NB: text/plain too: fastify's default string parser is removed, so a JSON route never sees a string.
    const text = await app.inject({ method: 'POST', url: '/v1/echo', headers: { 'content-type': 'text/plain' }, payload: '{"since":[1]}' })
    assert.equal(text.statusCode, 415)
  })

  it('a body over the configured limit is 413 PAYLOAD_TOO_LARGE', async (t) => {
    const { app } = await buildTestApp({ t, routes, settings: { bodyLimitBytes: 100 } })
    const ok = await app.inject({ method: 'POST', url: '/v1/echo', payload: { since: [1] } })
    assert.equal(ok.statusCode, 200)
    const res = await app.inject({ method: 'POST', url: '/v1/echo', payload: { since: [1], note: 'x'.repeat(200) } })
    assert.equal(res.statusCode, 413)
    assert.deepEqual(res.json(), { code: 'PAYLOAD_TOO_LARGE', message: 'Request body is too large' })
  })

  it('a thrown plain Error is 500 INTERNAL with no message or stack leaked', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'GET', url: '/boom', headers: { 'x-request-id': 'req-42' } })
    assert.equal(res.statusCode, 500)
    assert.deepEqual(res.json(), { code: 'INTERNAL', message: INTERNAL_MESSAGE, requestId: 'req-42' })
    assert.doesNotMatch(res.body, /secret|etc|at /)
  })

  it('an AppError keeps its status, code and extras', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'GET', url: '/full' })
    assert.equal(res.statusCode, 429)
    assert.deepEqual(res.json(), { code: 'QUEUE_FULL', message: 'the compaction queue is full', queueDepth: 20 })
  })
})

describe('auth', () => {
  it('without a token, /v1 routes are open', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const res = await app.inject({ method: 'POST', url: '/v1/echo', payload: { since: [] } })
    assert.equal(res.statusCode, 200)
  })

  it('with a token, /v1 needs Authorization: Bearer <token>; ops routes stay open', async (t) => {
    const { app } = await buildTestApp({ t, routes, settings: { authTokens: [TOKEN] } })
    const post = (headers: Record<string, string>) => app.inject({ method: 'POST', url: '/v1/echo', payload: { since: [1] }, headers })

    const missing = await post({})
    assert.equal(missing.statusCode, 401)
    assert.equal(missing.json().code, 'UNAUTHORIZED')
    assert.match(missing.headers['www-authenticate'] as string, /^Bearer/)

    for (const authorization of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
      const res = await post({ authorization })
      assert.equal(res.statusCode, 401, authorization)
      assert.equal(res.json().code, 'UNAUTHORIZED')
    }

    const ok = await post({ authorization: `Bearer ${TOKEN}` })
    assert.equal(ok.statusCode, 200)
    assert.equal(ok.headers['www-authenticate'], undefined)
    assert.deepEqual(ok.json(), { since: [1] })

    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs/']) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 200, url)
    }
  })

  it('with a token, unknown and encoded /v1 paths are 401 before 404, and auth runs before validation', async (t) => {
    const { app } = await buildTestApp({ t, routes, settings: { authTokens: [TOKEN] } })
    for (const url of ['/v1/nothing-here', '/%761/echo', '/v1']) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 401, url)
    }
    const invalid = await app.inject({ method: 'POST', url: '/v1/echo', payload: { since: 'x' } })
    assert.equal(invalid.statusCode, 401)
  })
})

describe('request ids', () => {
  it('echoes an incoming x-request-id, and makes one up otherwise', async (t) => {
    const { app } = await buildTestApp({ t })
    const given = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'abc-123' } })
    assert.equal(given.headers['x-request-id'], 'abc-123')
    const made = await app.inject({ method: 'GET', url: '/healthz' })
    assert.match(made.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/)
    const hostile = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'a b\u0007' } })
    assert.match(hostile.headers['x-request-id'] as string, /^[0-9a-f-]{36}$/)
  })

  it('puts the request id on error responses too', async (t) => {
    const { app } = await buildTestApp({ t })
    const res = await app.inject({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'r-1' } })
    assert.equal(res.headers['x-request-id'], 'r-1')
  })
})

describe('docs', () => {
  it('serves the interactive docs under /docs', async (t) => {
    const { app } = await buildTestApp({ t })
    const res = await app.inject({ method: 'GET', url: '/docs/' })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /text\/html/)
  })

  it('documents the standard errors of each route: 500 everywhere, 400/413/415 with a body, 401/503/507 under /v1', async (t) => {
    const { app } = await buildTestApp({ t, routes })
    const doc = app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown }>> }
    assert.deepEqual(Object.keys(doc.paths['/healthz']?.get?.responses ?? {}).sort(), ['200', '500'])
    const echo = doc.paths['/v1/echo']?.post
    assert.deepEqual(Object.keys(echo?.responses ?? {}).sort(), ['200', '400', '401', '413', '415', '500', '503', '507'])
    assert.deepEqual(echo?.security, [{ bearerAuth: [] }])
  })
})
