/** The connection pool both PostgreSQL adapters open, with the same limits and error handling. */
import pg from 'pg'

export interface PostgresPoolOptions {
  readonly connectionString: string
  /** Default 10. */
  readonly maxConnections?: number
  /** Default 10 s. */
  readonly connectTimeoutMs?: number
  /** Default 30 s. */
  readonly queryTimeoutMs?: number
}

export function postgresPool(options: PostgresPoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    query_timeout: options.queryTimeoutMs ?? 30_000,
  })
  // NB: an idle client's error (a server restart) must not crash the process; the pool drops the
  // client and the next query reports any lasting problem.
  pool.on('error', () => undefined)
  // NB: nor may a checked-out client's. pg-pool listens for errors only on idle clients, and a
  // client whose connection ends (a restart, a failover, a terminated backend) emits 'error' even
  // while a query runs: unheard, that event was an uncaught exception, and compactd shut down.
  // The failure still reaches the caller: the query in flight rejects (a later one on this client
  // too), and the client, no longer queryable, is dropped when released.
  pool.on('connect', (client) => client.on('error', () => undefined))
  return pool
}
