/**
 * HollowBatch: a batch's metadata (description, parts, run structure), its data living in blob
 * storage (hollow parts) or inline in state (small inline parts).
 *
 * Invariants (checked by `validateBatch`):
 * - `runSplits` strictly increasing, each in `(0, parts.length)`;
 * - `runMeta.length === runSplits.length + 1` when there are parts, both empty otherwise;
 * - `len ≥ 0`, and `len === 0` iff there are no parts is NOT required (a batch may be truncated).
 */
import * as ac from './antichain.js'
import { description, type Description, type DescriptionJson } from './description.js'
import * as descs from './description.js'
import type { ShardId } from './ids.js'
import { blobKeyForShard, parsePartialBatchKey, type PartialBatchKey } from './paths.js'
import type { TimestampKind } from './timestamp.js'

export const RUN_ORDERS = ['structured', 'codec', 'unordered'] as const
export type RunOrder = (typeof RUN_ORDERS)[number]

/**
 * Stored key lowers are cut to this many bytes (persist's `persist_batch_structured_key_lower_len`);
 * a cut key lower (a prefix) is still a lower bound of its part.
 */
export const KEY_LOWER_MAX_BYTES = 256

/** A part stored as one blob object. */
export interface HollowPart {
  readonly kind: 'hollow'
  readonly key: PartialBatchKey
  readonly encodedSizeBytes: number
  /** Base64 of the first key's sort encoding in the run's order, cut to KEY_LOWER_MAX_BYTES; '' when unknown. */
  readonly keyLower: string
  /** Wrapping i64 sum of the part's diffs; null when unknown. */
  readonly diffsSum: bigint | null
  readonly schemaId: number | null
  /**
   * `batchBytes`: bytes of the part's largest record batch, when it was written in several (what
   * reading it a batch at a time holds; compaction plans its memory by it). Absent: read whole.
   */
  readonly stats: { readonly updates: number; readonly batchBytes?: number }
}

/** A small part kept inside shard state: the Arrow IPC file bytes themselves. */
export interface InlinePart {
  readonly kind: 'inline'
  readonly encodedSizeBytes: number
  readonly updates: Uint8Array
}

export type BatchPart = HollowPart | InlinePart

export interface RunMeta {
  /** null is treated as `codec`, as persist does. */
  readonly order: RunOrder | null
  readonly schemaId: number | null
}

export interface HollowBatch {
  readonly desc: Description
  readonly len: number
  readonly parts: readonly BatchPart[]
  readonly runSplits: readonly number[]
  readonly runMeta: readonly RunMeta[]
}

export interface Run {
  readonly meta: RunMeta
  readonly parts: readonly BatchPart[]
}

export function emptyBatch(desc: Description): HollowBatch {
  return { desc, len: 0, parts: [], runSplits: [], runMeta: [] }
}

/** The batch's runs: parts cut at each split, zipped one to one with the run metadata. */
export function runs(b: HollowBatch): Run[] {
  const out: Run[] = []
  const bounds = [0, ...b.runSplits, b.parts.length]
  let metaIndex = 0
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i] as number
    const end = bounds[i + 1] as number
    if (start >= end) continue
    const meta = b.runMeta[metaIndex++]
    if (meta === undefined) throw new Error('batch has fewer run metas than runs')
    out.push({ meta, parts: b.parts.slice(start, end) })
  }
  if (metaIndex !== b.runMeta.length) throw new Error('batch has more run metas than runs')
  return out
}

export const partCount = (b: HollowBatch): number => b.parts.length
export const isEmpty = (b: HollowBatch): boolean => b.parts.length === 0
export const encodedSizeBytes = (b: HollowBatch): number => b.parts.reduce((s, p) => s + p.encodedSizeBytes, 0)
export const inlineBytes = (b: HollowBatch): number =>
  b.parts.reduce((s, p) => s + (p.kind === 'inline' ? p.encodedSizeBytes : 0), 0)

/** The largest part of a run, which is what one run costs in a compaction's memory budget. */
export function maxPartBytes(r: Run): number {
  return r.parts.reduce((m, p) => Math.max(m, p.encodedSizeBytes), 0)
}

/** Wrapping i64 addition, the diff semigroup. */
export function addDiff(a: bigint, b: bigint): bigint {
  return BigInt.asIntN(64, a + b)
}

/** Sum of the parts' diff sums, or null if any part's is unknown. Inline parts count as unknown. */
export function diffsSum(parts: readonly BatchPart[]): bigint | null {
  let sum = 0n
  for (const p of parts) {
    if (p.kind !== 'hollow' || p.diffsSum === null) return null
    sum = addDiff(sum, p.diffsSum)
  }
  return sum
}

