/**
 * Byte-level scanning of JSON text that arrives in pieces (UTF-8 request bodies): where a value
 * ends, skipping whitespace. The scanners find extents only; what lies inside is checked by
 * whoever parses it (`JSON.parse` or a typed reader), so malformed input is reported there.
 */

/** The scan reached the end of the bytes available before the value ended. */
export const NEED_MORE = -1

/** A request body that is not what it must be: `kind` says whose fault it is. */
export class JsonBodyError extends Error {
  override readonly name = 'JsonBodyError'
  /**
   * `malformed`: not JSON, or not shaped like the request (BAD_REQUEST); `invalid`: a row does not
   * fit the shard (INVALID_BATCH).
   */
  constructor(
    readonly kind: 'malformed' | 'invalid',
    message: string,
  ) {
    super(message)
  }
}

/** JSON whitespace: space, tab, line feed, carriage return. */
export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/** The first non-whitespace position in `[p, end)`, or `end`. */
export function skipWs(b: Uint8Array, p: number, end: number): number {
  while (p < end && isWs(b[p]!)) p++
  return p
}

/** Whether `c` may follow a number or literal (whitespace, `,`, `}`, `]`). */
export function isDelimiter(c: number): boolean {
  return isWs(c) || c === 0x2c || c === 0x7d || c === 0x5d
}

/**
 * The position just after the string literal starting at `p` (`b[p]` is `"`), or NEED_MORE.
 * Escapes are skipped, not checked.
 */
export function scanString(b: Uint8Array, p: number, end: number): number {
  for (let i = p + 1; i < end; i++) {
    const c = b[i]!
    if (c === 0x5c) i++
    else if (c === 0x22) return i + 1
  }
  return NEED_MORE
}

/**
 * The position just after the JSON value starting at `p` (no leading whitespace), or NEED_MORE.
 * A number or literal at the very end of the bytes is incomplete unless `final`. Brackets are
 * matched by depth only: their contents are for the parser to judge.
 */
export function scanValue(b: Uint8Array, p: number, end: number, final: boolean): number {
  if (p >= end) return NEED_MORE
  const first = b[p]!
  if (first === 0x22) return scanString(b, p, end)
  if (first === 0x7b || first === 0x5b) {
    let depth = 0
    for (let i = p; i < end; i++) {
      const c = b[i]!
      if (c === 0x22) {
        const s = scanString(b, i, end)
        if (s === NEED_MORE) return NEED_MORE
        i = s - 1
      } else if (c === 0x7b || c === 0x5b) depth++
      else if (c === 0x7d || c === 0x5d) {
        depth--
        if (depth === 0) return i + 1
      }
    }
    return NEED_MORE
  }
  // A number or a literal: up to the next delimiter (or a bracket or quote, which makes it bad JSON).
  for (let i = p; i < end; i++) {
    const c = b[i]!
    if (isDelimiter(c) || c === 0x22 || c === 0x7b || c === 0x5b) return i
  }
  return final ? end : NEED_MORE
}

/**
 * The end of one JSON value that arrives in pieces, looked for once per byte: `find` continues
 * from where its last call stopped, so a value spanning N chunks costs its length, not N times it
 * (`scanValue` from the value's start each time would). Its offsets count from the value's first
 * byte, so the caller may move the bytes between calls (a buffer compacted to its front). As
 * `scanValue`, it matches brackets by depth only and skips escapes without checking them.
 */
export class ValueEnd {
  /** Bytes of the value already looked at; 0 when no value is being scanned. */
  #scanned = 0
  #depth = 0
  #inString = false
  #escaped = false

  /** Forgets the value (the next `find` starts a new one). */
  reset(): void {
    this.#scanned = 0
    this.#depth = 0
    this.#inString = false
    this.#escaped = false
  }

  /**
   * The position just after the value starting at `p` (no leading whitespace) in `b[p, end)`, or
   * NEED_MORE. Call again with the same value's start and more bytes after a NEED_MORE, or
   * `reset()` first for another value.
   */
  find(b: Uint8Array, p: number, end: number, final: boolean): number {
    if (p >= end) return NEED_MORE
    const first = b[p]!
    const nested = first === 0x7b || first === 0x5b
    if (!nested && first !== 0x22) {
      // A number or a literal: short unless it is bad JSON, which the parser then refuses.
      for (let i = p + this.#scanned; i < end; i++) {
        const c = b[i]!
        if (isDelimiter(c) || c === 0x22 || c === 0x7b || c === 0x5b) return i
      }
      this.#scanned = end - p
      return final ? end : NEED_MORE
    }
    let i = p + this.#scanned
    if (this.#scanned === 0) {
      // The opening quote or bracket.
      if (nested) this.#depth = 1
      else this.#inString = true
      i++
    }
    for (; i < end; i++) {
      const c = b[i]!
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false
        else if (c === 0x5c) this.#escaped = true
        else if (c === 0x22) {
          this.#inString = false
          if (!nested) return i + 1
        }
      } else if (c === 0x22) this.#inString = true
      else if (c === 0x7b || c === 0x5b) this.#depth++
      else if (c === 0x7d || c === 0x5d) {
        this.#depth--
        if (this.#depth === 0) return i + 1
      }
    }
    this.#scanned = end - p
    return NEED_MORE
  }
}

const text = new TextDecoder('utf-8')

/** The JSON text `b[s, e)` parsed (invalid UTF-8 reads as U+FFFD, as a decoded body would); `at` names it in errors. */
export function parseJsonText(b: Uint8Array, s: number, e: number, at: string): unknown {
  try {
    return JSON.parse(text.decode(b.subarray(s, e))) as unknown
  } catch (err) {
    throw new JsonBodyError('malformed', `${at}: not valid JSON (${err instanceof Error ? err.message : String(err)})`)
  }
}
