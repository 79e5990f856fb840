/**
 * compactctl's exit codes (docs/cli.md), one per kind of ending a script may want to tell apart,
 * and the mapping from an API error to its code.
 */
import { isApiError } from '../client/api-client.js'

export const EXIT = {
  /** Done as asked (a compaction waited for succeeded and applied). */
  OK: 0,
  /** The server failed (5xx) or something unexpected happened. */
  FAILURE: 1,
  /** Bad command line: unknown command or flag, missing or malformed argument. */
  USAGE: 2,
  /** The server could not be reached. */
  UNREACHABLE: 3,
  /** The server refused the token (401/403). */
  UNAUTHORIZED: 4,
  /** No such shard, compaction or config (404/410). */
  NOT_FOUND: 5,
  /** The server refused the request (other 4xx: invalid, conflict, queue full). */
  REJECTED: 6,
  /** The compaction waited for ended failed or cancelled. */
  COMPACTION_FAILED: 7,
  /** The compaction waited for ended without changing the shard (skipped, or its result did not apply). */
  COMPACTION_NO_EFFECT: 8,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof UsageError) return EXIT.USAGE
  if (!isApiError(err)) return EXIT.FAILURE
  if (err.status === 0) return EXIT.UNREACHABLE
  if (err.status === 401 || err.status === 403) return EXIT.UNAUTHORIZED
  if (err.status === 404 || err.status === 410) return EXIT.NOT_FOUND
  if (err.status >= 400 && err.status < 500) return EXIT.REJECTED
  return EXIT.FAILURE
}

/** A command line the CLI itself refuses (before any request). */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}
