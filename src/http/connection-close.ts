/**
 * How connections end around requests whose bodies were not read to their end, and at shutdown:
 *
 * - **An answer sent before its request body was read to its end** (a write refused part-way: 413
 *   over the body limit, 400 at a malformed row, 408 idle). The handler stops reading the body, and
 *   Node's server does not discard a body a handler has begun to read, so the connection's next
 *   request would wait behind bytes nobody reads (a client reusing the connection hung until the
 *   socket was reset, and shutdown waited its whole grace for it). Closing at once is no better: a
 *   client still sending then gets a reset, which can discard the answer before it reads it. So,
 *   as nginx's lingering close does, the rest of the body is read and thrown away once the answer is
 *   sent, for at most `LINGER_MS`, and while bytes keep coming (`LINGER_IDLE_MS`); if the body ends
 *   meanwhile the connection stays usable, otherwise it is closed.
 * - **Draining on shutdown** (`app.drain()`, src/main.ts). From the signal until the listener closes
 *   (`COMPACTD_SHUTDOWN_DRAIN`) the server still serves, but every answer says `Connection: close`,
 *   so keep-alive clients reconnect (through a load balancer, to another instance) instead of
 *   sending their next request down a connection that is about to close. Node closes the
 *   connections idle at `close()`; a client writing on one just then sees a reset it cannot tell
 *   from a lost answer, which the drain leaves few connections to meet. After `close()` the same
 *   header goes on answers still being sent, and a body still unread is not waited for.
 * - **A request that reaches a closing app** (on a connection busy at `close()`) is answered 503
 *   `SERVICE_UNAVAILABLE` in the API's error shape, on every route, and its connection closes. (Fastify's own
 *   answer for it has no `code`, so a client could not tell it from any other 503.)
 */
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Starts the shutdown's drain: answers from now on close their connections. */
    drain(): void
  }
}

/** The longest the rest of an unread body is read and discarded after its answer. */
export const LINGER_MS = 30_000
/** Discarding stops (and the connection closes) when no byte of it comes this long. */
export const LINGER_IDLE_MS = 5_000

async function connectionClose(app: FastifyInstance): Promise<void> {
  let draining = false
  let closing = false
  app.decorate('drain', () => {
    draining = true
  })
  app.addHook('preClose', async () => {
    draining = true
    closing = true
  })
  app.addHook('onRequest', async (_req, reply) => {
    if (!closing) return
    // NB: the error body on every route: a route's own 503 shape (/readyz's) would refuse it, and
    // the refusal would be a 500.
    reply.serializer(JSON.stringify)
    throw new AppError('SERVICE_UNAVAILABLE', 'the server is shutting down; send the request to another instance, or again once this one has restarted')
  })
  app.addHook('onSend', async (_req, reply, payload) => {
    if (draining) reply.header('connection', 'close')
    return payload
  })
  app.addHook('onResponse', async (req) => {
    // NB: `=== false`: requests injected in tests (light-my-request) have no parser and no `complete`.
    if (req.raw.complete === false) discardRest(req.raw, closing ? 0 : LINGER_MS)
  })
}

/** Reads and drops what is left of `req`'s body for up to `lingerMs`, then closes its connection. */
function discardRest(req: IncomingMessage, lingerMs: number): void {
  const socket = req.socket
  if (lingerMs <= 0 || socket.destroyed) {
    socket.destroy()
    return
  }
  let idle: NodeJS.Timeout
  const giveUp = (): void => {
    done()
    socket.destroy()
  }
  const total = setTimeout(giveUp, lingerMs)
  const stillComing = (): void => {
    clearTimeout(idle)
    idle = setTimeout(giveUp, LINGER_IDLE_MS)
  }
  const done = (): void => {
    clearTimeout(total)
    clearTimeout(idle)
    req.off('data', stillComing)
    req.off('end', done)
    req.off('close', done)
  }
  stillComing()
  req.on('data', stillComing)
  req.once('end', done)
  req.once('close', done)
  req.resume()
}

export const connectionClosePlugin = fp(connectionClose, { name: 'compactd-connection-close', fastify: '5.x' })
