/**
 * Zod schemas of the v1 wire format (docs/api.md#conventions), shared by the route plugins. Shapes only: what a
 * value means for a given shard (a u64 vs a product frontier, a row against a schema) is checked by
 * the services with the core parsers, which name the offending field.
 */
import { z } from 'zod'
import { COMPACTION_KINDS, COMPACTION_STATUSES, REASON_CODES } from '../compact/compaction.js'
import { ID_PATTERNS } from '../core/ids.js'
import { APPLY_MERGE_RESULTS as APPLY_RESULTS } from '../trace/apply-merge-res.js'

export { ErrorBody } from './error-body.js'
import { ErrorBody } from './error-body.js'

export const TimestampJson = z
  .union([z.number().int().nonnegative(), z.string().regex(/^(0|[1-9][0-9]*)$/), z.tuple([z.number().int(), z.number().int()])])
  .meta({ id: 'Timestamp', description: 'u64: a number up to 2^53-1 or a decimal string; product: [a, b].' })

export const AntichainJson = z.array(TimestampJson).meta({ id: 'Antichain', description: 'A frontier: mutually incomparable timestamps, e.g. [5], [], [[0,11],[10,0]].' })

export const DescriptionJson = z.object({ lower: AntichainJson, upper: AntichainJson, since: AntichainJson }).meta({ id: 'Description' })

export const DiffJson = z.union([z.number().int(), z.string().regex(/^-?(0|[1-9][0-9]*)$/)]).meta({ description: 'A signed 64-bit integer: a number when safe, else a decimal string.' })

export const RunOrderJson = z.enum(['structured', 'codec', 'unordered'])

export const PartJson = z
  .union([
    z.object({
      key: z.string().describe('<writerKey>/<partId>'),
      encodedSizeBytes: z.number().int().nonnegative(),
      keyLower: z.string().optional(),
      diffsSum: DiffJson.nullable().optional(),
      schemaId: z.number().int().nonnegative().nullable().optional(),
      stats: z
        .object({
          updates: z.number().int().nonnegative(),
          batchBytes: z.number().int().nonnegative().optional().describe('bytes of the largest record batch, for a part written in several (compaction reads it a batch at a time)'),
        })
        .optional(),
    }),
    z.object({ inline: z.object({ encodedSizeBytes: z.number().int().nonnegative(), updates: z.string().describe('base64 Arrow IPC file') }) }),
  ])
  .meta({ id: 'Part' })

export const HollowBatchJson = z
  .object({
    desc: DescriptionJson,
    len: z.number().int().nonnegative(),
    parts: z.array(PartJson),
    runSplits: z.array(z.number().int().nonnegative()).optional(),
    runMeta: z.array(z.object({ order: RunOrderJson.nullable().optional(), schemaId: z.number().int().nonnegative().nullable().optional() })).optional(),
  })
  .meta({ id: 'HollowBatch' })

export type DataTypeShape =
  | { type: 'utf8' | 'binary' | 'int64' | 'uint64' | 'float64' | 'bool' | 'unit' }
  | { type: 'struct'; fields: { name: string; type: DataTypeShape; nullable: boolean }[] }

export const DataTypeJson: z.ZodType<DataTypeShape> = z
  .lazy(() =>
    z.union([
      z.object({ type: z.enum(['utf8', 'binary', 'int64', 'uint64', 'float64', 'bool', 'unit']) }),
      z.object({ type: z.literal('struct'), fields: z.array(z.object({ name: z.string(), type: DataTypeJson, nullable: z.boolean() })) }),
    ]),
  )
  .meta({ id: 'Type' })

export const ShardIdParam = z.object({ shardId: z.string().regex(new RegExp(ID_PATTERNS.shardId), 'must be a shard id s<uuid>') })

export const ShardSummaryJson = z
  .object({
    shardId: z.string(),
    name: z.string(),
    timestamp: z.enum(['u64', 'product']),
    seqno: z.number().int(),
    since: AntichainJson,
    upper: AntichainJson,
    stats: z
      .object({
        spineBatches: z.number().int(),
        batches: z.number().int(),
        parts: z.number().int(),
        runs: z.number().int(),
        updates: z.number().int().meta({ description: 'Σ len: an upper bound until batches are compacted.' }),
        encodedBytes: z.number().int(),
        backlogBatches: z.number().int().meta({ description: 'Spine batches that are not compact: merge work the spine holds.' }),
        backlogBytes: z.number().int().meta({ description: 'Encoded bytes of those batches.' }),
      })
      .meta({ id: 'ShardStats' }),
  })
  .meta({ id: 'ShardSummary' })

const SpineBatchFields = {
  id: z.string(),
  desc: DescriptionJson,
  len: z.number().int(),
  level: z.number().int(),
  compact: z.boolean().meta({ description: 'One hollow batch of one run: no merge work left in it.' }),
}

const SpineMergesJson = z
  .array(z.object({ level: z.number().int(), id: z.string(), since: AntichainJson, remainingWork: z.number().int() }))
  .meta({ description: 'Fueling merges in progress, one per full level, lowest level first.' })

