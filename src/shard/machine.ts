/**
 * The machine: every change to a shard's state is a pure transition committed by one
 * compare-and-set loop over consensus (persist's Machine → Applier → StateVersions, collapsed).
 *
 * Each command carries a random id that is stored in the version it writes. After a mismatch or an
 * indeterminate error the machine scans the versions written since it read, and if one carries its
 * id, that attempt committed and its result is returned. This is exact where persist's "ever
 * applied" rule (docs/concepts.md#shard-state-and-compare-and-set) is conservative: the machine never reports "not
 * applied" for a write that a committed state holds, so callers never delete referenced blobs.
 * If it cannot find out (the store keeps failing), it throws an indeterminate LocationError and
 * callers must leave blobs alone.
 *
 * Versions are deltas (persist's diffs and rollups, in our form): when the codec writes deltas, a
 * version is the state with what it shares with the version before by reference, and a version is
 * whole when the deltas since the last whole one would outweigh it, or `DELTA_CHAIN` versions after
 * it. A delta is read against the cached state of the version before
 * or, failing that, through its chain from the whole version its envelope names (`rollup`); GC
 * truncates no version of a chain a kept version needs (`truncationFloor`). Truncation elsewhere
 * racing a head read makes the read try the newer head.
 *
 * A build from before deltas reads whole versions only. Deltas are written only while
 * `MachineOptions.writeDeltas` says so (services.ts: the dynamic config and every live instance
 * reading them); otherwise every version is whole, and `writeWhole` writes a latest version that is
 * a delta again whole (GC does, shard by shard), so that such a build can read the shard again.
 */
import { randomUUID } from 'node:crypto'
import { jsonFieldsThen } from '../core/json-splice.js'
import { setNewest } from '../core/newest-map.js'
import type { Consensus, SeqNo, VersionedData } from '../location/consensus.js'
import { errorMessage, indeterminate, LocationError, permanent } from '../location/errors.js'

/** A transition's verdict: write `state` and return `result`, or write nothing and return `result`. */
export type Transition<S, R> = { readonly kind: 'continue'; readonly state: S; readonly result: R } | { readonly kind: 'break'; readonly result: R }

export const continueWith = <S, R>(state: S, result: R): Transition<S, R> => ({ kind: 'continue', state, result })
export const breakWith = <R>(result: R): Transition<never, R> => ({ kind: 'break', result })

export interface StateCodec<S> {
  encode(state: S): unknown
  /** The UTF-8 of `JSON.stringify(encode(state))` in pieces, when the codec has a cheaper way to it. */
  encodeBytes?(state: S): readonly Uint8Array[]
  decode(json: unknown): S
  /**
   * The UTF-8 JSON of `state` as a delta against `base`, the state of the version before (what it
   * shares with `base` by reference), or null to write this state whole. Without it every version
   * is whole.
   */
  deltaBytes?(state: S, base: S): readonly Uint8Array[] | null
  /** The state a delta `deltaBytes` wrote against `base` stands for. */
  decodeDelta?(json: unknown, base: S): S
}

export interface Versioned<S> {
  readonly seqno: SeqNo
  readonly state: S
}

/** Optional counters, by command name (persist's `cmd_*`). */
export interface CmdMetrics {
  started(cmd: string): void
  succeeded(cmd: string, seconds: number): void
  failed(cmd: string, seconds: number): void
  casMismatch(cmd: string): void
}

export interface MachineOptions {
  /** Attempts before giving up on a contended key (each mismatch costs one). */
  readonly maxAttempts?: number
  readonly metrics?: CmdMetrics
  /** Most keys whose latest state is kept (default CACHED_KEYS). */
  readonly cachedKeys?: number
  /** Whether a version may be written as a delta now (asked at each write; default always). */
  readonly writeDeltas?: () => boolean
}

/**
 * Default of `MachineOptions.cachedKeys`. Keys come and go with shards (and names) created over
 * HTTP, so the cache keeps the most recently used ones only: one left out costs its next command a
 * head read.
 */
