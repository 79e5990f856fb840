/**
 * Process entry: settings → services → app → listen, and a graceful shutdown on SIGTERM/SIGINT
 * (stop accepting, finish in-flight requests, close the services, exit 0).
 *
 * Exit codes: 0 clean shutdown (or --help), 1 failure at start-up or during shutdown, 2 bad setting.
 */
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { createServices } from './services.js'
import { loggableSettings, parseSettings, SettingsError, USAGE, wantsHelp, type Settings } from './settings.js'

/** Slack on top of the shutdown grace for closing the HTTP server and the stores. */
const CLOSE_SLACK_MS = 10_000

async function main(argv: readonly string[]): Promise<void> {
  if (wantsHelp(argv)) {
    process.stdout.write(USAGE)
    return
  }
  let settings: Settings
  try {
    settings = parseSettings(argv, process.env)
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err
    process.stderr.write(`compactd: ${err.message}\n`)
    process.exitCode = 2
    return
  }

  const services = await createServices(settings)
  await services.start()
  const app = buildApp(services)
  closeWithGrace({ delay: settings.shutdownGraceMs + CLOSE_SLACK_MS, logger: app.log }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an unexpected error')
    else app.log.info({ signal }, 'shutting down')
    try {
      await app.close()
    } finally {
      await services.close()
    }
    app.log.info('stopped')
  })

  const address = await app.listen({ port: settings.port, host: settings.host })
  app.log.info({ address, settings: loggableSettings(settings) }, 'compactd listening')
}

main(process.argv.slice(2)).catch((err: unknown) => {
  // Start-up failed after the settings were good (a store would not open, the port is taken...).
  const message = err instanceof Error ? err.message : String(err)
  process.stderr.write(`compactd: failed to start: ${message.replace(/\s*[\r\n]+\s*/g, ' ')}\n`)
  process.exit(1)
})
