/**
 * A Consensus wrapper for tests: counts head reads per key, the keys listings return and the
 * versions scans return, and lets a test hold a machine
 * command's compare-and-set at a gate (to interleave two commands deterministically, without
 * sleeping). Everything else passes straight through to the real store.
 */
import type { Abortable } from '../../src/location/errors.js'
import type { CasResult, Consensus, SeqNo, VersionedData } from '../../src/location/consensus.js'

export interface WatchedConsensus extends Consensus {
  /** Head reads so far of keys that `match` accepts (all keys when omitted). */
  heads(match?: (key: string) => boolean): number
  /** Keys the listings so far returned, in all. */
  listed(): number
  /** Versions the scans so far returned, in all. */
  scanned(): number
  /** Forgets the counts. */
  resetCounts(): void
  /**
   * The next compare-and-set of machine command `cmd` on `key` (or on any key `key` accepts) waits,
   * before it reaches the store, until `release()` is called. `reached` resolves with its key when
   * it is waiting.
   */
  hold(key: string | ((key: string) => boolean), cmd: string): { readonly reached: Promise<string>; release(): void }
}

interface Gate {
  readonly key: (key: string) => boolean
  readonly cmd: string
  readonly arrive: (key: string) => void
  readonly opened: Promise<void>
}

/** The machine command a state version was written by (its envelope's `cmd`), or null. */
export function commandOf(data: Uint8Array): string | null {
  try {
    const env = JSON.parse(Buffer.from(data).toString('utf8')) as { cmd?: unknown }
    return typeof env.cmd === 'string' ? env.cmd : null
  } catch {
    return null
  }
}

export function watched(inner: Consensus): WatchedConsensus {
  const counts = new Map<string, number>()
  const gates: Gate[] = []
  let listed = 0
  let scanned = 0
  return {
    heads: (match = () => true) => [...counts].reduce((n, [k, c]) => (match(k) ? n + c : n), 0),
    listed: () => listed,
    scanned: () => scanned,
    resetCounts: () => {
      counts.clear()
      listed = 0
      scanned = 0
    },
    hold(key, cmd) {
      let arrive!: (key: string) => void
      let release!: () => void
      const reached = new Promise<string>((resolve) => (arrive = resolve))
      const opened = new Promise<void>((resolve) => (release = resolve))
      gates.push({ key: typeof key === 'string' ? (k) => k === key : key, cmd, arrive, opened })
      return { reached, release }
    },
    async head(key: string, opts?: Abortable) {
      counts.set(key, (counts.get(key) ?? 0) + 1)
      return inner.head(key, opts)
    },
    async compareAndSet(key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable): Promise<CasResult> {
      const i = gates.findIndex((g) => g.key(key) && g.cmd === commandOf(data.data))
      if (i >= 0) {
        const [gate] = gates.splice(i, 1) as [Gate]
        gate.arrive(key)
        await gate.opened
      }
      return inner.compareAndSet(key, expected, data, opts)
    },
    async scan(key, from, limit, opts) {
      const versions = await inner.scan(key, from, limit, opts)
      scanned += versions.length
      return versions
    },
    truncate: (key, seqno, opts) => inner.truncate(key, seqno, opts),
    async list(opts) {
      const keys = await inner.list(opts)
      listed += keys.length
      return keys
    },
    close: () => inner.close(),
  }
}
