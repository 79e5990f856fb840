/**
 * buildTestApp: the real app on mem:// stores, with a fresh Prometheus registry and no logs, ready
 * for `app.inject`. Pass `t` to have the app and its services closed after the test; otherwise
 * call `close()` yourself.
 */
import { buildApp, type App, type RoutePlugin } from '../src/app.js'
import type { BearerTokens } from '../src/http/auth.js'
import { createServices, type Services, type ServicesOptions } from '../src/services.js'
import { parseSettings, type Settings, type TlsFiles } from '../src/settings.js'

export interface TestAppOptions {
  /** Registers `close` with `t.after`. */
  readonly t?: { after(fn: () => Promise<void>): void }
  /** Overrides of the test settings (mem:// stores, silent logs). */
  readonly settings?: Partial<Settings>
  readonly services?: ServicesOptions
  /** Extra route plugins (test-only routes). */
  readonly routes?: readonly RoutePlugin[]
  /** Default route plugins to leave out (see BuildAppOptions.without). */
  readonly without?: readonly string[]
  /** Log lines (pino's JSON, parsed) go here, from `level` up; none when unset. */
  readonly log?: { readonly level: string; readonly lines: Array<Record<string, unknown>> }
  /** Start the services (load configs, start the scheduler); off for tests of broken stores. Default true. */
  readonly start?: boolean
  /** Serve HTTPS with this pair (BuildAppOptions.tls). */
  readonly tls?: TlsFiles
  /** The accepted tokens, for a test that rotates them (BuildAppOptions.bearerTokens). */
  readonly bearerTokens?: BearerTokens
}

export interface TestApp {
  readonly app: App
  readonly services: Services
  /** Closes the app, then the services. Idempotent. */
  close(): Promise<void>
}

export function testSettings(overrides: Partial<Settings> = {}): Settings {
  const base = parseSettings(['--blob', 'mem://', '--consensus', 'mem://', '--log-level', 'silent'], {})
  return Object.freeze({ ...base, ...overrides })
}

export async function buildTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const services = await createServices(testSettings(opts.settings), opts.services)
  const { log } = opts
  const logger = log === undefined ? false : { level: log.level, stream: { write: (s: string) => void log.lines.push(JSON.parse(s) as Record<string, unknown>) } }
  const app = buildApp(services, { logger, routes: opts.routes ?? [], without: opts.without ?? [], ...(opts.tls === undefined ? {} : { tls: opts.tls }), ...(opts.bearerTokens === undefined ? {} : { bearerTokens: opts.bearerTokens }) })
  let closing: Promise<void> | undefined
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      try {
        await app.close()
      } finally {
        await services.close()
      }
    })())
  try {
    if (opts.start !== false) await services.start()
    await app.ready()
  } catch (err) {
    await close()
    throw err
  }
  opts.t?.after(close)
  return { app, services, close }
}
