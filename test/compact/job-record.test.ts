/** job-record.ts: what a job's data keeps of its request, and what it parses back. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toCompactionJson, type Compaction, type CompactionKind, type CompactionRequest, type CompactionStatus } from '../../src/compact/compaction.js'
import { jobData, parseJob } from '../../src/compact/job-record.js'
import type { ShardId } from '../../src/core/ids.js'
import { description } from '../../src/core/description.js'
import { u64 } from '../../src/core/timestamp.js'
import type { JobRecord } from '../../src/location/job-store.js'
import { hb } from '../trace/fixtures.js'

const SHARD = 's1' as ShardId
const d = (lower: number, upper: number) => description([BigInt(lower)], [BigInt(upper)], [0n])

function request(kind: CompactionKind, batches: number): CompactionRequest {
  const inputs = Array.from({ length: batches }, (_, i) => hb(i, i + 1, 0, 1))
  return { kind, shardId: SHARD, tk: u64, writerSchemaId: 0, range: null, merges: [{ shardId: SHARD, tk: u64, desc: d(0, batches), inputs, writerSchemaId: 0, knownSchemaIds: new Set([0]), apply: kind === 'range' ? 'merge' : 'major' }] }
}

function record(req: CompactionRequest, status: CompactionStatus): JobRecord {
  const c = { id: 'c1', shardId: SHARD, source: 'request', kind: req.kind, status, tk: u64, desc: d(0, 1), inputs: { batches: 0, parts: 0, runs: 0, updates: 0, encodedBytes: 0 }, attempt: 1, instance: null, writerSchemaId: 0, createdAt: new Date(0), progress: { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 0, chunksTotal: 0, chunksApplied: 0, fraction: 0, etaSeconds: null }, merges: [] } as unknown as Compaction
  const data = JSON.parse(JSON.stringify(jobData(req, toCompactionJson(c)))) as unknown
  return { id: 'c1', shardId: SHARD, source: 'request', status, attempt: 1, owner: null, token: 1, leaseExpiresAt: null, cancelRequested: false, idempotencyKey: null, deadlineAt: null, createdAt: 0, updatedAt: 0, finishedAt: null, data }
}

const inputsKept = (r: JobRecord): number[] => {
  const parsed = parseJob(r)
  assert.ok(parsed.ok)
  return parsed.request.merges.map((m) => m.inputs.length)
}

describe('a job record', () => {
  it('keeps the inputs of a range request until it finishes, and never those of major or merges', () => {
    assert.deepEqual(inputsKept(record(request('range', 5), 'running')), [5])
    assert.deepEqual(inputsKept(record(request('range', 5), 'succeeded')), [0])
    assert.deepEqual(inputsKept(record(request('major', 5), 'queued')), [0])
    assert.deepEqual(inputsKept(record(request('merges', 5), 'running')), [0])
    // What a major request keeps does not grow with its inputs: only each merge's desc.
    const size = (n: number): number => JSON.stringify(record(request('major', n), 'running').data).length
    assert.equal(size(500), size(5) + 2, 'the merge desc upper 500 is two digits more than 5')
    const parsed = parseJob(record(request('major', 500), 'running'))
    assert.ok(parsed.ok)
    assert.deepEqual(parsed.request.merges.map((m) => [Number(m.desc.lower[0]), Number(m.desc.upper[0]), m.apply]), [[0, 500, 'major']])
  })
})
