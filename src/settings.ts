/**
 * Start-up settings: each an environment variable with a matching CLI flag (flags win), parsed
 * once into a frozen object. A bad setting is a SettingsError whose message is one line naming it,
 * e.g. `--port/COMPACTD_PORT: must be an integer in [0, 65535]`.
 *
 * NB: the auth token is read from the environment only. A flag would show it in `ps` output and
 * shell history, so `--auth-token` is refused by name. A token file (`COMPACTD_AUTH_TOKEN_FILE`)
 * keeps tokens out of the environment too, holds several (a rotation), and is read again while the
 * server runs (http/watched-files.ts); `parseAuthTokens` is its format, here and at every reload.
 * The TLS certificate and key are read here too, so that files that cannot serve stop start-up
 * with one line, and again while running (`tlsOf` checks them each time).
 */
import { randomBytes, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { availableParallelism, hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { createSecureContext } from 'node:tls'
import { pathToFileURL } from 'node:url'
import { z } from 'zod'
import { parseDuration } from './dyncfg/duration.js'
import { DEFAULT_WORKER_NICE } from './engine/worker-pool.js'
import { DEFAULT_REUSE_IDLE_MS } from './engine/reuse-idle.js'
import { storeUrlProblem } from './location/open.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** `json`: one JSON object a line (for collectors); `pretty`: one readable line an entry (terminals). */
export const LOG_FORMATS = ['json', 'pretty'] as const
export type LogFormat = (typeof LOG_FORMATS)[number]

export const STORE_SCHEMES = {
  blob: ['mem:', 'file:', 's3:'],
  consensus: ['mem:', 'file:', 'postgres:', 'postgresql:'],
} as const

export const MIN_AUTH_TOKEN_LENGTH = 16

export interface Settings {
  readonly port: number
  readonly host: string
  /** Absolute. */
  readonly dataDir: string
  readonly blobUrl: string
  readonly consensusUrl: string
  readonly workers: number
  /** Nice steps the worker threads run below the event loop (engine/thread-priority.ts). */
  readonly workerNice: number
  /** How long memory kept for reuse stays mapped while unused (engine/reuse-idle.ts). */
  readonly reuseIdleMs: number
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  /**
   * The bearer tokens accepted at start-up (COMPACTD_AUTH_TOKEN's one, or the token file's); null:
   * no auth, and then the host must be a loopback address.
   */
  readonly authTokens: readonly string[] | null
  /** Absolute path of the token file, read again on SIGHUP and while running; null without one. */
  readonly authTokenFile: string | null
  /** Absolute paths of the PEM certificate (chain) and key to serve HTTPS with; null: plain HTTP. */
  readonly tlsCertFile: string | null
  readonly tlsKeyFile: string | null
  readonly bodyLimitBytes: number
  /** How long SIGTERM waits for running work before aborting it. */
  readonly shutdownGraceMs: number
  /** How long after SIGTERM the server keeps serving, /readyz saying 503, before it stops listening. */
  readonly shutdownDrainMs: number
  /** A snapshot response whose client takes no data this long is closed (0: never). */
  readonly sendTimeoutMs: number
  /** Age below which an unreferenced blob is never collected (it may belong to a write in flight). */
  readonly gcGraceMs: number
  /** Most shards with per-shard metric series at once (docs/metrics.md); 0 for none. */
  readonly metricsShardSeries: number
  /** This instance's name in the cluster (a pod name, say); generated from the host name when unset. */
  readonly instanceId: string
}

/** A bad setting; `message` is one line naming the flag and variable. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError'
}

type Key = Exclude<keyof Settings, 'authTokens'>

interface Spec {
  readonly flag: string
  readonly env: string
  readonly help: string
}

/** Every setting that has a flag, in the order `--help` lists them. */
const SPECS: Readonly<Record<Key, Spec>> = {
  port: { flag: 'port', env: 'COMPACTD_PORT', help: 'TCP port to listen on (0: any free port)  [6880]' },
  host: { flag: 'host', env: 'COMPACTD_HOST', help: 'address to listen on; non-loopback needs a token (COMPACTD_AUTH_TOKEN or a token file)  [127.0.0.1]' },
  dataDir: { flag: 'data-dir', env: 'COMPACTD_DATA_DIR', help: 'directory of the default file stores  [./data]' },
  blobUrl: { flag: 'blob', env: 'COMPACTD_BLOB', help: 'blob store URL: file:///path, s3://bucket/prefix?..., mem://  [file://<data-dir>/blob]' },
  consensusUrl: { flag: 'consensus', env: 'COMPACTD_CONSENSUS', help: 'consensus URL: file:///path, postgres://..., mem://  [file://<data-dir>/consensus]' },
  workers: { flag: 'workers', env: 'COMPACTD_WORKERS', help: 'compaction worker threads  [CPU count]' },
  workerNice: { flag: 'worker-nice', env: 'COMPACTD_WORKER_NICE', help: `nice steps worker threads run below the event loop, 0-19 (Linux)  [${DEFAULT_WORKER_NICE}]` },
  reuseIdleMs: { flag: 'reuse-idle', env: 'COMPACTD_REUSE_IDLE', help: 'how long buffers kept for reuse stay while unused, e.g. 60s (0s: none)  [60s]' },
  logLevel: { flag: 'log-level', env: 'COMPACTD_LOG_LEVEL', help: `one of ${LOG_LEVELS.join(', ')}  [info]` },
  logFormat: { flag: 'log-format', env: 'COMPACTD_LOG_FORMAT', help: `json (one object a line) or pretty (for terminals)  [json]` },
  bodyLimitBytes: { flag: 'body-limit', env: 'COMPACTD_BODY_LIMIT', help: 'largest request body: bytes, or with KiB/MiB/GiB  [64MiB]' },
  shutdownGraceMs: { flag: 'shutdown-grace', env: 'COMPACTD_SHUTDOWN_GRACE', help: 'time running compactions get on SIGTERM, e.g. 30s  [30s]' },
  shutdownDrainMs: { flag: 'shutdown-drain', env: 'COMPACTD_SHUTDOWN_DRAIN', help: 'time after SIGTERM the server keeps serving with /readyz at 503, before it stops listening (0s: at once)  [5s]' },
  sendTimeoutMs: { flag: 'send-timeout', env: 'COMPACTD_SEND_TIMEOUT', help: 'close a snapshot response whose client takes no data this long (0s: never)  [60s]' },
  gcGraceMs: { flag: 'gc-grace', env: 'COMPACTD_GC_GRACE', help: 'minimum age of an unreferenced blob before GC deletes it  [10m]' },
  metricsShardSeries: { flag: 'metrics-shard-series', env: 'COMPACTD_METRICS_SHARD_SERIES', help: 'most shards with per-shard metric series at once  [100]' },
  tlsCertFile: { flag: 'tls-cert', env: 'COMPACTD_TLS_CERT', help: 'PEM certificate (chain) file: serve HTTPS; read again on SIGHUP and every 30s  [none: HTTP]' },
  tlsKeyFile: { flag: 'tls-key', env: 'COMPACTD_TLS_KEY', help: "PEM private key file of --tls-cert's certificate  [none]" },
  authTokenFile: { flag: 'auth-token-file', env: 'COMPACTD_AUTH_TOKEN_FILE', help: 'file of bearer tokens, one a line (# comments); read again on SIGHUP and every 30s  [none]' },
  instanceId: { flag: 'instance-id', env: 'COMPACTD_INSTANCE_ID', help: "this instance's name in a cluster: 1-128 of A-Z a-z 0-9 . _ -  [<host>-<random>]" },
}

/** The drain's default: a few probe periods of a load balancer checking /readyz every second or two. */
export const DEFAULT_SHUTDOWN_DRAIN_MS = 5_000

export const AUTH_TOKEN_ENV = 'COMPACTD_AUTH_TOKEN'

/** The help's columns: as wide as the longest flag and variable, so every description starts at one column. */
const FLAG_WIDTH = Math.max(...Object.values(SPECS).map((s) => s.flag.length))
const ENV_WIDTH = Math.max(AUTH_TOKEN_ENV.length, ...Object.values(SPECS).map((s) => s.env.length))

export const USAGE = [
  'Usage: compactd [options]',
  '',
  'Every option may also be set by the environment variable shown; a flag wins over the variable.',
  '',
  ...Object.values(SPECS).map((s) => `  --${s.flag.padEnd(FLAG_WIDTH)} ${s.env.padEnd(ENV_WIDTH)} ${s.help}`),
  `  ${''.padEnd(FLAG_WIDTH + 2)} ${AUTH_TOKEN_ENV.padEnd(ENV_WIDTH)} bearer token (≥ ${MIN_AUTH_TOKEN_LENGTH} characters) required on /v1 routes; environment only`,
  `  --${'help'.padEnd(FLAG_WIDTH)} ${''.padEnd(ENV_WIDTH)} print this and exit`,
  '',
].join('\n')

const KIB = 1024
const MIB = 1024 * KIB
const GIB = 1024 * MIB

/** True when argv asks for usage (`--help` or `-h`); checked before anything else is parsed. */
export function wantsHelp(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--help' || a === '-h')
}

/**
 * Parses `argv` (without node and script) and `env` into frozen Settings.
 * Throws SettingsError naming the first bad setting.
 */
export function parseSettings(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Settings {
  const flags = parseFlags(argv)
  const raw = (key: Key): string | undefined => {
    const fromFlag = flags.get(SPECS[key].flag)
    if (fromFlag !== undefined) return fromFlag
    const fromEnv = env[SPECS[key].env]
    // An empty variable counts as unset (`-e COMPACTD_PORT=` in a container, a blank .env line).
    return fromEnv === '' ? undefined : fromEnv
  }
  const field = <T>(key: Key, schema: z.ZodType<T>, fallback: () => T): T => {
    const value = raw(key)
    if (value === undefined) return fallback()
    const parsed = schema.safeParse(value)
    if (parsed.success) return parsed.data
    throw bad(key, parsed.error.issues[0]?.message ?? 'is invalid')
  }

  const port = field('port', integerIn(0, 65535), () => 6880)
  const host = field('host', hostSchema, () => '127.0.0.1')
  const dataDir = field('dataDir', nonEmpty, () => './data')
  const absDataDir = resolve(dataDir)
  const blobUrl = field('blobUrl', storeUrl(STORE_SCHEMES.blob, 'blob'), () => pathToFileURL(join(absDataDir, 'blob')).href)
  const consensusUrl = field('consensusUrl', storeUrl(STORE_SCHEMES.consensus, 'consensus'), () => pathToFileURL(join(absDataDir, 'consensus')).href)
  const workers = field('workers', integerIn(1, 1024), () => Math.max(1, availableParallelism()))
  const workerNice = field('workerNice', integerIn(0, 19), () => DEFAULT_WORKER_NICE)
  const reuseIdleMs = field('reuseIdleMs', durationAtMost(MAX_TIMER_MS, '24h'), () => DEFAULT_REUSE_IDLE_MS)
  const logLevel = field('logLevel', z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }), () => 'info' as const)
  const logFormat = field('logFormat', z.enum(LOG_FORMATS, { error: `must be one of ${LOG_FORMATS.join(', ')}` }), () => 'json' as const)
  const bodyLimitBytes = field('bodyLimitBytes', byteSize(1, 4 * GIB), () => 64 * MIB)
  const shutdownGraceMs = field('shutdownGraceMs', durationAtMost(MAX_TIMER_MS, '24h'), () => 30_000)
  const shutdownDrainMs = field('shutdownDrainMs', durationAtMost(10 * 60_000, '10m'), () => DEFAULT_SHUTDOWN_DRAIN_MS)
  const sendTimeoutMs = field('sendTimeoutMs', durationAtMost(MAX_TIMER_MS, '24h'), () => 60_000)
  const gcGraceMs = field('gcGraceMs', duration, () => 600_000)
  const metricsShardSeries = field('metricsShardSeries', integerIn(0, 100_000), () => 100)
  const instanceId = field('instanceId', z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ -'), generatedInstanceId)

  const tlsCert = field('tlsCertFile', nonEmpty, () => null)
  const tlsKey = field('tlsKeyFile', nonEmpty, () => null)
  if ((tlsCert === null) !== (tlsKey === null)) {
    throw bad(tlsCert === null ? 'tlsCertFile' : 'tlsKeyFile', `is needed with ${tlsCert === null ? SPECS.tlsKeyFile.env : SPECS.tlsCertFile.env}: give both the certificate and its key`)
  }
  const tlsCertFile = tlsCert === null ? null : resolve(tlsCert)
  const tlsKeyFile = tlsKey === null ? null : resolve(tlsKey)
  if (tlsCertFile !== null && tlsKeyFile !== null) loadTls(tlsCertFile, tlsKeyFile)
  const tokenFile = field('authTokenFile', nonEmpty, () => null)
  const authTokenFile = tokenFile === null ? null : resolve(tokenFile)
  const token = env[AUTH_TOKEN_ENV]
  const authToken = token === undefined || token === '' ? null : token
  if (authToken !== null && authToken.length < MIN_AUTH_TOKEN_LENGTH) {
    throw new SettingsError(`${AUTH_TOKEN_ENV}: must be at least ${MIN_AUTH_TOKEN_LENGTH} characters`)
  }
  if (authToken !== null && /\s/.test(authToken)) {
    throw new SettingsError(`${AUTH_TOKEN_ENV}: must not contain whitespace`)
  }
  if (authToken !== null && authTokenFile !== null) {
    throw new SettingsError(`${AUTH_TOKEN_ENV} and ${SPECS.authTokenFile.env}: set one of them, not both (the file can hold several tokens)`)
  }
  let authTokens: readonly string[] | null = authToken === null ? null : [authToken]
  if (authTokenFile !== null) {
    const read = readTokenFile(authTokenFile)
    if (typeof read === 'string') throw bad('authTokenFile', read)
    authTokens = read
  }
  if (authTokens === null && !isLoopback(host)) {
    throw bad('host', `refusing to listen on ${host} without ${AUTH_TOKEN_ENV} or ${SPECS.authTokenFile.env}; set a token or listen on a loopback address`)
  }

  return Object.freeze({
    port,
    host,
    dataDir: absDataDir,
    blobUrl,
    consensusUrl,
    workers,
    workerNice,
    reuseIdleMs,
    logLevel,
    logFormat,
    authTokens: authTokens === null ? null : Object.freeze([...authTokens]),
    authTokenFile,
    tlsCertFile,
    tlsKeyFile,
    bodyLimitBytes,
    shutdownGraceMs,
    shutdownDrainMs,
    sendTimeoutMs,
    gcGraceMs,
    metricsShardSeries,
    instanceId,
  })
}

/** Largest token file read: a few tokens need a few hundred bytes; anything near this is not one. */
export const MAX_TOKEN_FILE_BYTES = 64 * KIB

/**
 * The tokens of a token file's text: one a line, surrounding whitespace ignored, blank lines and
 * lines starting with `#` skipped; at least one, each of at least MIN_AUTH_TOKEN_LENGTH characters
 * without whitespace. A string is the problem, naming the line but never its content.
 */
export function parseAuthTokens(text: string): readonly string[] | string {
  const tokens: string[] = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line.startsWith('#')) continue
    if (/\s/.test(line)) return `line ${i + 1}: a token must not contain whitespace (one token a line)`
    if (line.length < MIN_AUTH_TOKEN_LENGTH) return `line ${i + 1}: a token must be at least ${MIN_AUTH_TOKEN_LENGTH} characters`
    if (!tokens.includes(line)) tokens.push(line)
  }
  if (tokens.length === 0) return 'holds no token: write one token a line'
  return tokens
}

