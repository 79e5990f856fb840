/**
 * The compactor's collaborators and its public types: the shard port, Stage D's signature, the
 * dependencies the composition root injects, and what callers pass and get back.
 */
import type { HollowBatch } from '../core/batch.js'
import type { ShardId, WriterKey } from '../core/ids.js'
import type { PartialBatchKey } from '../core/paths.js'
import type { DynamicConfigs } from '../dyncfg/dynamic-configs.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import type { InstanceRecord, JobStore } from '../location/job-store.js'
import type { Metrics } from '../metrics/metrics.js'
import type { CompactionInput } from '../trace/compaction-input.js'
import type { ApplyResult, Compaction, CompactionRequest, CompactionSource, CompactionStatus, DryRunPlan, InputStats, MergePlan, Progress, Reason, ResolvedRequest, SubmitBody } from './compaction.js'
import type { SchemaSelection } from './plan.js'

/** The shard service as the compactor needs it (the composition root wires the real one). */
export interface CompactorShards {
  /**
   * Resolves a submission to a validated request against the shard's state: its kind and merges
   * (inputs from the trace when omitted, since defaulting, validate_req, key ownership, schema ids).
   * Throws AppError INVALID_COMPACTION (422) or SHARD_NOT_FOUND.
   */
  resolve(shardId: ShardId, body: SubmitBody): Promise<CompactionRequest>
  /**
   * The merges `req` calls for in the shard's state now (`range`: its own; `merges`: the spine's
   * merges in progress; `major`: the range's whole spine batches), or why there are none any more.
   * `rescue` (a later attempt of the job): also count what earlier attempts applied; and for a
   * `range` request, when they applied anything, only what of its inputs is left in the trace
   * (trace/remaining-inputs.ts).
   */
  replan(req: CompactionRequest, rescue?: Rescue | null): Promise<Replanned>
  /**
   * Applies a compaction output through the machine; exact knowledge of whether it committed.
   * With a `fence`, only while that attempt holds the job's claim on the shard (else not applied).
   * `input`: what it replaces (default: the hollow batches its desc spans).
   */
  applyMergeRes(shardId: ShardId, output: HollowBatch, mode: ResolvedRequest['apply'], fence: Fence | null, input?: CompactionInput): Promise<ApplyOutcome>
  /** Gives a compaction attempt the right to change the shard; `fenced` when a newer attempt holds it. SHARD_NOT_FOUND, SHARD_DELETED. */
  claimCompaction(shardId: ShardId, job: string, token: number): Promise<'claimed' | 'fenced'>
  /** Drops an attempt's claim (nothing when a newer attempt holds it). */
  releaseClaim(shardId: ShardId, job: string, token: number): Promise<void>
  /**
   * Whether the shard's state still references every blob part of `inputs` (false when the shard is
   * gone). A part found missing while it is referenced is lost data; once another compaction
   * replaced it and GC collected it, the compaction that wanted it was only overtaken.
   */
  inputsHeld(shardId: ShardId, inputs: readonly HollowBatch[]): Promise<boolean>
  /** Deletes blob parts of an output nothing references (concurrency `persist_gc_blob_delete_concurrency_limit`). */
  deleteOutputParts(shardId: ShardId, output: HollowBatch | readonly PartialBatchKey[]): Promise<void>
}

/** The merges a request calls for now; `problem`: why its range cannot be compacted any more. */
export interface Replanned {
  readonly merges: readonly ResolvedRequest[]
  readonly problem: Reason | null
  /** With a rescue: the results earlier attempts applied (the claim's count, or the record's when larger; 0 otherwise). */
  readonly appliedEarlier?: number
}

/** A later attempt of a job: its fence, and the chunks its record says earlier attempts applied. */
export interface Rescue {
  readonly fence: Fence
  readonly appliedBefore: number
}

/** A compaction attempt's right to change a shard: its job and fencing token (shard/state.ts). */
export interface Fence {
  readonly job: string
  readonly token: number
}

/** How an output fared in the trace (shard/state.ts `ApplyOutcome`). */
export interface ApplyOutcome {
  readonly result: ApplyResult
  readonly detail: { readonly why: 'range' | 'diffs' | 'since' | 'updates' | 'deleted' | 'fenced'; readonly message: string } | null
}

export interface ExecuteContext {
  /** Aborted on timeout, deadline, cancel or stop: stop promptly and throw. */
  readonly signal: AbortSignal
  /** The schema to decode into and write with (Stage C's choice). */
  readonly schema: SchemaSelection
  /** Running totals so far (any subset of the fields). */
  onProgress(p: Partial<Progress>): void
  /**
   * Incremental compaction (given only when `persist_enable_incremental_compaction` is on and the
   * output is to be applied): Stage D hands each chunk's output over as soon as its parts are
   * written, in chunk order, one at a time. From then on Stage C owns those parts: it applies them,
   * or deletes them, or (apply outcome unknown) leaves them to GC. `stop`: hand nothing more over,
   * stop the remaining work and throw (its written parts are deleted as on any failure).
   */
  applyChunk?(chunk: ChunkOutput): Promise<'continue' | 'stop'>
  /** The writer key of its output parts (job-outputs.ts); default: the instance's. */
  readonly writerKey?: WriterKey
}