/** Checks the structural invariants; returns the first violation as a sentence, or null. */
export function validateBatch(tk: TimestampKind, b: HollowBatch): string | null {
  if (!Number.isSafeInteger(b.len) || b.len < 0) return 'len must be a non-negative integer'
  let prev = 0
  for (const s of b.runSplits) {
    if (!Number.isInteger(s) || s <= prev || s >= b.parts.length) {
      return 'runSplits must be strictly increasing indices in (0, parts.length)'
    }
    prev = s
  }
  const expectedMeta = b.parts.length === 0 ? 0 : b.runSplits.length + 1
  if (b.runMeta.length !== expectedMeta) return `runMeta must have one entry per run (${expectedMeta})`
  if (!ac.frontierLessEqual(tk, b.desc.lower, b.desc.upper)) return 'desc.lower must not be beyond desc.upper'
  if (ac.equals(tk, b.desc.lower, b.desc.upper) && b.len > 0) return 'an empty interval [lower, lower) holds no updates'
  return null
}

// ---- JSON ------------------------------------------------------------------------------------

export type PartJson =
  | {
      key: string
      encodedSizeBytes: number
      keyLower: string
      diffsSum: number | string | null
      schemaId: number | null
      stats: { updates: number; batchBytes?: number }
    }
  | { inline: { encodedSizeBytes: number; updates: string } }

export interface HollowBatchJson {
  desc: DescriptionJson
  len: number
  parts: PartJson[]
  runSplits: number[]
  runMeta: { order: RunOrder | null; schemaId: number | null }[]
}

export function diffToJson(d: bigint): number | string {
  return d >= BigInt(Number.MIN_SAFE_INTEGER) && d <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(d) : d.toString()
}

const INT64_MIN = -(1n << 63n)
const INT64_MAX = (1n << 63n) - 1n
const SIGNED_DECIMAL = /^-?(0|[1-9][0-9]*)$/

/** Parses an i64 given as a safe integer or a decimal string. */
export function parseDiff(json: unknown): { ok: true; value: bigint } | { ok: false; error: string } {
  let v: bigint
  if (typeof json === 'number') {
    if (!Number.isSafeInteger(json)) return { ok: false, error: 'must be an integer (use a decimal string beyond 2^53)' }
    v = BigInt(json)
  } else if (typeof json === 'string' && SIGNED_DECIMAL.test(json)) {
    v = BigInt(json)
  } else {
    return { ok: false, error: 'must be an integer or a decimal string' }
  }
  if (v < INT64_MIN || v > INT64_MAX) return { ok: false, error: 'must fit in a signed 64-bit integer' }
  return { ok: true, value: v }
}

export function partToJson(p: BatchPart): PartJson {
  if (p.kind === 'inline') {
    return { inline: { encodedSizeBytes: p.encodedSizeBytes, updates: Buffer.from(p.updates).toString('base64') } }
  }
  return {
    key: p.key,
    encodedSizeBytes: p.encodedSizeBytes,
    keyLower: p.keyLower,
    diffsSum: p.diffsSum === null ? null : diffToJson(p.diffsSum),
    schemaId: p.schemaId,
    stats: p.stats.batchBytes === undefined ? { updates: p.stats.updates } : { updates: p.stats.updates, batchBytes: p.stats.batchBytes },
  }
}

export function batchToJson(tk: TimestampKind, b: HollowBatch): HollowBatchJson {
  return {
    desc: descs.toJson(tk, b.desc),
    len: b.len,
    parts: b.parts.map(partToJson),
    runSplits: [...b.runSplits],
    runMeta: b.runMeta.map((m) => ({ order: m.order, schemaId: m.schemaId })),
  }
}

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string }

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function parsePart(shardId: ShardId | null, json: unknown, at: string): Parsed<BatchPart> {
  if (typeof json !== 'object' || json === null) return { ok: false, error: `${at} must be an object` }
  const o = json as Record<string, unknown>
  if ('inline' in o) {
    const inl = o.inline as Record<string, unknown> | null
    if (typeof inl !== 'object' || inl === null) return { ok: false, error: `${at}.inline must be an object` }
    if (!isCount(inl.encodedSizeBytes)) return { ok: false, error: `${at}.inline.encodedSizeBytes must be a non-negative integer` }
    if (typeof inl.updates !== 'string' || !BASE64.test(inl.updates)) {
      return { ok: false, error: `${at}.inline.updates must be base64` }
    }
    const updates = new Uint8Array(Buffer.from(inl.updates, 'base64'))
    return { ok: true, value: { kind: 'inline', encodedSizeBytes: updates.byteLength, updates } }
  }
  if (typeof o.key !== 'string') return { ok: false, error: `${at}.key must be a string` }
  const key = parsePartialBatchKey(o.key)
  if (!key.ok) {
    if (shardId !== null) {
      const full = blobKeyForShard(shardId, o.key)
      if (!full.ok) return { ok: false, error: `${at}.key: ${full.error}` }
      const partial = parsePartialBatchKey(o.key.slice(o.key.indexOf('/') + 1))
      if (!partial.ok) return { ok: false, error: `${at}.key: ${partial.error}` }
      return parseHollowRest(o, partial.value.key, at)
    }
    return { ok: false, error: `${at}.key: ${key.error}` }
  }
  return parseHollowRest(o, key.value.key, at)
}

