/**
 * The compactor's port onto shards: turns a submission into a validated request against the
 * shard's current state, applies results through `Shards` (the same compare-and-set loop and lease
 * as every other command), and deletes unreferenced outputs.
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import { parseBatch, type HollowBatch, type HollowPart } from '../core/batch.js'
import { description } from '../core/description.js'
import type { ShardId } from '../core/ids.js'
import { blobKey, type PartialBatchKey } from '../core/paths.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { CompactionRequest, ResolvedRequest, SubmitBody } from './compaction.js'
import { outputOf } from './job-outputs.js'
import type { ApplyOutcome, CompactorShards, Fence, Replanned, Rescue } from './compactor-port.js'
import { validateRequest } from './plan.js'
import type { DataType } from '../columnar/data-type.js'
import type { DynamicConfigs } from '../dyncfg/dynamic-configs.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import { WHOLE_BATCHES, type CompactionInput } from '../trace/compaction-input.js'
import { remainingInputs, withoutParts, type RemainingGroup } from '../trace/remaining-inputs.js'
import { isCompact } from '../trace/spine-batch.js'
import { batchesTiling, sinceForRange } from '../trace/tiling.js'
import { allHollowBatches, completeMerges as completeMergesOf, nonCompactMergeReqs, spineBatches, spineBoundaries } from '../trace/trace.js'
import { runLimited } from '../shard/batch-writer.js'
import type { Shards } from '../shard/shards.js'
import { appliedUnderClaim, latestSchema, schemaById, tkOf, type ShardState } from '../shard/state.js'

export interface CompactorShardsDeps {
  /** State reads (`get`: SHARD_NOT_FOUND when the shard has none), applies, and GC pins. */
  readonly shards: Pick<Shards, 'get' | 'applyMergeRes' | 'completeMerges' | 'claimCompaction' | 'releaseClaim' | 'leases'>
  readonly blob: Blob
  readonly dyncfg: Pick<DynamicConfigs, 'snapshot'>
  /** How long an output stays pinned at most (outputs of `POST /v1/compact` are never applied here). */
  readonly pinTtlMs?: number
}

const invalid = (message: string): AppError => new AppError('INVALID_COMPACTION', message)

