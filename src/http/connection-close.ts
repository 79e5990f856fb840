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
 * - **Draining on shutdown.** Once the server stops listening, every answer still being sent says
 *   `Connection: close`, so a keep-alive connection whose request was in flight when the shutdown
 *   began closes after that answer instead of holding the server open until its keep-alive timeout.
 *   (Node closes the connections idle at `close()`; one busy then would stay open.) A body still
 *   unread then is not waited for: its connection is closed.
 */
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** The longest the rest of an unread body is read and discarded after its answer. */
export const LINGER_MS = 30_000
/** Discarding stops (and the connection closes) when no byte of it comes this long. */
export const LINGER_IDLE_MS = 5_000

async function connectionClose(app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_req, reply, payload) => {
    if (!app.server.listening) reply.header('connection', 'close')
    return payload
  })
  app.addHook('onResponse', async (req) => {
    // NB: `=== false`: requests injected in tests (light-my-request) have no parser and no `complete`.
    if (req.raw.complete === false) discardRest(req.raw, app.server.listening ? LINGER_MS : 0)
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
