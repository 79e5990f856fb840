/**
 * Scheduling on the real stack (docs/compaction.md#stage-b-scheduling, docs/api.md#compactions):
 * a full queue, concurrency waits, cancelling a running compaction, and the event stream.
 * Compactions are held at a chosen input read by a GatedBlob, so every step is awaited, not timed.
 *
 * Each test appends batches `[i, i+1)` of one blob part each (inline writes off); with five or
 * more, spine batch `0-4` holds the first four, so compacting one of them is a subset match.
 */
import assert from 'node:assert/strict'
import type { EventEmitter } from 'node:events'
import { describe, it, type TestContext } from 'node:test'
import type { Compactor } from '../../src/compact/compactor.js'
import {
  GATED,
  RECENT,
  appendOneRowBatches,
  blobKeys,
  compactAndWait,
  countDelta,
  createShard,
  e2eApp,
  getShard,
  inject,
  partKeys,
  patchConfigs,
  scrape,
  seriesDelta,
  shardApplied,
  snapshots,
  submit,
  whenCompaction,
  type BatchJson,
  type CompactionJson,
} from './support.js'

async function setup(t: TestContext, batches: number) {
  const e = await e2eApp(t)
  const shardId = await createShard(e.app)
  await patchConfigs(e.app, { persist_inline_writes_single_max_bytes: 0 })
  await appendOneRowBatches(e.app, shardId, batches)
  const shard = await getShard(e.app, shardId)
  const inputs = shard.trace.batches[0]?.batches ?? []
  assert.deepEqual(shard.trace.batches[0]?.desc.upper, [4])
  await patchConfigs(e.app, { persist_compaction_heuristic_min_inputs: 1 })
  /** The blob key of input `i`'s only part. */
  const inputKey = (i: number): string => partKeys(shardId, inputs[i] as BatchJson)[0] as string
  return { ...e, shardId, shard, inputs, inputKey }
}

const one = (i: number) => ({ desc: { lower: [i], upper: [i + 1] } })

/** Resolves when a `change` listener is next added to the compactor (an event stream subscribed). */
function subscribed(compactor: Compactor): Promise<void> {
  // NB: the compactor's typed events do not list EventEmitter's own.
  const emitter = compactor as unknown as EventEmitter
  return new Promise((resolve) => {
    const on = (event: string | symbol): void => {
      if (event !== 'change') return
      emitter.off('newListener', on)
      resolve()
    }
    emitter.on('newListener', on)
  })
}

function parseSse(text: string): { event: string; data: CompactionJson }[] {
  return text
    .split('\n\n')
    .filter((frame) => frame !== '')
    .map((frame) => {
      const lines = frame.split('\n')
      assert.equal(lines.length, 2, frame)
      assert.match(lines[0] as string, /^event: (progress|done)$/)
      assert.match(lines[1] as string, /^data: /)
      return { event: (lines[0] as string).slice(7), data: JSON.parse((lines[1] as string).slice(6)) as CompactionJson }
    })
}

describe('queue and concurrency', () => {
  it('a held compaction makes the next wait for a permit, the queue fill, and the one after 429', GATED, async (t) => {
    const s = await setup(t, 5)
    await patchConfigs(s.app, { compaction_concurrency_limit: 1, compaction_queue_size: 1 })
    const hold = s.blob.hold((key) => key === s.inputKey(0))
    const before = await scrape(s.app)

    const a = await submit(s.app, s.shardId, one(0))
    assert.equal(a.statusCode, 202, a.body)
    assert.equal(await hold.reached, s.inputKey(0))
    // B: the one queue slot, waiting for the permit A holds.
    const b = await submit(s.app, s.shardId, one(1))
    assert.equal(b.statusCode, 202, b.body)
    const c = await submit(s.app, s.shardId, one(2))
    assert.equal(c.statusCode, 429, c.body)
    assert.equal(c.json().code, 'QUEUE_FULL')
    assert.equal(c.json().queueDepth, 1)
    const retryAfter = c.headers['retry-after']
    assert.match(String(retryAfter), /^[1-9][0-9]*$/)

    const ids = [a, b].map((r) => r.json().id as string)
    const listed = (await inject(s.app, { method: 'GET', url: `/v1/compactions?shardId=${s.shardId}&limit=10` }, 200)).json().compactions as CompactionJson[]
    const requests = listed.filter((x) => x.source === 'request')
    assert.deepEqual(requests.map((x) => [x.id, x.status]), [[ids[1], 'queued'], [ids[0], 'running']])
    const mid = await scrape(s.app)
    assert.deepEqual(countDelta(before, mid), {
      requested: 3,
      dropped: 1,
      started: 1,
      concurrency_waits: 1,
      chunks_compacted: 1,
      runs_compacted: 1,
      [RECENT]: 1,
    })
    assert.equal(mid.get('persist_compaction_queue_depth'), 1)
    assert.equal(mid.get('persist_compaction_running'), 1)

    hold.release()
    const done = await Promise.all(ids.map((id) => s.services.compactor.wait(id)))
    assert.deepEqual(done.map((x) => [x.status, x.result]), [['succeeded', 'applied_subset'], ['succeeded', 'applied_subset']])
    await s.services.compactor.sweep()
    const after = await scrape(s.app)
    assert.deepEqual(countDelta(before, after), {
      requested: 3,
      dropped: 1,
      started: 2,
      concurrency_waits: 1,
      applied: 2,
      applied_subset_match: 2,
      [shardApplied(s.shardId)]: 2,
      chunks_compacted: 2,
      runs_compacted: 2,
      [RECENT]: 2,
    })
    assert.ok(seriesDelta(before, after, 'persist_compaction_queued_seconds_total') > 0)
    assert.equal(after.get('persist_compaction_queue_depth'), 0)
    assert.equal(after.get('persist_compaction_running'), 0)
    const layout = (await getShard(s.app, s.shardId)).trace.batches[0]?.batches.map((x) => x.desc.lower[0])
    assert.deepEqual(layout, [0, 1, 2, 3])
  })
})