export function createCompactorShards(deps: CompactorShardsDeps): CompactorShards & {
  lookupSchema(shardId: ShardId, schemaId: number): Promise<{ key: DataType; val: DataType }>
  requestFor(state: ShardState, desc: ResolvedRequest['desc'], inputs: readonly HollowBatch[], writerSchemaId?: number): ResolvedRequest
  /** A maintenance compaction of one merge request of the spine (kind `range`). */
  maintenanceRequest(state: ShardState, desc: ResolvedRequest['desc'], inputs: readonly HollowBatch[]): CompactionRequest
  pinOutput(shardId: ShardId, key: PartialBatchKey): void
} {
  // Outputs uploaded but not yet applied or deleted: GC must not take them meanwhile.
  const pins = new Map<string, () => void>()
  const unpin = (shardId: ShardId, keys: readonly PartialBatchKey[]): void => {
    for (const key of keys) {
      const full = blobKey(shardId, key)
      pins.get(full)?.()
      pins.delete(full)
    }
  }
  const outputKeys = (output: HollowBatch | readonly PartialBatchKey[]): readonly PartialBatchKey[] =>
    Array.isArray(output) ? (output as readonly PartialBatchKey[]) : (output as HollowBatch).parts.flatMap((p) => (p.kind === 'hollow' ? [p.key] : []))

  const requestFor = (state: ShardState, desc: ResolvedRequest['desc'], inputs: readonly HollowBatch[], writerSchemaId = latestSchema(state).id, apply: ResolvedRequest['apply'] = 'merge'): ResolvedRequest => ({
    shardId: state.shardId,
    tk: tkOf(state),
    desc,
    inputs,
    writerSchemaId,
    knownSchemaIds: new Set(state.schemas.map((s) => s.id)),
    apply,
  })

  /**
   * The one merge of a major compaction over `range` (null: the whole trace) at `since` (default:
   * the shard's since): `none` when there is nothing to do (no updates, or already one batch of one
   * run at that since), `invalid` when the range is not made of whole spine batches.
   */
  const majorRequest = (
    state: ShardState,
    range: CompactionRequest['range'],
    since: Antichain | undefined,
    writerSchemaId: number,
  ): { kind: 'merge'; req: ResolvedRequest } | { kind: 'none' } | { kind: 'invalid'; message: string } => {
    const tk = tkOf(state)
    const all = spineBatches(state.trace)
    const lower = range?.lower ?? ac.minimumFrontier(tk)
    const upper = range?.upper ?? state.trace.upper
    const where = `from ${ac.format(tk, lower)} to ${ac.format(tk, upper)}`
    if (ac.equals(tk, lower, upper)) return range === null ? { kind: 'none' } : { kind: 'invalid', message: `desc: ${where} is an empty range` }
    const first = all.findIndex((sb) => ac.equals(tk, sb.desc.lower, lower))
    const last = first < 0 ? -1 : all.findLastIndex((sb, i) => i >= first && ac.equals(tk, sb.desc.upper, upper))
    if (first < 0 || last < 0) return { kind: 'invalid', message: `desc: ${where} is not made of whole spine batches (${spineBoundaries(state.trace)})` }
    const target = since ?? state.trace.since
    if (!ac.frontierLessEqual(tk, target, state.trace.since)) {
      return { kind: 'invalid', message: `desc.since: ${ac.format(tk, target)} is beyond the shard's since ${ac.format(tk, state.trace.since)}; downgrade the since first` }
    }
    const covered = all.slice(first, last + 1)
    const inputs = covered.flatMap((sb) => sb.parts.map((p) => p.batch))
    const only = covered.length === 1 ? covered[0] : undefined
    const done = only !== undefined && isCompact(only) && ac.equals(tk, only.desc.since, target)
    if (inputs.every((b) => b.len === 0) || done) return { kind: 'none' }
    const desc = description(lower, upper, target)
    const problem = validateRequest(tk, desc, inputs)
    if (problem !== null) return { kind: 'invalid', message: problem }
    return { kind: 'merge', req: requestFor(state, desc, inputs, writerSchemaId, 'major') }
  }

  return {
    requestFor,

    maintenanceRequest(state: ShardState, desc: ResolvedRequest['desc'], inputs: readonly HollowBatch[]): CompactionRequest {
      const req = requestFor(state, desc, inputs)
      return { kind: 'range', shardId: state.shardId, tk: req.tk, writerSchemaId: req.writerSchemaId, range: null, merges: [req] }
    },

    pinOutput(shardId: ShardId, key: PartialBatchKey): void {
      const full = blobKey(shardId, key)
      const release = deps.shards.leases.pin(shardId, [full])
      const timer = setTimeout(() => unpin(shardId, [key]), deps.pinTtlMs ?? 60 * 60 * 1000)
      timer.unref()
      pins.set(full, () => {
        clearTimeout(timer)
        release()
      })
    },

    async resolve(shardId: ShardId, body: SubmitBody): Promise<CompactionRequest> {
      const { state } = await deps.shards.get(shardId)
      const tk = tkOf(state)
      const writerSchemaId = body.writerSchemaId ?? latestSchema(state).id
      if (schemaById(state, writerSchemaId) === undefined) throw invalid(`writerSchemaId ${writerSchemaId} is not a schema of this shard`)
      const request = (kind: CompactionRequest['kind'], merges: readonly ResolvedRequest[], range: CompactionRequest['range'] = null): CompactionRequest => ({
        kind,
        shardId,
        tk,
        writerSchemaId,
        range,
        merges,
        // Nothing to do: the record shows what was looked at, not an empty range.
        ...(merges.length === 0
          ? { considered: description(range?.lower ?? ac.minimumFrontier(tk), range?.upper ?? state.trace.upper, body.desc?.since === undefined ? state.trace.since : frontier(tk, body.desc.since, 'desc.since')) }
          : {}),
      })

      if (body.major === true) {
        if (body.inputs !== undefined) throw invalid('inputs: a major compaction takes the trace\'s own batches; leave inputs out (give desc to compact a range of whole spine batches)')
        const range = body.desc === undefined ? null : { lower: frontier(tk, body.desc.lower, 'desc.lower'), upper: frontier(tk, body.desc.upper, 'desc.upper') }
        const since = body.desc?.since === undefined ? undefined : frontier(tk, body.desc.since, 'desc.since')
        const major = majorRequest(state, range, since, writerSchemaId)
        if (major.kind === 'invalid') throw invalid(major.message)
        return request('major', major.kind === 'merge' ? [major.req] : [], range)
      }

      if (body.desc === undefined && body.inputs === undefined) {
        // What completing the merges in progress would leave to compact (the runner does it for real).
        const completed = { ...state, trace: completeMergesOf(state.trace).trace }
        return request('merges', nonCompactMergeReqs(completed.trace).map((r) => requestFor(completed, r.desc, r.inputs.map((i) => i.batch), writerSchemaId)))
      }

      const lower = body.desc === undefined ? ac.minimumFrontier(tk) : frontier(tk, body.desc.lower, 'desc.lower')
      const upper = body.desc === undefined ? state.trace.upper : frontier(tk, body.desc.upper, 'desc.upper')
      let inputs: HollowBatch[]
      if (body.inputs !== undefined) {
        inputs = body.inputs.map((json, i) => {
          const parsed = parseBatch(tk, shardId, json, `inputs[${i}]`)
          if (!parsed.ok) throw invalid(parsed.error)
          return parsed.value
        })
        inputs = withStoredStats(state, inputs)
      } else {
        const tiling = batchesTiling(state.trace, lower, upper)
        if (tiling === null) {
          throw invalid(`no batches of the trace exactly tile from ${ac.format(tk, lower)} to ${ac.format(tk, upper)}; give inputs or another desc (${spineBoundaries(state.trace)})`)
        }
        const spans = spineBatchesOverlapping(state.trace, lower, upper)
        if (spans > 1) {
          throw invalid(
            `from ${ac.format(tk, lower)} to ${ac.format(tk, upper)} spans ${spans} spine batches, and a result applies only to one spine batch or to hollow batches inside one; ` +
              `send "major": true to merge whole spine batches into one, or a desc inside one spine batch (${spineBoundaries(state.trace)})`,
          )
        }
        inputs = tiling
      }
      let since: Antichain
      if (body.desc?.since !== undefined) {
        since = frontier(tk, body.desc.since, 'desc.since')
      } else if (body.inputs === undefined) {
        since = sinceForRange(state.trace, lower, upper) ?? joinSinces(tk, inputs)
      } else {
        since = joinSinces(tk, inputs)
      }
      const desc = description(lower, upper, since)
      const problem = validateRequest(tk, desc, inputs)
      if (problem !== null) throw invalid(problem)
      checkSchemaIds(state, inputs)
      if (body.inputs !== undefined) await checkPartsExist(deps.blob, shardId, inputs)
      return request('range', [requestFor(state, desc, inputs, writerSchemaId)])
    },

    async replan(req: CompactionRequest, rescue: Rescue | null = null): Promise<Replanned> {
      if (req.kind === 'range' && rescue === null) return { merges: req.merges, problem: null }
      const earlier = (state: ShardState): number => (rescue === null ? 0 : Math.max(rescue.appliedBefore, appliedUnderClaim(state, rescue.fence.job)))
      if (req.kind === 'range') {
        const { state } = await deps.shards.get(req.shardId)
        const appliedEarlier = earlier(state)
        // NB: nothing applied by earlier attempts: the request runs as submitted (if the trace
        // changed under it meanwhile, its outputs do not apply, as on a first attempt).
        if (appliedEarlier === 0) return { merges: req.merges, problem: null, appliedEarlier }
        return { merges: req.merges.flatMap((m) => remainingMerges(state, m)), problem: null, appliedEarlier }
      }
      // NB: planned from the state, as every attempt is; after earlier attempts applied chunks, their
      // own outputs (job-outputs.ts) are left out, so only the rest is compacted.
      const leaveOut = (state: ShardState, merges: readonly ResolvedRequest[]): readonly ResolvedRequest[] =>
        rescue === null || earlier(state) === 0 ? merges : merges.flatMap((m) => groupMerges(m, withoutParts(m.inputs, outputOf(rescue.fence.job))))
      if (req.kind === 'merges') {
        const { state } = await deps.shards.completeMerges(req.shardId)
        const merges = nonCompactMergeReqs(state.trace).map((r) => requestFor(state, r.desc, r.inputs.map((i) => i.batch), req.writerSchemaId))
        return { merges: leaveOut(state, merges), problem: null, appliedEarlier: earlier(state) }
      }
      const { state } = await deps.shards.get(req.shardId)
      const first = req.merges[0]
      const explicitSince = first !== undefined && req.range !== null ? first.desc.since : undefined
      const major = majorRequest(state, req.range, explicitSince, req.writerSchemaId)
      if (major.kind === 'invalid') return { merges: [], problem: { code: 'SPINE_MOVED', message: major.message }, appliedEarlier: earlier(state) }
      return { merges: leaveOut(state, major.kind === 'merge' ? [major.req] : []), problem: null, appliedEarlier: earlier(state) }
    },

    claimCompaction: (shardId, job, token) => deps.shards.claimCompaction(shardId, job, token),
    releaseClaim: (shardId, job, token) => deps.shards.releaseClaim(shardId, job, token),

    async applyMergeRes(shardId: ShardId, output: HollowBatch, mode: ResolvedRequest['apply'], fence: Fence | null, input: CompactionInput = WHOLE_BATCHES): Promise<ApplyOutcome> {
      try {
        return await deps.shards.applyMergeRes(shardId, output, mode, fence, input)
      } finally {
        // Applied: state references the parts. Not applied: the compactor deletes them next.
        // Unknown: GC decides later by what state references.
        unpin(shardId, outputKeys(output))
      }
    },

    async inputsHeld(shardId: ShardId, inputs: readonly HollowBatch[]): Promise<boolean> {
      let state: ShardState
      try {
        ;({ state } = await deps.shards.get(shardId))
      } catch (err) {
        if (err instanceof AppError && (err.code === 'SHARD_NOT_FOUND' || err.code === 'SHARD_DELETED')) return false
        throw err
      }
      const referenced = new Set(allHollowBatches(state.trace).flatMap((b) => b.parts.flatMap((p) => (p.kind === 'hollow' ? [p.key] : []))))
      return inputs.every((b) => b.parts.every((p) => p.kind !== 'hollow' || referenced.has(p.key)))
    },

    async deleteOutputParts(shardId: ShardId, output: HollowBatch | readonly PartialBatchKey[]): Promise<void> {
      const keys = outputKeys(output)
      const limit = Math.max(1, deps.dyncfg.snapshot().persist_gc_blob_delete_concurrency_limit)
      await runLimited(
        keys.map((key) => () => deps.blob.delete(blobKey(shardId, key))),
        limit,
      )
      unpin(shardId, keys)
    },

    async lookupSchema(shardId: ShardId, schemaId: number): Promise<{ key: DataType; val: DataType }> {
      const { state } = await deps.shards.get(shardId)
      const entry = schemaById(state, schemaId)
      if (entry === undefined) throw new AppError('SCHEMA_INCOMPATIBLE', `schema ${schemaId} is not a schema of shard ${shardId}`)
      return { key: entry.key, val: entry.val }
    },
  }
}

