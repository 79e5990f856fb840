/**
 * How a failed Stage D reads to the compactor: which parts it wrote (to delete them), and what the
 * failure says to the operator. Known codes pass through; anything else is INTERNAL, reported to
 * the server log rather than shown.
 */
import type { PartialBatchKey } from '../core/paths.js'
import { AppError, isAppError } from '../errors.js'
import { LocationError } from '../location/errors.js'
import type { CompactionError, FailureCode } from './compaction.js'

/** Codes a Stage D error may carry through to the record; anything else is INTERNAL. */
const PASSED_THROUGH: ReadonlySet<string> = new Set<FailureCode>(['SCHEMA_INCOMPATIBLE', 'STORAGE_ERROR', 'INSUFFICIENT_STORAGE', 'DATA_LOSS', 'SHARD_DELETED'])

/** Codes of a store's failure: the record says which, the server log says what (the error is reported). */
const STORAGE_CODES: ReadonlySet<FailureCode> = new Set<FailureCode>(['STORAGE_ERROR', 'INSUFFICIENT_STORAGE'])

/** The part keys a failed Stage D says it wrote (`err.writtenParts`), else none. */
export function writtenParts(err: unknown): readonly PartialBatchKey[] {
  if (typeof err !== 'object' || err === null) return []
  const parts = (err as { writtenParts?: unknown }).writtenParts
  return Array.isArray(parts) ? (parts.filter((k) => typeof k === 'string') as PartialBatchKey[]) : []
}

/** The code an error carries (AppError, or the worker pool's TaskError), if any. */
function codeOf(err: unknown): string | null {
  if (isAppError(err)) return err.code
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code
  return null
}

/**
 * What a Stage D error says failed, looking down its `cause` chain (Stage D wraps what it catches):
 * the first known code that passes through, or a storage error. Null: nothing the caller can act on.
 */
function classify(err: unknown): CompactionError | null {
  let e: unknown = err
  for (let depth = 0; depth < 8 && e instanceof Error; depth++, e = e.cause) {
    const code = codeOf(e)
    if (code !== null && PASSED_THROUGH.has(code)) return { code: code as FailureCode, message: e.message }
    if (e instanceof LocationError) return storeFailure(e, '; the outputs written so far were deleted')
  }
  return null
}

/**
 * A store's failure as a compaction's record shows it: INSUFFICIENT_STORAGE when the store is full
 * (`noSpaceDetail` says what that left behind), STORAGE_ERROR otherwise.
 */
export function storeFailure(e: LocationError, noSpaceDetail: string): CompactionError {
  if (e.noSpace) return { code: 'INSUFFICIENT_STORAGE', message: `the storage has no space left${noSpaceDetail}; see the server log` }
  return { code: 'STORAGE_ERROR', message: `a storage operation failed (${e.permanent ? 'permanent' : e.kind}); see the server log` }
}

/**
 * Whether `err` is a store failing in a way that may pass: a LocationError down its cause chain
 * that is not permanent (an unreachable, restarting or overloaded store; not missing credentials
 * or bucket) and not a full one (space comes back only when an operator frees it: that compaction
 * fails with INSUFFICIENT_STORAGE). Another attempt of the compaction may then succeed.
 */
export function isTransientStoreFailure(err: unknown): boolean {
  let e: unknown = err
  for (let depth = 0; depth < 8 && e instanceof Error; depth++, e = e.cause) {
    if (e instanceof LocationError) return e.mayPass
  }
  return false
}

/** A Stage D error as the record shows it: known codes pass through, the rest is INTERNAL. */
export function toCompactionError(err: unknown, report: (err: unknown) => void): CompactionError {
  const known = classify(err)
  if (known !== null && !STORAGE_CODES.has(known.code)) return known
  report(err)
  return known ?? { code: 'INTERNAL', message: 'internal error; see the server log' }
}

/** A Stage D error as an AppError a caller can rethrow (known codes pass through, the rest INTERNAL). */
export function toAppError(err: unknown, report: (err: unknown) => void): unknown {
  const known = classify(err)
  if (known !== null && !STORAGE_CODES.has(known.code)) return new AppError(known.code, known.message, {}, { cause: err })
  report(err)
  return known === null ? err : new AppError(known.code, known.message, {}, { cause: err })
}
