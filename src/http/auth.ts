/**
 * Bearer-token auth (docs/operations.md#security): with a token configured, every `/v1` request needs
 * `Authorization: Bearer <token>`; anything else is 401 UNAUTHORIZED with `WWW-Authenticate: Bearer`.
 * The operations routes (/healthz, /readyz, /metrics, /openapi.json, /docs) stay open.
 *
 * NB: a request is protected when either its matched route pattern or its path (raw or
 * percent-decoded) is under /v1, so neither an unknown /v1 path (no route enumeration) nor an
 * encoded spelling of one slips through. Tokens are compared as SHA-256 digests with
 * `timingSafeEqual`, so neither the content nor the length leaks through timing; with several
 * tokens (a rotation) every one is compared, so neither does which of them matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError } from '../errors.js'

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest()

/** The tokens a request may present; `replace` swaps them whole (a token file read again). */
export class BearerTokens {
  #digests: readonly Buffer[]

  constructor(tokens: readonly string[]) {
    this.#digests = BearerTokens.#digest(tokens)
  }

  get size(): number {
    return this.#digests.length
  }

  replace(tokens: readonly string[]): void {
    this.#digests = BearerTokens.#digest(tokens)
  }

  /** Whether `presented` is one of the tokens. */
  accepts(presented: string): boolean {
    const d = digest(presented)
    let ok = false
    for (const expected of this.#digests) ok = timingSafeEqual(d, expected) || ok
    return ok
  }

  static #digest(tokens: readonly string[]): readonly Buffer[] {
    if (tokens.length === 0) throw new RangeError('bearer tokens: at least one is needed')
    return tokens.map(digest)
  }
}

export interface AuthOptions {
  /** null: auth off. */
  readonly tokens: BearerTokens | null
}

export const PROTECTED_PREFIX = '/v1'

export function isProtectedPath(path: string): boolean {
  return path === PROTECTED_PREFIX || path.startsWith(`${PROTECTED_PREFIX}/`)
}

/** Whether `req` needs a token: its route pattern, raw path or decoded path is under /v1. */
export function isProtectedRequest(req: FastifyRequest): boolean {
  const pattern = req.routeOptions.url
  if (pattern !== undefined && isProtectedPath(pattern)) return true
  const path = req.url.split('?')[0] ?? ''
  if (isProtectedPath(path)) return true
  try {
    return isProtectedPath(decodeURIComponent(path))
  } catch {
    // A path that does not decode is matched by no route; check it as written (done above).
    return false
  }
}

async function auth(app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const tokens = opts.tokens
  if (tokens === null) return
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!isProtectedRequest(req)) return
    const header = req.headers.authorization
    const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header)
    reply.header('www-authenticate', 'Bearer realm="compactd"')
    if (match === null) throw new AppError('UNAUTHORIZED', 'missing bearer token: send Authorization: Bearer <token>')
    if (!tokens.accepts(match[1] ?? '')) throw new AppError('UNAUTHORIZED', 'invalid bearer token')
    reply.removeHeader('www-authenticate')
  })
}

export const authPlugin = fp(auth, { name: 'compactd-auth', fastify: '5.x' })
