/**
 * NDJSON (one JSON value a line) to and from the API's JSON, as the bytes stream: neither side is
 * ever held whole, only the unfinished line.
 *
 * - `SnapshotLines` turns the snapshot document `{"asOf":…,"updates":[u,u,…]}` into one update a
 *   line, whitespace outside strings dropped (so a line is one update even if the server indented).
 * - `ndjsonAsArray` turns lines of updates into the JSON array a batch body's `updates` takes;
 *   blank lines are skipped.
 */

const QUOTE = 0x22
const BACKSLASH = 0x5c
const NEWLINE = 0x0a
const COMMA = 0x2c
export const isWs = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09
const isOpen = (b: number): boolean => b === 0x7b || b === 0x5b
const isClose = (b: number): boolean => b === 0x7d || b === 0x5d

export class SnapshotLines {
  #depth = 0
  #inString = false
  #escape = false
  /** The bytes of a string at depth 1 (a key, or a value such as a large asOf), while it is read. */
  #key: number[] | null = null
  #lastKey = ''
  #inUpdates = false
  #inElement = false
  #done = false
  /**
   * Bytes of an update whose line is not finished yet, one piece per chunk: joined once, when its
   * line ends, so an update spanning many chunks is copied twice, not once per chunk.
   */
  #carry: Uint8Array[] = []
  #carryBytes = 0
  #lines = 0

  /** Updates written so far. */
  get lines(): number {
    return this.#lines
  }

  /** The complete lines `chunk` finishes (possibly none). */
  push(chunk: Uint8Array): Uint8Array {
    // NB: at most one newline per update, and an update takes at least two bytes (`{}`).
    const out = new Uint8Array(chunk.length * 2 + 1)
    let o = 0
    let lineEnd = 0
    for (const b of chunk) {
      if (this.#inString) {
        if (this.#inElement) out[o++] = b
        if (this.#escape) this.#escape = false
        else if (b === BACKSLASH) this.#escape = true
        else if (b === QUOTE) {
          this.#inString = false
          if (this.#key !== null) {
            this.#lastKey = String.fromCharCode(...this.#key)
            this.#key = null
          }
          continue
        }
        // NB: a key longer than 64 bytes is not one this document has; its bytes are not kept.
        if (this.#key !== null && this.#key.length < 64) this.#key.push(b)
        continue
      }
      if (isWs(b)) continue
      if (this.#done) throw new Error('the snapshot has bytes after its end')
      if (b === QUOTE) {
        this.#inString = true
        if (this.#inElement) out[o++] = b
        else if (this.#depth === 1) this.#key = []
      } else if (isOpen(b)) {
        if (this.#inUpdates && this.#depth === 2 && !this.#inElement) this.#inElement = true
        if (this.#inElement) out[o++] = b
        this.#depth += 1
        if (this.#depth === 2 && b === 0x5b && this.#lastKey === 'updates') this.#inUpdates = true
      } else if (isClose(b)) {
        this.#depth -= 1
        if (this.#inElement) {
          out[o++] = b
          if (this.#depth === 2) {
            out[o++] = NEWLINE
            lineEnd = o
            this.#inElement = false
            this.#lines += 1
          }
        } else if (this.#depth === 1) this.#inUpdates = false
        else if (this.#depth === 0) this.#done = true
      } else if (this.#inElement) out[o++] = b
      else if (b === COMMA || this.#depth !== 2 || !this.#inUpdates) continue
      else throw new Error('the snapshot holds an update that is not an object')
    }
    if (lineEnd === 0) {
      if (o > 0) this.#carryPiece(out.slice(0, o))
      return out.subarray(0, 0)
    }
    let lines = out.subarray(0, lineEnd)
    if (this.#carryBytes > 0) {
      lines = new Uint8Array(this.#carryBytes + lineEnd)
      let at = 0
      for (const piece of this.#carry) {
        lines.set(piece, at)
        at += piece.length
      }
      lines.set(out.subarray(0, lineEnd), at)
      this.#carry = []
      this.#carryBytes = 0
    }
    if (o > lineEnd) this.#carryPiece(out.slice(lineEnd, o))
    return lines
  }

  #carryPiece(piece: Uint8Array): void {
    this.#carry.push(piece)
    this.#carryBytes += piece.length
  }

  /** Throws unless the document ended. */
  end(): void {
    if (!this.#done) throw new Error('the snapshot ended before its last update: the server closed the response early')
  }
}

/** Lines of updates (NDJSON) as one JSON array, `[u,u,…]`, produced as `src` is read. */
export async function* ndjsonAsArray(src: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield Buffer.from('[')
  let lineHasContent = false
  let needComma = false
  for await (const chunk of src) {
    const out = new Uint8Array(chunk.length * 2)
    let o = 0
    for (const b of chunk) {
      if (b === NEWLINE) {
        if (lineHasContent) needComma = true
        lineHasContent = false
      } else if (!lineHasContent && isWs(b)) {
        continue
      } else {
        if (!lineHasContent && needComma) out[o++] = COMMA
        needComma = false
        lineHasContent = true
        out[o++] = b
      }
    }
    if (o > 0) yield out.subarray(0, o)
  }
  yield Buffer.from(']')
}
