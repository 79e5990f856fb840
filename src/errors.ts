/**
 * The one error type that crosses into HTTP: a machine-readable code, a human message naming the
 * field or rule, and optional extra fields merged into the response body.
 */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'CONFIG_NOT_FOUND',
  'INVALID_CONFIG',
  'SHARD_NOT_FOUND',
  'SHARD_DELETED',
  'SHARD_NAME_TAKEN',
  'SCHEMA_INCOMPATIBLE',
  'SINCE_REGRESSION',
  'INVALID_BATCH',
  'UPPER_MISMATCH',
  'AS_OF_NOT_AVAILABLE',
  'PART_NOT_FOUND',
  'DATA_LOSS',
  'INVALID_COMPACTION',
  'COMPACTION_NOT_FOUND',
  'ALREADY_FINISHED',
  'QUEUE_FULL',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'COMPACTION_DISABLED',
  'TIMED_OUT',
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'STORAGE_ERROR',
  'INSUFFICIENT_STORAGE',
  'SERVICE_UNAVAILABLE',
  'INTERNAL',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

/** HTTP status for each code; the compiler checks that every code has one. */
export const STATUS_FOR_CODE: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFIG_NOT_FOUND: 404,
  INVALID_CONFIG: 400,
  SHARD_NOT_FOUND: 404,
  SHARD_DELETED: 410,
  SHARD_NAME_TAKEN: 409,
  SCHEMA_INCOMPATIBLE: 400,
  SINCE_REGRESSION: 409,
  INVALID_BATCH: 400,
  UPPER_MISMATCH: 409,
  AS_OF_NOT_AVAILABLE: 400,
  PART_NOT_FOUND: 404,
  DATA_LOSS: 500,
  INVALID_COMPACTION: 422,
  COMPACTION_NOT_FOUND: 404,
  ALREADY_FINISHED: 409,
  QUEUE_FULL: 429,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  HEADERS_TOO_LARGE: 431,
  REQUEST_TIMEOUT: 408,
  COMPACTION_DISABLED: 503,
  TIMED_OUT: 504,
  DEADLINE_EXCEEDED: 504,
  CANCELLED: 409,
  STORAGE_ERROR: 503,
  INSUFFICIENT_STORAGE: 507,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL: 500,
}

export class AppError extends Error {
  override readonly name = 'AppError'
  readonly code: ErrorCode
  readonly extra: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, extra: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.extra = extra
  }

  get status(): number {
    return STATUS_FOR_CODE[this.code]
  }
}

/**
 * Codes of faults of the server or its stores, which an operator must look at (logged as errors);
 * every other code is the client's doing or a state the server is in (starting, stopping, the kill
 * switch, a timeout).
 */
export const FAULT_CODES: ReadonlySet<ErrorCode> = new Set(['INTERNAL', 'DATA_LOSS', 'STORAGE_ERROR', 'INSUFFICIENT_STORAGE'])

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError
}
