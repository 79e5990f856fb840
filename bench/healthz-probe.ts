/**
 * The real compactd HTTP app (settings → services → buildApp) on mem:// stores, listening on
 * 127.0.0.1 port 0, and a prober that sends GET /healthz one request at a time (a keep-alive
 * connection, `intervalMs` between a response and the next request, at most `maxRequests`) until
 * stopped, recording each round trip. NB: the prober shares the server's event loop, so a latency
 * is the time the loop needed to serve one request while everything else on it kept running.
 */
import { Agent, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../src/app.js'
import { createServices, type Services } from '../src/services.js'
import { parseSettings } from '../src/settings.js'

import { latencyStats, type LatencyStats } from './latency.js'

export { latencyStats, type LatencyStats } from './latency.js'

export interface HealthzServer {
  readonly services: Services
  readonly url: string
  /** Starts probing; `stop()` ends the loop after the request in flight and returns the figures. */
  probe(opts: { intervalMs: number; maxRequests: number }): { stop(): Promise<LatencyStats> }
  close(): Promise<void>
}

export async function startHealthzServer(): Promise<HealthzServer> {
  const settings = parseSettings(['--blob', 'mem://', '--consensus', 'mem://', '--log-level', 'silent', '--port', '0', '--host', '127.0.0.1'], {})
  const services = await createServices(settings)
  const app = buildApp(services, { logger: false })
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
  } catch (err) {
    await app.close().catch(() => undefined)
    await services.close()
    throw err
  }
  const { port } = app.server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}/healthz`
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })

  const once = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = get(url, { agent }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode === 200))
        res.on('error', () => resolve(false))
      })
      req.on('error', () => resolve(false))
    })

  return {
    services,
    url,
    probe({ intervalMs, maxRequests }) {
      const latencies: number[] = []
      let failures = 0
      let stopping = false
      const loop = (async () => {
        for (let i = 0; i < maxRequests && !stopping; i++) {
          const t0 = performance.now()
          const ok = await once()
          latencies.push(performance.now() - t0)
          if (!ok) failures++
          if (intervalMs > 0 && !stopping) await new Promise((r) => setTimeout(r, intervalMs))
        }
      })()
      return {
        async stop() {
          stopping = true
          await loop
          return latencyStats(latencies, failures)
        },
      }
    },
    async close() {
      agent.destroy()
      try {
        await app.close()
      } finally {
        await services.close()
      }
    },
  }
}
