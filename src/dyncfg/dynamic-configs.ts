/**
 * The dynamic configs service: the current values of every config, persisted as one JSON document
 * per consensus version under one key, shared by every instance over that consensus.
 *
 * Reads (`snapshot`, `list`, `get`, `history`) are local and synchronous: they see the newest
 * version this instance has read, kept fresh by `update`, `refresh` and `watch`. An update is ONE
 * compare-and-set of a whole new version computed from the head by a pure transition
 * (`applyConfigPatch`), retried from the new head on mismatch, so concurrent updates from several
 * instances are all kept and a multi-key update is all or nothing.
 */
import { AppError } from '../errors.js'
import type { CasResult, Consensus, SeqNo, VersionedData } from '../location/consensus.js'
import { LocationError } from '../location/errors.js'
import {
  EMPTY_CONFIG_STATE,
  applyConfigPatch,
  changedNames,
  decodeConfigState,
  effectiveValues,
  encodeConfigState,
  parseConfigPatch,
  type ConfigChange,
  type ConfigState,
} from './config-state.js'
import {
  CONFIG_DEFS,
  DEFAULT_CONFIG_VALUES,
  configDef,
  toConfigJson,
  type ConfigDef,
  type ConfigJsonValue,
  type ConfigName,
  type ConfigType,
  type ConfigValues,
} from './registry.js'

/** A config as the API shows it: values in JSON form (durations as canonical strings). */
export interface ConfigEntry {
  readonly name: ConfigName
  readonly type: ConfigType
  readonly value: ConfigJsonValue
  readonly default: ConfigJsonValue
  readonly description: string
}

/** Called with the names whose value changed (registry order); must not throw (see `onError`). */
export type ConfigChangeListener = (names: readonly ConfigName[]) => void

export interface DynamicConfigsOptions {
  readonly consensus: Consensus
  /** Consensus key of the configs document. Default `compactd/configs`. */
  readonly key?: string
  /** Clock of the audit history. Default `() => new Date()`. */
  readonly now?: () => Date
  /** Most history entries kept (oldest dropped). Default 1000. */
  readonly historyLimit?: number
  /** Compare-and-set attempts per update before giving up with SERVICE_UNAVAILABLE. Default 16. */
  readonly maxAttempts?: number
  /** Consensus versions kept under the key after each write (≥ 1). Default 4. */
  readonly keepVersions?: number
  /**
   * Receives errors of work nobody awaits: `watch` polls, truncation after a committed write,
   * throwing listeners. Default: `process.emitWarning`.
   */
  readonly onError?: (err: unknown) => void
}

export interface DynamicConfigs {
  /** Loads the persisted values (defaults when the key has none). Idempotent; a failed start may be retried. */
  start(): Promise<void>
  /** Stops `watch` polling and waits for a poll in flight. Idempotent. Values stay readable. */
  stop(): Promise<void>
  /** A frozen, consistent set of every current value (take one per compaction, at its start). */
  snapshot(): ConfigValues
  /** Every config, in registry order. */
  list(): ConfigEntry[]
  /** One config; CONFIG_NOT_FOUND for an unknown name. */
  get(name: string): ConfigEntry
  /**
   * Validates and applies `patch` (config name → JSON value) all or nothing; returns the entries
   * whose value changed, in registry order. INVALID_CONFIG (extra field `config`) names the
   * first bad entry and its rule; nothing is written then. Values equal to the current one are
   * accepted, not recorded. STORAGE_ERROR when consensus fails; SERVICE_UNAVAILABLE when
   * concurrent writers keep winning the compare-and-set.
   */
  update(patch: Readonly<Record<string, unknown>>): Promise<ConfigEntry[]>
  /** The audit history, newest first. */
  history(): ConfigChange[]
  /** Re-reads consensus; returns (and tells listeners) the names whose value changed. */
  refresh(): Promise<ConfigName[]>
  /** Polls `refresh` every `intervalMs` (an unref'd timer) until `stop`; replaces an earlier watch. */
  watch(intervalMs: number): void
  /** Registers a listener for changed values; returns its unsubscribe function. */
  onChange(listener: ConfigChangeListener): () => void
}

export const DEFAULT_CONFIGS_KEY = 'compactd/configs'

export function createDynamicConfigs(opts: DynamicConfigsOptions): DynamicConfigs {
  return new ConsensusDynamicConfigs(opts)
}