function frontier(tk: TimestampKind, json: unknown, field: string): Antichain {
  const parsed = ac.parse(tk, json)
  if (!parsed.ok) throw new AppError('BAD_REQUEST', `body.${field}: ${parsed.error}`)
  return parsed.value
}

function joinSinces(tk: TimestampKind, inputs: readonly HollowBatch[]): Antichain {
  return inputs.reduce<Antichain>((acc, b) => ac.join(tk, acc, b.desc.since), ac.minimumFrontier(tk))
}

/** How many parts of client-given inputs are looked up at once. */
const PART_CHECKS_IN_FLIGHT = 16

/**
 * Refuses inputs naming a part the shard's blob storage does not hold (a one-byte ranged read
 * each), so a client's mistake is a 422 naming the part, before anything is queued or written.
 */
async function checkPartsExist(blob: Blob, shardId: ShardId, inputs: readonly HollowBatch[]): Promise<void> {
  const checks = inputs.flatMap((b, i) =>
    b.parts.flatMap((p, j) =>
      p.kind !== 'hollow'
        ? []
        : [
            async (): Promise<string | null> =>
              (await blob.get(blobKey(shardId, p.key), { range: { offset: 0, length: 1 } })) === null ? `inputs[${i}].parts[${j}]: part ${p.key} is not in the blob storage of shard ${shardId}` : null,
          ],
    ),
  )
  const missing = (await runLimited(checks, PART_CHECKS_IN_FLIGHT)).find((m) => m !== null)
  if (missing !== undefined && missing !== null) throw invalid(`${missing}; give parts the shard holds (write them first)`)
}