/** The tokens of a token file's bytes, or the problem with them as one line naming `path`. */
export function tokensOfFile(path: string, bytes: Buffer): readonly string[] | string {
  if (bytes.length > MAX_TOKEN_FILE_BYTES) return `${path} is larger than ${MAX_TOKEN_FILE_BYTES / KIB} KiB: is it a token file?`
  const tokens = parseAuthTokens(bytes.toString('utf8'))
  return typeof tokens === 'string' ? `${path}: ${tokens}` : tokens
}

/** Why a token, certificate or key file could not be read, as one line. */
export function fileReadProblem(path: string, err: unknown, ids: { uid: number; gid: number } | null = processIds()): string {
  const code = (err as NodeJS.ErrnoException).code ?? String(err)
  // NB: the image runs as uid 1000 and secrets are often root's, mode 0600: say who must read it.
  if (code === 'EACCES' && ids !== null) return `cannot read ${path} (EACCES): this process runs as uid ${ids.uid}, gid ${ids.gid}; make the file, and the directories above it, readable by one of them (chown, or chgrp and chmod g+rX)`
  return `cannot read ${path} (${code})`
}

/** The process's user and group ids, where there are such (not on Windows). */
function processIds(): { uid: number; gid: number } | null {
  return typeof process.getuid === 'function' && typeof process.getgid === 'function' ? { uid: process.getuid(), gid: process.getgid() } : null
}

