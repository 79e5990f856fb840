/**
 * The Compaction record: one compaction request's life, from submission to its end, as the
 * operator API shows it (docs/api.md "Compactions"), and the values the compactor exchanges with
 * its collaborators (`CompactionRequest`, `ResolvedRequest`, `ApplyResult`, `DryRunPlan`).
 *
 * What a request asks for (its `kind`, docs/compaction.md "Operator requests"):
 * - `merges`: complete every merge the spine has in progress (persist's force-compaction): each
 *   non-compact spine batch compacted and applied exactly, re-planned when the spine moved;
 * - `major`: the whole trace (or a range of whole spine batches) merged into one batch at the
 *   shard's since;
 * - `range`: one merge of the given (or tiled) inputs, applied as persist applies results. Writer
 *   maintenance submits these.
 * A compaction runs one or more merges; `merges` says how each ended.
 *
 * State table (every other transition is a programming error, refused by `nextStatus`):
 *
 * | from      | to            | when                                                                   | counters (besides gauges)                    |
 * |-----------|---------------|------------------------------------------------------------------------|----------------------------------------------|
 * | (new)     | `skipped`     | maintenance below all three heuristics, or nothing to do (`reason`)    | skipped                                      |
 * | (new)     | `queued`      | accepted and the queue had room                                        | requested                                    |
 * | (none)    | (none)        | the queue was full: 429, no record                                     | requested, dropped                           |
 * | `queued`  | `failed`      | dequeued while the kill switch is on: COMPACTION_DISABLED              | disabled                                     |
 * | `queued`  | `failed`      | the caller's deadline passed before a permit: DEADLINE_EXCEEDED        | (none: it never started)                     |
 * | `queued`  | `cancelled`   | `cancel(id)`, or `stop()`: CANCELLED                                   | (none)                                       |
 * | `queued`  | `running`     | got a permit (Stage C begins)                                          | queued_seconds                               |
 * | `running` | `succeeded`   | every merge it ran applied (`result`, `merges`); partly: `reason` PARTIALLY_APPLIED | per merge: started, seconds, applied+exact/subset or noop(+too_many_updates) |
 * | `running` | `not_applied` | it ran to its end but no merge applied (`reason` says why); outputs deleted | per merge, as above                     |
 * | `running` | `failed`      | TIMED_OUT / DEADLINE_EXCEEDED / an error; written outputs deleted      | seconds, failed (+timed_out)                 |
 * | `running` | `failed`      | the apply itself failed, outcome unknown: STORAGE_ERROR, nothing deleted | seconds, failed                            |
 * | `running` | `cancelled`   | `cancel(id)` or `stop()` past its grace: CANCELLED; outputs deleted    | seconds                                      |
 *
 * `succeeded`, `not_applied`, `failed`, `cancelled` and `skipped` are final.
 *
 * A running job whose owner is lost goes back to `queued` in the job store (its `rescue`), not
 * through this table: the owner died or stalled, or its attempt failed on a store that may come
 * back (attempt.ts `STORE_FAILURE_ATTEMPTS`; the last attempt records `failed` STORAGE_ERROR as above).
 * The next claim counts an attempt.
 */
import * as ac from '../core/antichain.js'
import { batchToJson, type HollowBatch, type HollowBatchJson, type RunOrder } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { Description, DescriptionJson } from '../core/description.js'
import type { CompactionId, ShardId } from '../core/ids.js'
import type { TimestampKind } from '../core/timestamp.js'
import type { ApplyMergeResult } from '../trace/apply-merge-res.js'
import type { ChunkKind, HeuristicVerdict, SchemaSelectionLabel } from './plan.js'

export const COMPACTION_STATUSES = ['queued', 'running', 'succeeded', 'not_applied', 'failed', 'cancelled', 'skipped'] as const
export type CompactionStatus = (typeof COMPACTION_STATUSES)[number]

export const COMPACTION_KINDS = ['merges', 'major', 'range'] as const
export type CompactionKind = (typeof COMPACTION_KINDS)[number]

