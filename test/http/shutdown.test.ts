/**
 * The HTTP side of a graceful shutdown (src/http/connection-close.ts): while the instance drains,
 * answers close their connections; once the app closes, a request that still reaches it is
 * answered 503 SERVICE_UNAVAILABLE in the API's error shape.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Agent, get, type IncomingMessage } from 'node:http'
import { PassThrough } from 'node:stream'
import { describe, it } from 'node:test'
import { buildTestApp } from '../helper.js'
import { liveApp } from '../support/live-app.js'

describe('shutdown', () => {
  it('answers with connection: close while draining, and still serves', async (t) => {
    const { app, baseUrl } = await liveApp(t)
    const before = await fetch(`${baseUrl}/healthz`)
    assert.equal(before.status, 200)
    assert.notEqual(before.headers.get('connection'), 'close')
    app.drain()
    const during = await fetch(`${baseUrl}/healthz`)
    assert.equal(during.status, 200)
    assert.equal(during.headers.get('connection'), 'close')
    const shards = await fetch(`${baseUrl}/v1/shards`)
    assert.equal(shards.status, 200)
    assert.equal(shards.headers.get('connection'), 'close')
  })

  it('answers a request that reaches a closing app 503 SERVICE_UNAVAILABLE, with the error body, on every route', async (t) => {
    // A preClose hook runs once the app is closing but before the listener closes: a request made
    // then reaches the closing app, as one on a keep-alive connection can.
    type Answer = { status: number; connection: string | null; body: Record<string, unknown> }
    const answers: Record<string, Answer> = {}
    let baseUrl = ''
    const { app } = await buildTestApp({
      t,
      settings: { workers: 1 },
      services: { gcIntervalMs: null },
      routes: [
        {
          plugin: async (scope) => {
            scope.addHook('preClose', async () => {
              // NB: /readyz documents a 503 of its own shape, which the error body must not be checked against.
              for (const path of ['/v1/shards', '/readyz', '/healthz']) {
                const res = await fetch(`${baseUrl}${path}`)
                answers[path] = { status: res.status, connection: res.headers.get('connection'), body: (await res.json()) as Record<string, unknown> }
              }
            })
          },
        },
      ],
    })
    baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
    await app.close()
    assert.deepEqual(Object.keys(answers), ['/v1/shards', '/readyz', '/healthz'])
    for (const [path, answer] of Object.entries(answers)) {
      assert.equal(answer.status, 503, `${path}: ${JSON.stringify(answer.body)}`)
      assert.equal(answer.connection, 'close', path)
      assert.equal(answer.body.code, 'SERVICE_UNAVAILABLE', path)
      assert.match(String(answer.body.message), /shutting down/, path)
    }
  })

  it('closes a keep-alive connection once a response that began before the drain ends, so the app can close', { timeout: 30_000 }, async (t) => {
    // A streamed answer (a snapshot, an SSE stream) sends its headers before the shutdown, so it
    // cannot say Connection: close. Node ends its connection once it ends after close(): a closing
    // server must not wait for the keep-alive timeout (72 s), past the shutdown's bound.
    let release = (): void => undefined
    const released = new Promise<void>((resolve) => (release = resolve))
    const { app } = await buildTestApp({
      t,
      settings: { workers: 1 },
      services: { gcIntervalMs: null },
      routes: [
        {
          plugin: async (scope) => {
            scope.get('/test/stream', async (_req, reply) => {
              const body = new PassThrough()
              body.write('first ')
              void released.then(() => body.end('last'))
              return reply.type('text/plain').send(body)
            })
          },
        },
      ],
    })
    const baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
    // NB: the loop alive while the test waits (Node 20 cancels a test whose awaits hold no handle).
    const alive = setInterval(() => undefined, 1_000)
    t.after(() => clearInterval(alive))
    const agent = new Agent({ keepAlive: true })
    t.after(() => agent.destroy())
    const res = await new Promise<IncomingMessage>((resolve, reject) => get(`${baseUrl}/test/stream`, { agent }, resolve).once('error', reject))
    assert.equal(res.headers.connection, 'keep-alive')
    const text = (async () => {
      let all = ''
      for await (const chunk of res) all += String(chunk)
      return all
    })()
    const closed = once(res.socket, 'close')
    app.drain()
    const appClosed = app.close()
    release()
    assert.equal(await text, 'first last')
    await closed
    await appClosed
  })
})

