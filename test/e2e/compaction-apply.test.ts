/**
 * The five apply outcomes (docs/compaction.md#the-five-outcomes) through HTTP on the real stack,
 * each with the exact counter deltas of docs/compaction.md#metrics-by-step, the blob keys left behind (not-applied
 * outputs deleted), and unchanged snapshots.
 *
 * Every test starts from six appended one-row batches `[i, i+1)`, which the spine arranges as
 * spine batches `0-4` (four hollow batches), `4-5` and `5-6`; appends stay below the default
 * heuristics, so no maintenance compaction runs, and `min_inputs` is lowered only afterwards.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import {
  RECENT,
  appendOneRowBatches,
  blobKeys,
  compactAndWait,
  countDelta,
  createShard,
  e2eApp,
  getShard,
  partKeys,
  patchConfigs,
  scrape,
  seriesDelta,
  shardApplied,
  snapshots,
  submit,
  writeBatch,
  type BatchJson,
  type CompactionJson,
  type ShardJson,
} from './support.js'

const AS_OFS = [0, 1, 2, 3, 4, 5]

/** `lower-upper` of each spine batch, with its hollow batches' ranges. */
function layout(shard: ShardJson): string[] {
  return shard.trace.batches.map((sb) => `${String(sb.desc.lower)}-${String(sb.desc.upper)}:[${sb.batches.map((b) => `${String(b.desc.lower)}-${String(b.desc.upper)}`).join(' ')}]`)
}

async function sixBatches(t: TestContext, opts: { readonly blobParts?: boolean } = {}) {
  const e = await e2eApp(t)
  const shardId = await createShard(e.app)
  // Inline parts (the default for small writes) have no known diff sum; blob parts do.
  if (opts.blobParts === true) await patchConfigs(e.app, { persist_inline_writes_single_max_bytes: 0 })
  await appendOneRowBatches(e.app, shardId, 6)
  const shard = await getShard(e.app, shardId)
  assert.deepEqual(layout(shard), ['0-4:[0-1 1-2 2-3 3-4]', '4-5:[4-5]', '5-6:[5-6]'])
  await patchConfigs(e.app, { persist_compaction_heuristic_min_inputs: 1 })
  const before = {
    shard,
    snapshots: await snapshots(e.app, shardId, AS_OFS),
    blobs: await blobKeys(e.services, shardId),
    metrics: await scrape(e.app),
  }
  return { ...e, shardId, before }
}

type Setup = Awaited<ReturnType<typeof sixBatches>>

/** Asserts a not-applied outcome: no output in the record, trace and blobs and snapshots as before. */
async function assertNotApplied(s: Setup, c: CompactionJson, result: string, reason: string, delta: Record<string, number>): Promise<void> {
  assert.equal(c.status, 'not_applied')
  assert.equal(c.result, result)
  assert.equal((c.reason as { code: string } | undefined)?.code, reason)
  assert.equal(c.output, undefined)
  assert.deepEqual(countDelta(s.before.metrics, await scrape(s.app)), delta)
  assert.deepEqual((await getShard(s.app, s.shardId)).trace, s.before.shard.trace)
  assert.deepEqual(await blobKeys(s.services, s.shardId), s.before.blobs, 'the output of a not-applied compaction is deleted')
  assert.deepEqual(await snapshots(s.app, s.shardId, AS_OFS), s.before.snapshots)
}

