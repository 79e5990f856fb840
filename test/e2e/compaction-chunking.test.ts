/**
 * Stage D's planning on the real stack (docs/compaction.md#chunking-within-the-memory-bound,
 * docs/compaction.md#incremental-compaction): the dry-run plan of `chunk_runs` with and without memory violations
 * and the counters a real run bumps; the same inputs chunked whole batches at a time with
 * incremental compaction, each chunk applied on its own; a batch too large for one chunk split
 * into chunks of its runs; runs in the wrong order exploded into single-part runs; and empty
 * inputs costing nothing.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import {
  RECENT,
  appendOneRowBatches,
  compactAndWait,
  consolidate,
  countDelta,
  createShard,
  dryRun,
  e2eApp,
  getShard,
  inject,
  patchConfigs,
  runRows,
  scrape,
  seriesDelta,
  shardApplied,
  snapshots,
  writeBatch,
  type BatchJson,
  type PartJson,
  type RowJson,
} from './support.js'

const AS_OFS = [0, 1, 2, 3, 4]
const DEFAULT_TARGET = 128 * 1024 * 1024

const sizeOf = (b: BatchJson): number => {
  assert.equal(b.parts.length, 1)
  const p = b.parts[0]
  return (p?.inline?.encodedSizeBytes ?? p?.encodedSizeBytes) as number
}

/** Five appended one-row batches; spine batch `0-4` holds four of them, one part each. */
async function fourInputs(t: TestContext) {
  const e = await e2eApp(t)
  const shardId = await createShard(e.app)
  await appendOneRowBatches(e.app, shardId, 5)
  const shard = await getShard(e.app, shardId)
  const sb = shard.trace.batches[0]
  assert.deepEqual(sb?.desc.upper, [4])
  const inputs = sb?.batches ?? []
  assert.equal(inputs.length, 4)
  const sizes = inputs.map(sizeOf)
  await patchConfigs(e.app, { persist_compaction_heuristic_min_inputs: 1 })
  return { ...e, shardId, sizes, snapshots: await snapshots(e.app, shardId, AS_OFS) }
}

/** Chunks of a plan as `[runs], memoryBytes`, runs given by their input index. */
function chunksOf(plan: Awaited<ReturnType<typeof dryRun>>): [number[], number][] {
  return plan.chunks.map((c) => [c.runs.map((r) => plan.runs[r]?.input as number), c.memoryBytes])
}

async function assertOneRunPerChunk(s: Awaited<ReturnType<typeof fourInputs>>, output: BatchJson, chunks: number[][]): Promise<void> {
  assert.equal(output.runMeta.length, chunks.length)
  assert.equal(output.runSplits.length, chunks.length - 1)
  assert.ok(output.runMeta.every((m) => m.order === 'structured' && m.schemaId === 0))
  // Each run holds exactly its chunk's rows, sorted: rows are not merged across chunks.
  const rows = await runRows(s.app, s.shardId, output)
  assert.deepEqual(
    rows,
    chunks.map((inputs) => inputs.map((i) => ({ key: `k${i}`, val: 'v', time: i, diff: 1 }))),
  )
}

const OFF = { persist_enable_incremental_compaction: false }
const REQUEST_DESC = { lower: [0], upper: [4], since: [0] }

