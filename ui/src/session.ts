/**
 * The bearer token, kept for this browser tab only (sessionStorage: gone when the tab closes, never
 * shared with other tabs, never sent anywhere but this origin's /v1 calls), and the ApiClient that
 * carries it.
 */
import { ApiClient } from '../../src/client/api-client.js'

const KEY = 'compactd.token'

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(KEY)
  } catch {
    return null // storage disabled: ask every time
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(KEY)
    else sessionStorage.setItem(KEY, token)
  } catch {
    // Storage disabled: the token lives in memory for this page only.
  }
}

/** A client of this page's own origin. */
export const clientFor = (token: string | null): ApiClient => new ApiClient({ baseUrl: '', token })
