/**
 * A shard's state: what consensus holds for it, one version per change. Values are immutable;
 * every change is a pure transition `(state, args) → Transition` that the machine commits with one
 * compare-and-set (and may run again against a newer state after a mismatch).
 *
 * A deleted shard's state is a **tombstone** (`deletedAt` set by `deleteShard`). It is final: every
 * transition that changes data refuses a tombstone itself, so a write racing the deletion is
 * refused atomically by whichever compare-and-set comes second. GC then deletes the shard's blobs
 * and truncates its versions down to the tombstone, which stays as the record that it existed.
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import { inlineBytes, type HollowBatch } from '../core/batch.js'
import type { ShardId } from '../core/ids.js'
import { jsonFieldsThen } from '../core/json-splice.js'
import { timestampKind, type TimestampKind, type TimestampKindName } from '../core/timestamp.js'
import { dataTypeEquals, dataTypeToJson, parseDataType, type DataType } from '../columnar/data-type.js'
import { checkEvolution } from '../columnar/evolution.js'
import { applied, type ApplyDetail, type ApplyMergeResult } from '../trace/apply-merge-res.js'
import { applyResult, type ApplyMode } from '../trace/apply-result.js'
import { WHOLE_BATCHES, type CompactionInput } from '../trace/compaction-input.js'
import type { FueledMergeReq } from '../trace/fueled-merge-req.js'
import { checkPush, completeMerges as traceCompleteMerges, downgradeSince as traceDowngradeSince, emptyTrace, pushBatch, type Trace } from '../trace/trace.js'
import { traceFromJson, traceToJson, traceToJsonBytes } from '../trace/trace-json.js'
import { traceInlineBytes } from '../trace/trace-summary.js'
import { breakWith, continueWith, type StateCodec, type Transition } from './machine.js'

export interface SchemaEntry {
  readonly id: number
  readonly key: DataType
  readonly val: DataType
}

export interface ShardState {
  readonly shardId: ShardId
  readonly name: string
  readonly createdAt: string
  readonly schemas: readonly SchemaEntry[]
  readonly trace: Trace
  /** When the shard was deleted (ISO 8601); absent while it is live. */
  readonly deletedAt?: string
  /**
   * The compactions allowed to change this shard's trace: one claim per job, holding the fencing
   * token of its current attempt (compact/job-runner.ts). A result offered with an older token is
   * refused, so at most one attempt of a job ever applies. Absent: none.
   */
  readonly claims?: readonly CompactionClaim[]
  /**
   * Reader leases: state versions from a lease's `seqno` on that an instance may still be reading,
   * so GC on every instance keeps their parts until the lease expires (read-leases-state.ts).
   * Absent: none.
   */
  readonly leases?: readonly ReadLease[]
}

/** One instance's hold on the state versions its reads of a shard use (read-leases-state.ts). */
export interface ReadLease {
  readonly id: string
  /** The holder's instance id. */
  readonly instance: string
  /** The oldest state version the holder may still read. */
  readonly seqno: number
  /** When the lease lapses unless renewed (ISO 8601). */
  readonly expiresAt: string
}

export interface CompactionClaim {
  /** The compaction (job) id. */
  readonly job: string
  /** Its attempt's fencing token. */
  readonly token: number
  /** When the attempt claimed (ISO 8601): claims older than a day are dropped by the next claim. */
  readonly at: string
  /**
   * Results applied under this job's claim, by this attempt and the ones it took over (absent: 0).
   * Counted in the apply's own compare-and-set, so a rescued attempt knows exactly whether an
   * earlier one applied chunks before it was lost.
   */
  readonly applied?: number
}

/** A compaction attempt's right to change the trace: its job and token. */
export interface Fence {
  readonly job: string
  readonly token: number
}

export const tkOf = (s: ShardState): TimestampKind => s.trace.tk
export const sinceOf = (s: ShardState): Antichain => s.trace.since
export const upperOf = (s: ShardState): Antichain => s.trace.upper

export function latestSchema(s: ShardState): SchemaEntry {
  const latest = s.schemas[s.schemas.length - 1]
  if (latest === undefined) throw new Error(`shard ${s.shardId} has no schema`)
  return latest
}

export function schemaById(s: ShardState, id: number): SchemaEntry | undefined {
  return s.schemas.find((e) => e.id === id)
}

export function newShardState(shardId: ShardId, name: string, kind: TimestampKindName, key: DataType, val: DataType, createdAt: string): ShardState {
  return { shardId, name, createdAt, schemas: [{ id: 0, key, val }], trace: emptyTrace(timestampKind(kind)) }
}

