/**
 * Hash routes (`#/shards/s…?q=x`): the server serves one page at /ui, and every view is a
 * bookmarkable, reloadable address without server-side routing.
 */
import { useEffect, useState } from 'preact/hooks'

export interface Route {
  /** Path segments after `#/`: `['shards', 's…']`. */
  readonly parts: readonly string[]
  readonly params: URLSearchParams
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#\/?/, '')
  const q = raw.indexOf('?')
  const path = q === -1 ? raw : raw.slice(0, q)
  const params = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1))
  return { parts: path.split('/').filter((p) => p !== '').map(decodeURIComponent), params }
}

/** `#/a/b?x=1` from segments and parameters (empty ones left out). */
export function href(parts: readonly string[], params: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''))
  const qs = q.toString()
  return `#/${parts.map(encodeURIComponent).join('/')}${qs === '' ? '' : `?${qs}`}`
}

export function navigate(to: string): void {
  window.location.hash = to
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(window.location.hash))
  useEffect(() => {
    const onChange = (): void => setRoute(parseHash(window.location.hash))
    window.addEventListener('hashchange', onChange)
    return () => window.removeEventListener('hashchange', onChange)
  }, [])
  return route
}