export const CACHED_KEYS = 1024

/**
 * Versions written as deltas after a whole one, at most (`StateCodec.deltaBytes`): the next is
 * written whole again. A head read from consensus costs at most this many versions read (one of
 * them whole), and a write of a long trace costs its changes, with a whole state every this many.
 * Before that, a chain ends when its deltas (bytes and reads) would outweigh the whole version it
 * starts at (see `#envelopeBytes`): a small state's deltas cost nearly what it does to read, and
 * reading a long chain of them back costs a read per version for little saved.
 */
export const DELTA_CHAIN = 64

/** The envelope versions this build reads (`Envelope`'s `v`): what an instance advertises to the others. */
export const STATE_FORMATS: readonly number[] = Object.freeze([1, 2])

/**
 * What reading one more version of a chain costs beyond its bytes, in bytes of state decoded for
 * the same effort: on a file store a version is a file (open, stat, read, close), several KB of
 * JSON parsed in the time. Counted per delta when a chain is weighed against its whole version.
 */
export const VERSION_READ_BYTES = 4096

/**
 * A version as stored: `v: 1` holds the whole state; `v: 2` a delta against the version before,
 * whose chain of deltas starts at the whole version `rollup`.
 */
type Envelope =
  | { readonly v: 1; readonly cmd: string; readonly commandId: string; readonly state: unknown }
  | { readonly v: 2; readonly cmd: string; readonly commandId: string; readonly rollup: SeqNo; readonly state: unknown }

/** A decoded version and the whole version its chain starts at (itself when whole). */
interface Held<S> extends Versioned<S> {
  readonly rollup: SeqNo
  /** Bytes of that whole version as stored. */
  readonly rollupBytes: number
  /** Bytes of the deltas after it, up to and including this version (0 when it is whole). */
  readonly chainBytes: number
}

/** `v`, read as a whole version. */
function whole<S>(v: VersionedData, state: S): Held<S> {
  return { seqno: v.seqno, state, rollup: v.seqno, rollupBytes: v.data.byteLength, chainBytes: 0 }
}

/** `v`, a delta against `prev` (the version before it) whose chain starts at `rollup`, read. */
function deltaAfter<S>(v: VersionedData, state: S, prev: Held<S>, rollup: SeqNo): Held<S> {
  return { seqno: v.seqno, state, rollup, rollupBytes: prev.rollupBytes, chainBytes: prev.chainBytes + v.data.byteLength }
}

/** A version could not be read because the versions it is written against were truncated meanwhile. */
class ChainTruncated extends Error {}

export class Machine<S> {
  readonly #consensus: Consensus
  readonly #codec: StateCodec<S>
  readonly #maxAttempts: number
  readonly #metrics: CmdMetrics | undefined
  /**
   * Latest version seen per key, least recently stored first: saves a head read per command when
   * this process is the writer. At most `#cachedKeys` keys.
   */
  readonly #cache = new Map<string, Held<S>>()
  /** Per key, the end of the last command queued: this process's commands on a key run one at a time. */
  readonly #tails = new Map<string, Promise<void>>()
  readonly #cachedKeys: number
  readonly #writeDeltas: () => boolean

  constructor(consensus: Consensus, codec: StateCodec<S>, opts: MachineOptions = {}) {
    this.#consensus = consensus
    this.#codec = codec
    this.#maxAttempts = opts.maxAttempts ?? 64
    this.#metrics = opts.metrics
    this.#cachedKeys = opts.cachedKeys ?? CACHED_KEYS
    this.#writeDeltas = opts.writeDeltas ?? (() => true)
  }

  /** Whether versions written now may be deltas (`MachineOptions.writeDeltas`; the codec must write them too). */
  get writesDeltas(): boolean {
    return this.#codec.deltaBytes !== undefined && this.#writeDeltas()
  }

  /** Whether `v`, a version this machine handed out, was written as a delta. */
  isDelta(key: string, v: Versioned<S>): boolean {
    const held = this.#heldOf(key, v)
    return held !== null && held.rollup < held.seqno
  }

