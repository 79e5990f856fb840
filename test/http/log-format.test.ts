import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatLogLine, logDestination } from '../../src/http/log-format.js'

describe('formatLogLine (COMPACTD_LOG_FORMAT=pretty)', () => {
  const time = new Date(2026, 11, 6, 14, 32, 1, 123).getTime()

  it('puts time, level, request id and message first, request details and other fields after', () => {
    const line = JSON.stringify({ level: 30, time, pid: 1, hostname: 'h', reqId: 'r-1', req: { method: 'GET', url: '/v1/shards' }, msg: 'incoming request' })
    assert.equal(formatLogLine(line), '14:32:01.123 INFO  [r-1] incoming request  GET /v1/shards\n')
    const done = JSON.stringify({ level: 30, time, reqId: 'r-1', res: { statusCode: 201 }, responseTime: 3.25, msg: 'request completed' })
    assert.equal(formatLogLine(done), '14:32:01.123 INFO  [r-1] request completed  201 3.3ms\n')
    const fields = JSON.stringify({ level: 40, time, msg: 'compactd listening', address: 'http://127.0.0.1:1', settings: { port: 1 } })
    assert.equal(formatLogLine(fields), '14:32:01.123 WARN  compactd listening  address=http://127.0.0.1:1 settings={"port":1}\n')
  })

  it('prints an error’s stack indented under its line', () => {
    const line = JSON.stringify({ level: 50, time, msg: 'request failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' } })
    assert.equal(formatLogLine(line), '14:32:01.123 ERROR request failed\n    Error: boom\n        at x\n')
    const noStack = JSON.stringify({ level: 50, time, msg: 'failed', err: { type: 'TypeError', message: 'bad' } })
    assert.equal(formatLogLine(noStack), '14:32:01.123 ERROR failed  err=TypeError: bad\n')
  })

  it('colours the level only when asked, and passes a line that is not JSON through', () => {
    assert.ok(formatLogLine(JSON.stringify({ level: 20, time, msg: 'm' }), true).endsWith('\u001b[36mDEBUG\u001b[0m m\n'))
    assert.equal(formatLogLine('not json\n'), 'not json\n')
    assert.equal(formatLogLine('42'), '42\n')
  })

  it('json is pino’s own output (no destination); pretty writes formatted lines', () => {
    assert.equal(logDestination('json'), undefined)
    const written: string[] = []
    const out = { isTTY: false, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WriteStream
    logDestination('pretty', out)?.write(JSON.stringify({ level: 30, time, msg: 'hello' }))
    assert.deepEqual(written, ['14:32:01.123 INFO  hello\n'])
  })
})
