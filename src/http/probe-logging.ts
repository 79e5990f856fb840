/**
 * Probe routes (`/healthz`, `/readyz`, `/metrics`) are polled every few seconds by orchestrators
 * and scrapers: their requests are logged at debug, not info, so they do not drown the log.
 * Fastify's own request lines are turned off for them (`skipRequestLogging`, the app's
 * `disableRequestLogging`), and this plugin logs the completed request at debug instead.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

export const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics'])

/** True for a probe request: Fastify's info-level request lines are skipped for it. */
export function skipRequestLogging(req: { readonly url?: string }): boolean {
  const url = req.url ?? ''
  const query = url.indexOf('?')
  return PROBE_PATHS.has(query === -1 ? url : url.slice(0, query))
}

async function probeLogging(app: FastifyInstance): Promise<void> {
  app.addHook('onResponse', async (req: FastifyRequest, reply) => {
    if (!skipRequestLogging(req)) return
    req.log.debug({ req, res: reply, responseTime: reply.elapsedTime }, 'request completed')
  })
}

export const probeLoggingPlugin = fp(probeLogging, { name: 'compactd-probe-logging', fastify: '5.x' })
