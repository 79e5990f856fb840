import assert from 'node:assert/strict'
import { once, type EventEmitter } from 'node:events'
import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import compactionsRoutes, { statusFor } from '../../routes/compactions.js'
import type { CompactionJson } from '../../src/compact/compaction.js'
import type { Compactor } from '../../src/compact/compactor.js'
import { CompactionJson as CompactionSchema } from '../../src/http/api-types.js'
import { noSpace } from '../../src/location/errors.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { body, harness, smallBody, until, type Harness } from '../compact/compactor-harness.js'

/** The real app (error handler, standard responses, swagger) with the compactions routes on a test compactor. */
async function withApp(opts: Parameters<typeof harness>[0], fn: (h: Harness, t: TestApp) => Promise<void>, sseKeepAliveMs?: number): Promise<void> {
  const h = await harness(opts)
  const plugin: FastifyPluginAsyncZod = async (app) => {
    await app.register(compactionsRoutes, { compactor: h.compactor, ...(sseKeepAliveMs === undefined ? {} : { sseKeepAliveMs }) })
  }
  const t = await buildTestApp({ routes: [{ plugin }], without: ['compactions'] })
  try {
    await fn(h, t)
  } finally {
    await h.close()
    await t.close()
  }
}

const post = (t: TestApp, shardId: string, payload: unknown, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: `/v1/shards/${shardId}/compactions`, payload: payload as object, headers })

interface SseEvent {
  readonly event: string
  readonly data: CompactionJson
}

function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((frame) => frame.trim() !== '')
    .map((frame) => {
      const lines = frame.split('\n')
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? ''
      const data = lines.find((l) => l.startsWith('data: '))?.slice(6) ?? 'null'
      return { event, data: JSON.parse(data) as CompactionJson }
    })
}

/** Resolves when a `change` listener is next added to (or removed from) the compactor. */
function changeListener(compactor: Compactor, what: 'newListener' | 'removeListener'): Promise<void> {
  // NB: the compactor's typed events do not list EventEmitter's own.
  const emitter = compactor as unknown as EventEmitter
  return new Promise((resolve) => {
    const on = (event: string | symbol): void => {
      if (event !== 'change') return
      emitter.off(what, on)
      resolve()
    }
    emitter.on(what, on)
  })
}