const ReaderLeasesJson = z
    .array(
      z
        .object({
          id: z.string().meta({ description: "The lease's id: one per instance process, shared by all its reads of the shard." }),
          instance: z.string().meta({ description: 'The id of the instance holding it (COMPACTD_INSTANCE_ID).' }),
          seqno: z.number().int().meta({ description: 'The oldest state version its reads may still use: GC keeps the parts of every version from here to the head.' }),
          expiresAt: z.string().meta({ description: 'When it lapses unless renewed (ISO 8601). An expired lease protects nothing and is dropped by the next GC.' }),
        })
        .meta({ id: 'ReaderLease' }),
    )
  .meta({ description: "Reader leases in the shard's state: snapshot reads in flight (or recent) on each instance." })

export const ShardJson = ShardSummaryJson.extend({
  schemas: z.array(z.object({ id: z.number().int(), keySchema: DataTypeJson, valSchema: DataTypeJson })),
  trace: z.object({ batches: z.array(z.object({ ...SpineBatchFields, batches: z.array(HollowBatchJson) })), merges: SpineMergesJson }),
  leases: ReaderLeasesJson,
}).meta({ id: 'Shard' })

export const ShardSpineJson = ShardSummaryJson.extend({
  trace: z.object({
    batches: z.array(
      z.object({
        ...SpineBatchFields,
        stats: z
          .object({ batches: z.number().int(), parts: z.number().int(), runs: z.number().int(), updates: z.number().int(), encodedBytes: z.number().int() })
          .meta({ id: 'SpineBatchStats', description: 'Counts of the spine batch: its hollow batches, their parts and runs, Σ len, encoded bytes.' }),
      }),
    ),
    merges: SpineMergesJson,
  }),
  leases: ReaderLeasesJson,
}).meta({ id: 'ShardSpine' })

export const UpdateJson = z.object({ key: z.unknown(), val: z.unknown(), time: TimestampJson, diff: DiffJson }).meta({ id: 'Update' })


const InputStatsJson = z.object({ batches: z.number().int(), parts: z.number().int(), runs: z.number().int(), updates: z.number().int(), encodedBytes: z.number().int() })

const ReasonJson = z.object({ code: z.enum(REASON_CODES), message: z.string() }).meta({ id: 'CompactionReason' })

export const CompactionJson = z
  .object({
    id: z.string(),
    shardId: z.string(),
    source: z.enum(['request', 'maintenance']),
    kind: z.enum(COMPACTION_KINDS).meta({
      description: 'merges: complete the merges in progress; major: merge whole spine batches into one at the shard\'s since; range: one merge of given or tiled inputs.',
    }),
    status: z.enum(COMPACTION_STATUSES).meta({ description: 'not_applied: it ran to its end but nothing it was asked to change changed (see reason).' }),
    desc: DescriptionJson,
    inputs: InputStatsJson,
    attempt: z.number().int().min(1).meta({ description: '1 for the first run; counts up when a lost run is started again.' }),
    instance: z.string().nullable().meta({ description: 'The instance running it; null while queued.' }),
    writerSchemaId: z.number().int(),
    schemaSelection: z.enum(['recent_schema', 'disabled', 'no_schema']).optional(),
    timeoutMs: z.number().int().optional(),
    createdAt: z.string(),
    startedAt: z.string().optional(),
    finishedAt: z.string().optional(),
    progress: z.object({
      updatesRead: z.number().int(),
      updatesWritten: z.number().int(),
      bytesRead: z.number().int(),
      bytesWritten: z.number().int(),
      partsWritten: z.number().int(),
      chunksDone: z.number().int(),
      chunksTotal: z.number().int(),
      chunksApplied: z.number().int().meta({ description: 'Chunks whose output is in the trace.' }),
      fraction: z.number().min(0).max(1).meta({ description: 'Share of the input updates read, 0..1; never falls; 1 once finished.' }),
      etaSeconds: z.number().nullable().meta({ description: 'Seconds left at the rate so far; null until something was read.' }),
    }),
    merges: z.array(
      z
        .object({
          desc: DescriptionJson,
          inputs: InputStatsJson,
          result: z.enum(APPLY_RESULTS),
          reason: ReasonJson.optional(),
          chunks: z.number().int().min(2).optional().meta({ description: 'Consecutive chunks of one merge that fared alike, as one entry: desc spans them, inputs sums theirs. Absent: one.' }),
        })
        .meta({ description: 'How one merge ended, or a run of its chunks (incremental compaction).' }),
    ),
    result: z.enum(APPLY_RESULTS).optional().meta({ description: 'The apply outcome, for a compaction of one merge.' }),
    output: HollowBatchJson.optional(),
    reason: ReasonJson.optional().meta({ description: 'Why it was skipped or did not apply (all or in part).' }),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  })
  .meta({ id: 'Compaction' })

/** Error responses a route may give, by status, for the OpenAPI document. */
export function errors<const S extends readonly number[]>(...statuses: S): { [K in S[number]]: typeof ErrorBody } {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody])) as { [K in S[number]]: typeof ErrorBody }
}
