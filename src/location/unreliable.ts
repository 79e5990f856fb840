/**
 * Fault injection for tests: `unreliable(store, { seed, failureRate })` fails a seeded fraction of
 * calls. A failure is either *determinate* (thrown before the call reaches the store: nothing
 * happened) or *indeterminate* (the call is made and its result thrown away: the write happened but
 * the caller gets an error), in the ratio `indeterminateRate` (default 0.5).
 *
 * Reproducible: the same seed and the same sequence of calls fail the same calls. Every call draws
 * two numbers whatever the rates, so changing a rate at runtime does not shift later draws.
 * A blob `list` fails before its first item (determinate) or after it (indeterminate).
 * `close` never fails.
 */
import type { Blob, BlobMeta, GetOptions } from './blob.js'
import type { Consensus, SeqNo, VersionedData } from './consensus.js'
import { determinate, indeterminate, InvalidUsageError, type Abortable } from './errors.js'
import { mulberry32 } from '../core/prng.js'

export interface UnreliableOptions {
  readonly seed: number
  /** Fraction of calls that fail, in [0, 1]. */
  readonly failureRate: number
  /** Fraction of failures that are indeterminate, in [0, 1]; default 0.5. */
  readonly indeterminateRate?: number
}

export interface FaultControl {
  setFailureRate(rate: number): void
  setIndeterminateRate(rate: number): void
  /** Failures injected so far, by kind. */
  readonly injected: { readonly determinate: number; readonly indeterminate: number }
}

export type UnreliableBlob = Blob & FaultControl
export type UnreliableConsensus = Consensus & FaultControl


export function unreliable(store: Blob, opts: UnreliableOptions): UnreliableBlob
export function unreliable(store: Consensus, opts: UnreliableOptions): UnreliableConsensus
export function unreliable(store: Blob | Consensus, opts: UnreliableOptions): UnreliableBlob | UnreliableConsensus {
  const faults = new Faults(opts)
  return 'compareAndSet' in store ? unreliableConsensus(store, faults) : unreliableBlob(store, faults)
}

type Verdict = 'ok' | 'determinate' | 'indeterminate'

class Faults implements FaultControl {
  readonly #random: () => number
  #failureRate = 0
  #indeterminateRate = 0.5
  readonly #injected = { determinate: 0, indeterminate: 0 }

  constructor(opts: UnreliableOptions) {
    this.#random = mulberry32(opts.seed)
    this.setFailureRate(opts.failureRate)
    this.setIndeterminateRate(opts.indeterminateRate ?? 0.5)
  }

  get injected(): { readonly determinate: number; readonly indeterminate: number } {
    return { ...this.#injected }
  }

  setFailureRate(rate: number): void {
    this.#failureRate = checkRate('failureRate', rate)
  }

  setIndeterminateRate(rate: number): void {
    this.#indeterminateRate = checkRate('indeterminateRate', rate)
  }

  draw(): Verdict {
    const fail = this.#random() < this.#failureRate
    const kind = this.#random() < this.#indeterminateRate ? 'indeterminate' : 'determinate'
    if (!fail) return 'ok'
    this.#injected[kind]++
    return kind
  }

  /** Runs `fn` under a drawn verdict. */
  async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const verdict = this.draw()
    if (verdict === 'determinate') throw determinate(`unreliable: injected failure before ${op}`)
    const result = await fn()
    if (verdict === 'indeterminate') throw indeterminate(`unreliable: injected failure after ${op}`)
    return result
  }
}

function checkRate(name: string, rate: number): number {
  if (!(rate >= 0 && rate <= 1)) throw new InvalidUsageError(`${name} ${rate} must be in [0, 1]`)
  return rate
}

function unreliableBlob(blob: Blob, faults: Faults): UnreliableBlob {
  return {
    get: (key: string, opts?: GetOptions) => faults.run('get', () => blob.get(key, opts)),
    set: (key: string, value: Uint8Array, opts?: Abortable) => faults.run('set', () => blob.set(key, value, opts)),
    delete: (key: string, opts?: Abortable) => faults.run('delete', () => blob.delete(key, opts)),
    list: (prefix: string, opts?: Abortable) => faultyList(faults, () => blob.list(prefix, opts)),
    removeInterrupted: (prefix: string, olderThanMs: number, opts?: Abortable) => faults.run('remove_interrupted', () => blob.removeInterrupted(prefix, olderThanMs, opts)),
    close: () => blob.close(),
    setFailureRate: (rate: number) => faults.setFailureRate(rate),
    setIndeterminateRate: (rate: number) => faults.setIndeterminateRate(rate),
    get injected() {
      return faults.injected
    },
  }
}

function unreliableConsensus(consensus: Consensus, faults: Faults): UnreliableConsensus {
  return {
    head: (key: string, opts?: Abortable) => faults.run('head', () => consensus.head(key, opts)),
    compareAndSet: (key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable) =>
      faults.run('compareAndSet', () => consensus.compareAndSet(key, expected, data, opts)),
    scan: (key: string, from: SeqNo, limit: number, opts?: Abortable) => faults.run('scan', () => consensus.scan(key, from, limit, opts)),
    truncate: (key: string, seqno: SeqNo, opts?: Abortable) => faults.run('truncate', () => consensus.truncate(key, seqno, opts)),
    list: (opts?: Abortable) => faults.run('list', () => consensus.list(opts)),
    close: () => consensus.close(),
    setFailureRate: (rate: number) => faults.setFailureRate(rate),
    setIndeterminateRate: (rate: number) => faults.setIndeterminateRate(rate),
    get injected() {
      return faults.injected
    },
  }
}

async function* faultyList(faults: Faults, list: () => AsyncIterable<BlobMeta>): AsyncIterable<BlobMeta> {
  const verdict = faults.draw()
  if (verdict === 'determinate') throw determinate('unreliable: injected failure before list')
  let yielded = 0
  for await (const meta of list()) {
    yield meta
    yielded++
    if (verdict === 'indeterminate') break
  }
  if (verdict === 'indeterminate') throw indeterminate(`unreliable: injected failure after ${yielded} listed`)
}