function parseHollowRest(o: Record<string, unknown>, key: PartialBatchKey, at: string): Parsed<BatchPart> {
  if (!isCount(o.encodedSizeBytes)) return { ok: false, error: `${at}.encodedSizeBytes must be a non-negative integer` }
  const keyLower = o.keyLower ?? ''
  if (typeof keyLower !== 'string' || !BASE64.test(keyLower)) return { ok: false, error: `${at}.keyLower must be base64` }
  let diffs: bigint | null = null
  if (o.diffsSum !== undefined && o.diffsSum !== null) {
    const d = parseDiff(o.diffsSum)
    if (!d.ok) return { ok: false, error: `${at}.diffsSum ${d.error}` }
    diffs = d.value
  }
  const schemaId = o.schemaId ?? null
  if (schemaId !== null && !isCount(schemaId)) return { ok: false, error: `${at}.schemaId must be a non-negative integer or null` }
  const stats = (o.stats ?? {}) as Record<string, unknown>
  const updates = stats.updates ?? 0
  if (!isCount(updates)) return { ok: false, error: `${at}.stats.updates must be a non-negative integer` }
  const batchBytes = stats.batchBytes
  if (batchBytes !== undefined && (!isCount(batchBytes) || batchBytes > o.encodedSizeBytes)) {
    return { ok: false, error: `${at}.stats.batchBytes must be a non-negative integer no larger than encodedSizeBytes` }
  }
  return {
    ok: true,
    value: { kind: 'hollow', key, encodedSizeBytes: o.encodedSizeBytes, keyLower, diffsSum: diffs, schemaId, stats: batchBytes === undefined ? { updates } : { updates, batchBytes } },
  }
}

/**
 * Parses and validates a JSON HollowBatch. With a `shardId`, full part keys are accepted only when
 * they name that shard (partial keys always belong to the shard whose state holds them).
 */
export function parseBatch(tk: TimestampKind, shardId: ShardId | null, json: unknown, at = 'batch'): Parsed<HollowBatch> {
  if (typeof json !== 'object' || json === null) return { ok: false, error: `${at} must be an object` }
  const o = json as Record<string, unknown>
  const d = descs.parse(tk, o.desc)
  if (!d.ok) return { ok: false, error: `${at}.desc.${d.error}` }
  if (!isCount(o.len)) return { ok: false, error: `${at}.len must be a non-negative integer` }
  if (!Array.isArray(o.parts)) return { ok: false, error: `${at}.parts must be an array` }
  const parts: BatchPart[] = []
  for (const [i, pj] of o.parts.entries()) {
    const p = parsePart(shardId, pj, `${at}.parts[${i}]`)
    if (!p.ok) return p
    parts.push(p.value)
  }
  const splitsJson = o.runSplits ?? []
  if (!Array.isArray(splitsJson) || !splitsJson.every(isCount)) return { ok: false, error: `${at}.runSplits must be an array of integers` }
  const metaJson = o.runMeta ?? []
  if (!Array.isArray(metaJson)) return { ok: false, error: `${at}.runMeta must be an array` }
  const runMeta: RunMeta[] = []
  for (const [i, mj] of metaJson.entries()) {
    const m = (mj ?? {}) as Record<string, unknown>
    const order = m.order ?? null
    if (order !== null && !RUN_ORDERS.includes(order as RunOrder)) {
      return { ok: false, error: `${at}.runMeta[${i}].order must be one of ${RUN_ORDERS.join(', ')}` }
    }
    const schemaId = m.schemaId ?? null
    if (schemaId !== null && !isCount(schemaId)) return { ok: false, error: `${at}.runMeta[${i}].schemaId must be a non-negative integer or null` }
    runMeta.push({ order: order as RunOrder | null, schemaId })
  }
  const batch: HollowBatch = { desc: description(d.value.lower, d.value.upper, d.value.since), len: o.len, parts, runSplits: splitsJson, runMeta }
  const invalid = validateBatch(tk, batch)
  if (invalid !== null) return { ok: false, error: `${at}: ${invalid}` }
  return { ok: true, value: batch }
}