describe('cancel', () => {
  /** Four inputs in two chunks, [0, 1, 2] then [3]: the second reads input 3 only after the first is written. */
  async function twoChunks(t: TestContext, configs: Record<string, unknown>) {
    const s = await setup(t, 5)
    const sizes = s.inputs.map((b) => b.parts[0]?.encodedSizeBytes as number)
    const target = Math.ceil((3 * Math.max(...sizes)) / 2)
    assert.ok(4 * Math.min(...sizes) > 2 * target, `part sizes ${sizes.join(', ')} are too uneven for this test`)
    await patchConfigs(s.app, { persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target, ...configs })
    return { ...s, snaps: await snapshots(s.app, s.shardId, [0, 1, 2, 3, 4]), keys: await blobKeys(s.services, s.shardId) }
  }

  it('without incremental compaction: cancelling a running compaction answers 200 cancelled once its written outputs are deleted, then 409', GATED, async (t) => {
    const s = await twoChunks(t, { persist_enable_incremental_compaction: false })
    const hold = s.blob.hold((key) => key === s.inputKey(3))
    const before = await scrape(s.app)

    const submitted = await submit(s.app, s.shardId, { desc: { lower: [0], upper: [4] } })
    assert.equal(submitted.statusCode, 202, submitted.body)
    const id = submitted.json().id as string
    await hold.reached
    const running = (await inject(s.app, { method: 'GET', url: `/v1/compactions/${id}` }, 200)).json() as CompactionJson
    assert.equal(running.status, 'running')
    const progress = running.progress as { chunksDone: number; chunksTotal: number; partsWritten: number }
    assert.deepEqual([progress.chunksDone, progress.chunksTotal], [1, 2])
    assert.ok(progress.partsWritten >= 1)
    const written = (await blobKeys(s.services, s.shardId)).filter((k) => !s.keys.includes(k))
    assert.equal(written.length, progress.partsWritten, 'the first chunk is in blob storage')

    const cancelled = await inject(s.app, { method: 'DELETE', url: `/v1/compactions/${id}` }, 200)
    const c = cancelled.json() as CompactionJson
    assert.equal(c.status, 'cancelled')
    assert.equal(c.error?.code, 'CANCELLED')
    assert.equal(c.reason, undefined)
    assert.equal(c.output, undefined)
    assert.deepEqual(await blobKeys(s.services, s.shardId), s.keys, 'written outputs are deleted')
    assert.deepEqual(countDelta(before, await scrape(s.app)), { requested: 1, started: 1, chunks_compacted: 2, runs_compacted: 4, [RECENT]: 1 })
    assert.deepEqual((await getShard(s.app, s.shardId)).trace, s.shard.trace)

    const again = await inject(s.app, { method: 'DELETE', url: `/v1/compactions/${id}` }, 409)
    assert.equal(again.json().code, 'ALREADY_FINISHED')
    hold.release()
    assert.deepEqual(await snapshots(s.app, s.shardId, [0, 1, 2, 3, 4]), s.snaps)
  })

  it('with incremental compaction: a compaction cancelled after its first chunk applied keeps that chunk; only the rest is undone', GATED, async (t) => {
    const s = await twoChunks(t, {})
    const hold = s.blob.hold((key) => key === s.inputKey(3))
    const before = await scrape(s.app)

    const submitted = await submit(s.app, s.shardId, { desc: { lower: [0], upper: [4] } })
    assert.equal(submitted.statusCode, 202, submitted.body)
    const id = submitted.json().id as string
    await hold.reached
    const running = await whenCompaction(s.services.compactor, id, (c) => c.progress.chunksApplied === 1)
    assert.deepEqual([running.status, running.progress.chunksDone, running.progress.chunksTotal], ['running', 1, 2])
    const chunk1 = (await getShard(s.app, s.shardId)).trace.batches[0]?.batches[0] as BatchJson
    assert.deepEqual(chunk1.desc, { lower: [0], upper: [3], since: [0] }, 'the first chunk is in the trace while the second runs')
    // NB: no snapshot while the hold is on: it would read input 3 too.

    const cancelled = await inject(s.app, { method: 'DELETE', url: `/v1/compactions/${id}` }, 200)
    const c = cancelled.json() as CompactionJson & { progress: { chunksApplied: number }; reason?: { code: string; message: string }; merges: { desc: unknown; result: string }[] }
    assert.equal(c.status, 'cancelled')
    assert.equal(c.error?.code, 'CANCELLED')
    assert.equal(c.reason?.code, 'PARTIALLY_APPLIED')
    assert.match(c.reason?.message ?? '', /^1 output it applied before it was cancelled stay in the trace/)
    assert.equal(c.progress.chunksApplied, 1)
    assert.deepEqual(c.merges.map((m) => [m.desc, m.result]), [[{ lower: [0], upper: [3], since: [0] }, 'applied_subset']])
    assert.equal(c.output, undefined)

    // The first chunk's output stays (state references it); nothing else was written.
    const trace = (await getShard(s.app, s.shardId)).trace
    assert.deepEqual(trace.batches[0]?.batches.map((b) => [b.desc.lower[0], b.desc.upper[0]]), [[0, 3], [3, 4]])
    assert.deepEqual(trace.batches[0]?.batches[1], s.inputs[3], 'the second chunk\'s input is as it was')
    assert.deepEqual(trace.batches.slice(1), s.shard.trace.batches.slice(1))
    assert.deepEqual(await blobKeys(s.services, s.shardId), [...s.keys, ...partKeys(s.shardId, chunk1)].sort())
    assert.deepEqual(countDelta(before, await scrape(s.app)), {
      requested: 1,
      started: 1,
      applied: 1,
      applied_subset_match: 1,
      [shardApplied(s.shardId)]: 1,
      chunks_compacted: 2,
      runs_compacted: 4,
      [RECENT]: 1,
    })
    hold.release()
    assert.deepEqual(await snapshots(s.app, s.shardId, [0, 1, 2, 3, 4]), s.snaps)
  })
})