describe('POST /v1/shards/:shardId/compactions', () => {
  it('202 with the queued compaction', () =>
    withApp({}, async (h, t) => {
      const res = await post(t, h.shardId, body())
      assert.equal(res.statusCode, 202)
      const c = CompactionSchema.parse(res.json())
      assert.equal(c.status, 'queued')
      assert.equal(c.shardId, h.shardId)
      assert.equal(c.source, 'request')
      assert.deepEqual(c.progress, { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 0, chunksTotal: 0, chunksApplied: 0, fraction: 0, etaSeconds: null })
      assert.deepEqual([c.kind, c.attempt, c.instance, c.merges], ['range', 1, null, []])
    }))

  it('200 with a skipped compaction when there is nothing to do, with its reason', () =>
    withApp({}, async (h, t) => {
      const res = await post(t, h.shardId, {})
      assert.equal(res.statusCode, 200)
      assert.equal(res.json().status, 'skipped')
      assert.equal(res.json().kind, 'merges')
      assert.equal(res.json().reason.code, 'NOTHING_TO_COMPACT')
      const small = await post(t, h.shardId, smallBody())
      assert.equal(small.statusCode, 202, 'an operator request is not dropped by the heuristics')
    }))

  it('200 with the plan for a dry run', () =>
    withApp({}, async (h, t) => {
      const res = await post(t, h.shardId, { ...body(), dryRun: true })
      assert.equal(res.statusCode, 200)
      const { plan } = res.json() as { plan: { heuristic: { wouldCompact: boolean }; timeoutMs: number; schemaSelection: string } }
      assert.equal(plan.heuristic.wouldCompact, true)
      assert.equal(plan.timeoutMs, 90_000)
      assert.equal(plan.schemaSelection, 'recent_schema')
      assert.deepEqual((await h.compactor.list()).compactions, [])
    }))

  it('422, 404 and 400 for invalid requests', () =>
    withApp({}, async (h, t) => {
      const b = body(2)
      const invalid = await post(t, h.shardId, { ...b, inputs: [...(b.inputs ?? [])].reverse() })
      assert.equal(invalid.statusCode, 422)
      assert.equal(invalid.json().code, 'INVALID_COMPACTION')
      assert.match(invalid.json().message, /non-consecutive/)

      const unknown = await post(t, 's00000000-0000-4000-8000-000000000000', body())
      assert.equal(unknown.statusCode, 404)
      assert.equal(unknown.json().code, 'SHARD_NOT_FOUND')

      for (const [payload, field] of [
        [{ ...body(), dryrun: true }, 'body'],
        [{ ...body(), wait: 'yes' }, 'body.wait'],
        [{ ...body(), deadline: '1.5s' }, 'body.deadline'],
        [{ ...body(), writerSchemaId: -1 }, 'body.writerSchemaId'],
      ] as const) {
        const res = await post(t, h.shardId, payload)
        assert.equal(res.statusCode, 400, JSON.stringify(payload))
        assert.equal(res.json().code, 'BAD_REQUEST')
        assert.ok(String(res.json().message).startsWith(`${field}:`), res.json().message)
      }
      const badId = await post(t, 'not-a-shard', body())
      assert.equal(badId.statusCode, 400)
      assert.deepEqual((await h.compactor.list()).compactions, [])
    }))

  it('429 with Retry-After and queueDepth when the queue is full', () =>
    withApp({ configs: { compaction_queue_size: 1, compaction_concurrency_limit: 1 } }, async (h, t) => {
      assert.equal((await post(t, h.shardId, body())).statusCode, 202)
      await h.exec.take()
      assert.equal((await post(t, h.shardId, body())).statusCode, 202)
      const res = await post(t, h.shardId, body())
      assert.equal(res.statusCode, 429)
      assert.equal(res.headers['retry-after'], '1')
      assert.equal(res.json().code, 'QUEUE_FULL')
      assert.equal(res.json().queueDepth, 1)
    }))

  it('an Idempotency-Key repeats the existing compaction', () =>
    withApp({}, async (h, t) => {
      const first = await post(t, h.shardId, body(), { 'idempotency-key': 'abc' })
      const second = await post(t, h.shardId, body(), { 'idempotency-key': 'abc' })
      assert.equal(second.json().id, first.json().id)
      const third = await post(t, h.shardId, body(), { 'idempotency-key': 'other' })
      assert.notEqual(third.json().id, first.json().id)
    }))

  it('wait: 200 when it succeeded, 503 disabled, 504 timed out or past the deadline, 500 otherwise', () =>
    withApp({}, async (h, t) => {
      const ok = post(t, h.shardId, { ...body(), wait: true })
      const call = await h.exec.take()
      call.succeed()
      const okRes = await ok
      assert.equal(okRes.statusCode, 200)
      assert.equal(okRes.json().status, 'succeeded')
      assert.equal(okRes.json().result, 'applied_exact')

      const noop = post(t, h.shardId, { ...body(), wait: true })
      h.shards.applyScript.push('not_applied_no_match')
      ;(await h.exec.take()).succeed()
      assert.equal((await noop).statusCode, 200)

      const deadline = post(t, h.shardId, { ...body(), wait: true, deadline: '5ms' })
      await h.exec.take()
      const deadlineRes = await deadline
      assert.equal(deadlineRes.statusCode, 504)
      assert.equal(deadlineRes.json().error.code, 'DEADLINE_EXCEEDED')

      const failing = post(t, h.shardId, { ...body(), wait: true })
      ;(await h.exec.take()).fail(new Error('boom'))
      const failRes = await failing
      assert.equal(failRes.statusCode, 500)
      assert.equal(failRes.json().status, 'failed')
      assert.deepEqual(failRes.json().error, { code: 'INTERNAL', message: 'internal error; see the server log' })

      await h.set({ persist_compaction_minimum_timeout: '5ms' })
      const slow = post(t, h.shardId, { ...body(), wait: true })
      await h.exec.take()
      const slowRes = await slow
      assert.equal(slowRes.statusCode, 504)
      assert.equal(slowRes.json().error.code, 'TIMED_OUT')

      await h.set({ compaction_process_requests: false })
      const disabled = await post(t, h.shardId, { ...body(), wait: true })
      assert.equal(disabled.statusCode, 503)
      assert.deepEqual(disabled.json().error, { code: 'COMPACTION_DISABLED', message: 'compaction disabled' })

      const skipped = await post(t, h.shardId, { wait: true })
      assert.equal(skipped.statusCode, 200)
      assert.equal(skipped.json().status, 'skipped')

      await h.set({ compaction_process_requests: true })
      h.shards.applyScript.push('not_applied_no_match')
      const notApplied = post(t, h.shardId, { ...body(), wait: true })
      ;(await h.exec.take()).succeed()
      const noopRes = await notApplied
      assert.equal(noopRes.statusCode, 200, 'a compaction that ran to its end is 200 whatever its outcome')
      assert.equal(noopRes.json().status, 'not_applied')
    }))

  it('wait: 507 with the Compaction when it failed for lack of space, its outputs deleted', () =>
    withApp({}, async (h, t) => {
      h.shards.applyScript.push({ throws: noSpace('file consensus compareAndSet: no space left') })
      const full = post(t, h.shardId, { ...body(), wait: true })
      const call = await h.exec.take()
      const written = call.write(1)
      call.succeed()
      const res = await full
      assert.equal(res.statusCode, 507)
      assert.equal(res.json().status, 'failed')
      assert.equal(res.json().error.code, 'INSUFFICIENT_STORAGE')
      assert.deepEqual(h.shards.deletedKeys(), written)
    }))

  it('statusFor: cancelled while waited on is a 500 (docs/api.md#waiting-dry-runs-idempotency-and-deadlines)', () =>
    withApp({}, async (h) => {
      const pending = h.compactor.submit(h.shardId, { ...body(), wait: true })
      await h.exec.take()
      const [c] = (await h.compactor.list({ status: 'running' })).compactions
      await h.compactor.cancel(c?.id ?? '')
      const r = await pending
      assert.equal(statusFor(r), 500)
    }))
})