describe('apply outcomes through HTTP', () => {
  it('applied_exact: a range that is exactly one spine batch replaces it', async (t) => {
    const s = await sixBatches(t)
    const c = await compactAndWait(s.app, s.shardId, { desc: { lower: [0], upper: [4] } })
    assert.equal(c.status, 'succeeded')
    assert.equal(c.result, 'applied_exact')
    const output = c.output as BatchJson
    assert.deepEqual(output.desc, { lower: [0], upper: [4], since: [0] })
    assert.equal(output.len, 4)
    assert.deepEqual(countDelta(s.before.metrics, await scrape(s.app)), {
      requested: 1,
      started: 1,
      applied: 1,
      applied_exact_match: 1,
      [shardApplied(s.shardId)]: 1,
      chunks_compacted: 1,
      runs_compacted: 4,
      [RECENT]: 1,
    })
    const after = await getShard(s.app, s.shardId)
    assert.deepEqual(layout(after), ['0-4:[0-4]', '4-5:[4-5]', '5-6:[5-6]'])
    assert.deepEqual(after.trace.batches[0]?.batches, [output])
    assert.deepEqual(await blobKeys(s.services, s.shardId), [...s.before.blobs, ...partKeys(s.shardId, output)].sort())
    assert.deepEqual(await snapshots(s.app, s.shardId, AS_OFS), s.before.snapshots)
  })

  it('applied_subset: hollow batches inside a spine batch holding more are replaced, the rest kept', async (t) => {
    const s = await sixBatches(t)
    const c = await compactAndWait(s.app, s.shardId, { desc: { lower: [1], upper: [3] } })
    assert.equal(c.status, 'succeeded')
    assert.equal(c.result, 'applied_subset')
    const output = c.output as BatchJson
    assert.equal(output.len, 2)
    assert.deepEqual(countDelta(s.before.metrics, await scrape(s.app)), {
      requested: 1,
      started: 1,
      applied: 1,
      applied_subset_match: 1,
      [shardApplied(s.shardId)]: 1,
      chunks_compacted: 1,
      runs_compacted: 2,
      [RECENT]: 1,
    })
    const after = await getShard(s.app, s.shardId)
    assert.deepEqual(layout(after), ['0-4:[0-1 1-3 3-4]', '4-5:[4-5]', '5-6:[5-6]'])
    // The spine batch keeps its own desc; the untouched hollow batches are the same values.
    const sb = after.trace.batches[0]
    assert.deepEqual(sb?.desc, s.before.shard.trace.batches[0]?.desc)
    assert.deepEqual(sb?.batches, [s.before.shard.trace.batches[0]?.batches[0], output, s.before.shard.trace.batches[0]?.batches[3]])
    assert.deepEqual(await blobKeys(s.services, s.shardId), [...s.before.blobs, ...partKeys(s.shardId, output)].sort())
    assert.deepEqual(await snapshots(s.app, s.shardId, AS_OFS), s.before.snapshots)
  })

  it('a range spanning two spine batches is refused up front (422), pointing to major', async (t) => {
    const s = await sixBatches(t)
    const res = await submit(s.app, s.shardId, { desc: { lower: [3], upper: [5] } })
    assert.equal(res.statusCode, 422, res.body)
    assert.equal(res.json().code, 'INVALID_COMPACTION')
    assert.match(res.json().message, /from \[3\] to \[5\] spans 2 spine batches.*"major": true/)
    assert.deepEqual(countDelta(s.before.metrics, await scrape(s.app)), { rejected: 1 })
  })

  it('not_applied_no_match: a stale output offered after the trace changed', async (t) => {
    const s = await sixBatches(t)
    const stale = s.before.shard.trace.batches[0]?.batches[1] as BatchJson
    const first = await compactAndWait(s.app, s.shardId, { desc: { lower: [1], upper: [3] } })
    assert.equal(first.result, 'applied_subset')
    // Now [1, 2) is no longer a hollow batch of the trace: compacting the old one cannot apply.
    const s2 = { ...s, before: { shard: await getShard(s.app, s.shardId), snapshots: s.before.snapshots, blobs: await blobKeys(s.services, s.shardId), metrics: await scrape(s.app) } }
    const c = await compactAndWait(s.app, s.shardId, { desc: { lower: [1], upper: [2] }, inputs: [stale] })
    await assertNotApplied(s2, c, 'not_applied_no_match', 'SPINE_MOVED', { requested: 1, started: 1, noop: 1, chunks_compacted: 1, runs_compacted: 1, [RECENT]: 1 })
  })

  it('not_applied_invalid_since: an explicit since beyond the spine batch since', async (t) => {
    const s = await sixBatches(t)
    assert.deepEqual(s.before.shard.trace.batches[1]?.desc.since, [0])
    const c = await compactAndWait(s.app, s.shardId, { desc: { lower: [4], upper: [5], since: [10] } })
    await assertNotApplied(s, c, 'not_applied_invalid_since', 'INVALID_SINCE', { requested: 1, started: 1, noop: 1, chunks_compacted: 1, runs_compacted: 1, [RECENT]: 1 })
  })

  it('not_applied_too_many_updates: an output with more updates than the spine batch it matches', async (t) => {
    const s = await sixBatches(t, { blobParts: true })
    assert.equal(s.before.shard.trace.batches[1]?.len, 1)
    // Another batch of [4, 5) with the same diff sum (1) but three updates that do not cancel.
    const other = await writeBatch(
      s.app,
      s.shardId,
      4,
      5,
      [
        { key: 'k4', val: 'v', time: 4, diff: 1 },
        { key: 'x', val: 'v', time: 4, diff: 1 },
        { key: 'y', val: 'v', time: 4, diff: -1 },
      ],
      false,
    )
    const blobs = await blobKeys(s.services, s.shardId)
    const c = await compactAndWait(s.app, s.shardId, { desc: { lower: [4], upper: [5] }, inputs: [other] })
    await assertNotApplied({ ...s, before: { ...s.before, blobs } }, c, 'not_applied_too_many_updates', 'TOO_MANY_UPDATES', {
      requested: 1,
      started: 1,
      noop: 1,
      not_applied_too_many_updates: 1,
      chunks_compacted: 1,
      runs_compacted: 1,
      [RECENT]: 1,
    })
  })

  it('explicit inputs whose diff sum differs from the matched spine batch: not applied, outputs deleted, no 5xx', async (t) => {
    // A result whose diffs do not sum like the spine batch it lines up with is not a compaction of
    // it. Nothing is committed, and the request is the client's (docs/api.md#errors: no input reaches a
    // 5xx; docs/compaction.md#deleting-outputs-that-were-not-applied).
    const s = await sixBatches(t, { blobParts: true })
    const other = await writeBatch(
      s.app,
      s.shardId,
      4,
      5,
      [
        { key: 'k4', val: 'v', time: 4, diff: 1 },
        { key: 'x', val: 'v', time: 4, diff: 1 },
      ],
      false,
    )
    const blobs = await blobKeys(s.services, s.shardId)
    const res = await submit(s.app, s.shardId, { desc: { lower: [4], upper: [5] }, inputs: [other], wait: true })
    assert.ok(res.statusCode < 500, `a client's inputs must not reach a 5xx: ${res.statusCode} ${res.body}`)
    const c = res.json() as CompactionJson
    assert.equal(c.status, 'not_applied', res.body)
    assert.match(String(c.result), /^not_applied_/)
    assert.equal((c.reason as { code: string } | undefined)?.code, 'NOT_A_COMPACTION')
    assert.match((c.reason as { message: string }).message, /sum their diffs to 1, the output to 2/)
    const { noop, failed, ...rest } = countDelta(s.before.metrics, await scrape(s.app))
    assert.deepEqual({ noop, failed }, { noop: 1, failed: undefined })
    assert.equal(rest.applied, undefined)
    assert.deepEqual((await getShard(s.app, s.shardId)).trace, s.before.shard.trace)
    assert.deepEqual(await blobKeys(s.services, s.shardId), blobs, 'the output of a compaction that did not apply is deleted')
  })

  it('counts the output in the compaction batch-write family (docs/compaction.md#writing-output-parts)', async (t) => {
    const s = await sixBatches(t)
    const c = await compactAndWait(s.app, s.shardId, { desc: { lower: [0], upper: [4] } })
    assert.equal(c.result, 'applied_exact')
    const output = c.output as BatchJson
    const after = await scrape(s.app)
    const bytes = output.parts.reduce((sum, p) => sum + (p.encodedSizeBytes as number), 0)
    assert.equal(seriesDelta(s.before.metrics, after, 'persist_compaction_bytes_total'), bytes)
    assert.ok(seriesDelta(s.before.metrics, after, 'persist_compaction_write_batch_part_seconds_total') > 0)
    assert.ok(seriesDelta(s.before.metrics, after, 'persist_compaction_goodbytes_total') > 0, 'goodbytes of a non-empty output')
  })
})
