/**
 * The blob key rule, enforced by every blob adapter before any I/O so that a key accepted by
 * `mem://` in a test is also accepted by `file://` and S3 in production.
 *
 * A key is 1..1024 characters of `[A-Za-z0-9._/-]`, split by `/` into segments of 1..255
 * characters, none of them `.` or `..`. So there is no absolute path, no backslash, no NUL, no
 * empty segment and no way out of a `file://` root. Part keys (`core/paths.ts`) satisfy it.
 */
import type { BlobRange } from './blob.js'
import { InvalidUsageError } from './errors.js'

const KEY_CHARS = /^[A-Za-z0-9._/-]*$/
const MAX_KEY = 1024
const MAX_SEGMENT = 255

export function checkBlobKey(key: string): void {
  const problem = blobKeyProblem(key)
  if (problem !== null) throw new InvalidUsageError(problem)
}

export const isBlobKey = (key: string): boolean => blobKeyProblem(key) === null

/** What is wrong with `key`, or null if it is a valid blob key. */
export function blobKeyProblem(key: string): string | null {
  if (typeof key !== 'string' || key.length === 0) return 'blob key must be a non-empty string'
  if (key.length > MAX_KEY) return `blob key is longer than ${MAX_KEY} characters`
  if (!KEY_CHARS.test(key)) return `blob key "${clip(key)}" has a character outside [A-Za-z0-9._/-]`
  for (const segment of key.split('/')) {
    const problem = segmentProblem(key, segment)
    if (problem !== null) return problem
  }
  return null
}

/**
 * A listing prefix: '' (everything), or whole valid segments followed by a partial last segment
 * (which only filters names, so it may be anything within the character set).
 */
export function checkBlobPrefix(prefix: string): void {
  if (typeof prefix !== 'string') throw new InvalidUsageError('blob prefix must be a string')
  if (prefix.length > MAX_KEY) throw new InvalidUsageError(`blob prefix is longer than ${MAX_KEY} characters`)
  if (!KEY_CHARS.test(prefix)) throw new InvalidUsageError(`blob prefix "${clip(prefix)}" has a character outside [A-Za-z0-9._/-]`)
  const segments = prefix.split('/')
  segments.pop()
  for (const segment of segments) {
    const problem = segmentProblem(prefix, segment)
    if (problem !== null) throw new InvalidUsageError(problem.replace('blob key', 'blob prefix'))
  }
}

export function checkBlobValue(value: Uint8Array): void {
  if (!(value instanceof Uint8Array)) throw new InvalidUsageError('blob value must be a Uint8Array')
}

/** A `GetOptions.range`, when given: an object whose offset and length are non-negative safe integers. */
export function checkBlobRange(range: BlobRange | undefined): void {
  if (range === undefined) return
  if (typeof range !== 'object' || range === null) throw new InvalidUsageError('blob range must be an object { offset, length }')
  for (const field of ['offset', 'length'] as const) {
    const n: unknown = range[field]
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw new InvalidUsageError(`blob range ${field} must be a non-negative safe integer, not ${String(n)}`)
    }
  }
}

/** The bytes of a value of `size` bytes that `range` selects: `[start, end)`, cut at the end. */
export function rangeBounds(range: BlobRange, size: number): { readonly start: number; readonly end: number } {
  const start = Math.min(range.offset, size)
  return { start, end: Math.min(size, start + range.length) }
}

function segmentProblem(key: string, segment: string): string | null {
  if (segment.length === 0) return `blob key "${clip(key)}" has an empty segment (leading, trailing or doubled "/")`
  if (segment === '.' || segment === '..') return `blob key "${clip(key)}" has a "${segment}" segment`
  if (segment.length > MAX_SEGMENT) return `blob key "${clip(key)}" has a segment longer than ${MAX_SEGMENT} characters`
  return null
}

function clip(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s
}