/** The tokens of the file at `path`, or the problem with it (start-up reads it here). */
function readTokenFile(path: string): readonly string[] | string {
  try {
    return tokensOfFile(path, readFileSync(path))
  } catch (err) {
    return fileReadProblem(path, err)
  }
}

/** A certificate and key to serve: what the server needs, and what a log line may say of it. */
export interface TlsFiles {
  readonly cert: Buffer
  readonly key: Buffer
  readonly subject: string
  /** The certificate's notAfter, ISO 8601. */
  readonly validTo: string
}

/**
 * The certificate and key files to serve, read and checked (`tlsOf`); a SettingsError naming the
 * setting and the file otherwise. Settings check them so; the server loads them so at start-up.
 */
export function loadTls(certPath: string, keyPath: string): TlsFiles {
  const read = (key: Key, path: string): Buffer => {
    try {
      return readFileSync(path)
    } catch (err) {
      throw bad(key, fileReadProblem(path, err))
    }
  }
  const tls = tlsOf(certPath, read('tlsCertFile', certPath), keyPath, read('tlsKeyFile', keyPath))
  if (!tls.ok) throw bad('tlsCertFile', tls.problem)
  return tls.value
}

/**
 * The certificate (a PEM chain, the server's first) and key, checked as a TLS server would load
 * them; or the problem as one line naming the files, never their content.
 */