  /**
   * Writes the latest state of `key` again, whole, when it is a delta and deltas are not written
   * now (`writesDeltas`), so that a build reading whole versions only can read it. True when it wrote.
   */
  async writeWhole(key: string): Promise<boolean> {
    if (this.writesDeltas) return false
    const r = await this.apply(key, 'write_whole', (cur) => (cur === null || !this.isDelta(key, cur) ? breakWith(false) : continueWith(cur.state, true)))
    return r.result
  }

  /** Keys whose state is cached now (for tests). */
  get cachedKeys(): number {
    return this.#cache.size
  }

  /** The seqno of the latest version of `key` this machine saw, if it still remembers it. */
  cachedSeqno(key: string): SeqNo | null {
    return this.#cache.get(key)?.seqno ?? null
  }

  /**
   * The latest committed state, read from consensus (refreshes the cache). A head whose seqno is
   * the cached one's is that very version (a seqno is written once): the cached state is returned
   * and the head is not decoded again. NB: decoding parses and checks the whole trace, which grows
   * with every batch; a writer reads the head before each write.
   */
  async head(key: string): Promise<Versioned<S> | null> {
    for (let attempt = 1; ; attempt++) {
      const head = await this.#consensus.head(key)
      if (head === null) {
        this.#cache.delete(key)
        return null
      }
      const cached = this.#cache.get(key)
      if (cached?.seqno === head.seqno) return cached
      try {
        return await this.#remember(key, head)
      } catch (err) {
        // NB: GC truncated the chain the head read is written against: a newer head is not.
        if (!(err instanceof ChainTruncated) || attempt >= 8) throw err
      }
    }
  }

  /**
   * The seqno below which versions of `key` may be truncated, at most `below`, so that every version
   * from `below` on can still be read: the whole version that version `below` is written against.
   */
  async truncationFloor(key: string, below: SeqNo): Promise<SeqNo> {
    if (below <= 0) return below
    const cached = this.#cache.get(key)
    if (cached?.seqno === below) return cached.rollup
    const [v] = await this.#consensus.scan(key, below, 1)
    if (v === undefined || v.seqno !== below) return below
    const env = envelopeHead(key, v)
    return env.v === 2 && env.rollup !== undefined ? Math.min(below, env.rollup) : below
  }