export const isDeleted = (s: ShardState): boolean => s.deletedAt !== undefined

// ---- transitions -----------------------------------------------------------------------------

/** Refused because the shard is a tombstone. */
export interface Deleted {
  readonly kind: 'deleted'
  readonly deletedAt: string
}

const deleted = (s: ShardState): Deleted => ({ kind: 'deleted', deletedAt: s.deletedAt as string })

export type DeleteShardResult = Deleted | { readonly kind: 'already_deleted'; readonly deletedAt: string }

/** Turns the shard into a tombstone deleted at `at` (ISO 8601); a tombstone stays as it is. */
export function deleteShard(s: ShardState, at: string): Transition<ShardState, DeleteShardResult> {
  if (s.deletedAt !== undefined) return breakWith({ kind: 'already_deleted', deletedAt: s.deletedAt })
  return continueWith({ ...s, deletedAt: at }, { kind: 'deleted', deletedAt: at })
}

export type RegisterSchemaResult = { readonly kind: 'registered'; readonly id: number } | { readonly kind: 'incompatible'; readonly error: string } | Deleted

/** Registers a schema evolved from the latest one; registering the latest again returns its id. */
export function registerSchema(s: ShardState, key: DataType, val: DataType): Transition<ShardState, RegisterSchemaResult> {
  if (isDeleted(s)) return breakWith(deleted(s))
  const latest = latestSchema(s)
  if (dataTypeEquals(latest.key, key) && dataTypeEquals(latest.val, val)) return breakWith({ kind: 'registered', id: latest.id })
  const problem = checkEvolution(latest.key, key, 'keySchema') ?? checkEvolution(latest.val, val, 'valSchema')
  if (problem !== null) return breakWith({ kind: 'incompatible', error: problem })
  const id = latest.id + 1
  return continueWith({ ...s, schemas: [...s.schemas, { id, key, val }] }, { kind: 'registered', id })
}

export type AppendResult =
  | { readonly kind: 'appended'; readonly mergeReqs: readonly FueledMergeReq[] }
  | { readonly kind: 'upper_mismatch'; readonly currentUpper: Antichain }
  | { readonly kind: 'inline_backpressure' }
  | { readonly kind: 'invalid'; readonly error: string }
  | Deleted

/**
 * Compare-and-append: `batch` is appended iff the shard's upper is `expectedUpper` and the batch
 * starts there. Inline parts may not push the state's inline bytes past `inlineTotalMaxBytes`
 * (the writer then moves them to blob and tries again).
 */
export function compareAndAppend(s: ShardState, batch: HollowBatch, expectedUpper: Antichain, inlineTotalMaxBytes: number): Transition<ShardState, AppendResult> {
  if (isDeleted(s)) return breakWith(deleted(s))
  const tk = tkOf(s)
  if (!ac.equals(tk, upperOf(s), expectedUpper)) return breakWith({ kind: 'upper_mismatch', currentUpper: upperOf(s) })
  if (!ac.equals(tk, batch.desc.lower, expectedUpper)) {
    return breakWith({ kind: 'invalid', error: `batch lower ${ac.format(tk, batch.desc.lower)} must equal the expected upper ${ac.format(tk, expectedUpper)}` })
  }
  if (ac.equals(tk, batch.desc.lower, batch.desc.upper)) return breakWith({ kind: 'appended', mergeReqs: [] })
  const problem = checkPush(s.trace, batch)
  if (problem !== null) return breakWith({ kind: 'invalid', error: problem })
  const added = inlineBytes(batch)
  if (added > 0 && stateInlineBytes(s) + added >= inlineTotalMaxBytes) return breakWith({ kind: 'inline_backpressure' })
  const { trace, mergeReqs } = pushBatch(s.trace, batch)
  return continueWith({ ...s, trace }, { kind: 'appended', mergeReqs })
}

export type DowngradeSinceResult = { readonly kind: 'ok' } | { readonly kind: 'regression'; readonly current: Antichain } | Deleted

/** Moves the since forward (or leaves it); never backwards. */
export function downgradeSince(s: ShardState, since: Antichain): Transition<ShardState, DowngradeSinceResult> {
  if (isDeleted(s)) return breakWith(deleted(s))
  const tk = tkOf(s)
  const current = sinceOf(s)
  if (!ac.frontierLessEqual(tk, current, since)) return breakWith({ kind: 'regression', current })
  if (ac.equals(tk, current, since)) return breakWith({ kind: 'ok' })
  return continueWith({ ...s, trace: traceDowngradeSince(s.trace, since) }, { kind: 'ok' })
}

