/**
 * A rescued compaction compacts only what is left (docs/compaction.md#incremental-compaction), on
 * the real stack: two instances in one process share one blob store, one consensus and one job
 * store. Instance A runs a two-chunk compaction and applies its first chunk; its second chunk's
 * read is held, so A makes no progress, stops renewing, and loses the job. Instance B takes it over
 * (attempt 2), knows from the shard's claim of the job that a chunk applied, and compacts only what
 * is left: of a range's inputs, those still in the trace; of a major compaction planned again, all
 * but the job's own output. When A's read is let go, its late chunk is fenced off and deleted.
 * (test/cluster/ does the same with processes killed for real.)
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { buildTestApp, type TestApp } from '../helper.js'
import {
  GATED,
  GatedBlob,
  appendOneRowBatches,
  blobKeys,
  createShard,
  getShard,
  inject,
  partKeys,
  patchConfigs,
  runRows,
  snapshots,
  submit,
  whenCompaction,
  type BatchJson,
} from './support.js'

/** An instance on the shared stores, closed after the test (instances close newest first). */
async function instance(t: TestContext, name: string, stores: { blob: GatedBlob; consensus: MemConsensus; jobs: MemJobStore }): Promise<TestApp> {
  const a = await buildTestApp({
    settings: { workers: 1, instanceId: name, gcGraceMs: 0 },
    services: { rawBlob: stores.blob, rawConsensus: stores.consensus, jobStore: stores.jobs, gcIntervalMs: null, compactorTimers: { pollMs: 50, heartbeatMs: 200, remotePollMs: 20 } },
  })
  t.after(() => a.close())
  return a
}

const AS_OFS = [0, 1, 2, 3, 4]

interface Case {
  readonly name: string
  readonly body: Record<string, unknown>
  /** Input updates the rescued attempt reads. */
  readonly reads: number
  /** Each output applied, `[lower, upper]`, the first attempt's then the rescue's. */
  readonly applied: [number, number][]
  /** The spine batches' hollow batches afterwards, `[lower, upper]`. */
  readonly layout: [number, number][][]
}

const CASES: Case[] = [
  {
    // A range: the rescue finds which of its inputs are still in the trace.
    name: 'a range compaction',
    body: { desc: { lower: [0], upper: [4] } },
    reads: 1,
    applied: [
      [0, 3],
      [3, 4],
    ],
    layout: [
      [
        [0, 3],
        [3, 4],
      ],
      [[4, 5]],
    ],
  },
  {
    // A major compaction: planned again from the state, its own first chunk (known by its parts'
    // writer key) left out; the rescue's chunk spans two spine batches, gathered into one.
    name: 'a major compaction',
    body: { major: true },
    reads: 2,
    applied: [
      [0, 3],
      [3, 5],
    ],
    layout: [
      [
        [0, 3],
        [3, 5],
      ],
    ],
  },
]