  /**
   * Applies `transition` to the latest state of `key` (null when the key has none) and commits it.
   * The transition must be pure: it may run several times, against newer states each time.
   *
   * NB: this process's commands on one key run one at a time, in the order they came (on a hot
   * shard: appends, compaction results and claims, since moves, reader leases). Run at once, they
   * all computed on the same head and raced for its next seqno, which one wins per round: among
   * k racers a command wins a round with chance 1/k, so a compaction's claim behind a crowd of
   * appends could spend the attempt cap losing to its own process. Queued, each starts from the
   * state the one before it committed and races only other processes.
   */
  async apply<R>(key: string, cmd: string, transition: (current: Versioned<S> | null) => Transition<S, R>): Promise<{ result: R; seqno: SeqNo; state: S | null }> {
    const before = this.#tails.get(key)
    let done = (): void => undefined
    const tail = new Promise<void>((resolve) => (done = resolve))
    this.#tails.set(key, tail)
    try {
      await before
      return await this.#apply(key, cmd, transition)
    } finally {
      done()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }

  async #apply<R>(key: string, cmd: string, transition: (current: Versioned<S> | null) => Transition<S, R>): Promise<{ result: R; seqno: SeqNo; state: S | null }> {
    const commandId = randomUUID()
    const started = performance.now()
    this.#metrics?.started(cmd)
    try {
      const cached = this.#cache.get(key)
      // NB: a cached state may be stale (another instance may have written since). A write based
      // on it fails its compare-and-set and retries, but a decision to write nothing must be made
      // on a fresh read.
      let fresh = cached === undefined
      let current: Versioned<S> | null = cached ?? (await this.head(key))
      /** Whether an earlier attempt's write may have landed unseen: then no failure is determinate. */
      let uncertain = false
      for (let attempt = 1; ; attempt++) {
        const t = transition(current)
        if (t.kind === 'break' && !fresh) {
          current = await this.head(key)
          fresh = true
          continue
        }
        if (t.kind === 'break') {
          this.#metrics?.succeeded(cmd, (performance.now() - started) / 1000)
          return { result: t.result, seqno: current?.seqno ?? -1, state: current?.state ?? null }
        }
        const seqno = current === null ? 0 : current.seqno + 1
        const { data, held } = this.#envelopeBytes(cmd, commandId, t.state, current === null ? null : this.#heldOf(key, current), seqno)
        let outcome: 'committed' | 'mismatch' | 'unknown'
        /** On a mismatch, the head the store found instead of the one we read. */
        let found: VersionedData | null = null
        try {
          const res = await this.#consensus.compareAndSet(key, current?.seqno ?? null, { seqno, data })
          outcome = res.kind
          if (res.kind === 'mismatch') found = res.current
        } catch (err) {
          if (!(err instanceof LocationError)) throw err
          // NB: callers take a determinate error as "nothing of this command landed" (and delete
          // the blobs it would reference), which only holds if no earlier attempt was in doubt.
          if (err.kind === 'determinate' && uncertain) throw indeterminate(`${cmd}: an earlier write to ${key} may have committed: ${err.message}`, err)
          if (err.kind === 'determinate') throw err
          outcome = 'unknown'
          uncertain = true
        }
        if (outcome === 'committed') {
          this.#store(key, held)
          this.#metrics?.succeeded(cmd, (performance.now() - started) / 1000)
          return { result: t.result, seqno, state: t.state }
        }
        if (outcome === 'mismatch') this.#metrics?.casMismatch(cmd)
        // NB: our write may still have landed when an attempt's outcome was unknown (this one, or
        // an earlier one's delayed write): look for our command id in every version after the one
        // we read. A mismatch with nothing in doubt is exact (the store wrote nothing of ours), and
        // the head it found is the state to retry on: no scan, no head read. Under contention every
        // round trip here widens the window in which the next attempt loses again.
        if (uncertain) {
          const landed = await this.#findCommand(key, current?.seqno ?? -1, commandId)
          if (landed !== null) {
            this.#metrics?.succeeded(cmd, (performance.now() - started) / 1000)
            // The state that carries our id is the one our transition produced from `landed.base`,
            // which may be an earlier attempt's: recompute the result against that base.
            return { result: landed.result(transition), seqno: landed.seqno, state: landed.state }
          }
        }
        if (attempt >= this.#maxAttempts) {
          throw outcome === 'unknown'
            ? indeterminate(`${cmd}: could not learn whether the write to ${key} committed`)
            : new LocationError('determinate', `${cmd}: gave up on ${key} after ${attempt} compare-and-set mismatches`)
        }
        current = uncertain || found === null ? await this.head(key) : await this.#rememberOrHead(key, found)
        fresh = true
        if (attempt > 4) await backoff(attempt)
      }
    } catch (err) {
      this.#metrics?.failed(cmd, (performance.now() - started) / 1000)
      throw err
    }
  }

