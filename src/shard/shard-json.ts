/** A shard as the HTTP API shows it (docs/api.md#shards): summary, and detail with trace, stats and reader leases. */
import * as ac from '../core/antichain.js'
import type { TimestampJson, TimestampKindName } from '../core/timestamp.js'
import { dataTypeToJson, type DataTypeJson } from '../columnar/data-type.js'
import { traceSpineJson, traceStats, traceSummaryJson, type TraceSpineJson, type TraceStats, type TraceSummaryJson } from '../trace/trace-summary.js'
import type { Versioned } from './machine.js'
import { sinceOf, tkOf, upperOf, type ShardState } from './state.js'

export interface ShardSummaryJson {
  shardId: string
  name: string
  timestamp: TimestampKindName
  seqno: number
  since: TimestampJson[]
  upper: TimestampJson[]
  stats: TraceStats
}

/** The reader leases in the state (expired ones included until they are dropped). */
type LeaseJson = { id: string; instance: string; seqno: number; expiresAt: string }

export interface ShardJson extends ShardSummaryJson {
  schemas: { id: number; keySchema: DataTypeJson; valSchema: DataTypeJson }[]
  trace: TraceSummaryJson
  leases: LeaseJson[]
}

/** A shard with its spine but not its hollow batches (GET /v1/shards/{id}/spine): bounded by the spine, not the trace. */
export interface ShardSpineJson extends ShardSummaryJson {
  trace: TraceSpineJson
  leases: LeaseJson[]
}

export function shardSummaryJson(v: Versioned<ShardState>): ShardSummaryJson {
  const s = v.state
  const tk = tkOf(s)
  return {
    shardId: s.shardId,
    name: s.name,
    timestamp: tk.name,
    seqno: v.seqno,
    since: ac.toJson(tk, sinceOf(s)),
    upper: ac.toJson(tk, upperOf(s)),
    stats: traceStats(s.trace),
  }
}

export function shardJson(v: Versioned<ShardState>): ShardJson {
  const s = v.state
  return {
    ...shardSummaryJson(v),
    schemas: s.schemas.map((e) => ({ id: e.id, keySchema: dataTypeToJson(e.key), valSchema: dataTypeToJson(e.val) })),
    trace: traceSummaryJson(s.trace),
    leases: leasesJson(s),
  }
}

export function shardSpineJson(v: Versioned<ShardState>): ShardSpineJson {
  return { ...shardSummaryJson(v), trace: traceSpineJson(v.state.trace), leases: leasesJson(v.state) }
}

const leasesJson = (s: ShardState): LeaseJson[] => (s.leases ?? []).map((l) => ({ id: l.id, instance: l.instance, seqno: l.seqno, expiresAt: l.expiresAt }))
