/**
 * Which methods a path answers to, so a known path asked with another method is 405 with `Allow`
 * rather than 404. Routes are collected by an onRoute hook (add it before any route) and matched by
 * their patterns: `:name` is one path segment, `*` the rest of the path.
 */
import type { RouteOptions } from 'fastify'

export interface AllowedMethods {
  /** The onRoute hook that records each route's methods. */
  readonly onRoute: (route: RouteOptions) => void
  /** The methods some route answers at `path` (no query string), sorted; empty for an unknown path. */
  allowed(path: string): readonly string[]
}

export function allowedMethods(): AllowedMethods {
  const routes: Array<{ readonly pattern: RegExp; readonly methods: readonly string[] }> = []
  return {
    onRoute: (route) => {
      const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) => String(m).toUpperCase())
      routes.push({ pattern: patternOf(route.url), methods })
    },
    allowed: (path) => {
      const out = new Set<string>()
      for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) out.add(m)
      return [...out].sort()
    },
  }
}

/** `/v1/shards/:shardId` → /^\/v1\/shards\/[^/]+$/; `/docs/*` → /^\/docs\/.*$/. */
function patternOf(url: string): RegExp {
  let source = ''
  for (const piece of url.split(/(:[A-Za-z0-9_]+|\*)/)) {
    if (piece === '*') source += '.*'
    else if (piece.startsWith(':')) source += '[^/]+'
    else source += piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`)
}
