/**
 * A compaction as the job store keeps it: the store's columns (status, attempt, owner, times...)
 * plus `data`, the JSON of everything else the record shows (what `toCompactionJson` writes) and
 * the request itself, so whichever instance claims the job can run it.
 *
 * NB: `data` is written by the compactor and read back by any instance of the cluster, possibly a
 * newer or older version: readers tolerate missing optional fields, and a record that does not
 * parse is reported and shown as failed rather than crashing a listing.
 */
import * as ac from '../core/antichain.js'
import { batchToJson, parseBatch, type HollowBatch, type HollowBatchJson } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { DescriptionJson } from '../core/description.js'
import type { CompactionId, ShardId } from '../core/ids.js'
import { TIMESTAMP_KINDS, timestampKind, type TimestampKind, type TimestampKindName } from '../core/timestamp.js'
import type { FinalJobStatus, JobRecord, JobStatus } from '../location/job-store.js'
import {
  COMPACTION_KINDS,
  NO_PROGRESS,
  isFinished,
  type Compaction,
  type CompactionKind,
  type CompactionRequest,
  type CompactionSource,
  type CompactionStatus,
  type CompactionJson,
  type MergeOutcome,
  type ResolvedRequest,
  toCompactionJson,
} from './compaction.js'

/** `data` of a job record. */
export interface JobData {
  readonly v: 1
  readonly timestamp: TimestampKindName
  readonly request: RequestJson
  /** The record as the API shows it (columns the store holds win over its copies here). */
  readonly compaction: CompactionJson
}

interface MergeJson {
  readonly desc: DescriptionJson
  readonly inputs: readonly HollowBatchJson[]
  readonly knownSchemaIds: readonly number[]
  readonly apply: ResolvedRequest['apply']
}

interface RequestJson {
  readonly kind: CompactionKind
  readonly writerSchemaId: number
  readonly range: { readonly lower: unknown; readonly upper: unknown } | null
  readonly merges: readonly MergeJson[]
}

/**
 * The data a record holds: `json`, the compaction as the API shows it, and its request `req`.
 *
 * Only a `range` request that has not finished keeps its merges' inputs (the hollow batches, every
 * part of them): it runs (or a later attempt runs what is left of) those very inputs. A `merges` or
 * `major` request is planned again from the shard's state by every attempt and keeps only each
 * merge's desc, and a finished job runs nothing. Every change of a job rewrites its data (a lease
 * renewal every third of `compaction_lease_timeout`; on file stores the whole document of active
 * jobs), so a major compaction of an 8,000-batch trace rewrote megabytes each time.
 */
export function jobData(req: CompactionRequest, json: CompactionJson): JobData {
  const tk = req.tk
  const keepInputs = req.kind === 'range' && !isFinished(json.status)
  return {
    v: 1,
    timestamp: tk.name,
    compaction: json,
    request: {
      kind: req.kind,
      writerSchemaId: req.writerSchemaId,
      range: req.range === null ? null : { lower: ac.toJson(tk, req.range.lower), upper: ac.toJson(tk, req.range.upper) },
      merges: req.merges.map((m) => ({
        desc: descs.toJson(tk, m.desc),
        inputs: keepInputs ? m.inputs.map((b) => batchToJson(tk, b)) : [],
        knownSchemaIds: [...m.knownSchemaIds],
        apply: m.apply,
      })),
    },
  }
}

/** What a job record says, parsed; `problem` when its data does not parse. */
export type ParsedJob = { readonly ok: true; readonly compaction: Compaction; readonly request: CompactionRequest } | { readonly ok: false; readonly problem: string }