export function tlsOf(certPath: string, cert: Buffer, keyPath: string, key: Buffer): { ok: true; value: TlsFiles } | { ok: false; problem: string } {
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch {
    return { ok: false, problem: `${certPath} holds no PEM certificate` }
  }
  try {
    createSecureContext({ cert, key })
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'error'
    return { ok: false, problem: `${keyPath} is not the private key of ${certPath}'s certificate, or not a PEM key (${code})` }
  }
  return { ok: true, value: { cert, key, subject: x509.subject.replace(/\n/g, ', '), validTo: new Date(x509.validTo).toISOString() } }
}

/** `<host name>-<6 hex>`: unique enough for a cluster, and readable in listings. */
function generatedInstanceId(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100) || 'compactd'
  return `${host}-${randomBytes(3).toString('hex')}`
}

/** True for 127.0.0.0/8, ::1, their IPv4-mapped forms, and `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4)
}

/** A store URL fit for a log line: the password and secret-looking query values replaced by `***`. */
export function redactUrl(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return '<unparseable URL>'
  }
  if (parsed.password !== '') parsed.password = '***'
  for (const name of [...parsed.searchParams.keys()]) {
    if (/secret|password|passwd|token|key|credential|signature/i.test(name)) parsed.searchParams.set(name, '***')
  }
  return parsed.href
}

