/**
 * Data hooks of the console: the ApiClient in context, one-shot and polled loads, and a
 * compaction's live record from its event stream. Every load is cancelled (its answer ignored)
 * when the view goes away or its inputs change, so a slow answer never overwrites a newer one.
 */
import { createContext } from 'preact'
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks'
import type { ApiClient } from '../../src/client/api-client.js'
import { isApiError } from '../../src/client/api-client.js'
import { isFinal } from '../../src/client/compaction-view.js'
import type { CompactionJson } from '../../src/client/wire.js'

export const ApiContext = createContext<{ client: ApiClient; onUnauthorized: () => void } | null>(null)

export function useApi(): ApiClient {
  const ctx = useContext(ApiContext)
  if (ctx === null) throw new Error('useApi outside ApiContext')
  return ctx.client
}

/** A rejected token anywhere sends the operator back to the token form. */
function useUnauthorized(): (err: unknown) => void {
  const ctx = useContext(ApiContext)
  return useCallback((err: unknown) => {
    if (isApiError(err) && err.status === 401) ctx?.onUnauthorized()
  }, [ctx])
}

export interface Load<T> {
  readonly data: T | undefined
  readonly error: unknown
  readonly loading: boolean
  readonly reload: () => void
}

/**
 * Runs `fn` when `deps` change (and every `pollMs` while the tab is visible, if given); keeps the
 * last good data while a reload runs.
 */
export function useLoad<T>(fn: (client: ApiClient) => Promise<T>, deps: readonly unknown[], pollMs?: number): Load<T> {
  const client = useApi()
  const unauthorized = useUnauthorized()
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true })
  const [tick, setTick] = useState(0)
  const fnRef = useRef(fn)
  fnRef.current = fn

  useEffect(() => {
    let live = true
    setState((s) => ({ ...s, loading: true }))
    fnRef.current(client).then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => {
        if (!live) return
        unauthorized(error)
        setState((s) => ({ data: s.data, error, loading: false }))
      },
    )
    return () => {
      live = false
    }
  }, [client, tick, ...deps])

  useEffect(() => {
    if (pollMs === undefined) return
    const id = setInterval(() => {
      if (document.visibilityState === 'visible') setTick((t) => t + 1)
    }, pollMs)
    return () => clearInterval(id)
  }, [pollMs])

  const reload = useCallback(() => setTick((t) => t + 1), [])
  return { ...state, reload }
}

/**
 * The live record of a compaction: `initial` at first, then every event of its stream until `done`.
 * Unavailable streams (404: forgotten) leave the initial record. `onDone` runs once at the end.
 */
export function useCompactionEvents(initial: CompactionJson, onDone?: (c: CompactionJson) => void): CompactionJson {
  const client = useApi()
  const [record, setRecord] = useState(initial)
  const doneRef = useRef(onDone)
  doneRef.current = onDone

  useEffect(() => {
    setRecord(initial)
    if (isFinal(initial)) return
    const abort = new AbortController()
    void (async () => {
      try {
        for await (const e of client.events(initial.id, abort.signal)) {
          setRecord(e.data)
          if (e.event === 'done') doneRef.current?.(e.data)
        }
      } catch {
        // The stream broke or was aborted: the record stays as last seen; lists poll again.
      }
    })()
    return () => abort.abort()
  }, [client, initial.id])

  return record
}