/** Why a compaction was skipped, or why (some of) its merges did not apply. */
export const REASON_CODES = [
  /** Skipped: a maintenance request below every heuristic (they save blob traffic on small merges). */
  'BELOW_HEURISTICS',
  /** Skipped: no merge in progress, or the range is already one batch of one run at its since. */
  'NOTHING_TO_COMPACT',
  /** Not applied: the spine changed while it ran, and the range no longer matches it. */
  'SPINE_MOVED',
  /** Not applied: its since is beyond the since of what it would replace. */
  'INVALID_SINCE',
  /** Not applied: it has more updates than what it would replace (a better result applied meanwhile). */
  'TOO_MANY_UPDATES',
  /** Not applied: its diffs do not sum like the batches it would replace (inputs given by the request). */
  'NOT_A_COMPACTION',
  /** Not applied: the shard was deleted while it ran. */
  'SHARD_DELETED',
  /** Not applied: a later attempt of the same compaction took it over (this one lost its lease). */
  'SUPERSEDED',
  /**
   * Some outputs applied, others did not (see `merges`): on `succeeded`, a merge or chunk after
   * them did not apply; on `failed` or `cancelled`, the chunks applied before it ended stay in the
   * trace (incremental compaction).
   */
  'PARTIALLY_APPLIED',
  /** Succeeded: nothing was left to compact, an earlier attempt of the compaction applied all of it before it was lost. */
  'APPLIED_EARLIER',
] as const
export type ReasonCode = (typeof REASON_CODES)[number]

export interface Reason {
  readonly code: ReasonCode
  /** A sentence for an operator: which heuristic, what changed in the spine, which since. */
  readonly message: string
}

export const COMPACTION_SOURCES = ['request', 'maintenance'] as const
export type CompactionSource = (typeof COMPACTION_SOURCES)[number]

/** The codes a compaction may end with (docs/api.md#error-codes). */
export const FAILURE_CODES = [
  'COMPACTION_DISABLED',
  'TIMED_OUT',
  'DEADLINE_EXCEEDED',
  'SCHEMA_INCOMPATIBLE',
  'STORAGE_ERROR',
  /** The blob or consensus store has no space left; outputs written so far were deleted. */
  'INSUFFICIENT_STORAGE',
  'CANCELLED',
  /** A part the shard's state references is missing from blob storage. */
  'DATA_LOSS',
  /** The shard was deleted while the compaction ran. */
  'SHARD_DELETED',
  'INTERNAL',
] as const
export type FailureCode = (typeof FAILURE_CODES)[number]

/** The five outcomes of applying a result to the trace (docs/compaction.md#the-five-outcomes). */
export type ApplyResult = ApplyMergeResult

export interface CompactionError {
  readonly code: FailureCode
  readonly message: string
}

/** Counts so far (each field is a running total over every merge, not a delta). */
export interface Progress {
  /** Input updates read (within `inputs.updates`: rows are counted once, however a merge is split). */
  readonly updatesRead: number
  readonly updatesWritten: number
  readonly bytesRead: number
  readonly bytesWritten: number
  readonly partsWritten: number
  readonly chunksDone: number
  readonly chunksTotal: number
  /** Chunks whose output is in the trace. */
  readonly chunksApplied: number
  /** Share of the work done, 0..1: input updates read over `inputs.updates`; 1 once finished. Never falls. */
  readonly fraction: number
  /** Seconds left at the rate so far; null until something was read, 0 once finished. */
  readonly etaSeconds: number | null
}

export const NO_PROGRESS: Progress = Object.freeze({
  updatesRead: 0,
  updatesWritten: 0,
  bytesRead: 0,
  bytesWritten: 0,
  partsWritten: 0,
  chunksDone: 0,
  chunksTotal: 0,
  chunksApplied: 0,
  fraction: 0,
  etaSeconds: null,
})

/** The progress fields that are running totals (the rest are derived from them). */
const COUNTED = ['updatesRead', 'updatesWritten', 'bytesRead', 'bytesWritten', 'partsWritten', 'chunksDone', 'chunksTotal', 'chunksApplied'] as const

/**
 * `prev` with the running totals `p` reports (bad values ignored), and its fraction and ETA for
 * `totalUpdates` input updates after `elapsedSeconds`; null when nothing changed. The fraction
 * never falls (re-planning may grow the inputs) and stays below 1 until `finishedProgress`.
 */