/** The settings as one structured log object: URLs redacted, the token reduced to whether it is set. */
export function loggableSettings(s: Settings): Record<string, unknown> {
  return {
    port: s.port,
    host: s.host,
    dataDir: s.dataDir,
    blob: redactUrl(s.blobUrl),
    consensus: redactUrl(s.consensusUrl),
    workers: s.workers,
    workerNice: s.workerNice,
    reuseIdleMs: s.reuseIdleMs,
    logLevel: s.logLevel,
    logFormat: s.logFormat,
    auth: s.authTokens === null ? 'off' : 'bearer',
    ...(s.authTokenFile === null ? {} : { authTokenFile: s.authTokenFile, authTokens: s.authTokens?.length ?? 0 }),
    tls: s.tlsCertFile === null ? 'off' : { cert: s.tlsCertFile, key: s.tlsKeyFile },
    bodyLimitBytes: s.bodyLimitBytes,
    shutdownGraceMs: s.shutdownGraceMs,
    shutdownDrainMs: s.shutdownDrainMs,
    sendTimeoutMs: s.sendTimeoutMs,
    gcGraceMs: s.gcGraceMs,
    metricsShardSeries: s.metricsShardSeries,
    instanceId: s.instanceId,
  }
}

function bad(key: Key, reason: string): SettingsError {
  return new SettingsError(`--${SPECS[key].flag}/${SPECS[key].env}: ${oneLine(reason)}`)
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ')
}

