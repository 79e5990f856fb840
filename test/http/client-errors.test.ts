/**
 * Requests Node's HTTP parser refuses get compactd's error body too, over a real socket: malformed
 * HTTP is 400 BAD_REQUEST, headers over Node's limit 431 HEADERS_TOO_LARGE; the connection closes.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { describe, it } from 'node:test'
import { STATUS_FOR_CODE } from '../../src/errors.js'
import { clientErrorReply, PLAIN_HTTP_ON_TLS } from '../../src/http/client-errors.js'
import { liveApp } from '../support/live-app.js'
import { tlsPairOf } from '../support/tls.js'

/** Writes `raw` to the server and reads until it closes the connection (bounded). */
function exchange(port: number, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(raw))
    let got = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => (got += d))
    socket.on('close', () => resolve(got))
    socket.on('error', reject)
    socket.setTimeout(10_000, () => {
      socket.destroy()
      reject(new Error(`no close within 10 s; got ${JSON.stringify(got)}`))
    })
  })
}

function parse(answer: string): { status: number; headers: string; body: Record<string, unknown> } {
  const [head = '', body = ''] = answer.split('\r\n\r\n')
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1])
  return { status, headers: head.toLowerCase(), body: JSON.parse(body) as Record<string, unknown> }
}

describe('requests the HTTP parser refuses', () => {
  it('answer in the error body, with the code’s status, and close the connection', async (t) => {
    const { hostPort } = await liveApp(t)
    const port = Number(hostPort.split(':')[1])
    const cases = [
      ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n', 'BAD_REQUEST'],
      ['two Content-Lengths', 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 'BAD_REQUEST'],
      ['no request line', 'BLAH\r\n\r\n', 'BAD_REQUEST'],
      ['a malformed chunk', 'POST /v1/shards HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n', 'BAD_REQUEST'],
      ['headers over the limit', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 'HEADERS_TOO_LARGE'],
    ] as const
    for (const [what, raw, code] of cases) {
      const answer = parse(await exchange(port, raw))
      assert.equal(answer.body.code, code, what)
      assert.equal(answer.status, STATUS_FOR_CODE[code], what)
      assert.equal(typeof answer.body.message, 'string', what)
      assert.match(answer.headers, /\r\nconnection: close/, what)
    }
    // The server is fine afterwards.
    assert.equal(parse(await exchange(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status, 200)
  })

  it('a request not received in time is 408 REQUEST_TIMEOUT', () => {
    const { status, body } = clientErrorReply('ERR_HTTP_REQUEST_TIMEOUT')
    assert.equal(body.code, 'REQUEST_TIMEOUT')
    assert.equal(status, STATUS_FOR_CODE.REQUEST_TIMEOUT)
  })
})

describe('plain HTTP to the HTTPS port', () => {
  it('is answered in plain HTTP with a 400 saying to use https://; a TLS client is served as before', async (t) => {
    const { cert, pair } = await tlsPairOf(t, 'plain')
    const { hostPort } = await liveApp(t, {}, pair)
    const port = Number(hostPort.split(':')[1])
    const answer = parse(await exchange(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'))
    assert.equal(answer.status, 400)
    assert.match(answer.headers, /connection: close/)
    assert.deepEqual(answer.body, PLAIN_HTTP_ON_TLS)
    // Not HTTP at all (another protocol's bytes): closed without a word, as before.
    assert.equal(await exchange(port, '\x00\x01\x02\x03 not a handshake\r\n'), '')
    // And TLS still works on the port.
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: cert.cert })
    try {
      await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject))
      assert.equal(socket.authorized, true)
    } finally {
      // NB: before the app closes, which waits for open connections.
      socket.destroy()
    }
  })
})
