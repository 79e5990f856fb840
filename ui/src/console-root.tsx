/**
 * The console's frame: asks for the bearer token when the server wants one (once per tab), then
 * shows the navigation and the view the address names. A 401 anywhere comes back here.
 */
import { useEffect, useMemo, useState } from 'preact/hooks'
import { isApiError } from '../../src/client/api-client.js'
import { CompactionView } from './compaction-view.js'
import { CompactionsView } from './compactions-view.js'
import { ConfigsView } from './configs-view.js'
import { ApiContext } from './hooks.js'
import { OverviewView } from './overview-view.js'
import { href, useRoute, type Route } from './router.js'
import { clientFor, storedToken, storeToken } from './session.js'
import { ShardView } from './shard-view.js'
import { ShardsView } from './shards-view.js'
import { SubmitView } from './submit-view.js'

type Gate = { kind: 'checking' } | { kind: 'ask'; problem: string | null } | { kind: 'open' }

export function ConsoleRoot() {
  const [token, setToken] = useState<string | null>(storedToken())
  // Each sign-in checks the token again, even the one just refused: it may be accepted now (an
  // operator put it back in the server's token file).
  const [signIns, setSignIns] = useState(0)
  const [gate, setGate] = useState<Gate>({ kind: 'checking' })
  const client = useMemo(() => clientFor(token), [token])
  const route = useRoute()

  // One cheap authenticated call tells whether the token (or no token) is accepted.
  useEffect(() => {
    let live = true
    setGate({ kind: 'checking' })
    client.config('compaction_process_requests').then(
      () => live && setGate({ kind: 'open' }),
      (err: unknown) => {
        if (!live) return
        if (isApiError(err) && err.status === 401) setGate({ kind: 'ask', problem: token === null ? null : 'The server refused that token.' })
        else setGate({ kind: 'open' }) // another failure: the views say what it is
      },
    )
    return () => {
      live = false
    }
  }, [client, token, signIns])

  const ctx = useMemo(
    () => ({
      client,
      onUnauthorized: () => {
        storeToken(null)
        setGate({ kind: 'ask', problem: 'The server refused the token; enter it again.' })
      },
    }),
    [client],
  )

  return (
    <ApiContext.Provider value={ctx}>
      <header class="top">
        <a class="brand" href={href([])}>compactd</a>
        {gate.kind === 'open' ? <Nav route={route} /> : null}
        {gate.kind === 'open' && token !== null ? (
          <button
            type="button"
            class="link"
            onClick={() => {
              storeToken(null)
              setToken(null)
            }}
          >
            Forget token
          </button>
        ) : null}
      </header>
      <main id="main">
        {gate.kind === 'checking' ? <p class="muted">Connecting…</p> : null}
        {gate.kind === 'ask' ? (
          <TokenForm
            problem={gate.problem}
            onToken={(t) => {
              storeToken(t)
              setToken(t)
              setSignIns((n) => n + 1)
            }}
          />
        ) : null}
        {gate.kind === 'open' ? <View route={route} /> : null}
      </main>
    </ApiContext.Provider>
  )
}

const NAV = [
  { parts: [] as string[], label: 'Overview' },
  { parts: ['shards'], label: 'Shards' },
  { parts: ['compactions'], label: 'Compactions' },
  { parts: ['configs'], label: 'Configs' },
] as const

function Nav({ route }: { route: Route }) {
  const current = route.parts[0] ?? ''
  return (
    <nav aria-label="Main">
      <ul>
        {NAV.map((n) => (
          <li key={n.label}>
            <a href={href(n.parts)} aria-current={(n.parts[0] ?? '') === current ? 'page' : undefined}>
              {n.label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  )
}

function View({ route }: { route: Route }) {
  const [first, second] = route.parts
  if (first === undefined) return <OverviewView />
  if (first === 'shards' && second === undefined) return <ShardsView route={route} />
  if (first === 'shards' && second !== undefined) return <ShardView key={second} id={second} />
  if (first === 'compactions' && second === undefined) return <CompactionsView route={route} />
  if (first === 'compactions' && second === 'new') return <SubmitView route={route} />
  if (first === 'compactions' && second !== undefined) return <CompactionView key={second} id={second} />
  if (first === 'configs') return <ConfigsView />
  return (
    <>
      <h1>Not found</h1>
      <p>
        Nothing lives at this address. <a href={href([])}>Back to the overview</a>.
      </p>
    </>
  )
}

function TokenForm({ problem, onToken }: { problem: string | null; onToken: (token: string) => void }) {
  const [text, setText] = useState('')
  return (
    <form
      class="token-form"
      aria-label="Sign in"
      onSubmit={(e) => {
        e.preventDefault()
        if (text.trim() !== '') onToken(text.trim())
      }}
    >
      <h1>Sign in</h1>
      <p>This server needs a bearer token: its COMPACTD_AUTH_TOKEN, or a line of its COMPACTD_AUTH_TOKEN_FILE. It is kept for this tab only and sent only to this server.</p>
      <label for="token">Bearer token</label>
      <input id="token" type="password" autocomplete="off" value={text} onInput={(e) => setText(e.currentTarget.value)} aria-describedby={problem === null ? undefined : 'token-problem'} />
      <button type="submit" class="primary">Open the console</button>
      {problem === null ? null : <p class="error" id="token-problem" role="alert">{problem}</p>}
    </form>
  )
}
