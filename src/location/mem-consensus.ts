/** MemConsensus: the in-memory Consensus adapter, for tests and `mem://`. Linearizable by construction (one thread). */
import type { CasResult, Consensus, ListOptions, SeqNo, VersionedData } from './consensus.js'
import { checkCas, checkKey, checkList, checkScan, checkTruncate, checkTruncateAgainstHead, inListRange } from './consensus-args.js'
import { closedError, type Abortable } from './errors.js'

export class MemConsensus implements Consensus {
  /** Per key, the live versions in ascending, contiguous seqno order (never empty once set). */
  readonly #logs = new Map<string, VersionedData[]>()
  #closed = false

  async head(key: string, opts?: Abortable): Promise<VersionedData | null> {
    this.#check(opts)
    checkKey(key)
    const last = this.#logs.get(key)?.at(-1)
    return last === undefined ? null : copy(last)
  }

  async compareAndSet(key: string, expected: SeqNo | null, data: VersionedData, opts?: Abortable): Promise<CasResult> {
    this.#check(opts)
    checkCas(key, expected, data)
    const log = this.#logs.get(key) ?? []
    const head = log.at(-1)
    if ((head?.seqno ?? null) !== expected) return { kind: 'mismatch', current: head === undefined ? null : copy(head) }
    log.push(copy(data))
    this.#logs.set(key, log)
    return { kind: 'committed' }
  }

  async scan(key: string, from: SeqNo, limit: number, opts?: Abortable): Promise<VersionedData[]> {
    this.#check(opts)
    checkScan(key, from, limit)
    const log = this.#logs.get(key) ?? []
    return log
      .filter((v) => v.seqno >= from)
      .slice(0, limit)
      .map(copy)
  }

  async truncate(key: string, seqno: SeqNo, opts?: Abortable): Promise<number> {
    this.#check(opts)
    checkTruncate(key, seqno)
    const log = this.#logs.get(key) ?? []
    checkTruncateAgainstHead(key, seqno, log.at(-1)?.seqno ?? null)
    const keep = log.filter((v) => v.seqno >= seqno)
    this.#logs.set(key, keep)
    return log.length - keep.length
  }

  async list(opts?: ListOptions): Promise<string[]> {
    this.#check(opts)
    checkList(opts)
    return inListRange(this.#logs.keys(), opts)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#logs.clear()
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('mem consensus')
    opts?.signal?.throwIfAborted()
  }
}

const copy = (v: VersionedData): VersionedData => ({ seqno: v.seqno, data: new Uint8Array(v.data) })