/** Completes every merge in progress in the trace (see trace.ts `completeMerges`); writes nothing when none is. */
export function completeMerges(s: ShardState): Transition<ShardState, readonly FueledMergeReq[]> {
  if (isDeleted(s)) return breakWith([])
  const r = traceCompleteMerges(s.trace)
  if (!r.didWork) return breakWith([])
  return continueWith({ ...s, trace: r.trace }, r.mergeReqs)
}

/** Claims older than this are dropped when another is made (their attempts died long ago). */
const CLAIM_MAX_AGE_MS = 24 * 60 * 60 * 1000

export type ClaimResult = { readonly kind: 'claimed' } | { readonly kind: 'fenced'; readonly token: number } | Deleted

/**
 * Records that attempt `token` of compaction `job` may change the trace (replacing an older
 * attempt's claim); refused (`fenced`) when a newer attempt has claimed already.
 */
export function claimCompaction(s: ShardState, job: string, token: number, at: string): Transition<ShardState, ClaimResult> {
  if (isDeleted(s)) return breakWith(deleted(s))
  const current = s.claims?.find((c) => c.job === job)
  if (current !== undefined && current.token > token) return breakWith({ kind: 'fenced', token: current.token })
  if (current !== undefined && current.token === token) return breakWith({ kind: 'claimed' })
  const cutoff = Date.parse(at) - CLAIM_MAX_AGE_MS
  const kept = (s.claims ?? []).filter((c) => c.job !== job && Date.parse(c.at) >= cutoff)
  const claim: CompactionClaim = current?.applied === undefined ? { job, token, at } : { job, token, at, applied: current.applied }
  return continueWith({ ...s, claims: [...kept, claim] }, { kind: 'claimed' })
}

/** Drops attempt `token`'s claim of `job` (an older attempt's too); a newer attempt's stays. */
export function releaseClaim(s: ShardState, job: string, token: number): Transition<ShardState, null> {
  const current = s.claims?.find((c) => c.job === job)
  if (current === undefined || current.token > token) return breakWith(null)
  const claims = (s.claims ?? []).filter((c) => c.job !== job)
  const { claims: _dropped, ...rest } = s
  return continueWith(claims.length === 0 ? rest : { ...rest, claims }, null)
}

/** Why `fence` may not change the trace, or null when it holds the job's claim. */
function fenced(s: ShardState, fence: Fence): string | null {
  const current = s.claims?.find((c) => c.job === fence.job)
  if (current?.token === fence.token) return null
  return current === undefined
    ? `compaction ${fence.job} holds no claim on shard ${s.shardId} (its attempt ${fence.token} was given up)`
    : `attempt ${fence.token} of compaction ${fence.job} lost its claim to attempt ${current.token}`
}

/** How a compaction output fared in the trace, and why when it did not apply. */
export interface ApplyOutcome {
  readonly result: ApplyMergeResult
  /** Why it did not apply: the trace's answer, or the shard being deleted. */
  readonly detail: ApplyDetail | { readonly why: 'deleted' | 'fenced'; readonly message: string } | null
}

/**
 * Offers a compaction output to the trace: as persist does (`merge`: one spine batch, or hollow
 * batches inside one), or over a run of whole spine batches (`major`); replacing the hollow batches
 * its desc spans, or named runs of one hollow batch (`input`, trace/apply-result.ts). Applied under
 * a `fence`, it counts in the job's claim (`applied`). NB: a not-applied result still commits a new
 * version upstream (to linearize the no-op); compactd writes nothing for it, since nothing changed
 * and the machine knows exactly whether an earlier attempt committed. A deleted shard takes nothing
 * (`not_applied_no_match`: the compactor deletes the output).
 */
export function applyMergeRes(
  s: ShardState,
  output: HollowBatch,
  mode: ApplyMode = 'merge',
  fence: Fence | null = null,
  input: CompactionInput = WHOLE_BATCHES,
): Transition<ShardState, ApplyOutcome> {
  if (isDeleted(s)) return breakWith({ result: 'not_applied_no_match', detail: { why: 'deleted', message: `shard ${s.shardId} was deleted at ${s.deletedAt}` } })
  const lost = fence === null ? null : fenced(s, fence)
  if (lost !== null) return breakWith({ result: 'not_applied_no_match', detail: { why: 'fenced', message: lost } })
  const { trace, result, detail } = applyResult(s.trace, output, mode, input)
  if (trace === s.trace || !applied(result)) return breakWith({ result, detail })
  const claims = fence === null ? s.claims : s.claims?.map((c) => (c.job === fence.job ? { ...c, applied: (c.applied ?? 0) + 1 } : c))
  return continueWith({ ...s, trace, ...(claims === undefined ? {} : { claims }) }, { result, detail })
}

