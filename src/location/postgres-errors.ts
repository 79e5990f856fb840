/**
 * How the PostgreSQL adapters read errors: SQL states they act on, and the classification of a
 * failure as determinate (nothing happened) or indeterminate (a write may have landed).
 *
 * Failing to get a connection, or any error answer from the server, is determinate; losing the
 * connection (or a client-side timeout) during a write is indeterminate, as is CockroachDB's
 * `40003 statement_completion_unknown`. `53100 disk_full` is determinate and says the store has no
 * space left (`noSpace`).
 */
import pg from 'pg'
import { determinate, errorMessage, indeterminate, noSpace, type Abortable, type LocationError } from './errors.js'

export const UNIQUE_VIOLATION = '23505'
export const DUPLICATE_TABLE = '42P07'
export const DUPLICATE_OBJECT = '42710'
const STATEMENT_COMPLETION_UNKNOWN = '40003'
const SERIALIZATION_FAILURE = '40001'
const DEADLOCK_DETECTED = '40P01'
/** The server could not extend a file: its disk is full. */
const DISK_FULL = '53100'

/** Attempts of one statement that keeps failing to serialize (each failure wrote nothing). */
export const MAX_SERIALIZATION_ATTEMPTS = 16

export function hasSqlState(err: unknown, ...codes: string[]): boolean {
  return err instanceof pg.DatabaseError && err.code !== undefined && codes.includes(err.code)
}

/** A statement aborted by the scheduler (a serialization failure or a deadlock): it wrote nothing and may simply be re-run. */
export const isSerializationFailure = (err: unknown): boolean => hasSqlState(err, SERIALIZATION_FAILURE, DEADLOCK_DETECTED)

/** `err` as a LocationError; `write`: the failed statement may change rows. `what` prefixes the message. */
export function classify(what: string, write: boolean, err: unknown): LocationError {
  const message = `${what}: ${errorMessage(err)}`
  if (err instanceof pg.DatabaseError) {
    const lost = err.code === STATEMENT_COMPLETION_UNKNOWN || (err.code?.startsWith('08') ?? false)
    if (write && lost) return indeterminate(message, err)
    return err.code === DISK_FULL ? noSpace(message, err) : determinate(message, err)
  }
  // No answer from the server: the statement may or may not have run.
  return write ? indeterminate(message, err) : determinate(message, err)
}

/** A short, growing, jittered wait between serialization retries (they contend for the same rows). */
export async function pause(attempt: number, opts?: Abortable): Promise<void> {
  opts?.signal?.throwIfAborted()
  await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt)))
}
