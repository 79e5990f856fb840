/**
 * Keeps the accepted bearer tokens in step with the token file (`COMPACTD_AUTH_TOKEN_FILE`,
 * docs/operations.md#rotating-the-token): the file is read again on SIGHUP (main.ts calls
 * `reload`) and every `intervalMs`, so a rotated secret (a Kubernetes secret volume, a file an
 * operator edits) takes effect without a restart. A file that cannot be read, or holds no valid
 * token, changes nothing: the tokens in force stay, and the problem is logged at error once until
 * the file changes. No log line carries a token.
 */
import { readFile } from 'node:fs/promises'
import { tokenFileReadProblem, tokensOfFile } from '../settings.js'
import type { BearerTokens } from './auth.js'

/** How often the file is read again when no signal asks. */
export const TOKEN_FILE_INTERVAL_MS = 30_000

export interface TokenFileLog {
  info(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** What one reading of the file did. */
export type TokenFileOutcome =
  | { readonly kind: 'replaced'; readonly tokens: number }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'refused'; readonly problem: string }

export interface TokenFileWatcherOptions {
  readonly path: string
  readonly tokens: BearerTokens
  /** The tokens `tokens` holds now (read at start-up). */
  readonly initial: readonly string[]
  readonly log: TokenFileLog
  readonly intervalMs?: number
}

export class TokenFileWatcher {
  readonly #path: string
  readonly #tokens: BearerTokens
  readonly #log: TokenFileLog
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | null = null
  /** The file's content at the last reading (null: not read since start-up, or unreadable). */
  #lastText: string | null = null
  /** The accepted tokens, sorted and joined, to tell a real change from a rewrite. */
  #inForce: string
  #lastProblem: string | null = null
  #queue: Promise<unknown> = Promise.resolve()

  constructor(opts: TokenFileWatcherOptions) {
    this.#path = opts.path
    this.#tokens = opts.tokens
    this.#log = opts.log
    this.#intervalMs = opts.intervalMs ?? TOKEN_FILE_INTERVAL_MS
    this.#inForce = keyOf(opts.initial)
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
   * Reads the file and applies it. `signal`: an operator asked, so the outcome is logged even when
   * nothing changed. Readings run one at a time, in order.
   */
  reload(reason: 'signal' | 'interval'): Promise<TokenFileOutcome> {
    const run = this.#queue.then(() => this.#read(reason))
    this.#queue = run.catch(() => undefined)
    return run
  }

  async #read(reason: 'signal' | 'interval'): Promise<TokenFileOutcome> {
    const path = this.#path
    let text: string | null = null
    let parsed: readonly string[] | string
    try {
      const bytes = await readFile(path)
      text = bytes.toString('utf8')
      if (reason === 'interval' && text === this.#lastText) return { kind: 'unchanged' }
      parsed = tokensOfFile(path, bytes)
    } catch (err) {
      parsed = tokenFileReadProblem(path, err)
    }
    this.#lastText = text
    if (typeof parsed === 'string') {
      if (reason === 'signal' || parsed !== this.#lastProblem) {
        this.#log.error({ path, reason }, `auth token file not applied, the tokens in force stay: ${parsed}`)
      }
      this.#lastProblem = parsed
      return { kind: 'refused', problem: parsed }
    }
    this.#lastProblem = null
    const key = keyOf(parsed)
    if (key === this.#inForce) {
      if (reason === 'signal') this.#log.info({ path, reason, tokens: parsed.length }, 'auth token file read again: unchanged')
      return { kind: 'unchanged' }
    }
    this.#tokens.replace(parsed)
    this.#inForce = key
    this.#log.info({ path, reason, tokens: parsed.length }, 'auth tokens replaced from the token file')
    return { kind: 'replaced', tokens: parsed.length }
  }
}

const keyOf = (tokens: readonly string[]): string => [...tokens].sort().join('\n')