describe('chunking without incremental compaction (chunk_runs)', () => {
  it('without memory violations: greedy chunks, a lone last run allowed, one output run per chunk', async (t) => {
    const s = await fourInputs(t)
    const max = Math.max(...s.sizes)
    const min = Math.min(...s.sizes)
    // run_reserved = 4T − 2T = 2T fits any three runs but not four.
    const target = Math.ceil((3 * max) / 2)
    assert.ok(4 * min > 2 * target, `part sizes ${s.sizes.join(', ')} are too uneven for this test`)
    await patchConfigs(s.app, { ...OFF, persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target })
    const desc = { lower: [0], upper: [4] }
    const plan = await dryRun(s.app, s.shardId, { desc })
    assert.deepEqual(plan.chunks.map((c) => [c.kind, c.desc]), [['combined', REQUEST_DESC], ['combined', REQUEST_DESC]])
    assert.deepEqual(
      plan.runs,
      s.sizes.map((size, input) => ({ input, order: 'structured', schemaId: 0, parts: 1, encodedBytes: size, maxPartBytes: size, exploded: false })),
    )
    const [s0, s1, s2, s3] = s.sizes as [number, number, number, number]
    assert.deepEqual(chunksOf(plan), [
      [[0, 1, 2], s0 + s1 + s2],
      [[3], s3],
    ])
    assert.equal(plan.memoryViolations, 0)

    const before = await scrape(s.app)
    const c = await compactAndWait(s.app, s.shardId, { desc })
    assert.equal(c.result, 'applied_exact')
    assert.deepEqual(countDelta(before, await scrape(s.app)), {
      requested: 1,
      started: 1,
      applied: 1,
      applied_exact_match: 1,
      [shardApplied(s.shardId)]: 1,
      chunks_compacted: 2,
      runs_compacted: 4,
      [RECENT]: 1,
    })
    assert.deepEqual(c.progress, { ...(c.progress as object), chunksDone: 2, chunksTotal: 2 })
    await assertOneRunPerChunk(s, c.output as BatchJson, [[0, 1, 2], [3]])
    assert.deepEqual(await snapshots(s.app, s.shardId, AS_OFS), s.snapshots)
  })

  it('with memory violations: a chunk whose first run alone fills the budget still takes a second', async (t) => {
    const s = await fourInputs(t)
    // run_reserved = 2T is half of the smallest part: every chunk is forced over it.
    const target = Math.floor(Math.min(...s.sizes) / 4)
    await patchConfigs(s.app, { ...OFF, persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target })
    const desc = { lower: [0], upper: [4] }
    const plan = await dryRun(s.app, s.shardId, { desc })
    const [s0, s1, s2, s3] = s.sizes as [number, number, number, number]
    assert.deepEqual(chunksOf(plan), [
      [[0, 1], s0 + s1],
      [[2, 3], s2 + s3],
    ])
    assert.equal(plan.memoryViolations, 2)

    const before = await scrape(s.app)
    const c = await compactAndWait(s.app, s.shardId, { desc })
    assert.equal(c.result, 'applied_exact')
    assert.deepEqual(countDelta(before, await scrape(s.app)), {
      requested: 1,
      started: 1,
      applied: 1,
      applied_exact_match: 1,
      [shardApplied(s.shardId)]: 1,
      memory_violations: 2,
      chunks_compacted: 2,
      runs_compacted: 4,
      [RECENT]: 1,
    })
    await assertOneRunPerChunk(s, c.output as BatchJson, [[0, 1], [2, 3]])
    assert.deepEqual(await snapshots(s.app, s.shardId, AS_OFS), s.snapshots)
  })
})

/** The hollow batches of spine batch 0 as `lower-upper` with their rows, one array per run. */
async function layout(app: Awaited<ReturnType<typeof fourInputs>>['app'], shardId: string): Promise<[string, RowJson[][]][]> {
  const sb = (await getShard(app, shardId)).trace.batches[0]
  const out: [string, RowJson[][]][] = []
  for (const b of sb?.batches ?? []) out.push([`${b.desc.lower[0] as number}-${b.desc.upper[0] as number}`, await runRows(app, shardId, b)])
  return out
}

const row = (i: number): RowJson => ({ key: `k${i}`, val: 'v', time: i, diff: 1 })
const CHUNKS_APPLIED = 'persist_compaction_chunks_applied_total'

