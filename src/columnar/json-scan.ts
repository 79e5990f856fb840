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

const text = new TextDecoder('utf-8')

/** The JSON text `b[s, e)` parsed (invalid UTF-8 reads as U+FFFD, as a decoded body would); `at` names it in errors. */
export function parseJsonText(b: Uint8Array, s: number, e: number, at: string): unknown {
  try {
    return JSON.parse(text.decode(b.subarray(s, e))) as unknown
  } catch (err) {
    throw new JsonBodyError('malformed', `${at}: not valid JSON (${err instanceof Error ? err.message : String(err)})`)
  }
}