export function nextProgress(prev: Progress, p: Partial<Progress>, totalUpdates: number, elapsedSeconds: number): Progress | null {
  const counts = { ...prev }
  let changed = false
  for (const key of COUNTED) {
    const v = p[key]
    if (v === undefined || !Number.isSafeInteger(v) || v < 0 || v === counts[key]) continue
    counts[key] = v
    changed = true
  }
  if (!changed) return null
  const fraction = Math.max(prev.fraction, Math.min(0.999, counts.updatesRead / Math.max(1, totalUpdates)))
  const etaSeconds = fraction > 0 ? Math.round(((elapsedSeconds * (1 - fraction)) / fraction) * 10) / 10 : null
  return Object.freeze({ ...counts, fraction, etaSeconds })
}

/** The progress of a compaction that ran to its end: all of it done. */
export function finishedProgress(prev: Progress): Progress {
  return Object.freeze({ ...prev, fraction: 1, etaSeconds: 0 })
}

/**
 * How the outputs of a compaction fared in the trace: a merge's, or, with incremental compaction,
 * consecutive chunks of one merge that fared alike (`foldOutcome`): its `desc` then spans theirs,
 * `inputs` sums what they merged and `chunks` counts them.
 */
export interface MergeOutcome {
  readonly desc: Description
  readonly inputs: InputStats
  readonly result: ApplyResult
  /** Set when it did not apply. */
  readonly reason?: Reason
  /** The chunks it stands for, when more than one. */
  readonly chunks?: number
}

/**
 * `merges` with `next` recorded: folded into the last entry when `sameMerge` (a later chunk of the
 * merge that entry is of) and it fared alike (same result, same reason code, same since) over the
 * same or the following range; else appended. So the record of a compaction of many chunks holds
 * a few entries per merge, not one per chunk: every progress event and lease renewal sends the
 * whole record, and one entry per chunk made a 1,000-chunk compaction's watcher download GBs.
 */
export function foldOutcome(tk: TimestampKind, merges: readonly MergeOutcome[], next: MergeOutcome, sameMerge: boolean): readonly MergeOutcome[] {
  const last = merges[merges.length - 1]
  if (!sameMerge || last === undefined || last.result !== next.result || last.reason?.code !== next.reason?.code || !ac.equals(tk, last.desc.since, next.desc.since)) return [...merges, next]
  const same = ac.equals(tk, last.desc.lower, next.desc.lower) && ac.equals(tk, last.desc.upper, next.desc.upper)
  if (!same && !ac.equals(tk, last.desc.upper, next.desc.lower)) return [...merges, next]
  const folded: MergeOutcome = {
    desc: same ? last.desc : descs.description(last.desc.lower, next.desc.upper, last.desc.since),
    inputs: sumInputStats([last.inputs, next.inputs]),
    result: last.result,
    ...(next.reason === undefined ? {} : { reason: next.reason }),
    chunks: (last.chunks ?? 1) + (next.chunks ?? 1),
  }
  return [...merges.slice(0, -1), folded]
}

/** The sum of input stats. */
export function sumInputStats(all: readonly InputStats[]): InputStats {
  return all.reduce((s, x) => ({ batches: s.batches + x.batches, parts: s.parts + x.parts, runs: s.runs + x.runs, updates: s.updates + x.updates, encodedBytes: s.encodedBytes + x.encodedBytes }), {
    batches: 0,
    parts: 0,
    runs: 0,
    updates: 0,
    encodedBytes: 0,
  })
}

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
  readonly kind: CompactionKind
  readonly status: CompactionStatus
  /** The shard's timestamp kind, to print `desc` and `output`. */
  readonly tk: TimestampKind
  /** The range it covers (for `merges`: from the first merge's lower to the last's upper). */
  readonly desc: Description
  /** Every merge's inputs, summed (as planned; re-planned when the spine moved). */
  readonly inputs: InputStats
  /** 1 for the first run; a run started again after its owner was lost counts up. */
  readonly attempt: number
  /** The instance running it (null while queued). */
  readonly instance: string | null
  readonly writerSchemaId: number
  readonly schemaSelection?: SchemaSelectionLabel
  readonly timeoutMs?: number
  readonly createdAt: Date
  readonly startedAt?: Date
  readonly finishedAt?: Date
  readonly progress: Progress
  /** How each merge it ran ended, in order. */
  readonly merges: readonly MergeOutcome[]
  /** The apply outcome, for a compaction of one merge. */
  readonly result?: ApplyResult
  /** The applied output, for a compaction of one merge. */
  readonly output?: HollowBatch
  /** Set when skipped, not applied, or applied in part. */
  readonly reason?: Reason
  readonly error?: CompactionError
}

