/**
 * PostgresListener: one dedicated connection that LISTENs on a channel and calls `onNotify` for
 * every notification from another session. NB: it must never crash the process: a dropped
 * connection (a server restart, a terminated backend, a network failure) is replaced after a
 * jittered exponential backoff, forever until `close`, and `onNotify` is called once after each
 * reconnection, since notifications sent meanwhile are lost.
 */
import pg from 'pg'

export interface PostgresListenerOptions {
  readonly connectionString: string
  readonly channel: string
  /** Called for each notification not sent by a session in `ownSessions` (and after a reconnection). */
  readonly onNotify: () => void
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
  #connectedOnce = false
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
    client.on('error', () => this.#lost(client))
    client.on('end', () => this.#lost(client))
    client.on('notification', (msg) => {
      if (this.#client === client && msg.channel === channel && !this.#options.ownSessions.has(msg.processId)) this.#options.onNotify()
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${quoteIdent(channel)}`)
    } catch {
      this.#lost(client)
      return
    }
    if (this.#client !== client) return
    this.#failures = 0
    if (this.#connectedOnce) this.#options.onNotify()
    this.#connectedOnce = true
  }

  /** `client` failed: drops it and, unless closed, schedules the next attempt. */
  #lost(client: pg.Client): void {
    if (this.#client !== client) return
    this.#client = null
    client.end().catch(() => undefined) // it is broken already; ending it only frees the socket
    if (this.#closed) return
    const cap = Math.min(this.#options.maxRetryMs ?? 10_000, (this.#options.firstRetryMs ?? 100) * 2 ** this.#failures)
    this.#failures++
    this.#timer = setTimeout(() => void this.#connect(), Math.random() * cap)
    this.#timer.unref()
  }
}

export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`
