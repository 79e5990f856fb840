/**
 * Operations routes: liveness, readiness, Prometheus metrics and the OpenAPI document. None is
 * under /v1, so none needs a token (docs/operations.md#security).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { OPENAPI_PATH, renderOpenApi } from '../src/http/openapi.js'
import { jsonResponse } from '../src/http/responses.js'

const Health = z.object({ status: z.literal('ok') }).meta({ id: 'Health', description: 'The process is alive.' })

const Check = z.string().describe('"ok", or a one-line sentence saying what failed')

const Readiness = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.object({
      blob: Check,
      consensus: Check,
      scheduler: z.string().describe('The scheduler\'s state, e.g. "running"'),
    }),
  })
  .meta({ id: 'Readiness', description: 'Each dependency, probed with a cheap real operation.' })

const OpenApiDocument = z.record(z.string(), z.unknown()).describe('An OpenAPI 3.1 document')

export const opsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness',
        description: 'Answers as long as the process serves HTTP; does no I/O.',
        response: { 200: jsonResponse('The process is alive', Health) },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness',
        description:
          'Probes the blob and consensus stores (a read of a key that never exists, each with a short timeout; a file store must also have 1 MiB free on its file system, or writes are about to be refused) and the scheduler.',
        response: {
          200: jsonResponse('Every check passed', Readiness),
          503: jsonResponse('Some check failed; the failing ones say why', Readiness),
        },
      },
    },
    async (_req, reply) => {
      const { ready, checks } = await app.services.checkReadiness()
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks })
    },
  )

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics',
        description: 'Every compactd family and Node process metrics, in the Prometheus text format; docs/metrics.md in the repository describes each.',
        response: {
          200: { description: 'Prometheus text exposition format 0.0.4', content: { 'text/plain': { schema: z.string() } } },
        },
      },
    },
    async (_req, reply) => {
      const { registry } = app.services
      const text = await registry.metrics()
      return reply.type(registry.contentType).send(text)
    },
  )

  app.get(
    OPENAPI_PATH,
    {
      schema: {
        tags: ['operations'],
        summary: 'OpenAPI document',
        description: 'This document; the same bytes as the committed openapi/openapi.json.',
        response: { 200: jsonResponse('The OpenAPI 3.1 document', OpenApiDocument) },
      },
    },
    // NB: sent pre-rendered so the bytes equal the committed file; fastify passes a string with a
    // JSON content type through without serializing it again.
    async (_req, reply) => reply.type('application/json; charset=utf-8').send(renderOpenApi(app) as unknown as Record<string, unknown>),
  )
}