/**
 * Client-given inputs with each part's `stats` as the shard's state records them, where it still
 * references the part: `batchBytes` decides how much of the memory bound a part costs. A part the
 * state no longer references (a compaction replaced it) keeps the client's stats, which parsing
 * checked (`batchBytes` ≤ the part's size). NB: a client that understates them can make such a
 * compaction hold more than its memory bound.
 */
function withStoredStats(state: ShardState, inputs: readonly HollowBatch[]): HollowBatch[] {
  const stored = new Map<string, HollowPart['stats']>()
  for (const b of allHollowBatches(state.trace)) for (const p of b.parts) if (p.kind === 'hollow') stored.set(p.key, p.stats)
  return inputs.map((b) => ({
    ...b,
    parts: b.parts.map((p) => (p.kind !== 'hollow' ? p : { ...p, stats: stored.get(p.key) ?? p.stats })),
  }))
}

/** Refuses run schema ids the shard does not know. */
function checkSchemaIds(state: ShardState, inputs: readonly HollowBatch[]): void {
  for (const [i, b] of inputs.entries()) {
    for (const [j, m] of b.runMeta.entries()) {
      if (m.schemaId !== null && schemaById(state, m.schemaId) === undefined) throw invalid(`inputs[${i}].runMeta[${j}].schemaId ${m.schemaId} is not a schema of this shard`)
    }
  }
}

