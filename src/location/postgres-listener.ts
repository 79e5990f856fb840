/**
 * PostgresListener: one dedicated connection that LISTENs on a channel and calls `onNotify` for
 * every notification from another session, and once each time LISTEN takes effect (the first time
 * and after every reconnection), since changes made before were not heard.
 * NB: it must never crash the process: a dropped connection (a server restart, a terminated
 * backend, a network failure) is replaced after a jittered exponential backoff, forever until
 * `close`; errors go to `onError`, never to an unhandled 'error' event.
 */
import pg from 'pg'

export interface PostgresListenerOptions {
  readonly connectionString: string
  readonly channel: string
  /** Called for each notification not sent by a session in `ownSessions`, and once LISTEN takes effect. */
  readonly onNotify: () => void
  /** Each failure of the connection (it is replaced); default: ignored. */
  readonly onError?: (err: unknown) => void
  /** Backend process ids whose notifications are ignored (the caller's own sessions, which told it already). */
  readonly ownSessions: ReadonlySet<number>
  /** The first reconnection delay cap; doubled per failed attempt up to `maxRetryMs`. Default 100 ms. */
  readonly firstRetryMs?: number
  /** Default 10 s. */
  readonly maxRetryMs?: number
  /** Shown in pg_stat_activity. */
  readonly applicationName?: string
}

export class PostgresListener {
  readonly #options: PostgresListenerOptions
  #client: pg.Client | null = null
  #timer: NodeJS.Timeout | null = null
  #failures = 0
  #started = false
  #closed = false

  constructor(options: PostgresListenerOptions) {
    this.#options = options
  }

  /** Starts listening (in the background; idempotent). */
  start(): void {
    if (this.#started || this.#closed) return
    this.#started = true
    void this.#connect()
  }

  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const client = this.#client
    this.#client = null
    await client?.end().catch(() => undefined) // closing: a failure to say goodbye changes nothing
  }

  async #connect(): Promise<void> {
    this.#timer = null
    if (this.#closed) return
    const { connectionString, channel, applicationName } = this.#options
    const client = new pg.Client({ connectionString, ...(applicationName === undefined ? {} : { application_name: applicationName }) })
    this.#client = client
    client.on('error', (err) => this.#lost(client, err))
    client.on('end', () => this.#lost(client, new Error('the LISTEN connection ended')))
    client.on('notification', (msg) => {
      if (this.#client === client && msg.channel === channel && !this.#options.ownSessions.has(msg.processId)) this.#options.onNotify()
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${quoteIdent(channel)}`)
    } catch (err) {
      this.#lost(client, err)
      return
    }
    if (this.#client !== client) return
    this.#failures = 0
    this.#options.onNotify()
  }

  /** `client` failed: drops it and, unless closed, schedules the next attempt. */
  #lost(client: pg.Client, err: unknown): void {
    if (this.#client !== client) return
    this.#client = null
    this.#options.onError?.(err)
    client.end().catch(() => undefined) // it is broken already; ending it only frees the socket
    if (this.#closed) return
    const cap = Math.min(this.#options.maxRetryMs ?? 10_000, (this.#options.firstRetryMs ?? 100) * 2 ** this.#failures)
    this.#failures++
    // NB: not unref'd: like the connection it replaces, it keeps the process alive until `close`.
    this.#timer = setTimeout(() => void this.#connect(), Math.random() * cap)
  }
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`
