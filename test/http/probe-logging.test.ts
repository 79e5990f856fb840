import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/app.js'
import { skipRequestLogging } from '../../src/http/probe-logging.js'
import { createServices } from '../../src/services.js'
import { testSettings } from '../helper.js'

/** The app at `level`, its log lines parsed; every request through `inject`. */
async function loggedApp(t: { after(fn: () => Promise<void>): void }, level: 'info' | 'debug') {
  const services = await createServices(testSettings())
  const lines: Array<Record<string, unknown>> = []
  const app = buildApp(services, { logger: { level, stream: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } } })
  t.after(async () => {
    await app.close()
    await services.close()
  })
  await services.start()
  await app.ready()
  return { app, lines }
}

describe('request logs', () => {
  it('skip exactly the probe paths, whatever their query', () => {
    for (const url of ['/healthz', '/readyz?verbose=1', '/metrics?', '/metrics?a?b']) assert.equal(skipRequestLogging({ url }), true, url)
    for (const url of ['/healthzz', '/v1/shards?x=/healthz', '/', '', '?/healthz']) assert.equal(skipRequestLogging({ url }), false, url)
    assert.equal(skipRequestLogging({}), false)
  })

  it('log probes (/healthz, /readyz, /metrics) at debug only, other requests at info', async (t) => {
    const { app, lines } = await loggedApp(t, 'info')
    for (const url of ['/healthz', '/readyz', '/metrics']) assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200)
    assert.equal(lines.length, 0, 'no probe line at info')
    await app.inject({ method: 'GET', url: '/v1/shards' })
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [
        [30, 'incoming request'],
        [30, 'request completed'],
      ],
    )
  })

  it('at debug, each probe is one debug line with its method, url and status', async (t) => {
    const { app, lines } = await loggedApp(t, 'debug')
    await app.inject({ method: 'GET', url: '/healthz?x=1' })
    const probe = lines.filter((l) => l.msg === 'request completed')
    assert.equal(probe.length, 1)
    assert.equal(probe[0]?.level, 20)
    assert.deepEqual(probe[0]?.req, { method: 'GET', url: '/healthz?x=1', host: 'localhost:80', remoteAddress: '127.0.0.1' })
    assert.deepEqual(probe[0]?.res, { statusCode: 200 })
    assert.equal(lines.filter((l) => l.msg === 'incoming request').length, 0)
  })
})