/** One chunk's output, handed from Stage D to Stage C (incremental compaction). */
export interface ChunkOutput {
  /** Desc: the chunk's (plan.ts `PlannedChunk`); one run, or no parts when every update cancelled. */
  readonly output: HollowBatch
  /** What it replaces in the trace. */
  readonly input: CompactionInput
  /** What the chunk merged. */
  readonly inputs: InputStats
  /** Its position among the merge's chunks. */
  readonly index: number
  readonly count: number
}

/**
 * Stage D: does the compaction work and returns the output batch: with `ctx.applyChunk`, what it
 * did not hand over (no parts when every chunk was). It must honour `ctx.signal`. When it throws
 * after writing parts, the error carries the keys it did not hand over in `writtenParts` so the
 * compactor deletes them.
 */
export type Execute = (req: ResolvedRequest, cfg: ConfigValues, ctx: ExecuteContext) => Promise<{ readonly output: HollowBatch }>

export interface CompactorDeps {
  readonly dyncfg: Pick<DynamicConfigs, 'snapshot' | 'onChange'>
  readonly metrics: Pick<Metrics, 'compaction' | 'compactor' | 'shard' | 'cluster'>
  readonly shards: CompactorShards
  readonly execute: Execute
  /** The cluster's durable jobs (every instance of a cluster shares one). */
  readonly store: JobStore
  /** What `GET /v1/instances` shows as this instance's version. */
  readonly version?: string
  /** The shard state formats this instance reads, advertised in its heartbeat (job-store.ts `InstanceRecord.stateFormats`). */
  readonly stateFormats?: readonly number[]
  /** Called with the live instances (this one's record included) each time they are read: every heartbeat, and whenever something lists them. */
  readonly onMembership?: (live: readonly InstanceRecord[]) => void
  /** Periods of the background work (tests shorten them). */
  readonly timers?: {
    /** Claims and sweeps (rescue, deadlines). Default 500 ms. */
    readonly pollMs?: number
    /** This instance's heartbeat; an instance is live for three of them. Default 2 s. */
    readonly heartbeatMs?: number
    /** How often events and waits read a compaction another instance runs. Default 250 ms. */
    readonly remotePollMs?: number
    /** Purging finished jobs past `compaction_history_retention`. Default 10 min. */
    readonly purgeMs?: number
  }
  /** The dry-run plan of one merge, without doing the work. */
  plan(req: ResolvedRequest, cfg: ConfigValues): MergePlan
  /** Wall clock of the records and of the duration counters. Default `() => new Date()`. */
  readonly now?: () => Date
  /** This instance's id, recorded on the compactions it runs. Default `local`. */
  readonly instanceId?: string
  /**
   * Errors nobody awaits: failed output deletes, an apply whose outcome is unknown, a Stage D error
   * mapped to INTERNAL. Must not throw. Default: `process.emitWarning`.
   */
  readonly onError?: (err: unknown, context: string) => void
}

export interface SubmitOptions {
  /** Same key and shard as an earlier submission ⇒ that compaction, not a new one. */
  readonly idempotencyKey?: string
  /** Default `request`. */
  readonly source?: CompactionSource
  /** False: maintenance that runs even below the small-input heuristics (the idle sweep). Default true. */
  readonly heuristics?: boolean
}

export type SubmitResult =
  | { readonly kind: 'plan'; readonly plan: DryRunPlan }
  /** `waited`: the body asked to wait, and `compaction` is final. */
  | { readonly kind: 'compaction'; readonly compaction: Compaction; readonly waited: boolean }

export interface CompactOnlyBody {
  readonly shardId: ShardId
  readonly desc: NonNullable<SubmitBody['desc']>
  readonly inputs: readonly unknown[]
  readonly writerSchemaId?: number
}

export interface ListFilter {
  readonly shardId?: string
  readonly status?: CompactionStatus
  readonly source?: CompactionSource
  /** Default 100. */
  readonly limit?: number
  /** The `nextCursor` of the page before. */
  readonly cursor?: string
}

/** A page of compactions, newest first; `nextCursor` when there may be more. */
export interface CompactionPage {
  readonly compactions: readonly Compaction[]
  readonly nextCursor: string | null
}

/** A live instance of the cluster, as `GET /v1/instances` shows it. */
export interface InstanceView extends InstanceRecord {
  /** The instance answering. */
  readonly self: boolean
}

export type CompactionEvent = { readonly type: 'progress' | 'done'; readonly compaction: Compaction }

export type CompactorStatus = 'running' | 'paused' | 'stopped'

/** Events: `change` with the new snapshot, every time a compaction's snapshot changes. */
export type CompactorEvents = { change: [Compaction]; idle: [] }
