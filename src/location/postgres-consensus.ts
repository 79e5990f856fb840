/**
 * PostgresConsensus: Consensus in one table of PostgreSQL (or CockroachDB), through a `pg` Pool.
 *
 *   consensus(shard text, sequence_number bigint, data bytea, PRIMARY KEY (shard, sequence_number))
 *
 * compareAndSet is one autocommit `INSERT … SELECT … WHERE <head is expected>`: zero rows or a
 * unique violation (a concurrent writer of the same seqno) is a mismatch.
 *
 * NB: every session runs SERIALIZABLE (CockroachDB's default; set explicitly for PostgreSQL).
 * Under READ COMMITTED a stale writer is possible: its statement snapshot can predate both later
 * versions and a truncation that deleted the row it is about to insert, and nothing then conflicts
 * with the insert, so one seqno is won twice (the contract's racing-truncater test caught this).
 * Serializability rules that out: in any serial order the head only grows. The price is
 * serialization failures (40001): a failed compareAndSet re-reads the head and reports a mismatch
 * if it moved, else tries again (bounded); other statements are simply re-run (bounded).
 *
 * SQL stays within what CockroachDB also accepts (explicit casts, no ON CONFLICT, no PG-only types).
 *
 * Errors are classified as postgres-errors.ts says.
 */
import pg from 'pg'
import { postgresPool } from './postgres-pool.js'
import type { CasResult, Consensus, ListOptions, SeqNo, VersionedData } from './consensus.js'
import { checkCas, checkKey, checkList, checkScan, checkTruncate, checkTruncateAgainstHead } from './consensus-args.js'
import { closedError, determinate, errorMessage, type Abortable } from './errors.js'
import { classify, DUPLICATE_OBJECT, DUPLICATE_TABLE, hasSqlState, isSerializationFailure, MAX_SERIALIZATION_ATTEMPTS, pause, UNIQUE_VIOLATION } from './postgres-errors.js'

