/**
 * Time-ordered UUIDs (RFC 9562 version 7): 48 bits of Unix milliseconds, then a 12-bit counter
 * (the RFC's "fixed-length dedicated counter", method 1), then 62 random bits. Their text sorts
 * in creation order, so a listing of ids sorted as strings is a listing by creation time.
 *
 * Within one process every id is strictly greater than the one before, also within a millisecond
 * and when the clock steps back (the last timestamp is reused and the counter carries on).
 * Across processes ids order by their clocks; equal milliseconds order randomly.
 */
import { randomBytes } from 'node:crypto'

export class UuidV7 {
  readonly #now: () => number
  #lastMs = -1
  #counter = 0

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  next(): string {
    const random = randomBytes(10)
    let ms = Math.max(0, Math.floor(this.#now()))
    if (ms > this.#lastMs) {
      // NB: a fresh counter starts in the lower half, leaving room for increments in this millisecond.
      this.#counter = ((random[0] as number) << 3) | ((random[1] as number) & 0x07)
    } else {
      ms = this.#lastMs
      this.#counter++
      if (this.#counter > 0xfff) {
        ms++
        this.#counter = 0
      }
    }
    this.#lastMs = ms
    const b = Buffer.alloc(16)
    b.writeUIntBE(ms, 0, 6)
    b[6] = 0x70 | (this.#counter >> 8)
    b[7] = this.#counter & 0xff
    b[8] = 0x80 | ((random[2] as number) & 0x3f)
    random.copy(b, 9, 3, 10)
    const hex = b.toString('hex')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }
}

/** The Unix milliseconds a version-7 UUID carries, or null for any other version. */
export function uuidV7Millis(uuid: string): number | null {
  const hex = uuid.replaceAll('-', '')
  if (!/^[0-9a-f]{32}$/.test(hex) || hex[12] !== '7') return null
  return parseInt(hex.slice(0, 12), 16)
}
