/**
 * buildApp(services): the HTTP application, ready to `listen` or `inject`, never listening itself.
 *
 * Order matters: the plumbing plugins (request ids, auth, metrics, standard responses, swagger)
 * register their hooks before any route, because onRoute and onRequest hooks only reach routes
 * and contexts added after them.
 */
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { serializerCompiler, validatorCompiler, type FastifyPluginAsyncZod, type ZodTypeProvider } from 'fastify-type-provider-zod'
import compactionsRoutes from '../routes/compactions.js'
import configsRoutes from '../routes/configs.js'
import dataRoutes from '../routes/data.js'
import { opsRoutes } from '../routes/ops.js'
import shardsRoutes from '../routes/shards.js'
import { uiRoutes } from '../routes/ui.js'
import { allowedMethods } from './http/allowed-methods.js'
import { authPlugin, BearerTokens } from './http/auth.js'
import { connectionClosePlugin } from './http/connection-close.js'
import { clientErrorHandler, plainHttpOnTls } from './http/client-errors.js'
import { errorHandler, frameworkErrorHandler, MAX_PARAM_LENGTH, notFoundHandler } from './http/error-handler.js'
import { httpMetricsPlugin, observeUnrouted } from './http/http-metrics.js'
import { DOCS_PREFIX, swaggerOptions } from './http/openapi.js'
import { logDestination } from './http/log-format.js'
import { compactionLoggingPlugin } from './http/compaction-logging.js'
import { probeLoggingPlugin, skipRequestLogging } from './http/probe-logging.js'
import { genReqId, requestIdPlugin } from './http/request-id.js'
import { servicesPlugin } from './http/services-plugin.js'
import { standardResponsesPlugin } from './http/standard-responses.js'
import { showCertificate } from './http/watched-files.js'
import type { Services } from './services.js'
import type { TlsFiles } from './settings.js'

export interface RoutePlugin {
  /** A name tests can use to leave a default plugin out. */
  readonly name?: string
  readonly plugin: FastifyPluginAsyncZod
  /** Mount point; routes under /v1 require the bearer token when one is configured. */
  readonly prefix?: string
}

/** Every route plugin of the API, in registration (and documentation) order. Add one line per resource. */
export const ROUTES: readonly RoutePlugin[] = [
  { name: 'ops', plugin: opsRoutes },
  { name: 'shards', plugin: async (app) => void (await app.register(shardsRoutes, { shards: app.services.shards })) },
  { name: 'data', plugin: async (app) => void (await app.register(dataRoutes, { shards: app.services.shards, sendTimeoutMs: app.services.settings.sendTimeoutMs })) },
  { name: 'compactions', plugin: async (app) => void (await app.register(compactionsRoutes, { compactor: app.services.compactor })) },
  { name: 'configs', plugin: async (app) => void (await app.register(configsRoutes, { dyncfg: app.services.dyncfg })) },
  { name: 'ui', plugin: uiRoutes },
]

export interface BuildAppOptions {
  /** Overrides the logger built from `settings.logLevel` and `logFormat` (tests pass `false`). */
  readonly logger?: FastifyServerOptions['logger']
  /** Extra route plugins after ROUTES (tests). */
  readonly routes?: readonly RoutePlugin[]
  /** Names of ROUTES entries to leave out (tests that mount their own). */
  readonly without?: readonly string[]
  /**
   * The accepted tokens, when the caller changes them later (main.ts, from the token file);
   * otherwise built from `settings.authTokens`.
   */
  readonly bearerTokens?: BearerTokens
  /**
   * Serve HTTPS with this certificate and key (main.ts, from COMPACTD_TLS_CERT/KEY); its expiry is
   * exported as compactd_tls_certificate_expiry_timestamp_seconds.
   */
  readonly tls?: TlsFiles
}

const withZod = (app: FastifyInstance) => app.withTypeProvider<ZodTypeProvider>()

export function buildApp(services: Services, opts: BuildAppOptions = {}) {
  const { settings } = services
  // NB: typed as the plain HTTP server's options: with `https`, Fastify builds an https.Server (and
  // says https:// in addresses), which serves requests as the http.Server the app's types name does.
  const tls = opts.tls === undefined ? {} : ({ https: { cert: opts.tls.cert, key: opts.tls.key } } as FastifyServerOptions)
  if (opts.tls !== undefined) showCertificate(services.metrics.http.tlsCertificateExpiry, opts.tls)
  const app = withZod(
    Fastify({
      ...tls,
      logger: opts.logger ?? {
        level: settings.logLevel,
        redact: { paths: ['req.headers.authorization'], censor: '***' },
        ...(settings.logFormat === 'pretty' ? { stream: logDestination(settings.logFormat) } : {}),
      },
      // Probes are logged at debug by probeLoggingPlugin instead.
      logController: new LogController({ disableRequestLogging: skipRequestLogging }),
      genReqId,
      // NB: a request reaching the app once it closes is answered by connectionClosePlugin (503
      // SERVICE_UNAVAILABLE with a code), not by Fastify's codeless 503.
      return503OnClosing: false,
      bodyLimit: settings.bodyLimitBytes,
      // NB: routes match exactly; `/v1//x` or `/V1/x` are 404s, never a way around auth.
      routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, caseSensitive: true, maxParamLength: MAX_PARAM_LENGTH },
      frameworkErrors: (err, req, reply) => {
        observeUnrouted(services.metrics.http, req, reply)
        return frameworkErrorHandler(err, req, reply)
      },
      clientErrorHandler,
    }),
  )

  if (opts.tls !== undefined) app.server.on('tlsClientError', plainHttpOnTls)
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  app.setErrorHandler(errorHandler)
  const methods = allowedMethods()
  app.addHook('onRoute', methods.onRoute)
  app.setNotFoundHandler(notFoundHandler(methods.allowed))
  // Bodies are JSON unless a route plugin adds a parser (Arrow); text/plain is a 415, not a string.
  app.removeContentTypeParser('text/plain')

  void app.register(servicesPlugin, { services })
  void app.register(requestIdPlugin)
  void app.register(probeLoggingPlugin)
  void app.register(compactionLoggingPlugin)
  void app.register(connectionClosePlugin)
  const tokens = opts.bearerTokens ?? (settings.authTokens === null ? null : new BearerTokens(settings.authTokens))
  void app.register(authPlugin, { tokens })
  void app.register(httpMetricsPlugin, { metrics: services.metrics.http })
  void app.register(standardResponsesPlugin)
  void app.register(fastifySwagger, swaggerOptions())
  void app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX })

  const defaults = ROUTES.filter((r) => r.name === undefined || !(opts.without ?? []).includes(r.name))
  for (const { plugin, prefix } of [...defaults, ...(opts.routes ?? [])]) {
    void app.register(plugin, prefix === undefined ? {} : { prefix })
  }
  return app
}

/** The app buildApp returns: a Fastify instance with the zod type provider. */
export type App = ReturnType<typeof buildApp>
