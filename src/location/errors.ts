/**
 * Storage errors say whether the operation *definitely* failed (determinate: retrying is safe and
 * nothing happened) or *may* have succeeded (indeterminate: e.g. a timeout after the request left).
 * Callers that must not act on a false "failed" (a compare-and-set, say) re-read before deciding.
 *
 * A determinate error may also be *permanent*: the store refused for a reason no retry mends (no
 * credentials, credentials refused, access denied, a missing bucket) until an operator changes
 * its configuration. Permanent errors are never retried and never reported as "retry later".
 *
 * Or it may say the store has *no space* left (a full disk or quota: ENOSPC, EDQUOT, PostgreSQL's
 * disk_full): nothing was written, and nothing will be until space is freed (by an operator, or by
 * GC), which takes longer than any retry waits. Not retried; answered 507 INSUFFICIENT_STORAGE.
 */
export type ErrorKind = 'determinate' | 'indeterminate'

export class LocationError extends Error {
  override readonly name = 'LocationError'
  /** True only for determinate errors that no retry can mend. */
  readonly permanent: boolean
  /** True only for determinate errors of a store with no space left: nothing was written. */
  readonly noSpace: boolean
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: ErrorOptions & { readonly permanent?: boolean; readonly noSpace?: boolean },
  ) {
    super(message, options)
    this.permanent = kind === 'determinate' && options?.permanent === true
    this.noSpace = kind === 'determinate' && options?.noSpace === true
  }

  /** Whether the failure may pass by itself (a blip, an outage): neither permanent nor a full store. */
  get mayPass(): boolean {
    return !this.permanent && !this.noSpace
  }
}

export const determinate = (message: string, cause?: unknown): LocationError =>
  new LocationError('determinate', message, cause === undefined ? undefined : { cause })

export const indeterminate = (message: string, cause?: unknown): LocationError =>
  new LocationError('indeterminate', message, cause === undefined ? undefined : { cause })

/** Determinate and permanent: `message` should say what the operator has to fix. */
export const permanent = (message: string, cause?: unknown): LocationError =>
  new LocationError('determinate', message, { permanent: true, ...(cause === undefined ? {} : { cause }) })

/** Determinate: the store has no space left, so nothing was written. */
export const noSpace = (message: string, cause?: unknown): LocationError =>
  new LocationError('determinate', message, { noSpace: true, ...(cause === undefined ? {} : { cause }) })

/**
 * Invalid arguments to a store (a malformed key, a seqno that does not advance): the caller's bug,
 * never retried.
 */
export class InvalidUsageError extends Error {
  override readonly name = 'InvalidUsageError'
}

export interface Abortable {
  readonly signal?: AbortSignal
}

/** A call on a store after its `close()`: the caller's bug. */
export const closedError = (what: string): InvalidUsageError => new InvalidUsageError(`${what} is closed`)

/** One line describing `err`; an AggregateError (say, connecting to every address of a host) lists its parts. */
export function errorMessage(err: unknown): string {
  let text = err instanceof Error ? err.message : String(err)
  if (err instanceof AggregateError && err.errors.length > 0) {
    const parts = err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e)))
    text = text === '' ? parts.join('; ') : `${text}: ${parts.join('; ')}`
  }
  return text.replace(/\s*[\r\n]+\s*/g, ' ')
}
