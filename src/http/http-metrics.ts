/**
 * Observes `compactd_http_request_duration_seconds{method,route,status}` for every response.
 *
 * NB: `route` is the matched route pattern, never the raw URL, so label cardinality is bounded by
 * the number of routes; requests that match no route share `route="unmatched"`, and so do those
 * answered before routing (a malformed path: `observeUnrouted`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { HttpMetrics } from '../metrics/metrics.js'

export const UNMATCHED_ROUTE = 'unmatched'

async function httpMetrics(app: FastifyInstance, opts: { readonly metrics: HttpMetrics }): Promise<void> {
  const histogram = opts.metrics.requestDuration
  app.addHook('onResponse', async (req, reply) => {
    const route = req.is404 ? UNMATCHED_ROUTE : (req.routeOptions.url ?? UNMATCHED_ROUTE)
    histogram.observe({ method: req.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })
}

/**
 * Observes a request answered before routing (fastify's `frameworkErrors`: no hook runs for it)
 * as `route="unmatched"`, once its answer is sent.
 */
export function observeUnrouted(metrics: HttpMetrics, req: FastifyRequest, reply: FastifyReply): void {
  reply.raw.once('finish', () => {
    metrics.requestDuration.observe({ method: req.method, route: UNMATCHED_ROUTE, status: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })
}

export const httpMetricsPlugin = fp(httpMetrics, { name: 'compactd-http-metrics', fastify: '5.x' })
