/**
 * The v1 wire format as the operator clients (console and compactctl) read it: the shapes of
 * docs/api.md, with every field the server may not send yet marked optional. NB: clients read these
 * defensively; a field missing from an older or newer server is shown as unknown, never a crash.
 */

export type TimestampJson = number | string | [number, number]
export type AntichainJson = TimestampJson[]

export interface DescriptionJson {
  lower: AntichainJson
  upper: AntichainJson
  since: AntichainJson
}

export interface ErrorJson {
  code: string
  message: string
  field?: string
  [extra: string]: unknown
}

export interface PartJson {
  key?: string
  encodedSizeBytes?: number
  inline?: { encodedSizeBytes: number }
}

export interface HollowBatchJson {
  desc: DescriptionJson
  len: number
  parts: PartJson[]
  runSplits?: number[]
  runMeta?: unknown[]
}

export interface ShardStatsJson {
  spineBatches: number
  batches: number
  parts: number
  runs: number
  updates: number
  encodedBytes: number
  backlogBatches?: number
  backlogBytes?: number
}

export interface ShardSummaryJson {
  shardId: string
  name: string
  timestamp: 'u64' | 'product'
  seqno: number
  since: AntichainJson
  upper: AntichainJson
  stats?: ShardStatsJson
}

export interface SpineBatchJson {
  id: string
  desc: DescriptionJson
  len: number
  level: number
  compact?: boolean
  batches: HollowBatchJson[]
}

export interface SpineMergeJson {
  level: number
  id: string
  since: AntichainJson
  remainingWork: number
}

export interface LeaseJson {
  id: string
  instance?: string | null
  seqno?: number
  expiresAt?: string
}

export interface ShardJson extends ShardSummaryJson {
  schemas?: { id: number; keySchema: unknown; valSchema: unknown }[]
  trace: { batches: SpineBatchJson[]; merges?: SpineMergeJson[] }
  leases?: LeaseJson[]
}

/** A spine batch counted, not listed (GET /v1/shards/{id}/spine). */
export interface SpineBatchSummaryJson extends Omit<SpineBatchJson, 'batches'> {
  stats: { batches: number; parts: number; runs: number; updates: number; encodedBytes: number }
}

/** A shard with its spine batches counted (GET /v1/shards/{id}/spine): bounded by the spine, not the trace. */
export interface ShardSpineJson extends ShardSummaryJson {
  trace: { batches: SpineBatchSummaryJson[]; merges?: SpineMergeJson[] }
  leases?: LeaseJson[]
}

/** A key or value type (docs/api.md#json-values). */
export type TypeJson =
  | { type: 'utf8' | 'binary' | 'int64' | 'uint64' | 'float64' | 'bool' | 'unit' }
  | { type: 'struct'; fields: { name: string; type: TypeJson; nullable: boolean }[] }

/** The body of `POST /v1/shards`. */
export interface CreateShardBody {
  name?: string
  timestamp: 'u64' | 'product'
  keySchema: TypeJson
  valSchema: TypeJson
}

/** One update as JSON: key and val as the schema's JSON values, diff a number or decimal string. */
export interface UpdateJson {
  key: unknown
  val: unknown
  time: TimestampJson
  diff: number | string
}

/** The JSON body of `POST /v1/shards/{id}/batches`. */
export interface WriteBatchBody {
  lower: AntichainJson
  upper: AntichainJson
  updates: UpdateJson[]
  append?: boolean
  expectedUpper?: AntichainJson
}

/** What a batch write answered: the batch, and (when appended) the shard's new seqno and upper. */
export interface WriteBatchResultJson {
  batch: HollowBatchJson
  appended: boolean
  seqno?: number
  upper?: AntichainJson
}

export interface GcResultJson {
  deletedParts: number
  deletedBytes: number
  truncatedBelowSeqno: number
}

export interface ShardPage {
  shards: ShardSummaryJson[]
  nextCursor?: string
}

export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled', 'skipped', 'not_applied'] as const
export const LIVE_STATUSES = ['queued', 'running'] as const
/** Every status a compaction may have; a server may add words, which clients show as they come. */
export const STATUSES = [...LIVE_STATUSES, ...FINAL_STATUSES] as const

export interface ProgressJson {
  updatesRead: number
  updatesWritten: number
  bytesRead: number
  bytesWritten: number
  partsWritten: number
  chunksDone: number
  chunksTotal: number
  chunksApplied?: number
  /** 0..1, when the server computes it. */
  fraction?: number
  etaSeconds?: number | null
}

export interface CompactionJson {
  id: string
  shardId: string
  source: string
  status: string
  desc: DescriptionJson
  inputs: { batches: number; parts: number; runs: number; updates: number; encodedBytes: number }
  writerSchemaId?: number
  schemaSelection?: string
  timeoutMs?: number
  createdAt: string
  startedAt?: string
  finishedAt?: string
  progress: ProgressJson
  result?: string
  output?: HollowBatchJson
  error?: { code: string; message: string }
  reason?: { code: string; message: string }
  /** `merges` (complete the merges in progress), `major`, or `range`. */
  kind?: 'merges' | 'major' | 'range'
  /** How each merge it ran ended (consecutive chunks of one merge that fared alike as one entry, `chunks` of them). */
  merges?: { desc: { lower: AntichainJson; upper: AntichainJson; since: AntichainJson }; result: string; reason?: { code: string; message: string }; chunks?: number }[]
  attempt?: number
  instance?: string | null
}

export interface CompactionPage {
  compactions: CompactionJson[]
  nextCursor?: string
}

export interface CompactionQuery {
  shardId?: string
  status?: string
  source?: string
  limit?: number
  cursor?: string
}

export interface DryRunPlanJson {
  heuristic: { inputs: number; parts: number; updates: number; wouldCompact: boolean }
  timeoutMs: number
  schemaSelection: string
  schemaId?: number
  runs: { input: number; order: string | null; schemaId: number | null; parts: number; encodedBytes: number; maxPartBytes: number; exploded: boolean }[]
  chunks: { runs: number[]; memoryBytes: number }[]
  memoryViolations: number
}

/** The body of `POST /v1/shards/{id}/compactions`. */
export interface SubmitBody {
  desc?: { lower: AntichainJson; upper: AntichainJson; since?: AntichainJson }
  major?: boolean
  wait?: boolean
  deadline?: string
  dryRun?: boolean
}

export interface ConfigJson {
  name: string
  type: string
  value: unknown
  default: unknown
  description: string
}

export interface ConfigChangeJson {
  at: string
  name: string
  old: unknown
  new: unknown
}

export interface ReadinessJson {
  status: string
  checks: Record<string, string>
}

export interface InstanceJson {
  id: string
  startedAt?: string
  heartbeatAt?: string
  version?: string
  running?: number
  self?: boolean
}

export interface CompactionEventJson {
  event: 'progress' | 'done' | string
  data: CompactionJson
}