export interface PostgresConsensusOptions {
  /** `postgres://user:pass@host:port/db?…` (libpq-style options such as `sslmode` and `options` apply). */
  readonly connectionString: string
  /** Pool size; default 10. */
  readonly maxConnections?: number
  /** Giving up on getting a connection; default 10 s. */
  readonly connectTimeoutMs?: number
  /** Client-side limit on one query; default 30 s (an expired write is indeterminate). */
  readonly queryTimeoutMs?: number
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS consensus (
  shard text NOT NULL,
  sequence_number bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (shard, sequence_number)
)`
const HEAD = 'SELECT sequence_number, data FROM consensus WHERE shard = $1 ORDER BY sequence_number DESC LIMIT 1'
const CAS_FIRST = `INSERT INTO consensus (shard, sequence_number, data)
  SELECT $1::text, $2::bigint, $3::bytea
  WHERE NOT EXISTS (SELECT 1 FROM consensus WHERE shard = $1::text)`
const CAS_NEXT = `INSERT INTO consensus (shard, sequence_number, data)
  SELECT $1::text, $2::bigint, $3::bytea
  WHERE (SELECT max(sequence_number) FROM consensus WHERE shard = $1::text) = $4::bigint`
const SCAN = `SELECT sequence_number, data FROM consensus
  WHERE shard = $1 AND sequence_number >= $2::bigint ORDER BY sequence_number ASC LIMIT $3::bigint`
const TRUNCATE = 'DELETE FROM consensus WHERE shard = $1 AND sequence_number < $2::bigint'
const LIST = 'SELECT DISTINCT shard FROM consensus'
// NB: the primary key's order: the index answers it reading only the rows of the keys it returns.
const LIST_RANGE = 'SELECT DISTINCT shard FROM consensus WHERE shard > $1 ORDER BY shard LIMIT $2::bigint'
const LIST_FROM = 'SELECT DISTINCT shard FROM consensus ORDER BY shard LIMIT $1::bigint'

const SERIALIZABLE = "SET default_transaction_isolation = 'serializable'"

interface Row {
  readonly sequence_number: string
  readonly data: Buffer
}

export class PostgresConsensus implements Consensus {
  readonly #pool: pg.Pool
  /** Pooled connections already switched to SERIALIZABLE. */
  readonly #serializable = new WeakSet<pg.PoolClient>()
  #closed = false

  private constructor(pool: pg.Pool) {
    this.#pool = pool
  }

  /** Connects and creates the table if absent; throws (determinate) if the database is unreachable. */
  static async open(options: PostgresConsensusOptions): Promise<PostgresConsensus> {
    const pool = postgresPool(options)
    const consensus = new PostgresConsensus(pool)
    try {
      await consensus.#run('open', '', true, async (client) => {
        try {
          await client.query(CREATE_TABLE)
        } catch (err) {
          // Concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalog; the table exists.
          if (!hasSqlState(err, UNIQUE_VIOLATION, DUPLICATE_TABLE, DUPLICATE_OBJECT)) throw err
        }
      })
    } catch (err) {
      await pool.end()
      throw err
    }
    return consensus
  }

  async head(key: string, opts?: Abortable): Promise<VersionedData | null> {
    this.#check(opts)
    checkKey(key)
    return this.#run('head', key, false, async (client) => {
      const { rows } = await client.query<Row>(HEAD, [key])
      return rows[0] === undefined ? null : toVersion(rows[0])
    })
  }

  async compareAndSet(key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable): Promise<CasResult> {
    this.#check(opts)
    checkCas(key, expected, data)
    const bytes = Buffer.from(data.data.buffer, data.data.byteOffset, data.data.byteLength)
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#run('compareAndSet', key, true, async (client) => {
        try {
          const result =
            expected === null
              ? await client.query(CAS_FIRST, [key, data.seqno, bytes])
              : await client.query(CAS_NEXT, [key, data.seqno, bytes, expected])
          return result.rowCount === 1 ? 'committed' : 'mismatch'
        } catch (err) {
          if (hasSqlState(err, UNIQUE_VIOLATION)) return 'mismatch'
          if (isSerializationFailure(err)) return 'conflict'
          throw err
        }
      })
      if (outcome === 'committed') return { kind: 'committed' }
      const current = await this.head(key, opts)
      // A conflict wrote nothing: if the head moved we lost, else the race is still open.
      if (outcome === 'mismatch' || (current?.seqno ?? null) !== expected) return { kind: 'mismatch', current }
      if (attempt >= MAX_SERIALIZATION_ATTEMPTS) {
        throw determinate(`postgres consensus compareAndSet "${key}": failed to serialize ${attempt} times`)
      }
      await pause(attempt, opts)
    }
  }

  async scan(key: string, from: SeqNo, limit: number, opts?: Abortable): Promise<VersionedData[]> {
    this.#check(opts)
    checkScan(key, from, limit)
    return this.#run('scan', key, false, async (client) => {
      const { rows } = await client.query<Row>(SCAN, [key, from, limit])
      return rows.map(toVersion)
    })
  }

  /** NB: the head check and the delete are two statements; safe because the head never moves back. */
  async truncate(key: string, seqno: SeqNo, opts?: Abortable): Promise<number> {
    this.#check(opts)
    checkTruncate(key, seqno)
    const head = await this.head(key, opts)
    checkTruncateAgainstHead(key, seqno, head?.seqno ?? null)
    return this.#run('truncate', key, true, async (client) => {
      const result = await client.query(TRUNCATE, [key, seqno])
      return result.rowCount ?? 0
    })
  }

  async list(opts?: ListOptions): Promise<string[]> {
    this.#check(opts)
    checkList(opts)
    return this.#run('list', '', false, async (client) => {
      const { after, limit } = opts ?? {}
      const { rows } =
        after === undefined && limit === undefined
          ? await client.query<{ shard: string }>(LIST)
          : after === undefined
            ? await client.query<{ shard: string }>(LIST_FROM, [limit ?? null])
            : await client.query<{ shard: string }>(LIST_RANGE, [after, limit ?? null])
      return rows.map((r) => r.shard)
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#pool.end()
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('postgres consensus')
    opts?.signal?.throwIfAborted()
  }

  /** Runs `fn` on a pooled client, classifying failures (`write`: the statement may change rows). */
  async #run<T>(op: string, key: string, write: boolean, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient
      try {
        client = await this.#pool.connect()
      } catch (err) {
        throw determinate(`postgres consensus ${op}: no connection: ${errorMessage(err)}`, err)
      }
      if (!this.#serializable.has(client)) {
        try {
          await client.query(SERIALIZABLE)
        } catch (err) {
          client.release(err as Error)
          throw determinate(`postgres consensus ${op}: cannot make the session serializable: ${errorMessage(err)}`, err)
        }
        this.#serializable.add(client)
      }
      try {
        const result = await fn(client)
        client.release()
        return result
      } catch (err) {
        // A client whose query failed for a connection reason is not reused.
        client.release(err instanceof pg.DatabaseError ? undefined : (err as Error))
        if (!isSerializationFailure(err) || attempt >= MAX_SERIALIZATION_ATTEMPTS) throw classify(`postgres consensus ${op}${key === '' ? '' : ` "${key}"`}`, write, err)
      }
      await pause(attempt)
    }
  }
}

function toVersion(row: Row): VersionedData {
  const seqno = Number(row.sequence_number)
  if (!Number.isSafeInteger(seqno)) throw determinate(`postgres consensus: seqno ${row.sequence_number} is beyond 2^53`)
  return { seqno, data: new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength) }
}
