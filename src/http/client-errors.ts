/**
 * Answers to requests Node's HTTP parser refuses before fastify sees them (fastify's
 * `clientErrorHandler`): malformed HTTP, headers over Node's limit, a request not received in
 * time. Written straight to the socket, which is then closed (the connection's framing is lost),
 * in the same error body as every other error: `{code, message}`.
 */
import { STATUS_CODES } from 'node:http'
import { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { FastifyInstance } from 'fastify'
import type { ErrorCode } from '../errors.js'
import type { ErrorBody } from './error-body.js'

/** The status, code and message for a parser error (its `code`: HPE_…, ERR_HTTP_REQUEST_TIMEOUT). */
export function clientErrorReply(errCode: string | undefined): { readonly status: number; readonly body: ErrorBody } {
  const reply = (code: ErrorCode, status: number, message: string) => ({ status, body: { code, message } })
  switch (errCode) {
    case 'HPE_HEADER_OVERFLOW':
      return reply('HEADERS_TOO_LARGE', 431, 'the request headers are larger than the server accepts (Node allows 16 KiB unless --max-http-header-size says otherwise); send fewer or shorter headers')
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return reply('REQUEST_TIMEOUT', 408, 'the request did not arrive in time; send it again')
    default:
      return reply('BAD_REQUEST', 400, `the request is not valid HTTP/1.1 (${errCode ?? 'unknown parser error'}); nothing was routed`)
  }
}

export function clientErrorHandler(this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const { status, body } = clientErrorReply(err.code)
  this.log.debug({ code: err.code, status }, 'malformed request refused')
  if (socket.writable) {
    const json = JSON.stringify(body)
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(json)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${json}`)
  }
  socket.destroy(err)
}

/** What a plain HTTP request to the HTTPS port is told. */
export const PLAIN_HTTP_ON_TLS: ErrorBody = {
  code: 'BAD_REQUEST',
  message: 'this port serves HTTPS (COMPACTD_TLS_CERT): send the request to https://, e.g. curl https://… --cacert <CA>, Prometheus scheme: https',
}

/**
 * With HTTPS on, a plain HTTP request (a client, scraper or bookmark still on http://) fails the
 * TLS handshake, and Node closed the connection without a word: compactctl said "other side
 * closed", curl "Empty reply from server", a browser ERR_EMPTY_RESPONSE. OpenSSL recognises such a
 * request (ERR_SSL_HTTP_REQUEST): it gets a plain HTTP 400 saying to use https://, written on the
 * TCP connection under the TLS socket, which is then closed. Other handshake failures stay silent.
 */
export function plainHttpOnTls(err: Error & { code?: string }, tlsSocket: TLSSocket): void {
  if (err.code !== 'ERR_SSL_HTTP_REQUEST') return
  // NB: `_parent` is the TCP socket a server's TLS socket was made on; without it (another Node),
  // the connection closes silently as before.
  const raw = (tlsSocket as unknown as { _parent?: unknown })._parent
  if (!(raw instanceof Socket) || !raw.writable) return
  const json = JSON.stringify(PLAIN_HTTP_ON_TLS)
  raw.end(`HTTP/1.1 400 ${STATUS_CODES[400]}\r\nContent-Length: ${Buffer.byteLength(json)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${json}`)
}
