/**
 * A compaction of many chunks (incremental compaction) keeps a record whose size does not grow
 * with its chunks: consecutive chunks of its merge that applied alike are one entry of `merges`
 * (`chunks` counts them), so its progress events, each the whole record, stay the same size.
 * Before, each chunk added an entry: a 1,000-chunk compaction's record reached 159 KB and its
 * event stream 477 MB.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { appendOneRowBatches, createShard, e2eApp, getShard, inject, patchConfigs, snapshots, submit, type CompactionJson } from './support.js'

const BATCHES = 48

describe('the record of a compaction of many chunks', () => {
  it('holds one merges entry for its chunks that applied alike, and its events do not grow', async (t) => {
    const { app } = await e2eApp(t)
    await patchConfigs(app, { compaction_maintenance_enabled: false })
    const shardId = await createShard(app)
    await appendOneRowBatches(app, shardId, BATCHES)
    const asOfs = [0, BATCHES / 2, BATCHES - 1]
    const before = await snapshots(app, shardId, asOfs)
    const sizes = (await getShard(app, shardId)).trace.batches.flatMap((sb) => sb.batches.flatMap((b) => b.parts.map((p) => (p.inline?.encodedSizeBytes ?? p.encodedSizeBytes) as number)))
    const target = Math.ceil((3 * Math.max(...sizes)) / 2)
    await patchConfigs(app, { persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target })

    const res = await submit(app, shardId, { major: true })
    assert.equal(res.statusCode, 202, res.body)
    const id = (res.json() as CompactionJson).id
    const events = await inject(app, { method: 'GET', url: `/v1/compactions/${id}/events` }, 200)
    const frames = events.body.split('\n\n').filter((f) => f.startsWith('event: '))
    const last = frames[frames.length - 1] ?? ''
    assert.ok(last.startsWith('event: done\n'), last.slice(0, 40))
    const done = JSON.parse(last.slice(last.indexOf('data: ') + 6)) as CompactionJson & { merges: { result: string; chunks?: number; desc: unknown; inputs: { batches: number } }[]; progress: { chunksTotal: number; chunksApplied: number } }
    assert.equal(done.status, 'succeeded')
    assert.ok(done.progress.chunksTotal >= 10, `${done.progress.chunksTotal} chunks: too few for this test`)
    assert.equal(done.progress.chunksApplied, done.progress.chunksTotal)
    assert.deepEqual(
      done.merges.map((m) => [m.result, m.chunks, m.desc, m.inputs.batches]),
      [[done.merges[0]?.result, done.progress.chunksTotal, { lower: [0], upper: [BATCHES], since: [0] }, BATCHES]],
    )
    const lengths = frames.map((f) => f.length)
    assert.ok(Math.max(...lengths) - Math.min(...lengths) < 400, `event sizes ${Math.min(...lengths)}..${Math.max(...lengths)} over ${frames.length} events`)
    assert.deepEqual(await snapshots(app, shardId, asOfs), before)
  })
})