const FLAG_NAMES = new Set(Object.values(SPECS).map((s) => s.flag))

/** `--name value` and `--name=value`; the last occurrence wins. */
function parseFlags(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    if (!arg.startsWith('--')) throw new SettingsError(`unexpected argument ${JSON.stringify(clip(arg))}; see --help`)
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq < 0 ? undefined : eq)
    if (name === 'auth-token') {
      throw new SettingsError(`--auth-token: not accepted as a flag (it would be visible in the process list); set ${AUTH_TOKEN_ENV}`)
    }
    if (!FLAG_NAMES.has(name)) throw new SettingsError(`unknown option --${clip(name)}; see --help`)
    let value: string | undefined
    if (eq >= 0) {
      value = arg.slice(eq + 1)
    } else {
      value = argv[i + 1]
      if (value === undefined || value.startsWith('--')) throw new SettingsError(`--${name}: needs a value`)
      i++
    }
    out.set(name, value)
  }
  return out
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}

const nonEmpty = z.string().min(1, { error: 'must not be empty' })

function integerIn(min: number, max: number): z.ZodType<number> {
  const message = `must be an integer in [${min}, ${max}]`
  return z
    .string()
    .regex(/^[0-9]+$/, { error: message })
    .transform(Number)
    .pipe(z.number().int().min(min, { error: message }).max(max, { error: message }))
}

const hostSchema = z
  .string()
  .min(1, { error: 'must not be empty' })
  .regex(/^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]+|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$/, {
    error: 'must be an IP address or a host name',
  })

/** A store URL of one of `schemes` whose form the store accepts (storeUrlProblem), checked before anything is opened. */
function storeUrl(schemes: readonly string[], kind: 'blob' | 'consensus'): z.ZodType<string> {
  const message = `must be a URL with scheme ${schemes.map((s) => `${s}//`).join(', ')}`
  return z.string().superRefine((s, ctx) => {
    let protocol: string
    try {
      protocol = new URL(s).protocol
    } catch {
      protocol = ''
    }
    const problem = schemes.includes(protocol) ? storeUrlProblem(s, kind) : message
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem })
  })
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, KiB: KIB, MiB: MIB, GiB: GIB }

function byteSize(min: number, max: number): z.ZodType<number> {
  const message = `must be a byte count in [${min}, ${max}], optionally with a unit B, KiB, MiB or GiB`
  return z.string().transform((s, ctx) => {
    const m = /^([0-9]+)(B|KiB|MiB|GiB)?$/.exec(s)
    const n = m === null ? NaN : Number(m[1]) * (BYTE_UNITS[m[2] ?? ''] ?? NaN)
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message })
      return z.NEVER
    }
    return n
  })
}

const duration: z.ZodType<number> = z.string().transform((s, ctx) => {
  const parsed = parseDuration(s)
  if (!parsed.ok) {
    ctx.addIssue({ code: 'custom', message: parsed.error })
    return z.NEVER
  }
  return parsed.value
})

/**
 * The longest duration a setting that arms a timer takes (the reuse hold, the shutdown grace): a
 * day. Node cannot time more than ~24.8 days, and fires a longer timer at once; nobody needs more.
 */
const MAX_TIMER_MS = 24 * 3_600_000

/** A duration of at most `max` ms (`maxText` names it in the error). */
function durationAtMost(max: number, maxText: string): z.ZodType<number> {
  return duration.refine((ms) => ms <= max, `must be at most ${maxText}`)
}
