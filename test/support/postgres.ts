/**
 * A real PostgreSQL for tests.
 *
 * - env DATABASE_URL set: a fresh database on that server per call, dropped by `stop`.
 * - otherwise: `initdb` into a temp dir and `pg_ctl start` on a free port on 127.0.0.1 (socket dir
 *   inside the temp dir), one database; `stop` is `pg_ctl stop -m immediate` and removes the dir.
 *   PostgreSQL refuses to run as root, so as root the binaries run via `runuser -u postgres --`
 *   on a dir chowned to postgres. Binaries come from PATH or /usr/lib/postgresql/<n>/bin.
 *
 * `schemaUrl()` makes a fresh schema and returns a URL whose connections use it (search_path), so
 * tests sharing one server do not see each other's tables.
 *
 * `down(mode)` and `up()` take a local server away and bring it back on the same port and data
 * directory, as a restart or a failover does (`pg_ctl stop -m immediate`: every backend dies at
 * once, no shutdown checkpoint; `-m fast`: sessions are terminated with 57P01, then a clean stop).
 * On a server of DATABASE_URL they throw: an outage test cannot stop a server it does not own.
 */
import { execFile as execFileCb } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { access, chown, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort } from './free-port.js'

const execFile = promisify(execFileCb)

export interface PostgresServer {
  /** `postgres://…/<database>` */
  readonly url: string
  /** A URL for a new, empty schema on the same database. */
  schemaUrl(): Promise<string>
  /** Whether `down`/`up` can be used (a local server, not DATABASE_URL's). */
  readonly restartable: boolean
  /** Stops the server process (the data directory stays). */
  down(mode?: 'immediate' | 'fast'): Promise<void>
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  up(): Promise<void>
  stop(): Promise<void>
}

export async function startPostgres(): Promise<PostgresServer> {
  const base = process.env['DATABASE_URL']
  return base !== undefined && base !== '' ? useExisting(base) : startLocal()
}

async function useExisting(base: string): Promise<PostgresServer> {
  const name = `compactd_test_${randomBytes(6).toString('hex')}`
  await withClient(base, (c) => c.query(`CREATE DATABASE ${name}`))
  const url = new URL(base)
  url.pathname = `/${name}`
  return server(url.toString(), null, async () => {
    await withClient(base, async (c) => {
      // PostgreSQL spells it without CASCADE; CockroachDB needs CASCADE for a non-empty database.
      await c.query(`DROP DATABASE IF EXISTS ${name}`).catch(() => c.query(`DROP DATABASE IF EXISTS ${name} CASCADE`))
    })
  })
}

async function startLocal(): Promise<PostgresServer> {
  const bin = await findBinaries()
  const dir = await mkdtemp(join(tmpdir(), 'compactd-pg-'))
  const data = join(dir, 'data')
  const sockets = join(dir, 'sock')
  await mkdir(sockets)
  const asRoot = process.getuid?.() === 0
  if (asRoot) await chownTree(dir, 'postgres')
  const run = (cmd: string, args: string[]) =>
    asRoot ? execFile('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]) : execFile(join(bin, cmd), args)

  let started = false
  try {
    await run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'])
    const port = await freePort()
    // NB: fsync=off, but synchronous_commit stays on: a commit is acknowledged once its WAL is in
    // the OS (not on disk), which an immediate stop keeps; with it off, `down('immediate')` lost
    // commits compactd had been told of, and a shard's upper went back (the outage test saw it).
    const options = `-c listen_addresses=127.0.0.1 -p ${port} -k ${sockets} -c fsync=off -c full_page_writes=off`
    const start = async (): Promise<void> => {
      await run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', options, 'start'])
    }
    await start()
    started = true
    const admin = `postgres://postgres@127.0.0.1:${port}/postgres`
    await withClient(admin, (c) => c.query('CREATE DATABASE compactd'))
    let running = true
    const lifecycle: Lifecycle = {
      down: async (mode) => {
        if (!running) return
        await run('pg_ctl', ['-D', data, '-w', 'stop', '-m', mode])
        running = false
      },
      up: async () => {
        if (running) return
        await start()
        running = true
      },
    }
    return server(`postgres://postgres@127.0.0.1:${port}/compactd`, lifecycle, async () => {
      if (running) await run('pg_ctl', ['-D', data, '-w', 'stop', '-m', 'immediate'])
      await rm(dir, { recursive: true, force: true })
    })
  } catch (err) {
    const log = await readFile(join(dir, 'log'), 'utf8').catch(() => '(no server log)')
    if (started) await run('pg_ctl', ['-D', data, '-w', 'stop', '-m', 'immediate']).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
    throw new Error(`could not start PostgreSQL: ${(err as Error).message}\n${log}`, { cause: err })
  }
}

/** Stopping and starting a local server's process. */
interface Lifecycle {
  down(mode: 'immediate' | 'fast'): Promise<void>
  up(): Promise<void>
}

function server(url: string, lifecycle: Lifecycle | null, teardown: () => Promise<void>): PostgresServer {
  let stopped = false
  const owned = (): Lifecycle => {
    if (lifecycle === null) throw new Error("this PostgreSQL is DATABASE_URL's: a test cannot stop and start it")
    return lifecycle
  }
  return {
    url,
    restartable: lifecycle !== null,
    down: (mode = 'immediate') => owned().down(mode),
    up: () => owned().up(),
    async schemaUrl() {
      const schema = `t_${randomBytes(6).toString('hex')}`
      await withClient(url, (c) => c.query(`CREATE SCHEMA ${schema}`))
      const scoped = new URL(url)
      scoped.searchParams.set('options', `-c search_path=${schema}`)
      return scoped.toString()
    },
    async stop() {
      if (stopped) return
      stopped = true
      await teardown()
    },
  }
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

async function findBinaries(): Promise<string> {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir !== '' && (await exists(join(dir, 'initdb'))) && (await exists(join(dir, 'pg_ctl')))) return dir
  }
  const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[])
  for (const v of versions.sort((a, b) => Number(b) - Number(a))) {
    const dir = join('/usr/lib/postgresql', v, 'bin')
    if (await exists(join(dir, 'initdb'))) return dir
  }
  throw new Error('PostgreSQL binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin; install postgresql or set DATABASE_URL')
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

async function chownTree(dir: string, user: string): Promise<void> {
  const uid = Number((await execFile('id', ['-u', user])).stdout.trim())
  const gid = Number((await execFile('id', ['-g', user])).stdout.trim())
  for (const path of [dir, ...(await readdir(dir, { recursive: true })).map((p) => join(dir, p))]) await chown(path, uid, gid)
}