/** How many results attempts of `job` applied under its claim (0 when it holds none). */
export function appliedUnderClaim(s: ShardState, job: string): number {
  return s.claims?.find((c) => c.job === job)?.applied ?? 0
}

export function stateInlineBytes(s: ShardState): number {
  return traceInlineBytes(s.trace)
}

// ---- codec -----------------------------------------------------------------------------------

interface ShardStateJson {
  shardId: string
  name: string
  createdAt: string
  timestamp: TimestampKindName
  schemas: { id: number; keySchema: unknown; valSchema: unknown }[]
  trace: unknown
  deletedAt?: string
  claims?: { job: string; token: number; at: string; applied?: number }[]
  leases?: { id: string; instance: string; seqno: number; expiresAt: string }[]
}

/** Every field of a state's JSON but its trace. */
function fieldsJson(s: ShardState): Omit<ShardStateJson, 'trace'> {
  return {
    shardId: s.shardId,
    name: s.name,
    createdAt: s.createdAt,
    timestamp: tkOf(s).name,
    schemas: s.schemas.map((e) => ({ id: e.id, keySchema: dataTypeToJson(e.key), valSchema: dataTypeToJson(e.val) })),
    ...(s.deletedAt === undefined ? {} : { deletedAt: s.deletedAt }),
    ...(s.claims === undefined ? {} : { claims: s.claims.map((c) => ({ ...c })) }),
    ...(s.leases === undefined ? {} : { leases: s.leases.map((l) => ({ id: l.id, instance: l.instance, seqno: l.seqno, expiresAt: l.expiresAt })) }),
  }
}

export const shardStateCodec: StateCodec<ShardState> = {
  encode: (s): ShardStateJson => ({ ...fieldsJson(s), trace: traceToJson(s.trace) }),
  // NB: a whole state's trace bytes reuse what earlier states converted.
  encodeBytes: (s) => [Buffer.from(jsonFieldsThen(fieldsJson(s), 'trace')), ...traceToJsonBytes(s.trace), Buffer.from('}')],
  // NB: a tombstone is written whole, so GC can truncate every version below it.
  deltaBytes: (s, base) => (isDeleted(s) ? null : [Buffer.from(jsonFieldsThen(fieldsJson(s), 'trace')), ...traceToJsonBytes(s.trace, base.trace), Buffer.from('}')]),
  decode: (json) => decodeState(json, undefined),
  decodeDelta: (json, base) => decodeState(json, base),
}

/** A state's JSON, whole or (with `base`) a delta against `base` (its trace's unchanged batches by id). */
function decodeState(json: unknown, against: ShardState | undefined): ShardState {
  const j = json as ShardStateJson
  const tk = timestampKind(j.timestamp)
  const schemas = j.schemas.map((e) => {
    const key = parseDataType(e.keySchema)
    const val = parseDataType(e.valSchema)
    if (!key.ok || !val.ok) throw new Error(`stored schema ${e.id} of shard ${j.shardId} does not parse`)
    return { id: e.id, key: key.value, val: val.value }
  })
  const trace = traceFromJson(tk, j.trace, against?.trace)
  if (!trace.ok) throw new Error(`stored trace of shard ${j.shardId} does not parse: ${trace.error}`)
  const base: ShardState = { shardId: j.shardId as ShardId, name: j.name, createdAt: j.createdAt, schemas, trace: trace.value }
  const claims = Array.isArray(j.claims)
    ? j.claims.map((c) => Object.freeze(typeof c.applied === 'number' ? { job: c.job, token: c.token, at: c.at, applied: c.applied } : { job: c.job, token: c.token, at: c.at }))
    : undefined
  const leases = Array.isArray(j.leases) ? j.leases.map((l) => Object.freeze({ id: l.id, instance: l.instance, seqno: l.seqno, expiresAt: l.expiresAt })) : undefined
  return {
    ...base,
    ...(typeof j.deletedAt === 'string' ? { deletedAt: j.deletedAt } : {}),
    ...(claims === undefined ? {} : { claims }),
    ...(leases === undefined ? {} : { leases }),
  }
}