describe('a rescued incremental compaction', () => {
  for (const c of CASES) {
    it(`${c.name} compacts only what the lost attempt left: one output per chunk applied, the late chunk fenced off, no orphan blob after GC`, GATED, async (t) => {
      const stores = { blob: new GatedBlob(), consensus: new MemConsensus(), jobs: new MemJobStore() }
      t.after(() => stores.blob.releaseAll())
      const a = await instance(t, 'a', stores)
      const shardId = await createShard(a.app)
      await patchConfigs(a.app, { persist_inline_writes_single_max_bytes: 0 })
      await appendOneRowBatches(a.app, shardId, 5)
      const shard = await getShard(a.app, shardId)
      const inputs = shard.trace.batches.flatMap((sb) => sb.batches)
      assert.deepEqual(inputs.map((b) => b.desc.lower[0]), [0, 1, 2, 3, 4])
      const sizes = inputs.map((b) => b.parts[0]?.encodedSizeBytes as number)
      const target = Math.ceil((3 * Math.max(...sizes)) / 2)
      assert.ok(4 * Math.min(...sizes) > 2 * target, `part sizes ${sizes.join(', ')} are too uneven for this test`)
      // Chunks of three inputs at most; a lease that runs out fast once its owner stops moving; one
      // compaction per instance, so the one A keeps running (as a wedged process would) leaves the
      // rescue to B.
      await patchConfigs(a.app, {
        persist_compaction_heuristic_min_inputs: 1,
        persist_blob_target_size: target,
        persist_compaction_memory_bound_bytes: 4 * target,
        compaction_lease_timeout: '2s',
        compaction_concurrency_limit: 1,
      })
      const snaps = await snapshots(a.app, shardId, AS_OFS)
      const before = new Set(await blobKeys(a.services, shardId))

      // Only A's read of input 3 (its second chunk's first) is held; whoever reads it next goes through.
      const input3 = partKeys(shardId, inputs[3] as BatchJson)[0] as string
      let held = false
      const hold = stores.blob.hold((key) => key === input3 && !held && (held = true))
      const submitted = await submit(a.app, shardId, c.body)
      assert.equal(submitted.statusCode, 202, submitted.body)
      const id = submitted.json().id as string
      await hold.reached
      const first = await whenCompaction(a.services.compactor, id, (x) => x.progress.chunksApplied === 1)
      assert.deepEqual([first.attempt, first.instance], [1, 'a'])
      const chunk1 = (await getShard(a.app, shardId)).trace.batches[0]?.batches[0] as BatchJson
      assert.deepEqual(chunk1.desc, { lower: [0], upper: [3], since: [0] })

      // B joins (its worker warmed by a read, so its attempt moves from the start); A's lease runs
      // out (no progress, no renewal), B rescues the job and finishes it.
      const b = await instance(t, 'b', stores)
      assert.deepEqual(await snapshots(b.app, shardId, [4]), { 4: snaps[4] })
      const done = await whenCompaction(b.services.compactor, id, (x) => x.status === 'succeeded')
      assert.deepEqual([done.attempt, done.instance], [2, 'b'])
      assert.equal(done.progress.chunksApplied, 2, "the first attempt's chunk counts")
      assert.equal(done.progress.updatesRead, c.reads, 'the rescued attempt reads only the inputs left')
      assert.equal(done.inputs.updates, c.reads)
      assert.deepEqual(
        done.merges.map((m) => [Number(m.desc.lower[0]), Number(m.desc.upper[0]), m.result]),
        c.applied.map(([lo, hi]) => [lo, hi, 'applied_subset']),
      )
      // Either instance's sweep may have put the expired job back in the queue; B claimed it.
      const rescues = async (x: TestApp): Promise<number> => (await x.services.metrics.cluster.rescued.get()).values.reduce((sum, v) => sum + v.value, 0)
      assert.equal((await rescues(a)) + (await rescues(b)), 1)

      // A's read goes through: its second chunk can no longer apply (fenced) and is deleted.
      hold.release()
      await a.services.compactor.idle()
      const fenced = (await a.services.metrics.cluster.fenced.get()).values.reduce((sum, v) => sum + v.value, 0)
      assert.ok(fenced >= 1, 'A was fenced off')

      const trace = (await getShard(b.app, shardId)).trace
      assert.deepEqual(
        trace.batches.map((sb) => sb.batches.map((x) => [x.desc.lower[0], x.desc.upper[0]])),
        c.layout,
      )
      assert.deepEqual(trace.batches[0]?.batches[0], chunk1, "the first attempt's chunk stays")
      assert.deepEqual(await snapshots(b.app, shardId, AS_OFS), snaps)

      // Before GC, the only blobs written are the two applied chunks': A deleted its late output itself.
      const referenced = trace.batches.flatMap((sb) => sb.batches.flatMap((x) => partKeys(shardId, x)))
      const chunkKeys = [...partKeys(shardId, chunk1), ...partKeys(shardId, trace.batches[0]?.batches[1] as BatchJson)].sort()
      assert.deepEqual((await blobKeys(b.services, shardId)).filter((k) => !before.has(k)), chunkKeys)
      // GC: the replaced inputs go (once the snapshot reads' leases are given back); every blob left
      // is referenced, and the outputs referenced are the two chunks'.
      await a.services.shards.readerLeases.stop()
      await b.services.shards.readerLeases.stop()
      await inject(b.app, { method: 'POST', url: `/v1/shards/${shardId}/gc` }, 200)
      assert.deepEqual(await blobKeys(b.services, shardId), [...referenced].sort())
      assert.deepEqual(referenced.filter((k) => !before.has(k)).sort(), chunkKeys)
      assert.deepEqual(await runRows(b.app, shardId, trace.batches[0]?.batches[1] as BatchJson), [
        Array.from({ length: c.applied[1]![1] - 3 }, (_, i) => ({ key: `k${3 + i}`, val: 'v', time: 3 + i, diff: 1 })),
      ])
    })
  }
})
