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
  return pool
}