class ConsensusDynamicConfigs implements DynamicConfigs {
  readonly #consensus: Consensus
  readonly #key: string
  readonly #now: () => Date
  readonly #historyLimit: number
  readonly #maxAttempts: number
  readonly #keepVersions: number
  readonly #onError: (err: unknown) => void
  readonly #listeners = new Set<ConfigChangeListener>()

  #started = false
  #starting: Promise<void> | null = null
  /** Seqno of the version the local view holds; null while the key has none. */
  #seqno: SeqNo | null = null
  #state: ConfigState = EMPTY_CONFIG_STATE
  #values: ConfigValues = DEFAULT_CONFIG_VALUES
  #timer: NodeJS.Timeout | null = null
  #poll: Promise<void> | null = null

  constructor(opts: DynamicConfigsOptions) {
    this.#consensus = opts.consensus
    this.#key = opts.key ?? DEFAULT_CONFIGS_KEY
    this.#now = opts.now ?? (() => new Date())
    this.#historyLimit = nonNegativeInteger('historyLimit', opts.historyLimit ?? 1000)
    this.#maxAttempts = Math.max(1, nonNegativeInteger('maxAttempts', opts.maxAttempts ?? 16))
    this.#keepVersions = Math.max(1, nonNegativeInteger('keepVersions', opts.keepVersions ?? 4))
    this.#onError = opts.onError ?? defaultOnError
  }

