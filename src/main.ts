/**
 * Process entry: settings → services → app → listen, and a graceful shutdown on SIGTERM/SIGINT:
 * stop claiming compactions, so /readyz answers 503, and drain: keep serving for the shutdown drain
 * (`COMPACTD_SHUTDOWN_DRAIN`), every answer closing its connection, so a load balancer probing
 * /readyz stops sending here before the listener closes; then stop accepting (requests still
 * arriving on open connections get 503). Meanwhile running compactions get the shutdown grace to
 * finish; the rest are aborted and their outputs deleted (so requests waiting on them are
 * answered). Then in-flight requests finish, the services close, and the process exits 0.
 *
 * Exit codes: 0 clean shutdown (or --help), 1 failure at start-up or during shutdown (or a second
 * signal), 2 bad setting.
 *
 * NB: a signal repeated within REPEAT_WINDOW_MS is the same request, not a second one: under
 * `npm start` a terminal's Ctrl-C reaches the server twice (the terminal signals the whole process
 * group, and npm relays what it got to its child). A later second signal exits at once.
 */
import type { Server as HttpsServer } from 'node:https'
import { buildApp, type App } from './app.js'
import { hugePagesRequested } from './engine/huge-pages.js'
import { BearerTokens } from './http/auth.js'
import { logProcessWarnings } from './http/process-warnings.js'
import { expiredProblem, tlsWatch, tokenFileWatch, type Watch } from './http/watched-files.js'
import { tuneMainThreadHeap } from './engine/main-heap.js'
import { createServices, type Services } from './services.js'
import { loadTls, loggableSettings, parseSettings, SettingsError, USAGE, wantsHelp, type Settings, type TlsFiles } from './settings.js'

/** Slack on top of the shutdown grace for closing the HTTP server and the stores. */
const CLOSE_SLACK_MS = 10_000

/** A shutdown signal repeated within this window is the first one again (see the NB above). */
const REPEAT_WINDOW_MS = 1_000

const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const

async function main(argv: readonly string[]): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(USAGE)
    return
  }
  let settings: Settings
  let tls: TlsFiles | null
  try {
    settings = parseSettings(argv, process.env)
    tls = readTls(settings)
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err
    process.stderr.write(`compactd: ${err.message}\n`)
    process.exitCode = 2
    return
  }

  tuneMainThreadHeap()
  const services = await createServices(settings)
  // The app (and its logger) first, so what background work warns about from the start goes to the JSON log.
  const bearerTokens = settings.authTokens === null ? undefined : new BearerTokens(settings.authTokens)
  const app = buildApp(services, { ...(bearerTokens === undefined ? {} : { bearerTokens }), ...(tls === null ? {} : { tls }) })
  logProcessWarnings(app.log)
  await services.start()
  // The worker threads start now, not with the first write, read or compaction, and the server
  // listens once they have loaded: loading their modules takes a second or more, which the first
  // request after a restart would otherwise wait for. Bounded: workers that cannot load (they are
  // replaced again and again) must not keep the server from answering probes.
  const loaded = await waitAtMost(services.workerPool().loaded(), WORKERS_LOAD_WAIT_MS)
  if (!loaded) process.emitWarning(`the worker threads had not loaded after ${WORKERS_LOAD_WAIT_MS / 1000} s; listening anyway`)
  const watched = watchFiles(app, services, bearerTokens, tls)
  onShutdown(app, shutdownBoundMs(settings), (cause) => {
    for (const w of watched) w.stop()
    return shutDown(app, services, cause)
  })

  const address = await app.listen({ port: settings.port, host: settings.host })
  // NB: started some other way than `npm start` or the image, the process runs without huge pages
  // (engine/huge-pages.ts): the log says so.
  app.log.info({ address, settings: loggableSettings(settings), mallocHugePages: hugePagesRequested() }, 'compactd listening')
}

/** The certificate and key to serve (settings checked them; read again here); null without TLS. */
function readTls(settings: Settings): TlsFiles | null {
  const { tlsCertFile: cert, tlsKeyFile: key } = settings
  return cert === null || key === null ? null : loadTls(cert, key)
}

/**
 * The files read again every 30 s and on SIGHUP: the token file and the TLS certificate and key
 * (docs/operations.md#rotating-the-token, #tls).
 * NB: with neither, SIGHUP keeps Node's default: the process ends, as when its terminal closes.
 */
