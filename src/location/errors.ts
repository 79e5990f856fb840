/**
 * Storage errors say whether the operation *definitely* failed (determinate: retrying is safe and
 * nothing happened) or *may* have succeeded (indeterminate: e.g. a timeout after the request left).
 * Callers that must not act on a false "failed" (a compare-and-set, say) re-read before deciding.
 */
export type ErrorKind = 'determinate' | 'indeterminate'

export class LocationError extends Error {
  override readonly name = 'LocationError'
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

export const determinate = (message: string, cause?: unknown): LocationError =>
  new LocationError('determinate', message, cause === undefined ? undefined : { cause })

export const indeterminate = (message: string, cause?: unknown): LocationError =>
  new LocationError('indeterminate', message, cause === undefined ? undefined : { cause })

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
