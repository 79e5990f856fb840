/**
 * The real app listening on 127.0.0.1 on a random port (mem:// stores, one worker, no background
 * GC), for tests whose client is a separate program or speaks real HTTP: Prometheus, promtool,
 * a generated client. Closed after the test.
 */
import type { App } from '../../src/app.js'
import type { Services } from '../../src/services.js'
import type { Settings, TlsFiles } from '../../src/settings.js'
import { buildTestApp } from '../helper.js'

export interface LiveApp {
  readonly app: App
  readonly services: Services
  /** `http://127.0.0.1:<port>` (`https://` with `tls`), no trailing slash. */
  readonly baseUrl: string
  /** `127.0.0.1:<port>`, as a scrape target. */
  readonly hostPort: string
}

export async function liveApp(t: { after(fn: () => Promise<void>): void }, settings: Partial<Settings> = {}, tls?: TlsFiles): Promise<LiveApp> {
  const { app, services, close } = await buildTestApp({ t, settings: { workers: 1, ...settings }, services: { gcIntervalMs: null }, ...(tls === undefined ? {} : { tls }) })
  try {
    await app.listen({ host: '127.0.0.1', port: 0 })
  } catch (err) {
    await close()
    throw err
  }
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('the app is not listening on a TCP port')
  const { port } = address
  return { app, services, baseUrl: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`, hostPort: `127.0.0.1:${port}` }
}
