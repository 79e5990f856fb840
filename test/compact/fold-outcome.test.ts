/** compaction.ts `foldOutcome`: how the record's `merges` takes one more output. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { foldOutcome, toCompactionJson, type Compaction, type MergeOutcome } from '../../src/compact/compaction.js'
import { jobData, parseJob } from '../../src/compact/job-record.js'
import type { JobRecord } from '../../src/location/job-store.js'
import { description } from '../../src/core/description.js'
import { u64 } from '../../src/core/timestamp.js'

const d = (lower: number, upper: number, since = 0) => description([BigInt(lower)], [BigInt(upper)], [BigInt(since)])
const stats = (n: number) => ({ batches: n, parts: n, runs: n, updates: n, encodedBytes: 10 * n })
const out = (lower: number, upper: number, result: MergeOutcome['result'] = 'applied_subset', since = 0): MergeOutcome => ({ desc: d(lower, upper, since), inputs: stats(upper - lower), result })
const shape = (ms: readonly MergeOutcome[]) => ms.map((m) => [Number(m.desc.lower[0]), Number(m.desc.upper[0]), m.result, m.chunks ?? 1, m.inputs.batches])

describe('foldOutcome', () => {
  it('folds the following chunks of one merge that fared alike, over their ranges or the same range', () => {
    let ms: readonly MergeOutcome[] = []
    ms = foldOutcome(u64, ms, out(0, 3), false)
    ms = foldOutcome(u64, ms, out(3, 4), true)
    ms = foldOutcome(u64, ms, out(4, 9), true)
    assert.deepEqual(shape(ms), [[0, 9, 'applied_subset', 3, 9]])
    let runs: readonly MergeOutcome[] = []
    for (let i = 0; i < 4; i++) runs = foldOutcome(u64, runs, out(0, 2), i > 0)
    assert.deepEqual(shape(runs), [[0, 2, 'applied_subset', 4, 8]])
  })

  it('starts an entry for another merge, another result, another since or a gap', () => {
    const a = foldOutcome(u64, [out(0, 3)], out(3, 4), false)
    assert.deepEqual(shape(a), [[0, 3, 'applied_subset', 1, 3], [3, 4, 'applied_subset', 1, 1]])
    const b = foldOutcome(u64, [out(0, 3)], { ...out(3, 4, 'not_applied_no_match'), reason: { code: 'SPINE_MOVED', message: 'moved' } }, true)
    assert.equal(b.length, 2)
    assert.equal(foldOutcome(u64, [out(0, 3)], out(3, 4, 'applied_subset', 1), true).length, 2)
    assert.equal(foldOutcome(u64, [out(0, 3)], out(4, 5), true).length, 2)
  })

  it('is kept through the job record', () => {
    const merges = foldOutcome(u64, [out(0, 3)], out(3, 5), true)
    const c = { id: 'c1', shardId: 's1', source: 'request', kind: 'major', status: 'running', tk: u64, desc: d(0, 5), inputs: stats(5), attempt: 1, instance: 'a', writerSchemaId: 0, createdAt: new Date(0), progress: { updatesRead: 0, updatesWritten: 0, bytesRead: 0, bytesWritten: 0, partsWritten: 0, chunksDone: 2, chunksTotal: 2, chunksApplied: 2, fraction: 0, etaSeconds: null }, merges } as unknown as Compaction
    const data = jobData({ kind: 'major', shardId: c.shardId, tk: u64, writerSchemaId: 0, range: null, merges: [] }, toCompactionJson(c))
    const record = { id: 'c1', shardId: 's1', source: 'request', status: 'running', attempt: 1, owner: 'a', token: 1, leaseExpiresAt: 1, cancelRequested: false, idempotencyKey: null, deadlineAt: null, createdAt: 0, updatedAt: 0, finishedAt: null, data: JSON.parse(JSON.stringify(data)) } as JobRecord
    const parsed = parseJob(record)
    assert.ok(parsed.ok)
    assert.deepEqual(shape(parsed.compaction.merges), [[0, 5, 'applied_subset', 2, 5]])
  })
})
