/**
 * Files the server reads again while it runs: the auth token file and the TLS certificate and key
 * (docs/operations.md#rotating-the-token, #tls). They are read again on SIGHUP (main.ts calls
 * `reload`) and every `intervalMs`, so a rotated secret (a Kubernetes secret volume, a renewed
 * certificate, a file an operator edits) takes effect without a restart. Files that cannot be
 * read, or do not parse, change nothing: what is in force stays, and the problem is logged at
 * error once until the files change. No log line carries the files' content.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { SecureContextOptions } from 'node:tls'
import type { Gauge } from 'prom-client'
import { fileReadProblem, tlsOf, tokensOfFile, type TlsFiles } from '../settings.js'
import type { BearerTokens } from './auth.js'

/** How often the files are read again when no signal asks. */
export const RELOAD_INTERVAL_MS = 30_000

/** Largest file read: secrets and certificate chains are a few KiB; anything near this is not one. */
export const MAX_WATCHED_FILE_BYTES = 256 * 1024

export interface WatchLog {
  info(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** The value some files' bytes give, or the problem with them as one line (never their content). */
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string }

/** What one reading of the files did. */
export type ReloadOutcome = { readonly kind: 'applied' } | { readonly kind: 'unchanged' } | { readonly kind: 'refused'; readonly problem: string }

export interface WatchedFilesOptions<T> {
  /** What they are, as log lines name it: `auth token file`, `TLS certificate`. */
  readonly what: string
  readonly paths: readonly string[]
  readonly parse: (contents: readonly Buffer[]) => Parsed<T>
  readonly apply: (value: T) => void
  /** Equal for values that mean the same (tokens in another order): no change to apply. */
  readonly identity: (value: T) => string
  /** Fields a log line may show about a value (a count, an expiry), never the value. */
  readonly describe: (value: T) => object
  /** The value in force now (read at start-up). */
  readonly initial: T
  readonly log: WatchLog
  readonly intervalMs?: number
}

/** The files' bytes, or why they could not be read, as one line naming the file. */
export async function readWatched(paths: readonly string[]): Promise<Parsed<Buffer[]>> {
  const out: Buffer[] = []
  for (const path of paths) {
    try {
      const bytes = await readFile(path)
      if (bytes.length > MAX_WATCHED_FILE_BYTES) return { ok: false, problem: `${path} is larger than ${MAX_WATCHED_FILE_BYTES / 1024} KiB` }
      out.push(bytes)
    } catch (err) {
      return { ok: false, problem: fileReadProblem(path, err) }
    }
  }
  return { ok: true, value: out }
}

/** What the process does with watched files, whatever they hold. */
export type Watch = Pick<WatchedFiles<unknown>, 'start' | 'stop' | 'reload'>

export class WatchedFiles<T> {
  readonly #opts: WatchedFilesOptions<T>
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | null = null
  /** A digest of the files at the last reading (null: not read since start-up, or unreadable). */
  #lastDigest: string | null = null
  #inForce: string
  #lastProblem: string | null = null
  #queue: Promise<unknown> = Promise.resolve()

  constructor(opts: WatchedFilesOptions<T>) {
    this.#opts = opts
    this.#intervalMs = opts.intervalMs ?? RELOAD_INTERVAL_MS
    this.#inForce = opts.identity(opts.initial)
  }

  /** Starts the periodic reading (the timer does not keep the process alive). */
  start(): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => void this.reload('interval'), this.#intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }

  /**
   * Reads the files and applies them. `signal`: an operator asked, so the outcome is logged even
   * when nothing changed. Readings run one at a time, in order.
   */
  reload(reason: 'signal' | 'interval'): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#read(reason))
    this.#queue = run.catch(() => undefined)
    return run
  }

