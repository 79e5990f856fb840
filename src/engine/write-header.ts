/**
 * A write's header: its frontiers and append fields, as a client sends them (in a JSON body, or
 * as JSON in the query string of an Arrow body), parsed and checked with errors naming the field;
 * and which rows of a batch lie outside its `[lower, upper)`.
 *
 * Shared by the main thread (Arrow bodies: checked before a byte of the body is read) and the
 * write task in a worker (JSON bodies: checked as the fields arrive).
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import * as descs from '../core/description.js'
import type { TimestampKind } from '../core/timestamp.js'
import { timeAt, type Updates } from '../columnar/updates.js'
import { AppError } from '../errors.js'
import type { WriteHeader } from './protocol.js'

/** The header's fields as received (JSON values; undefined when absent). */
export interface WriteHeaderFields {
  readonly lower?: unknown
  readonly upper?: unknown
  readonly append?: unknown
  readonly expectedUpper?: unknown
}

/** Where the fields came from: a JSON body, or the query string of an Arrow body. */
export type HeaderSource = 'body' | 'query'

/** The names of the header's fields. */
export const WRITE_HEADER_FIELDS = ['lower', 'upper', 'append', 'expectedUpper'] as const

/**
 * The frontiers `[lower, upper)` alone (enough to check rows against), or INVALID_BATCH naming the
 * field. NB: a missing frontier of an Arrow body is most likely one put in the body: the message
 * says where they go.
 */
export function parseWriteBounds(tk: TimestampKind, fields: WriteHeaderFields, where: HeaderSource): { readonly lower: Antichain; readonly upper: Antichain } {
  const lower = frontier(tk, fields.lower, `${where}.lower`, where)
  const upper = frontier(tk, fields.upper, `${where}.upper`, where)
  if (!ac.frontierLessEqual(tk, lower, upper)) throw new AppError('INVALID_BATCH', `${where}.upper: ${ac.format(tk, upper)} is before lower ${ac.format(tk, lower)}`)
  return { lower, upper }
}

/** The whole header, checked: INVALID_BATCH naming the field; BAD_REQUEST for an append that is not a boolean. */
export function parseWriteHeader(tk: TimestampKind, fields: WriteHeaderFields, where: HeaderSource): WriteHeader {
  const { lower, upper } = parseWriteBounds(tk, fields, where)
  if (fields.append !== undefined && typeof fields.append !== 'boolean') {
    throw new AppError('BAD_REQUEST', `${where}.append: expected boolean, received ${fields.append === null ? 'null' : typeof fields.append}`)
  }
  const append = fields.append ?? true
  const expectedUpper = fields.expectedUpper === undefined ? lower : frontier(tk, fields.expectedUpper, `${where}.expectedUpper`, where)
  if (append && !ac.equals(tk, expectedUpper, lower)) {
    throw new AppError('INVALID_BATCH', `${where}.expectedUpper: ${ac.format(tk, expectedUpper)} must equal lower ${ac.format(tk, lower)} to append`)
  }
  return { lower, upper, append, expectedUpper }
}

/**
 * UPPER_MISMATCH for an append that can never succeed: the shard's upper is not at or before its
 * `expectedUpper`, and an upper only advances. Checked before a write's rows are written (with the
 * upper the write began with) and again when its compare-and-append commits.
 */
export function refuseUnreachableAppend(tk: TimestampKind, header: WriteHeader, shardUpper: Antichain): void {
  if (header.append && !ac.frontierLessEqual(tk, shardUpper, header.expectedUpper)) throw upperMismatch(tk, header.expectedUpper, shardUpper)
}

/** 409 UPPER_MISMATCH: a compare-and-append expected `expected` as the shard's upper, which is `current`. */
export function upperMismatch(tk: TimestampKind, expected: Antichain, current: Antichain): AppError {
  return new AppError('UPPER_MISMATCH', `expectedUpper ${ac.format(tk, expected)} is not the shard's upper ${ac.format(tk, current)}`, {
    currentUpper: ac.toJson(tk, current),
  })
}

function frontier(tk: TimestampKind, json: unknown, field: string, where: HeaderSource): Antichain {
  if (json === undefined && where === 'query' && !field.endsWith('expectedUpper')) {
    throw new AppError('INVALID_BATCH', `${field}: missing; with an Arrow body, lower and upper go in the query string as JSON (e.g. ?lower=[0]&upper=[10])`)
  }
  const r = ac.parse(tk, json)
  if (!r.ok) throw new AppError('INVALID_BATCH', `${field}: ${r.error}`)
  return r.value
}

/**
 * Index of the first row of `u` whose time is outside `[lower, upper)`, or -1. u64 times are
 * compared as words (no bigint per row).
 */
export function firstRowOutside(tk: TimestampKind, u: Updates, desc: descs.Description): number {
  if (u.timeKind === 'u64' && desc.lower.length <= 1 && desc.upper.length <= 1) {
    if (desc.lower.length === 0) return u.length === 0 ? -1 : 0
    const [loHi, loLo] = words(desc.lower[0] as bigint)
    const noUpper = desc.upper.length === 0
    const [upHi, upLo] = noUpper ? [0, 0] : words(desc.upper[0] as bigint)
    const w = new Uint32Array(u.times.buffer, u.times.byteOffset, 2 * u.length)
    for (let i = 0; i < u.length; i++) {
      const lo = w[2 * i]!
      const hi = w[2 * i + 1]!
      if (hi < loHi || (hi === loHi && lo < loLo)) return i
      if (!noUpper && (hi > upHi || (hi === upHi && lo >= upLo))) return i
    }
    return -1
  }
  for (let i = 0; i < u.length; i++) if (!descs.contains(tk, desc, timeAt(u, i))) return i
  return -1
}

function words(t: bigint): [number, number] {
  return [Number(t >> 32n), Number(t & 0xffff_ffffn)]
}
