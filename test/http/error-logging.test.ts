/**
 * How a failed request is logged: a fault (500 INTERNAL, DATA_LOSS, a store's failure) is an error
 * line with the whole error; a 5xx that is a state of the server (shutting down, the kill switch,
 * a timeout) a warn line with its code and message and no stack; a client's 4xx an info line.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AppError } from '../../src/errors.js'
import { determinate } from '../../src/location/errors.js'
import { buildTestApp } from '../helper.js'

type Line = Record<string, unknown>

/** The lines of the request `reqId`, without Fastify's incoming/completed lines. */
function failureLines(lines: readonly Line[], reqId: string): Line[] {
  return lines.filter((l) => l.reqId === reqId && l.msg !== 'incoming request' && l.msg !== 'request completed')
}

describe('failed request logs', () => {
  it('log faults at error with the stack, states of the server at warn without one, client errors at info', async (t) => {
    const lines: Line[] = []
    const thrown: Record<string, unknown> = {
      internal: new Error('boom'),
      'data-loss': new AppError('DATA_LOSS', 'part p of shard s is missing'),
      storage: determinate('file blob get "k": EIO'),
      disabled: new AppError('COMPACTION_DISABLED', 'compaction is disabled by the kill switch'),
      stopping: new AppError('SERVICE_UNAVAILABLE', 'the compactor is stopping and accepts no new compactions'),
      'timed-out': new AppError('TIMED_OUT', 'the compaction ran past its timeout'),
      bad: new AppError('BAD_REQUEST', 'body.x: expected array'),
    }
    const { app } = await buildTestApp({
      t,
      log: { level: 'info', lines },
      routes: [{ plugin: async (scope) => void scope.get('/test/throw/:what', async (req) => Promise.reject(thrown[(req.params as { what: string }).what])) }],
    })
    const expected: Record<string, { level: number; msg: string; stack: boolean }> = {
      internal: { level: 50, msg: 'request failed', stack: true },
      'data-loss': { level: 50, msg: 'request failed', stack: true },
      storage: { level: 50, msg: 'request failed', stack: true },
      disabled: { level: 40, msg: 'request not served', stack: false },
      stopping: { level: 40, msg: 'request not served', stack: false },
      'timed-out': { level: 40, msg: 'request not served', stack: false },
      bad: { level: 30, msg: 'request rejected', stack: false },
    }
    for (const [what, want] of Object.entries(expected)) {
      const res = await app.inject({ method: 'GET', url: `/test/throw/${what}` })
      const reqId = String(res.headers['x-request-id'])
      const got = failureLines(lines, reqId)
      assert.equal(got.length, 1, `${what}: ${JSON.stringify(got)}`)
      const line = got[0]!
      assert.deepEqual({ level: line.level, msg: line.msg, stack: typeof (line.err as { stack?: unknown } | undefined)?.stack === 'string' }, want, what)
      if (!want.stack) assert.equal(line.code, res.json<{ code: string }>().code, what)
      if (res.statusCode >= 500) assert.deepEqual([line.method, line.url], ['GET', `/test/throw/${what}`], what)
      if (res.statusCode >= 500) assert.equal(res.json<{ requestId: string }>().requestId, reqId, what)
    }
  })

  it('log the 503s of a shutting-down app at warn, without a stack', async (t) => {
    const lines: Line[] = []
    const answers: number[] = []
    let baseUrl = ''
    const { app } = await buildTestApp({
      t,
      log: { level: 'info', lines },
      services: { gcIntervalMs: null },
      routes: [
        {
          plugin: async (scope) => {
            scope.addHook('preClose', async () => {
              for (let i = 0; i < 3; i++) answers.push((await fetch(`${baseUrl}/v1/shards`)).status)
            })
          },
        },
      ],
    })
    baseUrl = await app.listen({ host: '127.0.0.1', port: 0 })
    await app.close()
    assert.deepEqual(answers, [503, 503, 503])
    const failures = lines.filter((l) => typeof l.reqId === 'string' && l.msg !== 'incoming request' && l.msg !== 'request completed')
    assert.equal(failures.length, 3, JSON.stringify(failures))
    for (const l of failures) {
      assert.equal(l.level, 40, JSON.stringify(l))
      assert.equal(l.code, 'SERVICE_UNAVAILABLE')
      assert.equal(l.err, undefined)
    }
    assert.deepEqual(lines.filter((l) => Number(l.level) >= 50), [])
  })
})