describe('GET /v1/compactions', () => {
  it('lists queued, running, then finished, with filters and a validated query', () =>
    withApp({ configs: { compaction_concurrency_limit: 1 } }, async (h, t) => {
      const running = (await post(t, h.shardId, body())).json().id as string
      await h.exec.take()
      const queued = (await post(t, h.shardId, body())).json().id as string
      const skipped = (await post(t, h.shardId, {})).json().id as string
      const all = await t.app.inject({ method: 'GET', url: '/v1/compactions' })
      assert.equal(all.statusCode, 200)
      assert.deepEqual(
        (all.json().compactions as CompactionJson[]).map((c) => c.id),
        [queued, running, skipped],
      )
      const bySkipped = await t.app.inject({ method: 'GET', url: `/v1/compactions?status=skipped&shardId=${h.shardId}&limit=5` })
      assert.deepEqual(
        (bySkipped.json().compactions as CompactionJson[]).map((c) => c.id),
        [skipped],
      )
      const limited = await t.app.inject({ method: 'GET', url: '/v1/compactions?limit=1' })
      assert.deepEqual((limited.json().compactions as CompactionJson[]).map((c) => c.id), [queued])
      const next = await t.app.inject({ method: 'GET', url: `/v1/compactions?limit=2&cursor=${encodeURIComponent(limited.json().nextCursor as string)}` })
      assert.deepEqual((next.json().compactions as CompactionJson[]).map((c) => c.id), [running, skipped])
      assert.equal((await t.app.inject({ method: 'GET', url: '/v1/compactions?source=maintenance' })).json().compactions.length, 0)
      for (const q of ['status=done', 'limit=0', 'limit=abc', 'shardId=x', 'source=cron', 'cursor=%20nope']) {
        const res = await t.app.inject({ method: 'GET', url: `/v1/compactions?${q}` })
        assert.equal(res.statusCode, 400, q)
        assert.equal(res.json().code, 'BAD_REQUEST')
        assert.match(res.json().message as string, /^query\./, q)
      }
    }))
})

describe('GET /v1/instances', () => {
  it('lists the live instances, the answering one marked self', () =>
    withApp({}, async (h, t) => {
      await h.compactor.heartbeat()
      const res = await t.app.inject({ method: 'GET', url: '/v1/instances' })
      assert.equal(res.statusCode, 200)
      const [me, ...others] = res.json().instances as { id: string; self: boolean; version: string; running: number; startedAt: string; heartbeatAt: string }[]
      assert.deepEqual(others, [])
      assert.deepEqual([me?.id, me?.self, me?.version, me?.running], ['test-a', true, 'test', 0])
      assert.ok(Date.parse(me?.heartbeatAt ?? '') >= Date.parse(me?.startedAt ?? ''))
    }))
})

