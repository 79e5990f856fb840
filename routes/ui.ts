/**
 * The operator console (docs/console.md): `GET /ui` answers its page, `GET /ui/assets/{file}` the
 * bundle built by `npm run build:ui` (scripts/build-ui.ts), and `GET /` redirects to `/ui`. None is
 * under /v1, so none needs a token: the page asks the operator for one and sends it on its own
 * `/v1` calls, like any other client. Hidden from the OpenAPI document (they are not the API).
 *
 * The files are read once, at registration, from the build's folder (`dist/ui/`, located through
 * its `manifest.json`); the set is fixed, so a request can only name one of them. Without a build
 * the page answers 503 saying how to build it, and the rest of the server works as usual.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

export const UI_PATH = '/ui'
export const UI_ASSETS_PATH = '/ui/assets'

/** Where a build may be: beside the sources (`tsx`), or beside the compiled routes (`dist/routes`). */
const CANDIDATE_DIRS = [new URL('../dist/ui/', import.meta.url), new URL('../ui/', import.meta.url)].map((u) => fileURLToPath(u))

/** What scripts/build-ui.ts writes beside the assets. */
interface Manifest {
  readonly index: string
  readonly assets: readonly string[]
}

interface Asset {
  readonly body: Buffer
  readonly type: string
  readonly etag: string
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
}

/**
 * NB: the page runs only its own bundle and talks only to this origin; inline scripts and styles
 * are refused (the bundle sets sizes through the CSSOM, which this policy allows).
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>compactd console</title></head>
<body><main><h1>The console is not built</h1><p>Run <code>npm run build:ui</code> (npm start and npm test do it), then reload.</p></main></body></html>\n`

const AssetParams = z.object({ file: z.string().regex(/^[A-Za-z0-9._-]+$/, 'must be an asset file name') })

async function loadBuild(): Promise<{ index: Asset; assets: Map<string, Asset> } | null> {
  for (const dir of CANDIDATE_DIRS) {
    let manifest: Manifest
    try {
      manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest
    } catch {
      continue // no build here; try the next place
    }
    const load = async (name: string): Promise<Asset> => {
      const body = await readFile(join(dir, name))
      const type = TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream'
      return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` }
    }
    const assets = new Map<string, Asset>()
    for (const name of manifest.assets) assets.set(name, await load(name))
    return { index: await load(manifest.index), assets }
  }
  return null
}

function send(reply: FastifyReply, asset: Asset, cache: string, ifNoneMatch: string | undefined): FastifyReply {
  void reply.headers(SECURITY_HEADERS).header('etag', asset.etag).header('cache-control', cache).type(asset.type)
  if (ifNoneMatch === asset.etag) return reply.code(304).send()
  return reply.send(asset.body)
}

export const uiRoutes: FastifyPluginAsyncZod = async (app) => {
  const build = await loadBuild()

  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect(UI_PATH, 302))

  app.get(UI_PATH, { schema: { hide: true } }, async (req, reply) => {
    if (build === null) return reply.code(503).headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(NOT_BUILT)
    return send(reply, build.index, 'no-cache', req.headers['if-none-match'])
  })

  app.get(`${UI_PATH}/`, { schema: { hide: true } }, async (_req, reply) => reply.redirect(UI_PATH, 301))

  app.get(`${UI_ASSETS_PATH}/:file`, { schema: { hide: true, params: AssetParams } }, async (req, reply) => {
    const asset = build?.assets.get(req.params.file)
    if (asset === undefined) return reply.callNotFound()
    // Asset names carry their content hash: a name never changes meaning.
    return send(reply, asset, 'public, max-age=31536000, immutable', req.headers['if-none-match'])
  })
}
