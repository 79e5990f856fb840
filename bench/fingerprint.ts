/**
 * An order-independent, consolidation-invariant fingerprint of a multiset of updates, so that
 * outputs of different shapes (one run or several, sorted or not) can be compared in bounded
 * memory without sorting them.
 *
 * Each row `(key, val, time)` is hashed to two 32-bit words h1, h2 (murmur3-style mixing with two
 * seeds); the fingerprint is `(Σ diff·h1 mod 2^32, Σ diff·h2 mod 2^32)` plus the wrapping i64 sum
 * of the diffs. Because it is linear in the diffs, summing the diffs of equal rows and dropping
 * zero sums leaves it unchanged: the consolidated input and any correct compaction output have the
 * same fingerprint, however the output is split into runs. With `since`, times are advanced
 * (`max(time, since)`) before hashing, so an unmerged copy of the input fingerprints like the
 * compaction output. NB: it cannot see a row whose diff is zero; `RunChecker` checks that.
 */
import { I64Sum } from '../src/columnar/updates.js'

export interface FingerprintJson {
  /** Rows added (not consolidation-invariant: compare only between consolidated outputs). */
  readonly rows: number
  /** Wrapping i64 sum of the diffs, decimal. */
  readonly diffSum: string
  /** Σ diff·h(row) over two 32-bit lanes, hex. */
  readonly hash: string
}

const C1 = 0xcc9e2d51
const C2 = 0x1b873593

function mixWord(h: number, k: number): number {
  k = Math.imul(k, C1)
  k = (k << 15) | (k >>> 17)
  k = Math.imul(k, C2)
  h ^= k
  h = (h << 13) | (h >>> 19)
  return (Math.imul(h, 5) + 0xe6546b64) | 0
}

function finish(h: number, len: number): number {
  h ^= len
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h
}

function mixBytes(h: number, b: Uint8Array, off: number, len: number): number {
  h = mixWord(h, len)
  const end = off + len
  let i = off
  for (; i + 4 <= end; i += 4) h = mixWord(h, b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24))
  let tail = 0
  for (let s = 0; i < end; i++, s += 8) tail |= b[i]! << s
  return mixWord(h, tail)
}

export class Fingerprint {
  readonly #sinceLo: number
  readonly #sinceHi: number
  readonly #advance: boolean
  readonly #diffs = new I64Sum()
  #rows = 0
  #a = 0
  #b = 0

  /** `since`: advance every time to at least this u64 (as a number below 2^53) before hashing. */
  constructor(since: number | null = null) {
    this.#advance = since !== null
    this.#sinceLo = since === null ? 0 : since % 2 ** 32
    this.#sinceHi = since === null ? 0 : Math.floor(since / 2 ** 32)
  }

  /** Adds one row; the time and diff are u32 word pairs (lo, hi). */
  add(kb: Uint8Array, kOff: number, kLen: number, vb: Uint8Array, vOff: number, vLen: number, tLo: number, tHi: number, dLo: number, dHi: number): void {
    tLo >>>= 0
    tHi >>>= 0
    if (this.#advance && (tHi < this.#sinceHi || (tHi === this.#sinceHi && tLo < this.#sinceLo))) {
      tLo = this.#sinceLo
      tHi = this.#sinceHi
    }
    let h1 = mixBytes(0x9747b28c, kb, kOff, kLen)
    let h2 = mixBytes(0x2545f491, kb, kOff, kLen)
    h1 = mixBytes(h1, vb, vOff, vLen)
    h2 = mixBytes(h2, vb, vOff, vLen)
    h1 = finish(mixWord(mixWord(h1, tLo), tHi), kLen + vLen)
    h2 = finish(mixWord(mixWord(h2, tHi), tLo), kLen + vLen + 1)
    this.#a = (this.#a + Math.imul(dLo, h1)) | 0
    this.#b = (this.#b + Math.imul(dLo, h2)) | 0
    this.#diffs.add(dLo, dHi)
    this.#rows++
  }

  get rows(): number {
    return this.#rows
  }

  toJson(): FingerprintJson {
    const hex = (x: number): string => (x >>> 0).toString(16).padStart(8, '0')
    return { rows: this.#rows, diffSum: BigInt.asIntN(64, this.#diffs.toBigInt()).toString(), hash: hex(this.#a) + hex(this.#b) }
  }
}

/** Same multiset of updates (after consolidation): equal diff sums and hashes. */
export function sameUpdates(a: FingerprintJson, b: FingerprintJson): boolean {
  return a.diffSum === b.diffSum && a.hash === b.hash
}

/**
 * Checks that one run is consolidated output: rows strictly ascending by (key, val, time) bytewise
 * (the structured order of binary columns, time as u64), no zero diff, no time below `since`.
 * Feed rows in run order, across part boundaries; `problem` holds the first violation.
 */
export class RunChecker {
  readonly #since: number
  #prevKey = new Uint8Array(0)
  #prevVal = new Uint8Array(0)
  #prevTime = -1
  #rows = 0
  problem: string | null = null

  constructor(since: number) {
    this.#since = since
  }

  add(kb: Uint8Array, kOff: number, kLen: number, vb: Uint8Array, vOff: number, vLen: number, tLo: number, tHi: number, dLo: number, dHi: number): void {
    const row = this.#rows++
    if (this.problem !== null) return
    const time = (tHi >>> 0) * 2 ** 32 + (tLo >>> 0)
    if (dLo === 0 && dHi === 0) this.problem = `row ${row} has a zero diff`
    else if (time < this.#since) this.problem = `row ${row} has time ${time} below the since ${this.#since}`
    else if (row > 0) {
      let c = compare(kb, kOff, kLen, this.#prevKey, 0, this.#prevKey.length)
      if (c === 0) c = compare(vb, vOff, vLen, this.#prevVal, 0, this.#prevVal.length)
      if (c === 0) c = time < this.#prevTime ? -1 : time > this.#prevTime ? 1 : 0
      if (c <= 0) this.problem = `row ${row} is ${c === 0 ? 'a duplicate of' : 'before'} the row preceding it`
    }
    if (this.#prevKey.length !== kLen) this.#prevKey = new Uint8Array(kLen)
    if (this.#prevVal.length !== vLen) this.#prevVal = new Uint8Array(vLen)
    this.#prevKey.set(kb.subarray(kOff, kOff + kLen))
    this.#prevVal.set(vb.subarray(vOff, vOff + vLen))
    this.#prevTime = time
  }

  get rows(): number {
    return this.#rows
  }
}

function compare(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array, bOff: number, bLen: number): number {
  const n = Math.min(aLen, bLen)
  for (let i = 0; i < n; i++) {
    const d = a[aOff + i]! - b[bOff + i]!
    if (d !== 0) return d
  }
  return aLen - bLen
}