describe('GET and DELETE /v1/compactions/:id', () => {
  it('gets one, 404 for an unknown id, 400 for a malformed one', () =>
    withApp({}, async (h, t) => {
      const id = (await post(t, h.shardId, body())).json().id as string
      const res = await t.app.inject({ method: 'GET', url: `/v1/compactions/${id}` })
      assert.equal(res.statusCode, 200)
      assert.equal(res.json().id, id)
      const missing = await t.app.inject({ method: 'GET', url: '/v1/compactions/c00000000-0000-4000-8000-000000000000' })
      assert.equal(missing.statusCode, 404)
      assert.equal(missing.json().code, 'COMPACTION_NOT_FOUND')
      assert.equal((await t.app.inject({ method: 'GET', url: '/v1/compactions/x' })).statusCode, 400)
    }))

  it('cancels a running compaction (200, outputs deleted), then 409 ALREADY_FINISHED', () =>
    withApp({}, async (h, t) => {
      const id = (await post(t, h.shardId, body())).json().id as string
      const call = await h.exec.take()
      const written = call.write(2)
      const res = await t.app.inject({ method: 'DELETE', url: `/v1/compactions/${id}` })
      assert.equal(res.statusCode, 200)
      assert.equal(res.json().status, 'cancelled')
      assert.equal(res.json().error.code, 'CANCELLED')
      assert.deepEqual(h.shards.deletedKeys(), written)
      const again = await t.app.inject({ method: 'DELETE', url: `/v1/compactions/${id}` })
      assert.equal(again.statusCode, 409)
      assert.equal(again.json().code, 'ALREADY_FINISHED')
    }))
})

/** A compaction's event stream over a real connection (the app listens on a loopback port). */
async function openEvents(t: TestApp, id: string): Promise<{ req: ClientRequest; res: IncomingMessage }> {
  await t.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = t.app.server.address() as AddressInfo
  const req = request({ host: '127.0.0.1', port, path: `/v1/compactions/${id}/events` })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  return { req, res }
}

describe('GET /v1/compactions/:id/events', () => {
  it('a finished compaction yields just done', () =>
    withApp({}, async (h, t) => {
      const id = (await post(t, h.shardId, {})).json().id as string
      const res = await t.app.inject({ method: 'GET', url: `/v1/compactions/${id}/events` })
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/event-stream/)
      const events = parseSse(res.body)
      assert.deepEqual(
        events.map((e) => [e.event, e.data.status]),
        [['done', 'skipped']],
      )
    }))

  it('streams progress events then one done', () =>
    withApp({}, async (h, t) => {
      const id = (await post(t, h.shardId, body())).json().id as string
      const call = await h.exec.take()
      const subscribed = changeListener(h.compactor, 'newListener')
      const streaming = t.app.inject({ method: 'GET', url: `/v1/compactions/${id}/events` })
      await subscribed
      call.ctx.onProgress({ chunksTotal: 2, chunksDone: 1, updatesRead: 100 })
      call.ctx.onProgress({ chunksDone: 2, updatesWritten: 80 })
      call.succeed()
      const res = await streaming
      const events = parseSse(res.body)
      assert.ok(events.length >= 2, res.body)
      assert.ok(events.slice(0, -1).every((e) => e.event === 'progress' && e.data.status === 'running'))
      const last = events.at(-1)
      assert.equal(last?.event, 'done')
      assert.equal(last?.data.status, 'succeeded')
      assert.deepEqual(last?.data.progress, { updatesRead: 100, updatesWritten: 80, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 2, chunksTotal: 2, chunksApplied: 2, fraction: 1, etaSeconds: 0 })
      const fractions = events.map((e) => (e.data.progress as { fraction: number }).fraction)
      assert.deepEqual([...fractions].sort((a, b) => a - b), fractions, 'the fraction never falls')
      for (const e of events) CompactionSchema.parse(e.data)
      assert.equal(h.compactor.listenerCount('change'), 0)
    }))

  it('404 for an unknown compaction', () =>
    withApp({}, async (_h, t) => {
      const res = await t.app.inject({ method: 'GET', url: '/v1/compactions/c00000000-0000-4000-8000-000000000000/events' })
      assert.equal(res.statusCode, 404)
      assert.equal(res.json().code, 'COMPACTION_NOT_FOUND')
    }))

  it('over a real connection: the stream stops listening when the client goes away', () =>
    withApp({}, async (h, t) => {
      const id = (await post(t, h.shardId, body())).json().id as string
      const call = await h.exec.take()
      const { req, res } = await openEvents(t, id)
      assert.equal(res.statusCode, 200)
      res.setEncoding('utf8')
      const [chunk] = (await once(res, 'data')) as [string]
      assert.equal(parseSse(chunk)[0]?.event, 'progress')
      assert.equal(h.compactor.listenerCount('change'), 1)
      const released = changeListener(h.compactor, 'removeListener')
      req.destroy()
      await released
      assert.equal(h.compactor.listenerCount('change'), 0)
      call.succeed()
      await until(h.compactor, id, 'succeeded')
    }))
})

