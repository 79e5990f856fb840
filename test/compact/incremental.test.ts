/**
 * Stage C's side of incremental compaction (compact/job-runner.ts `ChunkApplier`), against the
 * harness's scripted Stage D and shard port: each chunk handed over is applied at once and counted;
 * the first that does not apply is deleted at once and stops the merge; an apply of unknown outcome
 * leaves its parts to GC; an abort keeps what applied and deletes the rest; a rescued attempt that
 * finds nothing left ends succeeded. test/e2e/ runs the same on the real stack.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Rescue } from '../../src/compact/compactor-port.js'
import { body, counters, harness, submitted, until, type Harness } from './compactor-harness.js'

async function withHarness(opts: Parameters<typeof harness>[0], fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await harness(opts)
  try {
    await fn(h)
  } finally {
    await h.close()
  }
}

const chunksApplied = async (h: Harness): Promise<number> => (await h.metrics.cluster.chunksApplied.get()).values.reduce((s, v) => s + v.value, 0)

describe('incremental compaction in Stage C', () => {
  it('applies each chunk as Stage D hands it over: one apply and one count each, chunks that fared alike one merges entry', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, body(2))
      const call = await h.exec.take()
      assert.equal(call.ctx.applyChunk !== undefined, true)
      assert.equal(await call.hand(0, 2, 2), 'continue')
      // Applied before Stage D goes on: in the trace, fenced by the attempt's claim, counted.
      assert.equal(h.shards.applied.length, 1)
      assert.deepEqual(h.shards.applied[0]?.fence, h.shards.claims.get(`${h.shardId}/${c.id}`))
      const mid = await h.compactor.get(c.id)
      assert.deepEqual([mid.status, mid.progress.chunksApplied, mid.merges.length], ['running', 1, 1])
      assert.equal(await call.hand(1, 2, 1), 'continue')
      call.succeedHanded()
      const done = await until(h.compactor, c.id, 'succeeded')
      assert.equal(done.result, undefined, 'two outputs: no single result')
      assert.equal(done.output, undefined)
      assert.equal(done.reason, undefined)
      assert.deepEqual(done.merges.map((m) => [m.result, m.inputs.batches, m.chunks]), [['applied_exact', 2, 2]])
      assert.equal(done.progress.chunksApplied, 2)
      assert.deepEqual(h.shards.deletedKeys(), [])
      assert.deepEqual(await counters(h), { requested: 1, started: 1, applied: 2, appliedExactMatch: 2, [`shardApplied.${h.shardId}`]: 2, 'schemaSelection.recent_schema': 1 })
      assert.equal(await chunksApplied(h), 2)
    }))

  it('one chunk applied is the compaction\'s result and output, as without incremental compaction', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, body(2))
      const call = await h.exec.take()
      await call.hand(0, 1, 1)
      call.succeedHanded()
      const done = await until(h.compactor, c.id, 'succeeded')
      assert.equal(done.result, 'applied_exact')
      assert.deepEqual(done.output, h.shards.applied[0]?.output)
    }))

  it('a chunk that does not apply is deleted at once and stops the merge; what Stage D wrote after it is deleted too', () =>
    withHarness({}, async (h) => {
      h.shards.applyScript.push('applied_subset', 'not_applied_no_match')
      const c = await submitted(h, body(3))
      const call = await h.exec.take()
      assert.equal(await call.hand(0, 3, 1), 'continue')
      const first = [...call.written]
      assert.equal(await call.hand(1, 3, 2), 'stop')
      const refused = call.written.slice(1)
      assert.deepEqual(h.shards.deletedKeys(), refused, 'deleted before Stage D ends')
      // Stage D stops: its third chunk had written one part.
      const third = call.write(1)
      call.fail(Object.assign(new Error('stopped'), { writtenParts: third }))
      const done = await until(h.compactor, c.id, 'succeeded')
      assert.equal(done.reason?.code, 'PARTIALLY_APPLIED')
      assert.match(done.reason?.message ?? '', /^1 of the 2 outputs it offered applied; the last that did not: scripted not_applied_no_match/)
      assert.deepEqual(done.merges.map((m) => m.result), ['applied_subset', 'not_applied_no_match'])
      assert.deepEqual(h.shards.deletedKeys(), [...refused, ...third])
      assert.ok(first.every((k) => !h.shards.deletedKeys().includes(k)), 'the applied chunk is never deleted')
      assert.deepEqual(await counters(h), {
        requested: 1,
        started: 1,
        applied: 1,
        appliedSubsetMatch: 1,
        noop: 1,
        [`shardApplied.${h.shardId}`]: 1,
        'schemaSelection.recent_schema': 1,
      })
    }))

  it('the first chunk not applying: the compaction is not applied, nothing of it left', () =>
    withHarness({}, async (h) => {
      h.shards.applyScript.push('not_applied_too_many_updates')
      const c = await submitted(h, body(2))
      const call = await h.exec.take()
      assert.equal(await call.hand(0, 2, 1), 'stop')
      call.succeedHanded()
      const done = await until(h.compactor, c.id, 'not_applied')
      assert.deepEqual([done.result, done.reason?.code], ['not_applied_too_many_updates', 'TOO_MANY_UPDATES'])
      assert.deepEqual(h.shards.deletedKeys(), call.written)
    }))

  it('an apply whose outcome is unknown: its parts are left to GC, the compaction fails with STORAGE_ERROR', () =>
    withHarness({}, async (h) => {
      h.shards.applyScript.push('applied_exact', { throws: new Error('consensus went away') })
      const c = await submitted(h, body(2))
      const call = await h.exec.take()
      assert.equal(await call.hand(0, 2, 1), 'continue')
      assert.equal(await call.hand(1, 2, 1), 'stop')
      call.succeedHanded()
      const done = await until(h.compactor, c.id, 'failed')
      assert.equal(done.error?.code, 'STORAGE_ERROR')
      assert.equal(done.reason?.code, 'PARTIALLY_APPLIED')
      assert.deepEqual(h.shards.deletedKeys(), [], 'the unknown apply\'s parts may be referenced: left to GC')
      assert.ok(h.errors.some((e) => /applying chunk 2 of 2 of a compaction/.test(e.context)))
      assert.deepEqual(await counters(h), { requested: 1, started: 1, applied: 1, appliedExactMatch: 1, failed: 1, [`shardApplied.${h.shardId}`]: 1, 'schemaSelection.recent_schema': 1 })
    }))

  it('cancelled after a chunk applied: that chunk stays, the parts not handed over are deleted, the record says how many applied', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, body(2))
      const call = await h.exec.take()
      await call.hand(0, 2, 2)
      const kept = [...call.written]
      const unhanded = call.write(1)
      const done = await h.compactor.cancel(c.id)
      assert.equal(done.status, 'cancelled')
      assert.equal(done.error?.code, 'CANCELLED')
      assert.equal(done.reason?.code, 'PARTIALLY_APPLIED')
      assert.match(done.reason?.message ?? '', /^1 output it applied before it was cancelled stay in the trace/)
      assert.equal(done.progress.chunksApplied, 1)
      assert.deepEqual(done.merges.map((m) => m.result), ['applied_exact'])
      assert.deepEqual(h.shards.deletedKeys(), unhanded)
      assert.ok(kept.every((k) => !h.shards.deletedKeys().includes(k)))
    }))

  it('a chunk handed over after the abort is deleted, not applied', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, body(2))
      const call = await h.exec.take()
      call.honourAbort = false
      const cancelling = h.compactor.cancel(c.id)
      assert.equal(await call.hand(0, 1, 1), 'stop')
      call.succeedHanded()
      assert.equal((await cancelling).status, 'cancelled')
      assert.equal(h.shards.applied.length, 0)
      assert.deepEqual(h.shards.deletedKeys(), call.written)
    }))

  it('off (persist_enable_incremental_compaction false): Stage D gets no applyChunk, and the output applies once', () =>
    withHarness({ configs: { persist_enable_incremental_compaction: false } }, async (h) => {
      const c = await submitted(h, body(2))
      const call = await h.exec.take()
      assert.equal(call.ctx.applyChunk, undefined)
      call.ctx.onProgress({ chunksTotal: 3 })
      call.succeed()
      const done = await until(h.compactor, c.id, 'succeeded')
      assert.equal(done.result, 'applied_exact')
      assert.equal(done.progress.chunksApplied, 3)
      assert.equal(await chunksApplied(h), 0)
    }))

  it('a rescued attempt with chunks left counts the chunks earlier attempts applied in chunksTotal and chunksDone too: applied never exceeds the total', () =>
    withHarness({ configs: { compaction_lease_timeout: '10s', compaction_concurrency_limit: 1 } }, async (a) => {
      const c = await submitted(a, body(2))
      const stale = await a.exec.take()
      stale.ctx.onProgress?.({ chunksTotal: 3 })
      await stale.hand(0, 3, 1)
      stale.ctx.onProgress?.({ chunksDone: 1 })
      a.advance(11_000)
      const replan = a.shards.impl.replan
      // What is left: the merge's last two chunks; the claim says one output applied earlier.
      a.shards.impl.replan = async (req, rescue) => ({ ...(await replan(req, rescue)), appliedEarlier: 1 })
      const b = await harness({ configs: { compaction_lease_timeout: '10s', compaction_concurrency_limit: 1 }, peer: a, instanceId: 'b' })
      try {
        await b.compactor.sweep()
        const call = await b.exec.take()
        const seen: Array<[number, number, number]> = []
        const look = async (): Promise<void> => {
          const p = (await b.compactor.get(c.id)).progress
          seen.push([p.chunksApplied, p.chunksDone, p.chunksTotal])
        }
        await look()
        call.ctx.onProgress?.({ chunksTotal: 2 })
        await look()
        await call.hand(0, 2, 1)
        call.ctx.onProgress?.({ chunksDone: 1 })
        await look()
        await call.hand(1, 2, 1)
        call.ctx.onProgress?.({ chunksDone: 2 })
        await look()
        call.succeedHanded()
        const done = await until(b.compactor, c.id, 'succeeded')
        assert.deepEqual([done.attempt, done.instance], [2, 'b'])
        seen.push([done.progress.chunksApplied, done.progress.chunksDone, done.progress.chunksTotal])
        // [applied, done, total] as the record showed them: before Stage D plans, what applied earlier is all of it; then the rescue's first chunk is chunk 2 of 3.
        assert.deepEqual(seen, [[1, 1, 1], [1, 1, 3], [2, 2, 3], [3, 3, 3], [3, 3, 3]])
      } finally {
        a.shards.impl.replan = replan
        stale.succeedHanded()
        await b.close()
      }
    }))

  it('a rescued attempt that finds nothing left to compact ends succeeded, APPLIED_EARLIER', () =>
    withHarness({ configs: { compaction_lease_timeout: '10s', compaction_concurrency_limit: 1 } }, async (a) => {
      const c = await submitted(a, body(2))
      const stale = await a.exec.take()
      await stale.hand(0, 2, 1)
      // a is wedged (its one permit held): no progress, so no renewal; its lease runs out.
      a.advance(11_000)
      const rescues: (Rescue | null | undefined)[] = []
      const replan = a.shards.impl.replan
      a.shards.impl.replan = async (req, rescue) => {
        rescues.push(rescue)
        return { merges: [], problem: null, appliedEarlier: 2 }
      }
      const b = await harness({ configs: { compaction_lease_timeout: '10s', compaction_concurrency_limit: 1 }, peer: a, instanceId: 'b' })
      try {
        await b.compactor.sweep()
        const done = await until(b.compactor, c.id, 'succeeded')
        assert.deepEqual([done.attempt, done.instance], [2, 'b'])
        assert.equal(done.reason?.code, 'APPLIED_EARLIER')
        assert.match(done.reason?.message ?? '', /none of its inputs are left in the trace: earlier attempts of this compaction applied 2 outputs/)
        assert.equal(done.progress.chunksApplied, 2)
        assert.equal(rescues.length, 1)
        assert.equal(rescues[0]?.fence.job, c.id)
        assert.equal(b.exec.calls.length, 0, 'nothing compacted')
      } finally {
        a.shards.impl.replan = replan
        stale.succeedHanded()
        await b.close()
      }
    }))
})
