/**
 * The Compaction record: one compaction request's life, from submission to its end, as the
 * operator API shows it (API.md "Compaction"), and the values the compactor exchanges with its
 * collaborators (`ResolvedRequest`, `ApplyResult`, `DryRunPlan`).
 *
 * State table (every other transition is a programming error, refused by `nextStatus`):
 *
 * | from      | to          | when                                                                   | counters (besides gauges)                    |
 * |-----------|-------------|------------------------------------------------------------------------|----------------------------------------------|
 * | (new)     | `skipped`   | below all three heuristics (Stage A)                                   | skipped                                      |
 * | (new)     | `queued`    | passed the heuristics and the queue had room                           | requested                                    |
 * | (none)    | (none)      | passed the heuristics but the queue was full: 429, no record           | requested, dropped                           |
 * | `queued`  | `failed`    | dequeued while the kill switch is on: COMPACTION_DISABLED              | disabled                                     |
 * | `queued`  | `failed`    | the caller's deadline passed before a permit: DEADLINE_EXCEEDED        | (none: it never started)                     |
 * | `queued`  | `cancelled` | `cancel(id)`, or `stop()`: CANCELLED                                   | (none)                                       |
 * | `queued`  | `running`   | got a permit (Stage C begins)                                          | queued_seconds, started, schema_selection, fast_path_eligible |
 * | `running` | `succeeded` | compacted and applied (`result` says how; not-applied outputs deleted) | seconds, applied+exact/subset or noop(+too_many_updates) |
 * | `running` | `failed`    | TIMED_OUT / DEADLINE_EXCEEDED / an error; written outputs deleted      | seconds, failed (+timed_out)                 |
 * | `running` | `failed`    | the apply itself failed, outcome unknown: STORAGE_ERROR, nothing deleted | seconds, failed                            |
 * | `running` | `cancelled` | `cancel(id)` or `stop()` past its grace: CANCELLED; outputs deleted    | seconds                                      |
 *
 * `succeeded`, `failed`, `cancelled` and `skipped` are final.
 */
import * as ac from '../core/antichain.js'
import { batchToJson, type HollowBatch, type HollowBatchJson, type RunOrder } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { Description, DescriptionJson } from '../core/description.js'
import type { CompactionId, ShardId } from '../core/ids.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { ApplyMergeResult } from '../trace/apply-merge-res.js'
import type { HeuristicVerdict, SchemaSelectionLabel } from './plan.js'

export const COMPACTION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'skipped'] as const
export type CompactionStatus = (typeof COMPACTION_STATUSES)[number]

export const COMPACTION_SOURCES = ['request', 'maintenance'] as const
export type CompactionSource = (typeof COMPACTION_SOURCES)[number]

/** The codes a compaction may end with (API.md "Failure codes"). */
export const FAILURE_CODES = [
  'COMPACTION_DISABLED',
  'TIMED_OUT',
  'DEADLINE_EXCEEDED',
  'SCHEMA_INCOMPATIBLE',
  'STORAGE_ERROR',
  'CANCELLED',
  'INTERNAL',
] as const
export type FailureCode = (typeof FAILURE_CODES)[number]

/** The five outcomes of applying a result to the trace (PERSIST_SEMANTICS.md §5.3). */
export type ApplyResult = ApplyMergeResult

export interface CompactionError {
  readonly code: FailureCode
  readonly message: string
}

/** Counts so far (each field is a running total, not a delta). */
export interface Progress {
  readonly updatesRead: number
  readonly updatesWritten: number
  readonly bytesRead: number
  readonly bytesWritten: number
  readonly partsWritten: number
  readonly chunksDone: number
  readonly chunksTotal: number
}

export const NO_PROGRESS: Progress = Object.freeze({
  updatesRead: 0,
  updatesWritten: 0,
  bytesRead: 0,
  bytesWritten: 0,
  partsWritten: 0,
  chunksDone: 0,
  chunksTotal: 0,
})

export interface InputStats {
  readonly batches: number
  readonly parts: number
  readonly runs: number
  readonly updates: number
  readonly encodedBytes: number
}

/** One compaction, as an immutable snapshot: the compactor replaces it on every change. */
export interface Compaction {
  readonly id: CompactionId
  readonly shardId: ShardId
  readonly source: CompactionSource
  readonly status: CompactionStatus
  /** The shard's timestamp kind, to print `desc` and `output`. */
  readonly tk: TimestampKind
  readonly desc: Description
  readonly inputs: InputStats
  readonly writerSchemaId: number
  readonly schemaSelection?: SchemaSelectionLabel
  readonly timeoutMs?: number
  readonly createdAt: Date
  readonly startedAt?: Date
  readonly finishedAt?: Date
  readonly progress: Progress
  readonly result?: ApplyResult
  readonly output?: HollowBatch
  readonly error?: CompactionError
}