function watchFiles(app: App, services: Services, tokens: BearerTokens | undefined, tls: TlsFiles | null): Watch[] {
  const { settings } = services
  const watched: Watch[] = []
  const { authTokenFile, authTokens } = settings
  if (authTokenFile !== null && tokens !== undefined && authTokens !== null) {
    watched.push(tokenFileWatch({ path: authTokenFile, tokens, initial: authTokens, log: app.log }))
  }
  if (tls !== null && settings.tlsCertFile !== null && settings.tlsKeyFile !== null) {
    // NB: the https.Server Fastify built (see app.ts); new connections get the new certificate.
    const server = app.server as unknown as HttpsServer
    const expiry = services.metrics.http.tlsCertificateExpiry
    // NB: served all the same: background compaction goes on, and clients that skip verification
    // (a healthcheck) still connect; the renewal is taken as soon as it is written.
    const expired = expiredProblem(settings.tlsCertFile, tls, Date.now())
    if (expired !== null) app.log.error({ subject: tls.subject, validTo: tls.validTo }, `TLS certificate served though ${expired}: clients that check it refuse every connection until it is renewed`)
    watched.push(tlsWatch({ certPath: settings.tlsCertFile, keyPath: settings.tlsKeyFile, server, expiry, initial: tls, log: app.log }))
  }
  for (const w of watched) w.start()
  if (watched.length > 0) process.on('SIGHUP', () => watched.forEach((w) => void w.reload('signal')))
  return watched
}

/** How long start-up waits for the worker threads to load before it listens regardless. */
const WORKERS_LOAD_WAIT_MS = 30_000

/** Whether `p` settled within `ms`. */
async function waitAtMost(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  try {
    return await Promise.race([p.then(() => true as const), timedOut])
  } finally {
    clearTimeout(timer)
  }
}

type Cause = { readonly signal: NodeJS.Signals } | { readonly err: unknown }

/** The drain and the compactions' grace run side by side; closing gets CLOSE_SLACK_MS more. */
function shutdownBoundMs(settings: Settings): number {
  return Math.max(settings.shutdownDrainMs, settings.shutdownGraceMs) + CLOSE_SLACK_MS
}

/**
 * Runs `shutDown` once, on the first SIGTERM/SIGINT or uncaught error, then exits: 0 after a
 * clean shutdown, 1 after an error, or when the shutdown outlives `boundMs`, or on a second
 * signal (past the repeat window).
 */
function onShutdown(app: App, boundMs: number, shutDown: (cause: Cause) => Promise<void>): void {
  let startedAt: number | null = null
  const run = (cause: Cause): void => {
    startedAt = Date.now()
    const deadline = setTimeout(() => {
      app.log.error({ afterMs: boundMs }, 'shutdown took too long; exiting')
      process.exit(1)
    }, boundMs)
    deadline.unref()
    shutDown(cause).then(
      () => process.exit('err' in cause ? 1 : 0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  for (const signal of SHUTDOWN_SIGNALS) {
    process.on(signal, () => {
      if (startedAt === null) return run({ signal })
      if (Date.now() - startedAt < REPEAT_WINDOW_MS) return
      app.log.warn({ signal }, 'second signal: exiting now, without waiting for running work')
      process.exit(1)
    })
  }
  const fail = (err: unknown): void => {
    if (startedAt !== null) {
      app.log.error({ err }, 'error while shutting down')
      return
    }
    app.log.error({ err }, 'shutting down after an unexpected error')
    run({ err })
  }
  process.on('uncaughtException', fail)
  process.on('unhandledRejection', fail)
}

/**
 * Stops the compactor first (no more claims; /readyz turns 503; running compactions get their
 * grace, so requests waiting on one get its answer), drains (serves on, closing connections) for
 * the drain, then stops accepting, waits for in-flight requests, and closes the services. A
 * shutdown after an unexpected error does not drain.
 */
async function shutDown(app: App, services: Services, cause: Cause): Promise<void> {
  const { shutdownGraceMs: graceMs, shutdownDrainMs } = services.settings
  const drainMs = 'signal' in cause ? shutdownDrainMs : 0
  if ('signal' in cause) app.log.info({ signal: cause.signal, graceMs, drainMs }, 'shutting down')
  app.drain()
  const compactorStopped = services.compactor.stop({ graceMs })
  const appClosed = delay(drainMs).then(() => {
    if (drainMs > 0) app.log.info({ drainMs }, 'drained; no longer listening')
    return app.close()
  })
  try {
    await compactorStopped
    await appClosed
  } finally {
    await services.close()
  }
  app.log.info('stopped')
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

main(process.argv.slice(2)).catch((err: unknown) => {
  // Start-up failed after the settings were good (a store would not open, the port is taken...).
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`compactd: failed to start: ${message.replace(/\s*[\r\n]+\s*/g, ' ')}\n`)
  process.exit(1)
})
