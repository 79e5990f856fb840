/**
 * The compactor's port onto shards: turns a submission into a validated request against the
 * shard's current state, applies results through `Shards` (the same compare-and-set loop and lease
 * as every other command), and deletes unreferenced outputs.
 */
import * as ac from '../core/antichain.js'
import type { Antichain } from '../core/antichain.js'
import { parseBatch, type HollowBatch } from '../core/batch.js'
import { description } from '../core/description.js'
import type { ShardId } from '../core/ids.js'
import { blobKey, type PartialBatchKey } from '../core/paths.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { ApplyResult, ResolvedRequest, SubmitBody } from './compaction.js'
import type { CompactorShards } from './compactor-port.js'
import { validateRequest } from './plan.js'
import type { DataType } from '../columnar/data-type.js'
import type { DynamicConfigs } from '../dyncfg/dynamic-configs.js'
import { AppError } from '../errors.js'
import type { Blob } from '../location/blob.js'
import { batchesTiling, sinceForRange } from '../trace/tiling.js'
import { runLimited } from '../shard/batch-writer.js'
import type { Shards } from '../shard/shards.js'
import { latestSchema, schemaById, tkOf, type ShardState } from '../shard/state.js'

export interface CompactorShardsDeps {
  /** State reads (`get`: SHARD_NOT_FOUND when the shard has none), applies, and GC pins. */
  readonly shards: Pick<Shards, 'get' | 'applyMergeRes' | 'leases'>
  readonly blob: Blob
  readonly dyncfg: Pick<DynamicConfigs, 'snapshot'>
  /** How long an output stays pinned at most (outputs of `POST /v1/compact` are never applied here). */
  readonly pinTtlMs?: number
}

const invalid = (message: string): AppError => new AppError('INVALID_COMPACTION', message)

export function createCompactorShards(deps: CompactorShardsDeps): CompactorShards & {
  lookupSchema(shardId: ShardId, schemaId: number): Promise<{ key: DataType; val: DataType }>
  requestFor(state: ShardState, desc: ResolvedRequest['desc'], inputs: readonly HollowBatch[]): ResolvedRequest
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

  const requestFor = (state: ShardState, desc: ResolvedRequest['desc'], inputs: readonly HollowBatch[], writerSchemaId = latestSchema(state).id): ResolvedRequest => ({
    shardId: state.shardId,
    tk: tkOf(state),
    desc,
    inputs,
    writerSchemaId,
    knownSchemaIds: new Set(state.schemas.map((s) => s.id)),
  })

  return {
    requestFor,

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

    async resolve(shardId: ShardId, body: SubmitBody): Promise<ResolvedRequest> {
      const { state } = await deps.shards.get(shardId)
      const tk = tkOf(state)
      const lower = body.desc === undefined ? ac.minimumFrontier(tk) : frontier(tk, body.desc.lower, 'desc.lower')
      const upper = body.desc === undefined ? state.trace.upper : frontier(tk, body.desc.upper, 'desc.upper')
      let inputs: HollowBatch[]
      if (body.inputs !== undefined) {
        inputs = body.inputs.map((json, i) => {
          const parsed = parseBatch(tk, shardId, json, `inputs[${i}]`)
          if (!parsed.ok) throw invalid(parsed.error)
          return parsed.value
        })
      } else {
        const tiling = batchesTiling(state.trace, lower, upper)
        if (tiling === null) {
          throw invalid(`no batches of the trace exactly tile [${ac.format(tk, lower)}, ${ac.format(tk, upper)}); give inputs or another desc`)
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
      for (const [i, b] of inputs.entries()) {
        for (const [j, m] of b.runMeta.entries()) {
          if (m.schemaId !== null && schemaById(state, m.schemaId) === undefined) throw invalid(`inputs[${i}].runMeta[${j}].schemaId ${m.schemaId} is not a schema of this shard`)
        }
      }
      const writerSchemaId = body.writerSchemaId ?? latestSchema(state).id
      if (schemaById(state, writerSchemaId) === undefined) throw invalid(`writerSchemaId ${writerSchemaId} is not a schema of this shard`)
      return requestFor(state, desc, inputs, writerSchemaId)
    },

    async applyMergeRes(shardId: ShardId, output: HollowBatch): Promise<ApplyResult> {
      try {
        return await deps.shards.applyMergeRes(shardId, output)
      } finally {
        // Applied: state references the parts. Not applied: the compactor deletes them next.
        // Unknown: GC decides later by what state references.
        unpin(shardId, outputKeys(output))
      }
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