describe('chunking with incremental compaction (batch-granular)', () => {
  it('whole batches while they fit: each chunk applies on its own as soon as it is written', async (t) => {
    const s = await fourInputs(t)
    const max = Math.max(...s.sizes)
    const min = Math.min(...s.sizes)
    const target = Math.ceil((3 * max) / 2)
    assert.ok(4 * min > 2 * target, `part sizes ${s.sizes.join(', ')} are too uneven for this test`)
    await patchConfigs(s.app, { persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target })
    const desc = { lower: [0], upper: [4] }
    const plan = await dryRun(s.app, s.shardId, { desc })
    const [s0, s1, s2, s3] = s.sizes as [number, number, number, number]
    assert.deepEqual(chunksOf(plan), [
      [[0, 1, 2], s0 + s1 + s2],
      [[3], s3],
    ])
    assert.deepEqual(plan.chunks.map((c) => [c.kind, c.desc]), [
      ['batches', { lower: [0], upper: [3], since: [0] }],
      ['batches', { lower: [3], upper: [4], since: [0] }],
    ])

    const before = await scrape(s.app)
    const c = await compactAndWait(s.app, s.shardId, { desc })
    assert.equal(c.status, 'succeeded')
    assert.equal(c.result, undefined, 'two outputs applied: no single result')
    assert.equal(c.output, undefined)
    // The two chunks fared alike: one entry of the record stands for both, over both ranges.
    assert.deepEqual(c.merges, [
      { desc: { lower: [0], upper: [4], since: [0] }, inputs: { batches: 4, parts: 4, runs: 4, updates: 4, encodedBytes: s0 + s1 + s2 + s3 }, result: 'applied_subset', chunks: 2 },
    ])
    assert.deepEqual(c.progress, { ...(c.progress as object), chunksDone: 2, chunksTotal: 2, chunksApplied: 2 })
    const after = await scrape(s.app)
    assert.deepEqual(countDelta(before, after), {
      requested: 1,
      started: 1,
      applied: 2,
      applied_subset_match: 2,
      [shardApplied(s.shardId)]: 2,
      chunks_compacted: 2,
      runs_compacted: 4,
      [RECENT]: 1,
    })
    assert.equal(seriesDelta(before, after, CHUNKS_APPLIED), 2)
    // One hollow batch per chunk, one run each: rows are not merged across chunks.
    assert.deepEqual(await layout(s.app, s.shardId), [
      ['0-3', [[row(0), row(1), row(2)]]],
      ['3-4', [[row(3)]]],
    ])
    assert.deepEqual(await snapshots(s.app, s.shardId, AS_OFS), s.snapshots)
  })

  it('over budget: batches of one run still go two by two, a violation counted for each pair', async (t) => {
    const s = await fourInputs(t)
    const target = Math.floor(Math.min(...s.sizes) / 4)
    await patchConfigs(s.app, { persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target })
    const desc = { lower: [0], upper: [4] }
    const plan = await dryRun(s.app, s.shardId, { desc })
    const [s0, s1, s2, s3] = s.sizes as [number, number, number, number]
    assert.deepEqual(chunksOf(plan), [
      [[0, 1], s0 + s1],
      [[2, 3], s2 + s3],
    ])
    assert.equal(plan.memoryViolations, 2)

    const before = await scrape(s.app)
    const c = await compactAndWait(s.app, s.shardId, { desc })
    assert.equal(c.status, 'succeeded')
    assert.deepEqual(countDelta(before, await scrape(s.app)), {
      requested: 1,
      started: 1,
      applied: 2,
      applied_subset_match: 2,
      [shardApplied(s.shardId)]: 2,
      memory_violations: 2,
      chunks_compacted: 2,
      runs_compacted: 4,
      [RECENT]: 1,
    })
    assert.deepEqual(await layout(s.app, s.shardId), [
      ['0-2', [[row(0), row(1)]]],
      ['2-4', [[row(2), row(3)]]],
    ])
    assert.deepEqual(await snapshots(s.app, s.shardId, AS_OFS), s.snapshots)
  })

  it('a batch too large for one chunk is split into chunks of its runs, each replacing its runs in the batch', async (t) => {
    const { app } = await e2eApp(t)
    const shardId = await createShard(app)
    await patchConfigs(app, { persist_inline_writes_single_max_bytes: 0, persist_compaction_heuristic_min_inputs: 1 })
    // Four one-run batches over [0, 4), never appended: their parts become the four runs of one batch.
    const rows: RowJson[] = [row(0), { key: 'k0', val: 'v', time: 1, diff: -1 }, row(2), { key: 'k2', val: 'v', time: 3, diff: 1 }]
    const written = []
    for (const r of rows) written.push(await writeBatch(app, shardId, 0, 4, [r], false))
    const parts = written.map((b) => b.parts[0] as PartJson)
    const batch: BatchJson = {
      desc: { lower: [0], upper: [4], since: [0] },
      len: 4,
      parts,
      runSplits: [1, 2, 3],
      runMeta: parts.map(() => ({ order: 'structured', schemaId: 0 })),
    }
    await inject(app, { method: 'POST', url: `/v1/shards/${shardId}/append`, payload: { batch } }, 201)
    const snaps = await snapshots(app, shardId, [0, 1, 2, 3])
    const sizes = parts.map((p) => p.encodedSizeBytes as number)
    const max = Math.max(...sizes)
    // run_reserved = 2T holds two runs but not three (nor the whole batch).
    const target = Math.ceil((5 * max) / 4)
    assert.ok(3 * Math.min(...sizes) > 2 * target, `part sizes ${sizes.join(', ')} are too uneven for this test`)
    await patchConfigs(app, { persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target })

    const desc = { lower: [0], upper: [4] }
    const plan = await dryRun(app, shardId, { desc })
    assert.deepEqual(
      plan.chunks.map((c) => [c.kind, c.desc, c.runs.length]),
      [
        ['runs', REQUEST_DESC, 2],
        ['runs', REQUEST_DESC, 2],
      ],
    )
    const before = await scrape(app)
    const c = await compactAndWait(app, shardId, { desc })
    assert.equal(c.status, 'succeeded')
    // The two chunks fared alike: one entry of the record stands for both.
    assert.deepEqual((c.merges as { result: string; inputs: { runs: number }; chunks?: number }[]).map((m) => [m.result, m.inputs.runs, m.chunks]), [['applied_subset', 4, 2]])
    assert.equal(seriesDelta(before, await scrape(app), CHUNKS_APPLIED), 2)
    // The batch keeps its desc and holds the two outputs, one run each (at since 0 no time moves, nothing cancels).
    const sb = (await getShard(app, shardId)).trace.batches[0]
    assert.equal(sb?.batches.length, 1)
    const after = sb?.batches[0] as BatchJson
    assert.deepEqual(after.desc, REQUEST_DESC)
    assert.equal(after.runMeta.length, 2)
    assert.equal(after.len, 4)
    assert.deepEqual(await runRows(app, shardId, after), [
      [row(0), { key: 'k0', val: 'v', time: 1, diff: -1 }],
      [row(2), { key: 'k2', val: 'v', time: 3, diff: 1 }],
    ])
    assert.deepEqual(await snapshots(app, shardId, [0, 1, 2, 3]), snaps)
  })
})