/**
 * A submission as the route receives it (JSON shapes already checked by the route's schema).
 * `desc` and `inputs` are interpreted by `CompactorShards.resolve` against the shard's timestamp
 * kind; `deadline` is a duration (`"30s"`, or integer milliseconds) counted from submission.
 */
export interface SubmitBody {
  /** `since` omitted: the join of the covered spine batches' sinces (of the inputs' with explicit inputs; the shard's since with `major`). */
  readonly desc?: Omit<DescriptionJson, 'since'> & { readonly since?: DescriptionJson['since'] }
  readonly inputs?: readonly unknown[]
  /** Merge the whole trace (or `desc`, made of whole spine batches) into one batch at the shard's since. */
  readonly major?: boolean
  readonly writerSchemaId?: number
  readonly wait?: boolean
  readonly deadline?: string | number
  readonly dryRun?: boolean
}

/**
 * What a compaction was asked to do, validated against the shard when submitted: its kind and the
 * merges the state called for then (`merges` and `major` are planned again from the state when they
 * run, and when the spine moved under them).
 */
export interface CompactionRequest {
  readonly kind: CompactionKind
  readonly shardId: ShardId
  readonly tk: TimestampKind
  readonly writerSchemaId: number
  /** `major` over a given range: its bounds (null: the whole trace). */
  readonly range: { readonly lower: Description['lower']; readonly upper: Description['upper'] } | null
  /** At least one, except for a `merges` or `major` request with nothing to do. */
  readonly merges: readonly ResolvedRequest[]
  /** With no merges: the range that was looked at and found with nothing to do, at its since. */
  readonly considered?: Description
}

/** One merge, validated (persist's `CompactReq`): what Stage D compacts and the applies offer. */
export interface ResolvedRequest {
  readonly shardId: ShardId
  readonly tk: TimestampKind
  readonly desc: Description
  readonly inputs: readonly HollowBatch[]
  readonly writerSchemaId: number
  readonly knownSchemaIds: ReadonlySet<number>
  /** How its output applies: as persist does (one spine batch or hollow batches inside one), or over whole spine batches. */
  readonly apply: 'merge' | 'major'
  /**
   * `runs`: its one input is what is left of a hollow batch in the trace (some of its runs; a
   * rescued attempt's), so every output replaces those runs only. Absent: whole batches.
   */
  readonly scope?: 'runs'
}

/** One run of a dry-run plan, in `order_runs` order. */
export interface DryRunRun {
  /** Index of the input batch it comes from. */
  readonly input: number
  readonly order: RunOrder | null
  readonly schemaId: number | null
  readonly parts: number
  readonly encodedBytes: number
  /** What the run costs in the memory budget: its largest part, or two windows of a part read in windows. */
  readonly maxPartBytes: number
  /** A part of a run exploded for being in the wrong order. */
  readonly exploded: boolean
}

/** The work one merge would do, without doing it. Plain JSON values. */
export interface MergePlan {
  readonly heuristic: HeuristicVerdict
  readonly timeoutMs: number
  readonly schemaSelection: SchemaSelectionLabel
  readonly schemaId: number
  readonly runs: readonly DryRunRun[]
  /**
   * `runs`: indices into the plan's `runs`; `kind`: how its output reaches the trace (plan.ts
   * `ChunkKind`); `desc`: its output's description.
   */
  readonly chunks: readonly { readonly runs: readonly number[]; readonly memoryBytes: number; readonly kind: ChunkKind; readonly desc: DescriptionJson }[]
  readonly memoryViolations: number
}