/** The compaction and request a job record holds (its columns win over the copies in `data`). */
export function parseJob(record: JobRecord): ParsedJob {
  const d = record.data as Partial<JobData> | null
  if (d === null || typeof d !== 'object' || d.v !== 1 || !(TIMESTAMP_KINDS as readonly string[]).includes(String(d.timestamp))) {
    return { ok: false, problem: `compaction ${record.id}: its record is not one this version reads` }
  }
  const tk = timestampKind(d.timestamp as TimestampKindName)
  const c = d.compaction
  const r = d.request
  if (c === undefined || r === undefined) return { ok: false, problem: `compaction ${record.id}: its record has no request` }
  const desc = descs.parse(tk, c.desc)
  if (!desc.ok) return { ok: false, problem: `compaction ${record.id}: desc ${desc.error}` }
  const merges: MergeOutcome[] = []
  for (const m of c.merges ?? []) {
    const md = descs.parse(tk, m.desc)
    if (!md.ok) return { ok: false, problem: `compaction ${record.id}: merge desc ${md.error}` }
    merges.push({
      desc: md.value,
      inputs: m.inputs,
      result: m.result,
      ...(m.reason === undefined ? {} : { reason: m.reason }),
      ...(Number.isSafeInteger(m.chunks) && (m.chunks ?? 0) > 1 ? { chunks: m.chunks } : {}),
    })
  }
  let output: HollowBatch | undefined
  if (c.output !== undefined) {
    const o = parseBatch(tk, record.shardId as ShardId, c.output, 'output')
    if (!o.ok) return { ok: false, problem: `compaction ${record.id}: ${o.error}` }
    output = o.value
  }
  const request = parseRequest(tk, record.shardId as ShardId, r)
  if (!request.ok) return { ok: false, problem: `compaction ${record.id}: ${request.problem}` }
  // NB: a queued job shows no attempt in progress, also when an earlier attempt was given up.
  const queued = record.status === 'queued'
  const compaction: Compaction = Object.freeze({
    id: record.id as CompactionId,
    shardId: record.shardId as ShardId,
    source: record.source as CompactionSource,
    kind: (COMPACTION_KINDS as readonly string[]).includes(String(c.kind)) ? c.kind : request.value.kind,
    status: statusOf(record.status),
    tk,
    desc: desc.value,
    inputs: c.inputs,
    attempt: Math.max(1, record.attempt),
    instance: queued ? null : (record.owner ?? c.instance ?? null),
    writerSchemaId: c.writerSchemaId,
    ...(c.schemaSelection === undefined ? {} : { schemaSelection: c.schemaSelection }),
    ...(c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs }),
    createdAt: new Date(record.createdAt),
    ...(c.startedAt === undefined || queued ? {} : { startedAt: new Date(c.startedAt) }),
    ...(record.finishedAt === null ? {} : { finishedAt: new Date(record.finishedAt) }),
    progress: queued ? NO_PROGRESS : { ...NO_PROGRESS, ...c.progress },
    merges,
    ...(c.result === undefined ? {} : { result: c.result }),
    ...(output === undefined ? {} : { output }),
    ...(c.reason === undefined ? {} : { reason: c.reason }),
    ...(c.error === undefined ? {} : { error: c.error }),
  })
  return { ok: true, compaction, request: request.value }
}

function parseRequest(tk: TimestampKind, shardId: ShardId, r: RequestJson): { ok: true; value: CompactionRequest } | { ok: false; problem: string } {
  const merges: ResolvedRequest[] = []
  for (const [i, m] of r.merges.entries()) {
    const desc = descs.parse(tk, m.desc)
    if (!desc.ok) return { ok: false, problem: `request merge ${i} desc ${desc.error}` }
    const inputs: HollowBatch[] = []
    for (const [j, b] of m.inputs.entries()) {
      const parsed = parseBatch(tk, shardId, b, `request merge ${i} input ${j}`)
      if (!parsed.ok) return { ok: false, problem: parsed.error }
      inputs.push(parsed.value)
    }
    merges.push({ shardId, tk, desc: desc.value, inputs, writerSchemaId: r.writerSchemaId, knownSchemaIds: new Set(m.knownSchemaIds), apply: m.apply })
  }
  let range: CompactionRequest['range'] = null
  if (r.range !== null) {
    const lower = ac.parse(tk, r.range.lower)
    const upper = ac.parse(tk, r.range.upper)
    if (!lower.ok || !upper.ok) return { ok: false, problem: 'request range does not parse' }
    range = { lower: lower.value, upper: upper.value }
  }
  return { ok: true, value: { kind: r.kind, shardId, tk, writerSchemaId: r.writerSchemaId, range, merges } }
}

/** The record's status: the store's statuses are the compaction's. */
function statusOf(s: JobStatus): CompactionStatus {
  return s
}

/** What ending a job changes in its compaction besides the status. */
export type FinalPatch = Pick<Partial<Compaction>, 'error' | 'reason'>

/**
 * The data of `job` ended with `status` at `at` (a job ended without running: cancelled while
 * queued, failed by the kill switch or its deadline). A record this version cannot read keeps its
 * data as it is.
 */
export function finalData(job: JobRecord, status: FinalJobStatus, patch: FinalPatch, at: Date): unknown {
  const parsed = parseJob(job)
  if (!parsed.ok) return job.data
  return jobData(parsed.request, toCompactionJson(Object.freeze({ ...parsed.compaction, ...patch, status, finishedAt: at })))
}