describe('chunk planning, with or without incremental compaction', () => {
  it('a multi-part run declared in the wrong order is exploded into single-part runs, and compacts correctly', async (t) => {
    const { app } = await e2eApp(t)
    const shardId = await createShard(app)
    // Target 1: the writer cuts a part per row; inline off: every part is a blob.
    await patchConfigs(app, { persist_blob_target_size: 1, persist_inline_writes_single_max_bytes: 0 })
    const rows: RowJson[] = [
      { key: 'a', val: 'x', time: 0, diff: 1 },
      { key: 'a', val: 'x', time: 1, diff: 1 },
      { key: 'b', val: 'x', time: 0, diff: 1 },
      { key: 'b', val: 'x', time: 2, diff: -1 },
      { key: 'c', val: 'y', time: 3, diff: 2 },
      { key: 'd', val: 'z', time: 4, diff: -1 },
    ]
    const batch = await writeBatch(app, shardId, 0, 5, rows, false)
    assert.equal(batch.parts.length, rows.length)
    assert.deepEqual(batch.runSplits, [])
    assert.deepEqual(batch.runMeta, [{ order: 'structured', schemaId: 0 }])
    await patchConfigs(app, { persist_blob_target_size: DEFAULT_TARGET })

    const desc = { lower: [0], upper: [5], since: [4] }
    const asWritten = await dryRun(app, shardId, { desc, inputs: [batch] })
    assert.deepEqual(asWritten.runs.map((r) => [r.order, r.parts, r.exploded]), [['structured', rows.length, false]])

    const codec: BatchJson = { ...batch, runMeta: [{ order: 'codec', schemaId: 0 }] }
    const plan = await dryRun(app, shardId, { desc, inputs: [codec] })
    assert.deepEqual(
      plan.runs.map((r) => ({ input: r.input, order: r.order, parts: r.parts, exploded: r.exploded, maxPartBytes: r.maxPartBytes })),
      batch.parts.map((p) => ({ input: 0, order: 'codec', parts: 1, exploded: true, maxPartBytes: p.encodedSizeBytes })),
    )
    assert.deepEqual(plan.chunks.map((c) => c.runs), [rows.map((_, i) => i)])
    assert.equal(plan.memoryViolations, 0)

    const before = await scrape(app)
    const res = await inject(app, { method: 'POST', url: '/v1/compact', payload: { shardId, desc, inputs: [codec] } }, 200)
    const output = res.json().output as BatchJson
    assert.deepEqual(output.desc, desc)
    assert.deepEqual(output.runMeta, [{ order: 'structured', schemaId: 0 }])
    const expected = consolidate(rows, 4)
    assert.deepEqual(expected.map((r) => r.key), ['a', 'c', 'd'])
    assert.equal(output.len, expected.length)
    assert.deepEqual((await runRows(app, shardId, output)).flat(), expected)
    // Stage D alone: one chunk of six exploded runs; POST /v1/compact moves no lifecycle counter.
    assert.deepEqual(countDelta(before, await scrape(app)), { chunks_compacted: 1, runs_compacted: rows.length })
  })

  it('empty input batches contribute no runs and no chunk memory', async (t) => {
    const e = await e2eApp(t)
    const shardId = await createShard(e.app)
    const b0 = await writeBatch(e.app, shardId, 0, 1, [{ key: 'k0', val: 'v', time: 0, diff: 1 }], false)
    const b1 = await writeBatch(e.app, shardId, 1, 2, [], false)
    const b2 = await writeBatch(e.app, shardId, 2, 3, [{ key: 'k2', val: 'v', time: 2, diff: 1 }], false)
    assert.deepEqual({ len: b1.len, parts: b1.parts, runMeta: b1.runMeta }, { len: 0, parts: [], runMeta: [] })
    const desc = { lower: [0], upper: [3], since: [0] }
    const inputs = [b0, b1, b2]
    const plan = await dryRun(e.app, shardId, { desc, inputs })
    // Below every heuristic, but an operator's request runs anyway (the heuristics filter maintenance).
    assert.deepEqual(plan.heuristic, { inputs: 3, parts: 2, updates: 2, wouldCompact: true })
    assert.deepEqual(plan.runs.map((r) => r.input), [0, 2])
    // Had the empty batch a run, it would cost a whole target size (128 MiB) here.
    assert.deepEqual(plan.chunks, [{ runs: [0, 1], memoryBytes: sizeOf(b0) + sizeOf(b2), kind: 'batches', desc }])
    assert.equal(plan.memoryViolations, 0)

    const before = await scrape(e.app)
    const res = await inject(e.app, { method: 'POST', url: '/v1/compact', payload: { shardId, desc, inputs } }, 200)
    const output = res.json().output as BatchJson
    assert.deepEqual((await runRows(e.app, shardId, output)).flat(), [
      { key: 'k0', val: 'v', time: 0, diff: 1 },
      { key: 'k2', val: 'v', time: 2, diff: 1 },
    ])
    assert.deepEqual(countDelta(before, await scrape(e.app)), { chunks_compacted: 1, runs_compacted: 2 })

    // And queued against the trace: an empty batch inside the spine batch being replaced.
    for (const b of inputs) await inject(e.app, { method: 'POST', url: `/v1/shards/${shardId}/append`, payload: { batch: b } }, 201)
    const sb = (await getShard(e.app, shardId)).trace.batches[0]
    assert.deepEqual(sb?.batches.map((b) => b.len), [1, 0])
    await patchConfigs(e.app, { persist_compaction_heuristic_min_inputs: 1 })
    const snaps = await snapshots(e.app, shardId, [0, 1, 2])
    const queued = await dryRun(e.app, shardId, { desc: { lower: [0], upper: [2] } })
    assert.deepEqual(queued.runs.map((r) => r.input), [0])
    assert.deepEqual(queued.chunks, [{ runs: [0], memoryBytes: sizeOf(b0), kind: 'batches', desc: { lower: [0], upper: [2], since: [0] } }])
    const c = await compactAndWait(e.app, shardId, { desc: { lower: [0], upper: [2] } })
    assert.equal(c.status, 'succeeded')
    assert.equal(c.result, 'applied_exact')
    assert.deepEqual(await snapshots(e.app, shardId, [0, 1, 2]), snaps)
  })

  it('written runs whose windows fit the bound merge in one pass into one run, also when the client leaves their stats out', async (t) => {
    const { app } = await e2eApp(t)
    const shardId = await createShard(app)
    // (Writer maintenance would merge the batches away: its heuristics hold it back here.)
    await patchConfigs(app, { persist_inline_writes_single_max_bytes: 0, persist_compaction_heuristic_min_updates: 1_000_000_000, persist_compaction_heuristic_min_inputs: 100, persist_compaction_heuristic_min_parts: 100 })
    // Three runs of one part each, ~9 MB in record batches of ~1 MiB.
    const batches: BatchJson[] = []
    for (let r = 0; r < 3; r++) {
      const rows = Array.from({ length: 150_000 }, (_, i) => ({ key: `k${String(i * 3 + r).padStart(7, '0')}`, val: 'v'.repeat(40), time: r, diff: 1 }))
      batches.push(await writeBatch(app, shardId, r, r + 1, rows))
    }
    const part = (b: BatchJson) => b.parts[0] as { encodedSizeBytes: number; stats?: { updates: number; batchBytes?: number } }
    const sizes = batches.map((b) => part(b).encodedSizeBytes)
    assert.ok(batches.every((b) => (part(b).stats?.batchBytes ?? 0) > 0 && (part(b).stats?.batchBytes ?? 0) * 2 < part(b).encodedSizeBytes), 'written parts say their largest record batch')
    // Whole parts would not fit two to a chunk; their windows (two per run) fit all three.
    const target = 1 << 20
    assert.ok(Math.min(...sizes) > 8 * target)
    await patchConfigs(app, { persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 10 * target })
    const desc = { lower: [0], upper: [3], since: [0] }
    for (const inputs of [batches, batches.map((b) => ({ ...b, parts: b.parts.map((p) => ({ ...p, stats: { updates: 150_000 } })) }))]) {
      const res = await inject(app, { method: 'POST', url: '/v1/compact', payload: { shardId, desc, inputs } }, 200)
      const output = res.json().output as BatchJson
      assert.equal(output.runMeta.length, 1, 'one pass, one run')
      assert.equal(output.len, 450_000)
    }
  })
})