  async #read(reason: 'signal' | 'interval'): Promise<ReloadOutcome> {
    const { what, paths, log } = this.#opts
    const read = await readWatched(paths)
    let parsed: Parsed<T>
    if (read.ok) {
      const digest = read.value.reduce((h, b) => h.update(b).update('\0'), createHash('sha256')).digest('hex')
      if (reason === 'interval' && digest === this.#lastDigest) return { kind: 'unchanged' }
      this.#lastDigest = digest
      parsed = this.#opts.parse(read.value)
    } else {
      this.#lastDigest = null
      parsed = read
    }
    if (!parsed.ok) {
      if (reason === 'signal' || parsed.problem !== this.#lastProblem) log.error({ paths, reason }, `${what} not applied, the one in force stays: ${parsed.problem}`)
      this.#lastProblem = parsed.problem
      return { kind: 'refused', problem: parsed.problem }
    }
    this.#lastProblem = null
    const identity = this.#opts.identity(parsed.value)
    if (identity === this.#inForce) {
      if (reason === 'signal') log.info({ paths, reason, ...this.#opts.describe(parsed.value) }, `${what} read again: unchanged`)
      return { kind: 'unchanged' }
    }
    this.#opts.apply(parsed.value)
    this.#inForce = identity
    log.info({ paths, reason, ...this.#opts.describe(parsed.value) }, `${what} applied`)
    return { kind: 'applied' }
  }
}

/** The token file: its tokens replace the accepted ones whole; reordering them changes nothing. */
export function tokenFileWatch(opts: { path: string; tokens: BearerTokens; initial: readonly string[]; log: WatchLog; intervalMs?: number }): WatchedFiles<readonly string[]> {
  const { path, tokens } = opts
  return new WatchedFiles<readonly string[]>({
    what: 'auth token file',
    paths: [path],
    parse: ([bytes]) => {
      const parsed = tokensOfFile(path, bytes!)
      return typeof parsed === 'string' ? { ok: false, problem: parsed } : { ok: true, value: parsed }
    },
    apply: (value) => tokens.replace(value),
    identity: (value) => [...value].sort().join('\n'),
    describe: (value) => ({ tokens: value.length }),
    initial: opts.initial,
    log: opts.log,
    ...(opts.intervalMs === undefined ? {} : { intervalMs: opts.intervalMs }),
  })
}

/**
 * `compactd_tls_certificate_expiry_timestamp_seconds` shows the certificate served to new
 * connections: one series, of its subject (a renewal under another subject replaces it).
 */
export function showCertificate(expiry: Gauge<'subject'>, tls: Pick<TlsFiles, 'subject' | 'validTo'>): void {
  expiry.reset()
  expiry.set({ subject: tls.subject }, Date.parse(tls.validTo) / 1000)
}

/** Why a certificate is past serving: it ended at or before `now` (ms); null while it is valid. */
export function expiredProblem(certPath: string, tls: Pick<TlsFiles, 'validTo'>, now: number): string | null {
  return Date.parse(tls.validTo) <= now ? `${certPath}'s certificate expired on ${tls.validTo}` : null
}

/**
 * The TLS certificate and key: new connections are served the new pair (old ones keep theirs), and
 * `expiry` shows its notAfter. A pair whose certificate has already ended (an old file copied back,
 * a renewal tool that wrote the previous certificate) is refused like a mismatched one: every
 * client would refuse it, while the one in force may still be good.
 */
export function tlsWatch(opts: {
  certPath: string
  keyPath: string
  server: { setSecureContext(options: SecureContextOptions): void }
  expiry: Gauge<'subject'>
  initial: TlsFiles
  log: WatchLog
  intervalMs?: number
  /** The clock expiry is judged by (tests). */
  now?: () => number
}): WatchedFiles<TlsFiles> {
  const { certPath, keyPath, server, expiry } = opts
  const now = opts.now ?? Date.now
  return new WatchedFiles<TlsFiles>({
    what: 'TLS certificate',
    paths: [certPath, keyPath],
    parse: ([cert, key]) => {
      const parsed = tlsOf(certPath, cert!, keyPath, key!)
      const expired = parsed.ok ? expiredProblem(certPath, parsed.value, now()) : null
      return expired === null ? parsed : { ok: false, problem: expired }
    },
    apply: (value) => {
      server.setSecureContext({ cert: value.cert, key: value.key })
      showCertificate(expiry, value)
    },
    identity: (value) => createHash('sha256').update(value.cert).update('\0').update(value.key).digest('hex'),
    describe: (value) => ({ subject: value.subject, validTo: value.validTo }),
    initial: opts.initial,
    log: opts.log,
    ...(opts.intervalMs === undefined ? {} : { intervalMs: opts.intervalMs }),
  })
}
