/**
 * Request ids: an incoming `x-request-id` is reused when it looks like an id (so a caller's or a
 * proxy's id follows the request into our logs), else a fresh UUID; either way it is on every log
 * line of the request (pino's `reqId`) and echoed in the `x-request-id` response header.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export const REQUEST_ID_HEADER = 'x-request-id'

/** NB: bounded charset and length: the id lands in logs and headers verbatim. */
const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/

export function genReqId(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER]
  return typeof incoming === 'string' && ACCEPTABLE_ID.test(incoming) ? incoming : randomUUID()
}

async function echoRequestId(app: FastifyInstance): Promise<void> {
  app.addHook('onRequest', async (req, reply) => {
    reply.header(REQUEST_ID_HEADER, req.id)
  })
}

export const requestIdPlugin = fp(echoRequestId, { name: 'compactd-request-id', fastify: '5.x' })