  /**
   * The committed states of `key` with seqnos in `[from, to)`, oldest first; versions already
   * truncated away are absent. Reads `pageSize` versions at a time.
   */
  async states(key: string, from: SeqNo, to: SeqNo, pageSize = 64): Promise<Versioned<S>[]> {
    const out: Held<S>[] = []
    let next = from
    while (next < to) {
      const versions = await this.#consensus.scan(key, next, Math.min(pageSize, to - next))
      for (const v of versions) if (v.seqno < to) out.push(await this.#decode(key, v, out[out.length - 1] ?? null))
      const last = versions[versions.length - 1]
      if (last === undefined || versions.length < Math.min(pageSize, to - next)) break
      next = last.seqno + 1
    }
    return out
  }

  /** Forgets cached state (after a failure whose effect is unknown, or in tests). */
  forget(key: string): void {
    this.#cache.delete(key)
  }

  /** Scans versions after `afterSeqno` for one written by `commandId`. */
  async #findCommand(key: string, afterSeqno: SeqNo, commandId: string): Promise<{
    seqno: SeqNo
    state: S
    result: <R>(transition: (current: Versioned<S> | null) => Transition<S, R>) => R
  } | null> {
    let from = afterSeqno + 1
    let previous: Held<S> | null = null
    for (let page = 0; page < 1000; page++) {
      const versions = await this.#consensus.scan(key, Math.max(0, from - 1), 64)
      if (versions.length === 0) return null
      for (const v of versions) {
        const env = envelopeHead(key, v)
        const decoded = await this.#decode(key, v, previous)
        if (v.seqno >= from && env.commandId === commandId) {
          const base = previous
          this.#store(key, decoded)
          return {
            seqno: v.seqno,
            state: decoded.state,
            result: (transition) => {
              const t = transition(base)
              return t.result
            },
          }
        }
        previous = decoded
      }
      const last = versions[versions.length - 1] as VersionedData
      if (versions.length < 64) return null
      from = last.seqno + 1
    }
    return null
  }

  /**
   * The bytes of version `seqno` holding `state`: an `Envelope`'s JSON, and the version as this
   * machine then holds it. A delta against `base` (the version before) while the codec writes
   * deltas, the chain since the last whole version is shorter than `DELTA_CHAIN`, and its deltas,
   * this one included, weigh no more than that whole version (each counted with
   * `VERSION_READ_BYTES` for its read); else the whole state (by the codec's `encodeBytes` when it
   * has one). So a head read from consensus costs at most about twice the reading of a whole
   * version: a small state is written whole every few versions (its deltas, read one by one,
   * cost nearly what it does), a long trace's every `DELTA_CHAIN`.
   */
  #envelopeBytes(cmd: string, commandId: string, state: S, base: Held<S> | null, seqno: SeqNo): { data: Buffer; held: Held<S> } {
    if (base !== null && base.seqno === seqno - 1 && seqno - base.rollup < DELTA_CHAIN && this.#writeDeltas()) {
      const delta = this.#codec.deltaBytes?.(state, base.state) ?? null
      if (delta !== null) {
        const head = jsonFieldsThen({ v: 2, cmd, commandId, rollup: base.rollup }, 'state')
        const data = Buffer.concat([Buffer.from(head), ...delta, Buffer.from('}')])
        const reads = seqno - base.rollup
        if (base.chainBytes + data.byteLength + reads * VERSION_READ_BYTES <= base.rollupBytes) return { data, held: deltaAfter({ seqno, data }, state, base, base.rollup) }
      }
    }
    const head = jsonFieldsThen({ v: 1, cmd, commandId }, 'state')
    const stateBytes = this.#codec.encodeBytes?.(state) ?? [Buffer.from(JSON.stringify(this.#codec.encode(state)))]
    const data = Buffer.concat([Buffer.from(head), ...stateBytes, Buffer.from('}')])
    return { data, held: whole({ seqno, data }, state) }
  }

  /** `current` with the whole version its chain starts at (the cache knows it for what it handed out). */
  #heldOf(key: string, current: Versioned<S>): Held<S> | null {
    const cached = this.#cache.get(key)
    if (cached !== undefined && cached.seqno === current.seqno && cached.state === current.state) return cached
    return 'rollup' in current ? (current as Held<S>) : null
  }

  /**
   * The state of version `v`: whole, a delta against `before` when that is the version before it,
   * or else a delta read through its chain from the whole version it starts at.
   */
  async #decode(key: string, v: VersionedData, before: Held<S> | null): Promise<Held<S>> {
    const env = parseEnvelope(key, v)
    if (env.v === 1) return whole(v, this.#codec.decode(env.state))
    const cached = this.#cache.get(key)
    const prev = before?.seqno === v.seqno - 1 ? before : cached?.seqno === v.seqno - 1 ? cached : await this.#chain(key, env.rollup, v.seqno)
    return deltaAfter(v, this.#delta(v, env.state, prev.state), prev, env.rollup)
  }

  /** The state of the version before `seqno`, read through the chain from the whole version `rollup`. */
  async #chain(key: string, rollup: SeqNo, seqno: SeqNo): Promise<Held<S>> {
    let cur: Held<S> | null = null
    for (let next = rollup; next < seqno; ) {
      const versions = await this.#consensus.scan(key, next, Math.min(64, seqno - next))
      if (versions.length === 0) break
      for (const v of versions) {
        if (v.seqno >= seqno) break
        if (cur === null && v.seqno !== rollup) break
        const env = parseEnvelope(key, v)
        cur = env.v === 1 ? whole(v, this.#codec.decode(env.state)) : cur === null || cur.seqno !== v.seqno - 1 ? null : deltaAfter(v, this.#delta(v, env.state, cur.state), cur, env.rollup)
        if (cur === null) break
      }
      if (cur === null) break
      next = (versions[versions.length - 1] as VersionedData).seqno + 1
    }
    if (cur === null || cur.seqno !== seqno - 1) throw new ChainTruncated(`state version ${seqno} of ${key} is written against version ${rollup}, which is no longer stored`)
    return cur
  }

  #delta(v: VersionedData, json: unknown, base: S): S {
    if (this.#codec.decodeDelta === undefined) throw new Error(`state version ${v.seqno} is a delta, which this state's codec does not read`)
    return this.#codec.decodeDelta(json, base)
  }

  async #remember(key: string, v: VersionedData): Promise<Held<S>> {
    const out = await this.#decode(key, v, null)
    this.#store(key, out)
    return out
  }

  /** The head a compare-and-set found instead of ours; read again when its chain was truncated meanwhile. */
  async #rememberOrHead(key: string, v: VersionedData): Promise<Versioned<S> | null> {
    try {
      return await this.#remember(key, v)
    } catch (err) {
      if (err instanceof ChainTruncated) return this.head(key)
      throw err
    }
  }

  /** Caches `v` as the latest of `key`, forgetting the least recently stored key beyond the bound. */
  #store(key: string, v: Held<S>): void {
    setNewest(this.#cache, key, v, this.#cachedKeys)
  }
}

