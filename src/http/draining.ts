/**
 * Draining on shutdown: once the server stops listening, every answer still being sent says
 * `Connection: close`, so a keep-alive connection whose request was in flight when the shutdown
 * began closes after that answer instead of holding the server open until its keep-alive timeout.
 * (Node closes the connections idle at `close()`; one busy then would stay open.)
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

async function draining(app: FastifyInstance): Promise<void> {
  app.addHook('onSend', async (_req, reply, payload) => {
    if (!app.server.listening) reply.header('connection', 'close')
    return payload
  })
}

export const drainingPlugin = fp(draining, { name: 'compactd-draining', fastify: '5.x' })
