/**
 * PostgresJobStore: the JobStore in PostgreSQL, with the database's own tools rather than a
 * compare-and-set loop: every change is one statement (or, for `insert`, one short transaction),
 * so instances never contend on a single row.
 *
 *   compactd_jobs(id text COLLATE "C" PRIMARY KEY, shard_id, source, status, attempt, owner, token,
 *     lease_expires_at, cancel_requested, idempotency_key, deadline_at, created_at, updated_at,
 *     finished_at, data jsonb)
 *     unique (shard_id, idempotency_key) where the key is not null; (status, id) for the queue and
 *     status listings; (shard_id, id) and (source, id) for listings; finished_at for purges
 *   compactd_instances(id, started_at, heartbeat_at, version, running, state_formats,
 *     state_formats_started_at): the state formats count only while state_formats_started_at is
 *     started_at, because a build from before them updates the other columns of a row it finds
 *     (an instance id restarted with that build) and leaves these alone
 *
 * - claim: `UPDATE … WHERE id = (SELECT id … WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE
 *   SKIP LOCKED)`: concurrent claimers lock different rows instead of queueing on one. NB: a claim
 *   skips a row another transaction holds locked at that instant, so under concurrency "oldest
 *   first" is approximate; each job is still claimed by one claimer.
 * - Fenced writes are single UPDATEs `WHERE id = $1 AND token = $2 AND status = 'running'`: under
 *   READ COMMITTED a row lock serializes them and the WHERE is re-checked on the row as committed,
 *   so a stale token matches nothing.
 * - insert: a transaction holding an advisory lock (per table) around the idempotency lookup, the
 *   count of queued jobs and the insert, so the capacity holds exactly across instances. NB: the
 *   count must see every insert committed before the lock was granted, which READ COMMITTED gives
 *   (each statement takes a new snapshot) and REPEATABLE READ would not; sessions are set to READ
 *   COMMITTED explicitly.
 * - subscribe: a row trigger NOTIFYs `compactd_jobs_<table oid>` (one notification per transaction:
 *   PostgreSQL folds identical ones) and a dedicated connection LISTENs (postgres-listener.ts), so
 *   every instance hears every instance's changes; this process's own changes call listeners at once
 *   (notifications from its own sessions are dropped). Listeners are also called whenever LISTEN
 *   takes effect, the first time and after a reconnection.
 * - Ids compare in the "C" collation: byte order, which is the order JavaScript sorts them in.
 *
 * CockroachDB: the SQL is plain, but advisory locks, LISTEN/NOTIFY and plpgsql triggers are
 * PostgreSQL's; this adapter is for PostgreSQL (the consensus adapter runs on both).
 *
 * Errors are classified as postgres-errors.ts says.
 */
import pg from 'pg'
import { postgresPool } from './postgres-pool.js'
import { closedError, determinate, errorMessage, InvalidUsageError, LocationError, type Abortable } from './errors.js'
import { isFinalJobStatus, JOB_STATUSES, type FinalJobStatus, type InsertResult, type InstanceRecord, type JobFilter, type JobPage, type JobRecord, type JobStatus, type JobStore } from './job-store.js'
import { checkInsertable, jsonCopy } from './job-transitions.js'
import { classify, DUPLICATE_OBJECT, DUPLICATE_TABLE, hasSqlState, isSerializationFailure, MAX_SERIALIZATION_ATTEMPTS, pause, UNIQUE_VIOLATION } from './postgres-errors.js'
import { PostgresListener } from './postgres-listener.js'

export interface PostgresJobStoreOptions {
  /** `postgres://user:pass@host:port/db?…` (libpq-style options such as `sslmode` and `options` apply). */
  readonly connectionString: string
  /** Pool size; default 10 (plus one connection for LISTEN once someone subscribes). */
  readonly maxConnections?: number
  /** Giving up on getting a connection; default 10 s. */
  readonly connectTimeoutMs?: number
  /** Client-side limit on one query; default 30 s (an expired write is indeterminate). */
  readonly queryTimeoutMs?: number
  /** The LISTEN connection's first reconnection delay cap; default 100 ms, doubling up to 10 s. */
  readonly listenRetryMs?: number
  /** Each failure of the LISTEN connection (it is replaced; subscribers are called once it listens again). */
  readonly onListenError?: (err: unknown) => void
  /** Test hook: called after every statement with the number of rows it returned. */
  readonly onRows?: (rows: number) => void
}