function parseEnvelope(key: string, v: VersionedData): Envelope {
  let env: Envelope
  try {
    env = JSON.parse(Buffer.from(v.data).toString('utf8')) as Envelope
  } catch (err) {
    // NB: a store never hands out part of a version compactd wrote (file consensus links a version
    // only once it is whole and fsynced): these bytes were cut or changed outside compactd.
    throw permanent(`state version ${v.seqno} of "${key}" is not whole JSON (${v.data.byteLength} bytes: ${errorMessage(err)}): the store holds a version cut short or changed outside compactd; restore it from a backup`, err)
  }
  checkEnvelope(env, v.seqno)
  return env
}

/** The envelope's fields but its state, read from the bytes before the state (written first). */
function envelopeHead(key: string, v: VersionedData): { readonly v: 1 | 2; readonly commandId: string; readonly rollup?: SeqNo } {
  const bytes = Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength)
  const at = bytes.indexOf(',"state":')
  if (at < 0) return parseEnvelope(key, v)
  const env = JSON.parse(`${bytes.subarray(0, at).toString('utf8')}}`) as Envelope
  checkEnvelope(env, v.seqno)
  return env
}

function checkEnvelope(env: Envelope, seqno: SeqNo): void {
  if ((env.v !== 1 && env.v !== 2) || typeof env.commandId !== 'string') throw new Error(`state version ${seqno} has an unknown envelope`)
  if (env.v === 2 && (!Number.isSafeInteger(env.rollup) || env.rollup < 0 || env.rollup >= seqno)) throw new Error(`state version ${seqno} has a delta envelope without a valid rollup`)
}

async function backoff(attempt: number): Promise<void> {
  const ms = Math.min(200, 2 ** Math.min(attempt, 8)) * Math.random()
  await new Promise((resolve) => setTimeout(resolve, ms))
}