/** How many spine batches `[lower, upper)` overlaps. */
function spineBatchesOverlapping(trace: ShardState['trace'], lower: Antichain, upper: Antichain): number {
  const tk = trace.tk
  return spineBatches(trace).filter((sb) => !ac.frontierLessEqual(tk, sb.desc.upper, lower) && !ac.frontierLessEqual(tk, upper, sb.desc.lower) && !ac.equals(tk, sb.desc.lower, sb.desc.upper)).length
}

/**
 * What is left of merge `m` in the shard's trace (trace/remaining-inputs.ts): a merge per group of
 * its inputs still there, at the merge's since; a group of some runs of one batch has `scope: 'runs'`.
 */
function remainingMerges(state: ShardState, m: ResolvedRequest): ResolvedRequest[] {
  return groupMerges(m, remainingInputs(state.trace, m.inputs))
}

/** A merge like `m` per group of its inputs, at its since. */
function groupMerges(m: ResolvedRequest, groups: readonly RemainingGroup[]): ResolvedRequest[] {
  return groups.map((g): ResolvedRequest => {
    if (g.kind === 'runs') return { ...m, desc: description(g.batch.desc.lower, g.batch.desc.upper, m.desc.since), inputs: [g.batch], scope: 'runs' }
    const first = g.inputs[0] as HollowBatch
    const last = g.inputs[g.inputs.length - 1] as HollowBatch
    const { scope: _whole, ...rest } = m
    return { ...rest, desc: description(first.desc.lower, last.desc.upper, m.desc.since), inputs: g.inputs }
  })
}