describe('GET /v1/compactions/:id/events keep-alive', () => {
  it('sends a comment line while no event comes, and the events after it as usual', () =>
    withApp(
      {},
      async (h, t) => {
        const id = (await post(t, h.shardId, body())).json().id as string
        const call = await h.exec.take()
        const { req, res } = await openEvents(t, id)
        assert.equal(res.headers['x-accel-buffering'], 'no')
        res.setEncoding('utf8')
        let text = ''
        const seen = (what: string): Promise<void> =>
          new Promise((resolve) => {
            const check = (): void => {
              if (!text.includes(what)) return
              res.off('data', onData)
              resolve()
            }
            const onData = (chunk: string): void => {
              text += chunk
              check()
            }
            res.on('data', onData)
            check()
          })
        // The running compaction's first progress event, then nothing happens: comments come.
        await seen(': keep-alive\n\n')
        call.succeed()
        await seen('event: done')
        const events = parseSse(text)
        assert.deepEqual([events[0]?.event, events.at(-1)?.event, events.at(-1)?.data.status], ['progress', 'done', 'succeeded'])
        req.destroy()
      },
      20,
    ))
})

describe('POST /v1/compact', () => {
  const payload = (shardId: string) => ({ shardId, desc: { lower: [0], upper: [1], since: [0] }, inputs: smallBody().inputs })

  it('200 with the output, nothing queued or applied', () =>
    withApp({}, async (h, t) => {
      const pending = t.app.inject({ method: 'POST', url: '/v1/compact', payload: payload(h.shardId) })
      const call = await h.exec.take()
      const output = call.succeed()
      const res = await pending
      assert.equal(res.statusCode, 200)
      assert.equal(res.json().output.parts[0].key, output.parts[0]?.kind === 'hollow' ? output.parts[0].key : undefined)
      assert.deepEqual(h.shards.applied, [])
      assert.deepEqual((await h.compactor.list()).compactions, [])
    }))

  it('504 on timeout, 422 when invalid, 400 when malformed', () =>
    withApp({ configs: { persist_compaction_minimum_timeout: '5ms' } }, async (h, t) => {
      const pending = t.app.inject({ method: 'POST', url: '/v1/compact', payload: payload(h.shardId) })
      const written = (await h.exec.take()).write()
      const res = await pending
      assert.equal(res.statusCode, 504)
      assert.equal(res.json().code, 'TIMED_OUT')
      assert.deepEqual(h.shards.deletedKeys(), written)

      const invalid = await t.app.inject({ method: 'POST', url: '/v1/compact', payload: { ...payload(h.shardId), desc: { lower: [0], upper: [3], since: [0] } } })
      assert.equal(invalid.statusCode, 422)
      const malformed = await t.app.inject({ method: 'POST', url: '/v1/compact', payload: { shardId: h.shardId } })
      assert.equal(malformed.statusCode, 400)
    }))
})

describe('OpenAPI', () => {
  it('documents every compaction route and status', () =>
    withApp({}, async (_h, t) => {
      const doc = t.app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
      const submit = doc.paths['/v1/shards/{shardId}/compactions']?.post
      assert.deepEqual(Object.keys(submit?.responses ?? {}).sort(), ['200', '202', '400', '401', '404', '410', '413', '415', '422', '429', '500', '503', '504', '507'])
      for (const [path, method] of [
        ['/v1/compact', 'post'],
        ['/v1/compactions', 'get'],
        ['/v1/compactions/{id}', 'get'],
        ['/v1/compactions/{id}', 'delete'],
        ['/v1/compactions/{id}/events', 'get'],
      ] as const) {
        assert.ok(doc.paths[path]?.[method] !== undefined, `${method} ${path}`)
      }
    }))
})
