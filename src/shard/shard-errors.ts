/**
 * Turning what a client sent, and what a write task reported, into values and AppErrors for the
 * shard service (shards.ts): query-string timestamps, request bodies, the codes of failures.
 */
import { Buffer } from 'node:buffer'
import { Readable } from 'node:stream'
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import type { ShardId } from '../core/ids.js'
import type { Timestamp, TimestampKind } from '../core/timestamp.js'
import { TaskError, WorkerExitError } from '../engine/worker-pool.js'
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.js'
import type { WriteBatchRequest } from './shards-api.js'
import { sinceOf, upperOf, type ShardState } from './state.js'

export function parseBatchFrontier(tk: TimestampKind, json: unknown, field: string): Antichain {
  const r = ac.parse(tk, json)
  if (!r.ok) throw new AppError('INVALID_BATCH', `${field}: ${r.error}`)
  return r.value
}

/** A timestamp from query-string text: decimal digits stay a string (u64 beyond 2^53), else JSON. */
export function timestampFromText(text: string): unknown {
  if (/^[0-9]+$/.test(text)) return text
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** The body of a write request as a stream (bodies held in memory are streamed from there). */
export function bodyOf(req: WriteBatchRequest): Readable {
  switch (req.kind) {
    case 'json-body':
    case 'arrow-body':
      return req.body
    case 'arrow':
      return Readable.from([req.bytes], { objectMode: false })
    case 'json': {
      const { kind: _kind, ...fields } = req
      return Readable.from([Buffer.from(JSON.stringify(fields, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))], { objectMode: false })
    }
  }
}

/** A failure of a write task as the client should see it (`shardUpper`: the upper the task was given). */
export function writeError(err: unknown, tk: TimestampKind, shardUpper: Antichain): unknown {
  if (err instanceof WorkerExitError) {
    return new AppError('INTERNAL', 'the worker thread serving this write stopped before it finished; nothing was written (retry it)', {}, { cause: err })
  }
  // NB: a worker's failure details hold no frontier: the upper it checked against is the one it was given.
  if (err instanceof TaskError && err.code === 'UPPER_MISMATCH') return new AppError('UPPER_MISMATCH', err.message, { currentUpper: ac.toJson(tk, shardUpper) }, { cause: err })
  if (err instanceof TaskError && isErrorCode(err.code)) return new AppError(err.code, err.message, err.details, { cause: err })
  return err
}

export function isErrorCode(code: string): code is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(code)
}

export function notAvailable(tk: TimestampKind, asOf: Timestamp, s: ShardState): AppError {
  const since = sinceOf(s)
  const upper = upperOf(s)
  return new AppError('AS_OF_NOT_AVAILABLE', `query.asOf: ${tk.format(asOf)} is not in [since ${ac.format(tk, since)}, upper ${ac.format(tk, upper)})`, {
    since: ac.toJson(tk, since),
    upper: ac.toJson(tk, upper),
  })
}

export function notFound(shardId: ShardId): AppError {
  return new AppError('SHARD_NOT_FOUND', `shard ${shardId} does not exist`)
}

export function deletedError(s: ShardState): AppError {
  return new AppError('SHARD_DELETED', `shard ${s.shardId} was deleted at ${s.deletedAt}; its data is being collected and nothing more can be done with it`, {
    deletedAt: s.deletedAt,
  })
}