/**
 * The work a compaction would do, without doing it (`dryRun`): its kind, the heuristic verdict over
 * all its inputs, and each merge's plan (`merges`); the other fields repeat the first merge's plan
 * (empty when there is nothing to do). Plain JSON values.
 */
export interface DryRunPlan extends MergePlan {
  readonly kind: CompactionKind
  readonly merges: readonly (MergePlan & { readonly desc: DescriptionJson })[]
}

const TRANSITIONS: Readonly<Record<CompactionStatus, readonly CompactionStatus[]>> = {
  queued: ['running', 'failed', 'cancelled'],
  running: ['succeeded', 'not_applied', 'failed', 'cancelled'],
  succeeded: [],
  not_applied: [],
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

/**
 * The range a request covers: its one merge's desc, or for several merges from the first lower to
 * the last upper with the join of their sinces; with none, the range it looked at (an empty range
 * at the minimum if it does not say).
 */
export function requestDesc(req: CompactionRequest): Description {
  const first = req.merges[0]
  const last = req.merges[req.merges.length - 1]
  if (first === undefined || last === undefined) {
    if (req.considered !== undefined) return req.considered
    const min = ac.minimumFrontier(req.tk)
    return descs.description(min, min, min)
  }
  const since = req.merges.reduce((s, m) => ac.join(req.tk, s, m.desc.since), first.desc.since)
  return descs.description(first.desc.lower, last.desc.upper, since)
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

/** The Compaction as the API shows it (docs/api.md#list-inspect-and-cancel), as JSON. */
export interface MergeOutcomeJson {
  desc: DescriptionJson
  inputs: InputStats
  result: ApplyResult
  reason?: Reason
  chunks?: number
}

export interface CompactionJson {
  id: string
  shardId: string
  source: CompactionSource
  kind: CompactionKind
  status: CompactionStatus
  desc: DescriptionJson
  inputs: InputStats
  attempt: number
  instance: string | null
  writerSchemaId: number
  schemaSelection?: SchemaSelectionLabel
  timeoutMs?: number
  createdAt: string
  startedAt?: string
  finishedAt?: string
  progress: Progress
  merges: MergeOutcomeJson[]
  result?: ApplyResult
  output?: HollowBatchJson
  reason?: Reason
  error?: CompactionError
}

export function toCompactionJson(c: Compaction): CompactionJson {
  const json: CompactionJson = {
    id: c.id,
    shardId: c.shardId,
    source: c.source,
    kind: c.kind,
    status: c.status,
    desc: descs.toJson(c.tk, c.desc),
    inputs: { ...c.inputs },
    attempt: c.attempt,
    instance: c.instance,
    writerSchemaId: c.writerSchemaId,
    createdAt: c.createdAt.toISOString(),
    progress: { ...c.progress },
    merges: c.merges.map((m) => ({
      desc: descs.toJson(c.tk, m.desc),
      inputs: { ...m.inputs },
      result: m.result,
      ...(m.reason === undefined ? {} : { reason: { ...m.reason } }),
      ...(m.chunks === undefined ? {} : { chunks: m.chunks }),
    })),
  }
  if (c.schemaSelection !== undefined) json.schemaSelection = c.schemaSelection
  if (c.timeoutMs !== undefined) json.timeoutMs = c.timeoutMs
  if (c.startedAt !== undefined) json.startedAt = c.startedAt.toISOString()
  if (c.finishedAt !== undefined) json.finishedAt = c.finishedAt.toISOString()
  if (c.result !== undefined) json.result = c.result
  if (c.output !== undefined) json.output = batchToJson(c.tk, c.output)
  if (c.reason !== undefined) json.reason = { ...c.reason }
  if (c.error !== undefined) json.error = { ...c.error }
  return json
}

/** A short printable form for logs: `c… s… [lower, upper) queued`. */
export function formatCompaction(c: Compaction): string {
  return `${c.id} ${c.shardId} [${ac.format(c.tk, c.desc.lower)}, ${ac.format(c.tk, c.desc.upper)}) ${c.status}`
}