describe('events', () => {
  it('a finished compaction streams exactly one done event carrying it', async (t) => {
    const s = await setup(t, 5)
    const c = await compactAndWait(s.app, s.shardId, one(0))
    assert.equal(c.status, 'succeeded')
    const res = await inject(s.app, { method: 'GET', url: `/v1/compactions/${c.id}/events` }, 200)
    assert.match(String(res.headers['content-type']), /^text\/event-stream/)
    assert.deepEqual(parseSse(res.body), [{ event: 'done', data: c }])
  })

  it('a running compaction streams progress events, then one done when it ends', GATED, async (t) => {
    const s = await setup(t, 5)
    const hold = s.blob.hold((key) => key === s.inputKey(0))
    const submitted = await submit(s.app, s.shardId, one(0))
    assert.equal(submitted.statusCode, 202, submitted.body)
    const id = submitted.json().id as string
    await hold.reached
    const listening = subscribed(s.services.compactor)
    const stream = s.app.inject({ method: 'GET', url: `/v1/compactions/${id}/events` })
    await listening
    hold.release()
    const res = await stream
    assert.equal(res.statusCode, 200)
    const events = parseSse(res.body)
    assert.ok(events.length >= 2, res.body)
    assert.deepEqual(events.map((e) => e.event), [...events.slice(0, -1).map(() => 'progress'), 'done'])
    assert.equal(events[0]?.data.status, 'running')
    const last = events[events.length - 1]?.data
    assert.equal(last?.status, 'succeeded')
    assert.equal(last?.result, 'applied_subset')
    assert.deepEqual(last, (await inject(s.app, { method: 'GET', url: `/v1/compactions/${id}` }, 200)).json())
  })
})