/**
 * A submission as the route receives it (JSON shapes already checked by the route's schema).
 * `desc` and `inputs` are interpreted by `CompactorShards.resolve` against the shard's timestamp
 * kind; `deadline` is a duration (`"30s"`, or integer milliseconds) counted from submission.
 */
export interface SubmitBody {
  /** `since` omitted: the join of the covered spine batches' sinces (of the inputs' with explicit inputs). */
  readonly desc?: Omit<DescriptionJson, 'since'> & { readonly since?: DescriptionJson['since'] }
  readonly inputs?: readonly unknown[]
  readonly writerSchemaId?: number
  readonly wait?: boolean
  readonly deadline?: string | number
  readonly dryRun?: boolean
}

/** A validated compaction request (persist's `CompactReq`), ready to queue. */
export interface ResolvedRequest {
  readonly shardId: ShardId
  readonly tk: TimestampKind
  readonly desc: Description
  readonly inputs: readonly HollowBatch[]
  readonly writerSchemaId: number
  readonly knownSchemaIds: ReadonlySet<number>
}

/** One run of a dry-run plan, in `order_runs` order. */
export interface DryRunRun {
  /** Index of the input batch it comes from. */
  readonly input: number
  readonly order: RunOrder | null
  readonly schemaId: number | null
  readonly parts: number
  readonly encodedBytes: number
  /** What the run costs in the memory budget: its largest part. */
  readonly maxPartBytes: number
  /** A part of a run exploded for being in the wrong order. */
  readonly exploded: boolean
}

/** The work a compaction would do, without doing it (API.md `dryRun`). Plain JSON values. */
export interface DryRunPlan {
  readonly heuristic: HeuristicVerdict
  readonly timeoutMs: number
  readonly schemaSelection: SchemaSelectionLabel
  readonly schemaId: number
  readonly runs: readonly DryRunRun[]
  /** `runs`: indices into the plan's `runs`. */
  readonly chunks: readonly { readonly runs: readonly number[]; readonly memoryBytes: number }[]
  readonly memoryViolations: number
}

const TRANSITIONS: Readonly<Record<CompactionStatus, readonly CompactionStatus[]>> = {
  queued: ['running', 'failed', 'cancelled'],
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
  skipped: [],
}

export const isFinished = (status: CompactionStatus): boolean => TRANSITIONS[status].length === 0

/** Whether the state table allows `from → to`. */
export const canTransition = (from: CompactionStatus, to: CompactionStatus): boolean => TRANSITIONS[from].includes(to)

/** `to`, after checking the state table. NB: throws on a forbidden transition (a compactor bug). */
export function nextStatus(from: CompactionStatus, to: CompactionStatus): CompactionStatus {
  if (!canTransition(from, to)) throw new Error(`compaction status cannot go from ${from} to ${to}`)
  return to
}

export function inputStats(inputs: readonly HollowBatch[]): InputStats {
  let parts = 0
  let runs = 0
  let updates = 0
  let encodedBytes = 0
  for (const b of inputs) {
    parts += b.parts.length
    runs += b.runMeta.length
    updates += b.len
    for (const p of b.parts) encodedBytes += p.encodedSizeBytes
  }
  return { batches: inputs.length, parts, runs, updates, encodedBytes }
}

/** The Compaction of API.md, as JSON. */
export interface CompactionJson {
  id: string
  shardId: string
  source: CompactionSource
  status: CompactionStatus
  desc: DescriptionJson
  inputs: InputStats
  writerSchemaId: number
  schemaSelection?: SchemaSelectionLabel
  timeoutMs?: number
  createdAt: string
  startedAt?: string
  finishedAt?: string
  progress: Progress
  result?: ApplyResult
  output?: HollowBatchJson
  error?: CompactionError
}

export function toCompactionJson(c: Compaction): CompactionJson {
  const json: CompactionJson = {
    id: c.id,
    shardId: c.shardId,
    source: c.source,
    status: c.status,
    desc: descs.toJson(c.tk, c.desc),
    inputs: { ...c.inputs },
    writerSchemaId: c.writerSchemaId,
    createdAt: c.createdAt.toISOString(),
    progress: { ...c.progress },
  }
  if (c.schemaSelection !== undefined) json.schemaSelection = c.schemaSelection
  if (c.timeoutMs !== undefined) json.timeoutMs = c.timeoutMs
  if (c.startedAt !== undefined) json.startedAt = c.startedAt.toISOString()
  if (c.finishedAt !== undefined) json.finishedAt = c.finishedAt.toISOString()
  if (c.result !== undefined) json.result = c.result
  if (c.output !== undefined) json.output = batchToJson(c.tk, c.output)
  if (c.error !== undefined) json.error = { ...c.error }
  return json
}

/** A short printable form for logs: `c… s… [lower, upper) queued`. */
export function formatCompaction(c: Compaction): string {
  return `${c.id} ${c.shardId} [${ac.format(c.tk, c.desc.lower)}, ${ac.format(c.tk, c.desc.upper)}) ${c.status}`
}