  start(): Promise<void> {
    this.#starting ??= this.refresh().then(
      () => {
        this.#started = true
      },
      (err: unknown) => {
        this.#starting = null
        throw err
      },
    )
    return this.#starting
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#poll
  }

  snapshot(): ConfigValues {
    this.#requireStarted()
    return this.#values
  }

  list(): ConfigEntry[] {
    this.#requireStarted()
    return CONFIG_DEFS.map((def) => toEntry(def, this.#values))
  }

  get(name: string): ConfigEntry {
    this.#requireStarted()
    const def = configDef(name)
    if (def === undefined) throw new AppError('CONFIG_NOT_FOUND', `config "${name}" does not exist`, { config: name })
    return toEntry(def, this.#values)
  }

  history(): ConfigChange[] {
    this.#requireStarted()
    return [...this.#state.history]
  }

  async update(patch: Readonly<Record<string, unknown>>): Promise<ConfigEntry[]> {
    this.#requireStarted()
    const entries = parseConfigPatch(patch)
    let head = await this.#head()
    for (let attempt = 1; ; attempt++) {
      const base = this.#decode(head)
      const { state, changes } = applyConfigPatch(base, entries, {
        at: this.#now().toISOString(),
        historyLimit: this.#historyLimit,
      })
      if (changes.length === 0) {
        this.#adopt(head?.seqno ?? null, base)
        return []
      }
      const written: VersionedData = { seqno: head === null ? 0 : head.seqno + 1, data: encodeConfigState(state) }
      const result = await this.#compareAndSet(head?.seqno ?? null, written)
      if (result.kind === 'committed') {
        this.#adopt(written.seqno, state)
        await this.#truncateBelow(written.seqno)
        const values = effectiveValues(state)
        return changes.map((c) => toEntry(configDef(c.name) as ConfigDef, values))
      }
      if (attempt >= this.#maxAttempts) {
        throw new AppError(
          'SERVICE_UNAVAILABLE',
          `the configs update lost ${attempt} compare-and-set races to concurrent writers; nothing was applied, retry it`,
        )
      }
      head = result.current
    }
  }

  async refresh(): Promise<ConfigName[]> {
    const head = await this.#head()
    return this.#adopt(head?.seqno ?? null, this.#decode(head))
  }

  watch(intervalMs: number): void {
    if (!Number.isSafeInteger(intervalMs) || intervalMs < 1) {
      throw new RangeError(`watch interval must be a positive integer of milliseconds, got ${intervalMs}`)
    }
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = setInterval(() => {
      if (this.#poll !== null) return
      this.#poll = this.refresh()
        .then(
          () => undefined,
          (err: unknown) => this.#onError(err),
        )
        .finally(() => {
          this.#poll = null
        })
    }, intervalMs)
    this.#timer.unref()
  }

  onChange(listener: ConfigChangeListener): () => void {
    // Wrap so the same function registered twice is called twice and unsubscribes independently.
    const entry: ConfigChangeListener = (names) => listener(names)
    this.#listeners.add(entry)
    return () => {
      this.#listeners.delete(entry)
    }
  }

  #requireStarted(): void {
    // NB: reading before start would silently serve defaults (e.g. ignore a persisted kill switch).
    if (!this.#started) throw new Error('dynamic configs are not started: await start() first')
  }

  /**
   * Makes `state` (the version at `seqno`) the local view if it is newer than the current one, and
   * tells listeners what changed. Older or equal versions are ignored, so a slow read never rolls
   * the view back.
   */
  #adopt(seqno: SeqNo | null, state: ConfigState): ConfigName[] {
    if (seqno === null || (this.#seqno !== null && seqno <= this.#seqno)) return []
    const before = this.#values
    this.#seqno = seqno
    this.#state = state
    this.#values = effectiveValues(state)
    const names = changedNames(before, this.#values)
    if (names.length > 0) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(names)
        } catch (err) {
          this.#onError(err)
        }
      }
    }
    return names
  }

  #decode(version: VersionedData | null): ConfigState {
    if (version === null) return EMPTY_CONFIG_STATE
    try {
      return decodeConfigState(version.data)
    } catch (err) {
      throw new AppError('INTERNAL', `configs version ${version.seqno} under "${this.#key}": ${(err as Error).message}`, {}, { cause: err })
    }
  }

  async #head(): Promise<VersionedData | null> {
    try {
      return await this.#consensus.head(this.#key)
    } catch (err) {
      throw this.#storageError('read', err)
    }
  }

  /**
   * A compare-and-set whose indeterminate failure is resolved by re-reading: committed iff the
   * version at our seqno holds exactly our bytes.
   * NB: a write that is still in flight after the re-read may land later; the retry then loses its
   * compare-and-set to it, re-reads, finds the values already set and reports no change.
   */
  async #compareAndSet(expected: SeqNo | null, data: VersionedData): Promise<CasResult> {
    try {
      return await this.#consensus.compareAndSet(this.#key, expected, data)
    } catch (err) {
      if (!(err instanceof LocationError) || err.kind !== 'indeterminate') throw this.#storageError('write', err)
      let found: VersionedData | undefined
      try {
        ;[found] = await this.#consensus.scan(this.#key, data.seqno, 1)
      } catch (scanErr) {
        throw this.#storageError('write', scanErr, true)
      }
      if (found === undefined) return { kind: 'mismatch', current: await this.#head() }
      if (found.seqno === data.seqno) {
        return bytesEqual(found.data, data.data) ? { kind: 'committed' } : { kind: 'mismatch', current: await this.#head() }
      }
      // Our seqno was already truncated away by later writers: whether it was ours is unknowable.
      throw this.#storageError('write', err, true)
    }
  }

  /** Best effort: a failure only leaves old versions behind, which the next write truncates. */
  async #truncateBelow(seqno: SeqNo): Promise<void> {
    const below = seqno - this.#keepVersions + 1
    if (below <= 0) return
    try {
      await this.#consensus.truncate(this.#key, below)
    } catch (err) {
      this.#onError(err)
    }
  }

  #storageError(op: 'read' | 'write', err: unknown, mayHaveApplied = false): unknown {
    if (!(err instanceof LocationError)) return err
    const maybe = mayHaveApplied || (op === 'write' && err.kind === 'indeterminate')
    const message = maybe
      ? `the configs update may or may not have been applied (consensus failed and re-reading could not tell): ${err.message}`
      : `consensus ${op} of "${this.#key}" failed: ${err.message}`
    if (!maybe && err.noSpace) return new AppError('INSUFFICIENT_STORAGE', `consensus has no space left to ${op} the configs; nothing was changed`, {}, { cause: err })
    return new AppError('STORAGE_ERROR', message, {}, { cause: err })
  }
}

function toEntry(def: ConfigDef, values: ConfigValues): ConfigEntry {
  return {
    name: def.name,
    type: def.type,
    value: toConfigJson(def.name, values[def.name]),
    default: toConfigJson(def.name, def.default),
    description: def.description,
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function nonNegativeInteger(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer, got ${n}`)
  return n
}

function defaultOnError(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : new Error(String(err)), { code: 'COMPACTD_DYNCFG' })
}
