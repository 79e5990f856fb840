/** What the clients derive from a Compaction: fraction, outcome, why-line and timeline, old and new servers alike. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fractionOf, outcomeOf, progressLine, timelineOf, whyLine } from '../../src/client/compaction-view.js'
import type { CompactionJson } from '../../src/client/wire.js'

const base: CompactionJson = {
  id: 'c1',
  shardId: 's1',
  source: 'request',
  status: 'running',
  desc: { lower: [0], upper: [10], since: [0] },
  inputs: { batches: 4, parts: 4, runs: 4, updates: 100, encodedBytes: 4096 },
  createdAt: '2026-12-06T10:00:00.000Z',
  startedAt: '2026-12-06T10:00:02.000Z',
  progress: { updatesRead: 25, updatesWritten: 20, bytesRead: 1, bytesWritten: 2, partsWritten: 1, chunksDone: 1, chunksTotal: 2 },
}

describe('compaction view', () => {
  it('fraction: the server’s own when sent, else the larger of chunks and rows, 1 when it succeeded', () => {
    assert.equal(fractionOf(base), 0.5)
    assert.equal(fractionOf({ ...base, progress: { ...base.progress, updatesRead: 90 } }), 0.9)
    assert.equal(fractionOf({ ...base, progress: { ...base.progress, fraction: 0.3 } }), 0.3)
    assert.equal(fractionOf({ ...base, progress: { ...base.progress, fraction: 7 } }), 1)
    assert.equal(fractionOf({ ...base, status: 'succeeded' }), 1)
    assert.equal(fractionOf({ ...base, status: 'queued', progress: { ...base.progress, chunksDone: 0, chunksTotal: 0, updatesRead: 0 } }), 0)
  })

  it('outcome: live, done, nothing (skipped or not applied), failed', () => {
    assert.equal(outcomeOf(base), 'live')
    assert.equal(outcomeOf({ ...base, status: 'succeeded', result: 'applied_exact' }), 'done')
    assert.equal(outcomeOf({ ...base, status: 'succeeded', result: 'not_applied_no_match' }), 'nothing')
    assert.equal(outcomeOf({ ...base, status: 'not_applied' }), 'nothing')
    assert.equal(outcomeOf({ ...base, status: 'skipped' }), 'nothing')
    assert.equal(outcomeOf({ ...base, status: 'cancelled' }), 'failed')
  })

  it('timeline: queued, started, chunks, the end with its reason', () => {
    const done: CompactionJson = {
      ...base,
      status: 'failed',
      finishedAt: '2026-12-06T10:00:05.000Z',
      error: { code: 'TIMED_OUT', message: 'timed out after 90s' },
      attempt: 2,
      instance: 'i-1',
    }
    const t = timelineOf(done)
    assert.deepEqual(t.map((e) => e.label), ['queued', 'started', 'chunks', 'failed'])
    assert.match(t[0]?.detail ?? '', /by request, attempt 2/)
    assert.match(t[1]?.detail ?? '', /after 2\.0s queued on i-1/)
    assert.match(t[3]?.detail ?? '', /after 3\.0s running; TIMED_OUT: timed out after 90s/)
    assert.equal(whyLine({ ...base, reason: { code: 'BELOW_HEURISTICS', message: 'too small' } }), 'BELOW_HEURISTICS: too small')
  })

  it('progress line: the counters, with an eta only while it runs (a finished one has nothing left)', () => {
    const p = { ...base.progress!, chunksApplied: 1, etaSeconds: 4 }
    assert.equal(progressLine({ ...base, progress: p }), '1/2 chunks · 1 applied · 25 rows read · 2 B written · eta 4.0s')
    assert.equal(progressLine({ ...base, status: 'succeeded', progress: { ...p, chunksDone: 2, chunksApplied: 2, etaSeconds: 0 } }), '2/2 chunks · 2 applied · 25 rows read · 2 B written')
  })
})