/** The advisory lock namespace (`comp`); the second key is the table's oid, or 0 for schema changes. */
const LOCK_SPACE = 0x636f6d70
const FINAL = JOB_STATUSES.filter(isFinalJobStatus)

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS compactd_jobs (
    id text COLLATE "C" PRIMARY KEY,
    shard_id text NOT NULL,
    source text NOT NULL,
    status text NOT NULL,
    attempt integer NOT NULL,
    owner text,
    token bigint NOT NULL,
    lease_expires_at bigint,
    cancel_requested boolean NOT NULL,
    idempotency_key text,
    deadline_at bigint,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint,
    data jsonb NOT NULL
  )`,
  'CREATE UNIQUE INDEX IF NOT EXISTS compactd_jobs_idempotency ON compactd_jobs (shard_id, idempotency_key) WHERE idempotency_key IS NOT NULL',
  'CREATE INDEX IF NOT EXISTS compactd_jobs_status ON compactd_jobs (status, id)',
  'CREATE INDEX IF NOT EXISTS compactd_jobs_shard ON compactd_jobs (shard_id, id)',
  'CREATE INDEX IF NOT EXISTS compactd_jobs_source ON compactd_jobs (source, id)',
  'CREATE INDEX IF NOT EXISTS compactd_jobs_finished ON compactd_jobs (finished_at) WHERE finished_at IS NOT NULL',
  `CREATE TABLE IF NOT EXISTS compactd_instances (
    id text COLLATE "C" PRIMARY KEY,
    started_at bigint NOT NULL,
    heartbeat_at bigint NOT NULL,
    version text NOT NULL,
    running integer NOT NULL
  )`,
  'ALTER TABLE compactd_instances ADD COLUMN IF NOT EXISTS state_formats integer[]',
  'ALTER TABLE compactd_instances ADD COLUMN IF NOT EXISTS state_formats_started_at bigint',
  `CREATE OR REPLACE FUNCTION compactd_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    PERFORM pg_notify('compactd_jobs_' || TG_RELID::text, '');
    RETURN NULL;
  END
  $$`,
]
const HAS_TRIGGER = "SELECT 1 FROM pg_trigger WHERE tgrelid = 'compactd_jobs'::regclass AND tgname = 'compactd_jobs_notify'"
const CREATE_TRIGGER = 'CREATE TRIGGER compactd_jobs_notify AFTER INSERT OR UPDATE OR DELETE ON compactd_jobs FOR EACH ROW EXECUTE FUNCTION compactd_jobs_notify()'
const TABLE_OID = "SELECT 'compactd_jobs'::regclass::oid::bigint AS oid"
const READ_COMMITTED = 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED'

const COLUMNS = 'id, shard_id, source, status, attempt, owner, token, lease_expires_at, cancel_requested, idempotency_key, deadline_at, created_at, updated_at, finished_at, data'
const INSERT = `INSERT INTO compactd_jobs (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb) RETURNING *`
const CLAIM = `UPDATE compactd_jobs SET status = 'running', owner = $1, attempt = attempt + 1, token = token + 1,
    lease_expires_at = $2, cancel_requested = false, updated_at = $3
  WHERE id = (SELECT id FROM compactd_jobs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) AND status = 'queued'
  RETURNING *`
const RENEW = `UPDATE compactd_jobs SET lease_expires_at = $3, data = $4::jsonb, updated_at = $5
  WHERE id = $1 AND token = $2 AND status = 'running' RETURNING *`
const FINISH_RUNNING = `UPDATE compactd_jobs SET status = $3, owner = NULL, lease_expires_at = NULL, data = $4::jsonb, updated_at = $5, finished_at = $5
  WHERE id = $1 AND token = $2 AND status = 'running' RETURNING *`
const FINISH_QUEUED = `UPDATE compactd_jobs SET status = $2, owner = NULL, lease_expires_at = NULL, data = $3::jsonb, updated_at = $4, finished_at = $4
  WHERE id = $1 AND status = 'queued' RETURNING *`
const REQUEST_CANCEL = `UPDATE compactd_jobs SET cancel_requested = true, updated_at = $2
  WHERE id = $1 AND status = 'running' AND NOT cancel_requested RETURNING *`
const RELEASE = `UPDATE compactd_jobs SET status = 'queued', owner = NULL, lease_expires_at = NULL, updated_at = $3
  WHERE id = $1 AND token = $2 AND status = 'running' RETURNING *`
const RESCUE = `UPDATE compactd_jobs SET status = 'queued', owner = NULL, lease_expires_at = NULL, updated_at = $1
  WHERE status = 'running' AND lease_expires_at < $1 RETURNING *`
const DEADLINE_PASSED = "SELECT * FROM compactd_jobs WHERE status = 'queued' AND deadline_at < $1 ORDER BY id LIMIT $2"
const PURGE = 'DELETE FROM compactd_jobs WHERE status = ANY($1::text[]) AND finished_at < $2'
const GET = 'SELECT * FROM compactd_jobs WHERE id = $1'
const GET_RUNNING = "SELECT * FROM compactd_jobs WHERE id = $1 AND status = 'running'"
const BY_KEY = 'SELECT * FROM compactd_jobs WHERE shard_id = $1 AND idempotency_key = $2'
const COUNT_QUEUED = "SELECT count(*)::integer AS n FROM compactd_jobs WHERE status = 'queued'"
const ACTIVE = "SELECT status, count(*)::integer AS n FROM compactd_jobs WHERE status IN ('queued', 'running') GROUP BY status"
const HEARTBEAT = `INSERT INTO compactd_instances (id, started_at, heartbeat_at, version, running, state_formats, state_formats_started_at)
  VALUES ($1, $2, $3, $4, $5, $6::integer[], $2)
  ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, version = excluded.version, running = excluded.running,
    state_formats = excluded.state_formats, state_formats_started_at = excluded.state_formats_started_at`
const INSTANCES = 'SELECT * FROM compactd_instances WHERE heartbeat_at >= $1 ORDER BY id'
const LEAVE = 'DELETE FROM compactd_instances WHERE id = $1'

interface JobRow {
  readonly id: string
  readonly shard_id: string
  readonly source: string
  readonly status: JobStatus
  readonly attempt: number
  readonly owner: string | null
  readonly token: string
  readonly lease_expires_at: string | null
  readonly cancel_requested: boolean
  readonly idempotency_key: string | null
  readonly deadline_at: string | null
  readonly created_at: string
  readonly updated_at: string
  readonly finished_at: string | null
  readonly data: unknown
}

interface InstanceRow {
  readonly id: string
  readonly started_at: string
  readonly heartbeat_at: string
  readonly version: string
  readonly running: number
  readonly state_formats: number[] | null
  readonly state_formats_started_at: string | null
}

export class PostgresJobStore implements JobStore {
  readonly #pool: pg.Pool
  readonly #options: PostgresJobStoreOptions
  /** The table's oid, as the insert lock's second key (an int4). */
  readonly #lockKey: number
  readonly #listener: PostgresListener
  readonly #listeners = new Set<() => void>()
  /** Backend pids of this store's pooled sessions: their notifications are this process's own. */
  readonly #sessions: ReadonlySet<number>
  #closed = false

  private constructor(pool: pg.Pool, sessions: Set<number>, options: PostgresJobStoreOptions, tableOid: number) {
    this.#pool = pool
    this.#sessions = sessions
    this.#options = options
    this.#lockKey = tableOid | 0
    this.#listener = new PostgresListener({
      connectionString: options.connectionString,
      channel: `compactd_jobs_${tableOid}`,
      onNotify: () => this.#notify(),
      ownSessions: this.#sessions,
      applicationName: 'compactd-jobs-listen',
      ...(options.listenRetryMs === undefined ? {} : { firstRetryMs: options.listenRetryMs }),
      ...(options.onListenError === undefined ? {} : { onError: options.onListenError }),
    })
  }

  /** Connects and creates the tables, indexes and trigger if absent; throws (determinate) if the database is unreachable. */
  static async open(options: PostgresJobStoreOptions): Promise<PostgresJobStore> {
    const pool = postgresPool(options)
    const sessions = new Set<number>()
    pool.on('connect', (client) => {
      // Queued before any other query on the client; a failure shows in that query.
      client.query(READ_COMMITTED).catch(() => undefined)
      const pid = processId(client)
      if (pid !== null) sessions.add(pid)
    })
    pool.on('remove', (client) => {
      const pid = processId(client)
      if (pid !== null) sessions.delete(pid)
    })
    try {
      const oid = await withClient(pool, 'open', async (client) => {
        await client.query('BEGIN')
        try {
          await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_SPACE])
          for (const statement of SCHEMA) await client.query(statement)
          if ((await client.query(HAS_TRIGGER)).rowCount === 0) await client.query(CREATE_TRIGGER)
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined) // the error below says what failed
          // Another process without the lock (an older version) may have created them meanwhile.
          if (!hasSqlState(err, UNIQUE_VIOLATION, DUPLICATE_TABLE, DUPLICATE_OBJECT)) throw err
        }
        return Number((await client.query<{ oid: string }>(TABLE_OID)).rows[0]?.oid)
      })
      return new PostgresJobStore(pool, sessions, options, oid)
    } catch (err) {
      await pool.end()
      throw err
    }
  }

  async insert(job: JobRecord, capacity: number, opts?: Abortable): Promise<InsertResult> {
    this.#check(opts)
    checkInsertable(job)
    const params = [
      job.id,
      job.shardId,
      job.source,
      job.status,
      job.attempt,
      job.owner,
      job.token,
      job.leaseExpiresAt,
      job.cancelRequested,
      job.idempotencyKey,
      job.deadlineAt,
      job.createdAt,
      job.updatedAt,
      job.finishedAt,
      JSON.stringify(jsonCopy(job.data)),
    ]
    const result = await this.#run('insert', true, (client) =>
      this.#transaction(client, async (): Promise<InsertResult> => {
        await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_SPACE, this.#lockKey])
        if (job.idempotencyKey !== null) {
          const earlier = await this.#rows<JobRow>(client, BY_KEY, [job.shardId, job.idempotencyKey])
          if (earlier[0] !== undefined) return { kind: 'exists', job: toJob(earlier[0]) }
        }
        if (job.status === 'queued') {
          const queued = (await this.#rows<{ n: number }>(client, COUNT_QUEUED, []))[0]?.n ?? 0
          if (queued >= capacity) return { kind: 'full', queued }
        }
        try {
          const [row] = await this.#rows<JobRow>(client, INSERT, params)
          return { kind: 'inserted', job: toJob(row as JobRow) }
        } catch (err) {
          if (hasSqlState(err, UNIQUE_VIOLATION) && (err as pg.DatabaseError).constraint === 'compactd_jobs_pkey') {
            throw new InvalidUsageError(`job ${job.id} exists already`)
          }
          throw err
        }
      }),
    )
    if (result.kind === 'inserted') this.#notify()
    return result
  }

  async get(id: string, opts?: Abortable): Promise<JobRecord | null> {
    return this.#one('get', false, GET, [id], opts)
  }

  async byIdempotencyKey(shardId: string, idempotencyKey: string, opts?: Abortable): Promise<JobRecord | null> {
    return this.#one('byIdempotencyKey', false, BY_KEY, [shardId, idempotencyKey], opts)
  }

  async list(filter: JobFilter, opts?: Abortable): Promise<JobPage> {
    this.#check(opts)
    const limit = Math.max(1, Math.floor(filter.limit))
    const where: string[] = []
    const params: unknown[] = []
    const add = (sql: string, value: unknown): void => {
      params.push(value)
      where.push(`${sql} $${params.length}`)
    }
    if (filter.shardId !== undefined) add('shard_id =', filter.shardId)
    if (filter.status !== undefined) add('status =', filter.status)
    if (filter.source !== undefined) add('source =', filter.source)
    if (filter.cursor !== undefined) add('id <', filter.cursor)
    params.push(limit + 1)
    const sql = `SELECT * FROM compactd_jobs ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY id DESC LIMIT $${params.length}`
    const rows = await this.#run('list', false, (client) => this.#rows<JobRow>(client, sql, params))
    const jobs = rows.slice(0, limit).map(toJob)
    return { jobs, nextCursor: rows.length > limit ? (jobs.at(-1) as JobRecord).id : null }
  }

  async active(opts?: Abortable): Promise<{ readonly queued: number; readonly running: number }> {
    this.#check(opts)
    const rows = await this.#run('active', false, (client) => this.#rows<{ status: string; n: number }>(client, ACTIVE, []))
    return { queued: rows.find((r) => r.status === 'queued')?.n ?? 0, running: rows.find((r) => r.status === 'running')?.n ?? 0 }
  }

  async claim(owner: string, now: number, leaseMs: number, opts?: Abortable): Promise<JobRecord | null> {
    return this.#change('claim', CLAIM, [owner, now + leaseMs, now], opts)
  }

  async renew(id: string, token: number, now: number, leaseMs: number, data: unknown, opts?: Abortable): Promise<JobRecord | null> {
    return this.#change('renew', RENEW, [id, token, now + leaseMs, JSON.stringify(jsonCopy(data)), now], opts)
  }

  async finish(id: string, token: number | null, status: FinalJobStatus, data: unknown, now: number, opts?: Abortable): Promise<JobRecord | null> {
    this.#check(opts)
    if (!isFinalJobStatus(status)) throw new InvalidUsageError(`finish with ${String(status)}, which is not a final status`)
    const json = JSON.stringify(jsonCopy(data))
    return token === null ? this.#change('finish', FINISH_QUEUED, [id, status, json, now], opts) : this.#change('finish', FINISH_RUNNING, [id, token, status, json, now], opts)
  }

  async requestCancel(id: string, now: number, opts?: Abortable): Promise<JobRecord | null> {
    // Asked already: the record as it is (no second change).
    return (await this.#change('requestCancel', REQUEST_CANCEL, [id, now], opts)) ?? this.#one('requestCancel', false, GET_RUNNING, [id], opts)
  }

  async release(id: string, token: number, now: number, opts?: Abortable): Promise<JobRecord | null> {
    return this.#change('release', RELEASE, [id, token, now], opts)
  }

  async rescue(now: number, opts?: Abortable): Promise<readonly JobRecord[]> {
    this.#check(opts)
    const rows = await this.#run('rescue', true, (client) => this.#rows<JobRow>(client, RESCUE, [now]))
    if (rows.length > 0) this.#notify()
    return rows.map(toJob).sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  async deadlinePassed(now: number, limit: number, opts?: Abortable): Promise<readonly JobRecord[]> {
    this.#check(opts)
    if (limit < 1) return []
    return (await this.#run('deadlinePassed', false, (client) => this.#rows<JobRow>(client, DEADLINE_PASSED, [now, limit]))).map(toJob)
  }

  async purge(before: number, opts?: Abortable): Promise<number> {
    this.#check(opts)
    const n = await this.#run('purge', true, async (client) => (await client.query(PURGE, [FINAL, before])).rowCount ?? 0)
    if (n > 0) this.#notify()
    return n
  }

  async heartbeat(instance: InstanceRecord, opts?: Abortable): Promise<void> {
    this.#check(opts)
    await this.#run('heartbeat', true, (client) => client.query(HEARTBEAT, [instance.id, instance.startedAt, instance.heartbeatAt, instance.version, instance.running, instance.stateFormats ?? null]))
  }

  async instances(since: number, opts?: Abortable): Promise<readonly InstanceRecord[]> {
    this.#check(opts)
    const rows = await this.#run('instances', false, (client) => this.#rows<InstanceRow>(client, INSTANCES, [since]))
    return rows.map((r) => {
      const startedAt = toInt(r.started_at)
      // NB: formats a row got from a later build count only for the process that wrote them (see the header).
      const formats = r.state_formats !== null && r.state_formats_started_at !== null && toInt(r.state_formats_started_at) === startedAt ? { stateFormats: r.state_formats } : {}
      return Object.freeze({ id: r.id, startedAt, heartbeatAt: toInt(r.heartbeat_at), version: r.version, running: r.running, ...formats })
    })
  }

  async leave(id: string, opts?: Abortable): Promise<void> {
    this.#check(opts)
    await this.#run('leave', true, (client) => client.query(LEAVE, [id]))
  }

  subscribe(listener: () => void): () => void {
    if (!this.#closed) this.#listener.start()
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#listeners.clear()
    await this.#listener.close()
    await this.#pool.end()
  }

  #notify(): void {
    for (const l of this.#listeners) queueMicrotask(l)
  }

  /** A one-row read. */
  async #one(op: string, write: boolean, sql: string, params: unknown[], opts: Abortable | undefined): Promise<JobRecord | null> {
    this.#check(opts)
    const [row] = await this.#run(op, write, (client) => this.#rows<JobRow>(client, sql, params))
    return row === undefined ? null : toJob(row)
  }

  /** A one-row change: the record after, or null when nothing matched. */
  async #change(op: string, sql: string, params: unknown[], opts: Abortable | undefined): Promise<JobRecord | null> {
    const job = await this.#one(op, true, sql, params, opts)
    if (job !== null) this.#notify()
    return job
  }

  async #rows<R extends pg.QueryResultRow>(client: pg.PoolClient, sql: string, params: unknown[]): Promise<R[]> {
    const { rows } = await client.query<R>(sql, params)
    this.#options.onRows?.(rows.length)
    return rows
  }

  /** Runs `fn` in a transaction on `client`, rolling back when it throws. */
  async #transaction<T>(client: pg.PoolClient, fn: () => Promise<T>): Promise<T> {
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED')
    let result: T
    try {
      result = await fn()
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined) // the error below says what failed; a broken client is not reused
      throw err
    }
    await client.query('COMMIT')
    return result
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('postgres job store')
    opts?.signal?.throwIfAborted()
  }

  /** Runs `fn` on a pooled client, classifying failures (`write`: it may change rows); re-runs it after a deadlock or serialization failure. */
  async #run<T>(op: string, write: boolean, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withClient(this.#pool, op, fn)
      } catch (err) {
        if (err instanceof InvalidUsageError) throw err
        if (!isSerializationFailure(err) || attempt >= MAX_SERIALIZATION_ATTEMPTS) throw err instanceof LocationError ? err : classify(`postgres job store ${op}`, write, err)
      }
      await pause(attempt)
    }
  }
}

/** `fn` on a client of `pool`, released after (destroyed if it failed for a connection reason). Failing to connect is determinate. */
async function withClient<T>(pool: pg.Pool, op: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient
  try {
    client = await pool.connect()
  } catch (err) {
    throw determinate(`postgres job store ${op}: no connection: ${errorMessage(err)}`, err)
  }
  try {
    const result = await fn(client)
    client.release()
    return result
  } catch (err) {
    client.release(err instanceof pg.DatabaseError || err instanceof InvalidUsageError ? undefined : (err as Error))
    throw err
  }
}

/** The backend pid of a connected client (pg keeps it, untyped). */
const processId = (client: pg.ClientBase): number | null => (client as unknown as { processID?: number | null }).processID ?? null

function toInt(value: string): number {
  const n = Number(value)
  if (!Number.isSafeInteger(n)) throw determinate(`postgres job store: ${value} is beyond 2^53`)
  return n
}

const toIntOrNull = (value: string | null): number | null => (value === null ? null : toInt(value))

function toJob(r: JobRow): JobRecord {
  return Object.freeze({
    id: r.id,
    shardId: r.shard_id,
    source: r.source,
    status: r.status,
    attempt: r.attempt,
    owner: r.owner,
    token: toInt(r.token),
    leaseExpiresAt: toIntOrNull(r.lease_expires_at),
    cancelRequested: r.cancel_requested,
    idempotencyKey: r.idempotency_key,
    deadlineAt: toIntOrNull(r.deadline_at),
    createdAt: toInt(r.created_at),
    updatedAt: toInt(r.updated_at),
    finishedAt: toIntOrNull(r.finished_at),
    data: r.data,
  })
}
