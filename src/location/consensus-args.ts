/**
 * Argument rules every consensus adapter enforces identically, so the contract suite can hold them
 * all to one behaviour. Each check throws InvalidUsageError: a bad argument is the caller's bug.
 */
import type { ListOptions, SeqNo, VersionedData } from './consensus.js'
import { InvalidUsageError } from './errors.js'

/** The longest key, in UTF-8 bytes: `file://` stores a key as a hex directory name (≤ 255 bytes). */
export const MAX_CONSENSUS_KEY_BYTES = 127

export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidUsageError('consensus key must be a non-empty string')
  if (key.includes('\0')) throw new InvalidUsageError('consensus key must not contain NUL')
  if (Buffer.from(key, 'utf8').toString('utf8') !== key) throw new InvalidUsageError('consensus key must be well-formed Unicode')
  if (Buffer.byteLength(key, 'utf8') > MAX_CONSENSUS_KEY_BYTES) {
    throw new InvalidUsageError(`consensus key is longer than ${MAX_CONSENSUS_KEY_BYTES} UTF-8 bytes`)
  }
}

export function isSeqNo(n: unknown): n is SeqNo {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
}

/** `data.seqno` must be exactly `expected + 1` (0 when expected is null). */
export function checkCas(key: string, expected: SeqNo | null, data: VersionedData): void {
  checkKey(key)
  if (expected !== null && !isSeqNo(expected)) throw new InvalidUsageError(`expected seqno ${String(expected)} is not a non-negative integer`)
  const want = expected === null ? 0 : expected + 1
  if (data.seqno !== want) {
    throw new InvalidUsageError(`compareAndSet of seqno ${String(data.seqno)} after ${String(expected)}: seqnos are contiguous, so it must be ${want}`)
  }
  if (!(data.data instanceof Uint8Array)) throw new InvalidUsageError('compareAndSet data must be a Uint8Array')
}

export function checkScan(key: string, from: SeqNo, limit: number): void {
  checkKey(key)
  if (!isSeqNo(from)) throw new InvalidUsageError(`scan from ${String(from)} is not a non-negative integer`)
  if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidUsageError(`scan limit ${String(limit)} must be an integer ≥ 1`)
}

/** Checks `seqno` itself; the adapter then checks it against the head (`checkTruncateAgainstHead`). */
export function checkTruncate(key: string, seqno: SeqNo): void {
  checkKey(key)
  if (!isSeqNo(seqno)) throw new InvalidUsageError(`truncate seqno ${String(seqno)} is not a non-negative integer`)
}

export function checkTruncateAgainstHead(key: string, seqno: SeqNo, head: SeqNo | null): void {
  if (head === null) throw new InvalidUsageError(`truncate of "${key}" which has no versions`)
  if (seqno > head) throw new InvalidUsageError(`truncate of "${key}" to ${seqno} beyond its head ${head}: the head is never truncated away`)
}

export function checkList(opts: ListOptions | undefined): void {
  if (opts?.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 1)) throw new InvalidUsageError(`list limit ${String(opts.limit)} must be an integer ≥ 1`)
  if (opts?.after !== undefined && typeof opts.after !== 'string') throw new InvalidUsageError('list after must be a string')
}

/** The keys of `keys` (any order) in `opts`'s range, sorted by code unit when it asks for a range. */
export function inListRange(keys: Iterable<string>, opts: ListOptions | undefined): string[] {
  const all = [...keys]
  if (opts?.after === undefined && opts?.limit === undefined) return all
  const after = opts.after
  const sorted = (after === undefined ? all : all.filter((k) => k > after)).sort()
  return opts.limit === undefined ? sorted : sorted.slice(0, opts.limit)
}
