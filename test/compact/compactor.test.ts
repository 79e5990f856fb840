import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import type { ApplyResult } from '../../src/compact/compaction.js'
import { toCompactionJson } from '../../src/compact/compaction.js'
import { TaskError } from '../../src/engine/worker-pool.js'
import { newShardId } from '../../src/core/ids.js'
import { AppError } from '../../src/errors.js'
import { determinate, noSpace, permanent } from '../../src/location/errors.js'
import type { InstanceRecord, JobRecord } from '../../src/location/job-store.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import {
  body,
  counters,
  gauges,
  harness,
  seconds,
  smallBody,
  submitted,
  until,
  type Harness,
} from './compactor-harness.js'

/** Runs `fn` against a fresh harness and always closes it. */
async function withHarness(opts: Parameters<typeof harness>[0], fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await harness(opts)
  try {
    await fn(h)
  } finally {
    await h.close()
  }
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<AppError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return err
  }
  assert.fail(`expected ${code}, got success`)
}

describe('Stage A: submission', () => {
  it('skips maintenance below every heuristic: a final record with its reason, only `skipped` counted, nothing run', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, smallBody(), { source: 'maintenance' })
      assert.equal(c.status, 'skipped')
      assert.equal(c.reason?.code, 'BELOW_HEURISTICS')
      assert.match(c.reason?.message ?? '', /1 inputs, 1 parts and 1 updates are below every heuristic \(persist_compaction_heuristic_min_inputs 8/)
      assert.ok(c.finishedAt !== undefined)
      assert.deepEqual(await counters(h), { skipped: 1 })
      assert.equal(h.exec.calls.length, 0)
      assert.deepEqual(
        (await h.compactor.list()).compactions.map((x) => x.id),
        [c.id],
      )
      assert.equal((await h.compactor.wait(c.id)).status, 'skipped')
    }))

  it('runs an operator request below every heuristic: the heuristics filter maintenance only', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, smallBody())
      assert.equal(c.status, 'queued')
      assert.equal(c.reason, undefined)
      ;(await h.exec.take()).succeed()
      const done = await h.compactor.wait(c.id)
      assert.equal(done.status, 'succeeded')
      assert.equal(done.result, 'applied_exact')
      assert.deepEqual(await counters(h), { requested: 1, started: 1, applied: 1, appliedExactMatch: 1, 'schemaSelection.recent_schema': 1, [`shardApplied.${h.shardId}`]: 1 })
    }))

  it('queues a request that passes a heuristic: `requested`, status queued; listed queued, then running, newest first', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      const a = await submitted(h)
      const b = await submitted(h)
      const c = await submitted(h)
      assert.deepEqual([a.status, b.status, c.status], ['queued', 'queued', 'queued'])
      await h.exec.take()
      assert.deepEqual(
        (await h.compactor.list()).compactions.map((x) => [x.id, x.status]),
        [
          [c.id, 'queued'],
          [b.id, 'queued'],
          [a.id, 'running'],
        ],
      )
      assert.deepEqual(await counters(h), { requested: 3, started: 1, concurrencyWaits: 2, 'schemaSelection.recent_schema': 1 })
    }))

  it('rejects an invalid request with 422, counting only `rejected`', () =>
    withHarness({}, async (h) => {
      const bad = body(2)
      const inputs = [...(bad.inputs ?? [])].reverse()
      await rejectsWith(h.compactor.submit(h.shardId, { ...bad, inputs }), 'INVALID_COMPACTION')
      assert.deepEqual(await counters(h), { rejected: 1 })
      assert.deepEqual((await h.compactor.list()).compactions, [])
      await rejectsWith(h.compactor.submit(newShardId(), body()), 'SHARD_NOT_FOUND')
      assert.deepEqual(await counters(h), { rejected: 1 })
    }))

  it('refuses a malformed deadline before touching the shard', () =>
    withHarness({}, async (h) => {
      const err = await rejectsWith(h.compactor.submit(h.shardId, body(2, { deadline: '1.5s' })), 'BAD_REQUEST')
      assert.match(err.message, /^deadline: /)
      await rejectsWith(h.compactor.submit(h.shardId, body(2, { deadline: 0 })), 'BAD_REQUEST')
      assert.equal(h.shards.resolved.length, 0)
    }))

  it('answers a dry run with the plan and queues nothing', () =>
    withHarness({}, async (h) => {
      const r = await h.compactor.submit(h.shardId, body(2, { dryRun: true, partBytes: 3 * 1024 * 1024 }))
      assert.equal(r.kind, 'plan')
      assert.equal(r.kind === 'plan' && r.plan.timeoutMs, 90_000)
      assert.equal(r.kind === 'plan' && r.plan.heuristic.wouldCompact, true)
      assert.deepEqual(await counters(h), {})
      assert.deepEqual((await h.compactor.list()).compactions, [])
    }))

  it('remembers only the queued jobs it counted as waiting: one cancelled while queued is let go', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      await submitted(h) // runs, and holds the only permit
      await h.exec.take()
      for (let i = 1; i <= 30; i++) {
        const queued = await submitted(h)
        // Counted once the pump that the submission scheduled has run (bounded: it is one pump away).
        for (let spins = 0; (await counters(h)).concurrencyWaits !== i; spins++) {
          assert.ok(spins < 10_000, `job ${i} was never counted as waiting`)
          await new Promise((r) => setImmediate(r))
        }
        assert.equal((await h.compactor.cancel(queued.id)).status, 'cancelled')
      }
      // The last one cancelled may be remembered until the next pump; none of the 29 before it.
      assert.ok(h.compactor.countedWaits <= 1, `${h.compactor.countedWaits} cancelled jobs still remembered`)
    }))

  it('drops a request when the queue is full: QUEUE_FULL with queueDepth and a retry hint', () =>
    withHarness({ configs: { compaction_queue_size: 1, compaction_concurrency_limit: 1 } }, async (h) => {
      await submitted(h) // runs
      await h.exec.take()
      const queued = await submitted(h) // waits for a permit: the queue is full
      assert.equal(queued.status, 'queued')
      const err = await rejectsWith(h.compactor.submit(h.shardId, body()), 'QUEUE_FULL')
      assert.equal(err.status, 429)
      assert.equal(err.extra.queueDepth, 1)
      assert.equal(err.extra.retryAfterSeconds, 1)
      assert.deepEqual(await counters(h), { requested: 3, dropped: 1, started: 1, concurrencyWaits: 1, 'schemaSelection.recent_schema': 1 })
      assert.equal((await h.compactor.list()).compactions.length, 2)
      assert.deepEqual(await gauges(h), { queueDepth: 1, running: 1, queueSizeLimit: 1, concurrencyLimit: 1 })
    }))

  it('bases the retry hint on recent compaction durations', () =>
    withHarness({ configs: { compaction_queue_size: 1, compaction_concurrency_limit: 1 } }, async (h) => {
      const first = await submitted(h)
      const call = await h.exec.take()
      h.advance(20_000)
      call.succeed()
      await until(h.compactor, first.id, 'succeeded')
      await submitted(h)
      await h.exec.take()
      await submitted(h)
      const err = await rejectsWith(h.compactor.submit(h.shardId, body()), 'QUEUE_FULL')
      // mean 20 s × 1 waiting / 1 permit
      assert.equal(err.extra.retryAfterSeconds, 20)
    }))

  it('returns the existing compaction for a repeated idempotency key on the same shard only', () =>
    withHarness({}, async (h) => {
      const a = await submitted(h, body(), { idempotencyKey: 'k1' })
      const callA = await h.exec.take()
      const again = await submitted(h, body(), { idempotencyKey: 'k1' })
      assert.equal(again.id, a.id)
      assert.equal(again.status, 'running')
      const elsewhere = await submitted(h, body(), { idempotencyKey: 'k1' }, h.shards.addShard())
      assert.notEqual(elsewhere.id, a.id)
      assert.deepEqual(await counters(h), { requested: 2, started: 2, 'schemaSelection.recent_schema': 2 })

      // Concurrent repeats share one submission.
      const [x, y] = await Promise.all([submitted(h, body(), { idempotencyKey: 'k2' }), submitted(h, body(), { idempotencyKey: 'k2' })])
      assert.equal(x.id, y.id)
      assert.equal((await counters(h)).requested, 3)

      // A rejected submission does not claim its key.
      const bad = body(2)
      await rejectsWith(h.compactor.submit(h.shardId, { ...bad, inputs: [...(bad.inputs ?? [])].reverse() }, { idempotencyKey: 'k3' }), 'INVALID_COMPACTION')
      assert.equal((await submitted(h, body(), { idempotencyKey: 'k3' })).status, 'queued')

      // A finished one is still found by its key, in its final state.
      callA.succeed()
      await until(h.compactor, a.id, 'succeeded')
      const repeat = await submitted(h, body(), { idempotencyKey: 'k1' })
      assert.equal(repeat.id, a.id)
      assert.equal(repeat.status, 'succeeded')
    }))
})

describe('Stage B: kill switch and permits', () => {
  it('fails a dequeued compaction with `compaction disabled` while the kill switch is on, and runs after re-enabling', () =>
    withHarness({ configs: { compaction_process_requests: false } }, async (h) => {
      assert.equal(h.compactor.status(), 'paused')
      const c = await submitted(h)
      const failed = await until(h.compactor, c.id, 'failed')
      assert.deepEqual(failed.error, { code: 'COMPACTION_DISABLED', message: 'compaction disabled' })
      assert.equal(failed.startedAt, undefined)
      assert.deepEqual(await counters(h), { requested: 1, disabled: 1 })

      await h.set({ compaction_process_requests: true })
      assert.equal(h.compactor.status(), 'running')
      const ok = await submitted(h)
      ;(await h.exec.take()).succeed()
      assert.equal((await until(h.compactor, ok.id, 'succeeded')).result, 'applied_exact')

      // With the check flag off, the switch is ignored.
      await h.set({ compaction_process_requests: false, persist_compaction_check_process_flag: false })
      assert.equal(h.compactor.status(), 'running')
      const ignored = await submitted(h)
      ;(await h.exec.take()).succeed()
      await until(h.compactor, ignored.id, 'succeeded')
      assert.equal((await counters(h)).disabled, 1)
    }))

  it('counts a concurrency wait once per compaction and adds enqueue→permit to queued_seconds', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      const a = await submitted(h)
      const callA = await h.exec.take()
      h.advance(1_000)
      const b = await submitted(h)
      const c = await submitted(h)
      assert.equal((await counters(h)).concurrencyWaits, 2)
      h.advance(5_000)
      callA.succeed()
      await until(h.compactor, a.id, 'succeeded')
      const callB = await h.exec.take()
      assert.equal(callB.req.inputs.length, 2)
      assert.equal((await h.compactor.get(b.id)).status, 'running')
      // b waited 5 s for its permit; c, still waiting, is not counted again.
      assert.equal((await counters(h)).concurrencyWaits, 2)
      assert.deepEqual(await seconds(h), { seconds: 6, queuedSeconds: 5 })
      h.advance(2_000)
      callB.succeed()
      await h.exec.take()
      assert.equal((await h.compactor.get(c.id)).status, 'running')
      assert.deepEqual(await seconds(h), { seconds: 8, queuedSeconds: 12 })
    }))

  it('raises permits at once and lowers them without killing running work', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      const a = await submitted(h)
      const b = await submitted(h)
      const callA = await h.exec.take()
      assert.equal((await h.compactor.get(b.id)).status, 'queued')
      await h.set({ compaction_concurrency_limit: 2 })
      const callB = await h.exec.take()
      assert.equal((await h.compactor.get(b.id)).status, 'running')
      assert.deepEqual(await gauges(h), { queueDepth: 0, running: 2, queueSizeLimit: 20, concurrencyLimit: 2 })

      await h.set({ compaction_concurrency_limit: 1 })
      const c = await submitted(h)
      assert.equal(callA.ctx.signal.aborted, false)
      assert.equal(callB.ctx.signal.aborted, false)
      assert.equal((await h.compactor.get(c.id)).status, 'queued')
      callA.succeed()
      await until(h.compactor, a.id, 'succeeded')
      // Still one running against a limit of one: c keeps waiting.
      assert.equal((await h.compactor.get(c.id)).status, 'queued')
      callB.succeed()
      await until(h.compactor, b.id, 'succeeded')
      await h.exec.take()
      assert.equal((await h.compactor.get(c.id)).status, 'running')
      assert.equal((await gauges(h)).concurrencyLimit, 1)
    }))

  it('resizes the queue at runtime; lowering keeps what is queued', () =>
    withHarness({ configs: { compaction_queue_size: 1, compaction_concurrency_limit: 1 } }, async (h) => {
      await submitted(h)
      await h.exec.take()
      await submitted(h) // queued: full
      await rejectsWith(h.compactor.submit(h.shardId, body()), 'QUEUE_FULL')
      await h.set({ compaction_queue_size: 3 })
      assert.equal((await gauges(h)).queueSizeLimit, 3)
      const q2 = await submitted(h)
      const q3 = await submitted(h)
      await h.set({ compaction_queue_size: 1 })
      assert.equal((await h.compactor.get(q2.id)).status, 'queued')
      assert.equal((await h.compactor.get(q3.id)).status, 'queued')
      const err = await rejectsWith(h.compactor.submit(h.shardId, body()), 'QUEUE_FULL')
      assert.equal(err.extra.queueDepth, 3)
      assert.deepEqual(await gauges(h), { queueDepth: 3, running: 1, queueSizeLimit: 1, concurrencyLimit: 1 })
      assert.deepEqual(await counters(h), { requested: 6, dropped: 2, started: 1, concurrencyWaits: 3, 'schemaSelection.recent_schema': 1 })
    }))
})

describe('Stage C: running a compaction', () => {
  it('records timeout, schema choice and fast-path eligibility, and passes a config snapshot to Stage D', () =>
    withHarness({ configs: { persist_compaction_minimum_timeout: '1s' } }, async (h) => {
      // 3 parts of 1.5 MiB: 4.5 MiB ⇒ 4 s, beyond the 1 s floor. Inputs carry schema 1, which the shard knows.
      const c = await submitted(h, body(3, { partBytes: 1.5 * 1024 * 1024, schemaId: 1 }))
      const call = await h.exec.take()
      const running = await h.compactor.get(c.id)
      assert.equal(running.status, 'running')
      assert.equal(running.timeoutMs, 4000)
      assert.equal(running.schemaSelection, 'recent_schema')
      assert.deepEqual(call.ctx.schema, { selection: 'recent_schema', schemaId: 1 })
      assert.equal(call.cfg.persist_compaction_minimum_timeout, 1000)
      assert.ok(Object.isFrozen(call.cfg))
      call.succeed()
      await until(h.compactor, c.id, 'succeeded')

      await h.set({ persist_compaction_use_most_recent_schema: false })
      const d = await submitted(h, body(2, { schemaId: 1 }))
      const callD = await h.exec.take()
      assert.deepEqual(callD.ctx.schema, { selection: 'disabled', schemaId: 1 })
      callD.succeed()
      await until(h.compactor, d.id, 'succeeded')

      // One non-empty input, one run, since beyond the minimum: eligible; its runs carry no schema.
      const e = await submitted(h, body(1, { len: 2000, since: 1, schemaId: null }))
      const callE = await h.exec.take()
      assert.deepEqual(callE.ctx.schema, { selection: 'no_schema', schemaId: 1 })
      assert.equal((await h.compactor.get(e.id)).timeoutMs, 1000)
      callE.succeed()
      await until(h.compactor, e.id, 'succeeded')
      assert.deepEqual(await counters(h), {
        requested: 3,
        started: 3,
        applied: 3,
        appliedExactMatch: 3,
        [`shardApplied.${h.shardId}`]: 3,
        'schemaSelection.recent_schema': 1,
        'schemaSelection.disabled': 1,
        'schemaSelection.no_schema': 1,
        fastPathEligible: 1,
      })
    }))

  it('keeps progress reported by Stage D (running totals; bad values ignored)', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h)
      const call = await h.exec.take()
      call.ctx.onProgress({ chunksTotal: 3, updatesRead: 10 })
      call.ctx.onProgress({ chunksDone: 1, updatesRead: 20, bytesWritten: -5, partsWritten: 1.5 })
      assert.deepEqual((await h.compactor.get(c.id)).progress, {
        updatesRead: 20,
        updatesWritten: 0,
        bytesRead: 0,
        bytesWritten: 0,
        partsWritten: 0,
        chunksDone: 1,
        chunksTotal: 3,
        chunksApplied: 0,
        fraction: 20 / 1200,
        etaSeconds: 0,
      })
      h.advance(2000)
      call.ctx.onProgress({ updatesRead: 600 })
      assert.equal((await h.compactor.get(c.id)).progress.fraction, 0.5)
      assert.equal((await h.compactor.get(c.id)).progress.etaSeconds, 2)
      call.ctx.onProgress({ updatesRead: 300 })
      assert.equal((await h.compactor.get(c.id)).progress.fraction, 0.5, 'the fraction never falls')
      call.succeed()
      const done = await until(h.compactor, c.id, 'succeeded')
      call.ctx.onProgress({ chunksDone: 3 })
      assert.equal((await h.compactor.get(c.id)).progress.chunksDone, 1)
      assert.equal(done.progress.chunksDone, 1)
      assert.equal(done.progress.chunksApplied, 3, 'the chunks entered the trace with the apply')
      assert.deepEqual([done.progress.fraction, done.progress.etaSeconds], [1, 0])
    }))

  const outcomes: { result: ApplyResult; counted: Record<string, number>; deletes: boolean; output: boolean; reason: string | null }[] = [
    { result: 'applied_exact', counted: { applied: 1, appliedExactMatch: 1, shard: 1 }, deletes: false, output: true, reason: null },
    { result: 'applied_subset', counted: { applied: 1, appliedSubsetMatch: 1, shard: 1 }, deletes: false, output: true, reason: null },
    { result: 'not_applied_no_match', counted: { noop: 1 }, deletes: true, output: false, reason: 'SPINE_MOVED' },
    { result: 'not_applied_invalid_since', counted: { noop: 1 }, deletes: true, output: false, reason: 'INVALID_SINCE' },
    { result: 'not_applied_too_many_updates', counted: { noop: 1, notAppliedTooManyUpdates: 1 }, deletes: true, output: false, reason: 'TOO_MANY_UPDATES' },
  ]
  for (const o of outcomes) {
    it(`apply outcome ${o.result}: its counters${o.deletes ? ', outputs deleted' : ', outputs kept'}`, () =>
      withHarness({}, async (h) => {
        h.shards.applyScript.push(o.result)
        const c = await submitted(h)
        const call = await h.exec.take()
        const written = call.write(2)
        const output = call.succeed()
        const done = await until(h.compactor, c.id, o.reason === null ? 'succeeded' : 'not_applied')
        assert.equal(done.result, o.result)
        assert.equal(done.reason?.code ?? null, o.reason)
        assert.deepEqual(done.merges.map((m) => [m.result, m.reason?.code ?? null]), [[o.result, o.reason]])
        assert.equal(done.error, undefined)
        assert.deepEqual(h.shards.applied, [{ shardId: h.shardId, output, fence: { job: c.id, token: 1 } }])
        assert.deepEqual(h.shards.deletedKeys(), o.deletes ? written : [])
        assert.equal(done.output !== undefined, o.output)
        const { shard, ...counted } = o.counted
        assert.deepEqual(await counters(h), {
          requested: 1,
          started: 1,
          'schemaSelection.recent_schema': 1,
          ...counted,
          ...(shard === undefined ? {} : { [`shardApplied.${h.shardId}`]: shard }),
        })
      }))
  }

  it('an apply whose outcome is unknown fails with STORAGE_ERROR and deletes nothing', () =>
    withHarness({}, async (h) => {
      // Permanent: a store failure that may pass leaves the job to the rescue instead (compactor-cluster.test.ts).
      h.shards.applyScript.push({ throws: permanent('consensus: permission denied') })
      const c = await submitted(h)
      const call = await h.exec.take()
      call.write(2)
      call.succeed()
      const done = await until(h.compactor, c.id, 'failed')
      assert.equal(done.error?.code, 'STORAGE_ERROR')
      assert.deepEqual(h.shards.deleted, [])
      assert.deepEqual(await counters(h), { requested: 1, started: 1, failed: 1, 'schemaSelection.recent_schema': 1 })
      assert.equal(h.errors.length, 1)
    }))

  it('an apply refused for lack of space fails with INSUFFICIENT_STORAGE and deletes its outputs at once', () =>
    withHarness({}, async (h) => {
      h.shards.applyScript.push({ throws: noSpace('file consensus compareAndSet: no space left') })
      const c = await submitted(h)
      const call = await h.exec.take()
      const written = call.write(2)
      call.succeed()
      const done = await until(h.compactor, c.id, 'failed')
      assert.equal(done.error?.code, 'INSUFFICIENT_STORAGE')
      assert.deepEqual(h.shards.deletedKeys(), written)
      assert.deepEqual(await counters(h), { requested: 1, started: 1, failed: 1, 'schemaSelection.recent_schema': 1 })
    }))

  it('a shard claim the store refuses fails the compaction with its store code, not INTERNAL', () =>
    withHarness({}, async (h) => {
      h.shards.claimRefusals.push(noSpace('file consensus compareAndSet: no space left'), determinate('consensus unreachable'))
      for (const code of ['INSUFFICIENT_STORAGE', 'STORAGE_ERROR']) {
        const c = await submitted(h)
        const done = await until(h.compactor, c.id, 'failed')
        assert.equal(done.error?.code, code)
      }
      assert.equal(h.exec.calls.length, 0, 'nothing ran')
    }))

  it('outputs refused for lack of space fail the compaction with INSUFFICIENT_STORAGE; what was written is deleted', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h)
      const call = await h.exec.take()
      const written = call.write(2)
      call.fail(Object.assign(noSpace('file blob set: no space left under /data/blob'), { writtenParts: written }))
      const done = await until(h.compactor, c.id, 'failed')
      assert.equal(done.error?.code, 'INSUFFICIENT_STORAGE')
      assert.doesNotMatch(done.error?.message ?? '', /\/data/)
      assert.deepEqual(h.shards.deletedKeys(), written)
    }))

  it('times out after max(minimum, 1 s per MiB): timed_out and failed, written parts deleted', () =>
    withHarness({ configs: { persist_compaction_minimum_timeout: '5ms' } }, async (h) => {
      const c = await submitted(h)
      const call = await h.exec.take()
      const written = call.write(3)
      const [deleted] = (await once(h.shards.events, 'deleted')) as [string[]]
      assert.deepEqual(deleted, written)
      const done = await until(h.compactor, c.id, 'failed')
      assert.equal(done.timeoutMs, 5)
      assert.deepEqual(done.error, { code: 'TIMED_OUT', message: 'the compaction timed out after 5 ms' })
      assert.ok(call.ctx.signal.aborted)
      assert.deepEqual(h.shards.applied, [])
      assert.deepEqual(await counters(h), { requested: 1, started: 1, timedOut: 1, failed: 1, 'schemaSelection.recent_schema': 1 })
    }))

  it('an output Stage D returns after the abort is deleted, not applied', () =>
    withHarness({ configs: { persist_compaction_minimum_timeout: '5ms' } }, async (h) => {
      const c = await submitted(h)
      const call = await h.exec.take()
      call.honourAbort = false
      await once(call.ctx.signal, 'abort')
      assert.equal((await h.compactor.get(c.id)).status, 'running')
      const output = call.succeed()
      const done = await until(h.compactor, c.id, 'failed')
      assert.equal(done.error?.code, 'TIMED_OUT')
      assert.equal(done.output, undefined)
      assert.deepEqual(h.shards.applied, [])
      assert.deepEqual(
        h.shards.deletedKeys(),
        output.parts.map((p) => (p.kind === 'hollow' ? p.key : '')),
      )
    }))

  it('fails at the caller deadline with DEADLINE_EXCEEDED (not a timeout), outputs deleted', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, body(2, { deadline: '10ms' }))
      const call = await h.exec.take()
      const written = call.write()
      const done = await until(h.compactor, c.id, 'failed')
      assert.equal(done.error?.code, 'DEADLINE_EXCEEDED')
      assert.equal(done.timeoutMs, 90_000)
      assert.deepEqual(h.shards.deletedKeys(), written)
      assert.deepEqual(await counters(h), { requested: 1, started: 1, failed: 1, 'schemaSelection.recent_schema': 1 })
    }))

  it('a deadline that passes in the queue fails the compaction without starting it', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      await submitted(h)
      const call = await h.exec.take()
      const late = await submitted(h, body(2, { deadline: '5ms' }))
      h.advance(10)
      await h.compactor.sweep()
      const done = await until(h.compactor, late.id, 'failed')
      assert.equal(done.error?.code, 'DEADLINE_EXCEEDED')
      assert.equal(done.startedAt, undefined)
      assert.equal(call.ctx.signal.aborted, false)
      assert.deepEqual(await counters(h), { requested: 2, started: 1, concurrencyWaits: 1, 'schemaSelection.recent_schema': 1 })
      // The scheduler's hand is free again: the next one runs once the permit frees.
      const next = await submitted(h)
      call.succeed()
      await h.exec.take()
      assert.equal((await h.compactor.get(next.id)).status, 'running')
    }))

  it('maps Stage D errors: known codes pass through (also wrapped), the rest is INTERNAL; written parts deleted', () =>
    withHarness({}, async (h) => {
      const cases: { err: unknown; code: string; message?: string; reported: boolean }[] = [
        { err: new AppError('SCHEMA_INCOMPATIBLE', 'field "x" is missing from schema 1'), code: 'SCHEMA_INCOMPATIBLE', message: 'field "x" is missing from schema 1', reported: false },
        { err: new TaskError('part p is corrupt', 'STORAGE_ERROR'), code: 'STORAGE_ERROR', message: 'part p is corrupt', reported: true },
        {
          err: Object.assign(new AppError('INTERNAL', 'wrapped', {}, { cause: new TaskError('field y missing', 'SCHEMA_INCOMPATIBLE') }), { writtenParts: [] }),
          code: 'SCHEMA_INCOMPATIBLE',
          message: 'field y missing',
          reported: false,
        },
        { err: permanent('blob get failed: secret-bucket'), code: 'STORAGE_ERROR', reported: true },
        { err: new TypeError('x is undefined'), code: 'INTERNAL', message: 'internal error; see the server log', reported: true },
      ]
      for (const [i, k] of cases.entries()) {
        const c = await submitted(h)
        const call = await h.exec.take()
        const written = call.write()
        call.fail(Object.assign(k.err as object, { writtenParts: written }))
        const done = await until(h.compactor, c.id, 'failed')
        assert.equal(done.error?.code, k.code, `case ${i}`)
        if (k.message !== undefined) assert.equal(done.error?.message, k.message, `case ${i}`)
        assert.doesNotMatch(done.error?.message ?? '', /secret-bucket/)
        assert.deepEqual(h.shards.deleted.at(-1)?.keys, written, `case ${i}`)
        assert.equal(h.errors.length > 0 && h.errors.at(-1)?.err === k.err, k.reported, `case ${i}`)
      }
      assert.deepEqual(await counters(h), { requested: 5, started: 5, failed: 5, 'schemaSelection.recent_schema': 5 })
      assert.deepEqual(h.shards.applied, [])
    }))

  it('a part gone from blob storage: DATA_LOSS while the shard references it, not applied once another compaction replaced it', () =>
    withHarness({}, async (h) => {
      const missing = (): AppError => new AppError('DATA_LOSS', 'part p of shard s is in the shard\'s state but missing from blob storage')
      // Still referenced: the data is lost, and the record says so.
      const lost = await submitted(h)
      let call = await h.exec.take()
      call.fail(Object.assign(missing(), { writtenParts: [] }))
      assert.equal((await until(h.compactor, lost.id, 'failed')).error?.code, 'DATA_LOSS')
      // Replaced and collected while this one waited: it was overtaken, nothing is lost.
      h.shards.inputsStillHeld = false
      const overtaken = await submitted(h)
      call = await h.exec.take()
      const written = call.write()
      call.fail(Object.assign(missing(), { writtenParts: written }))
      const done = await until(h.compactor, overtaken.id, 'not_applied')
      assert.equal(done.reason?.code, 'SPINE_MOVED')
      assert.equal(done.error, undefined)
      assert.deepEqual(done.merges.map((m) => m.result), ['not_applied_no_match'])
      assert.deepEqual(h.shards.deleted.at(-1)?.keys, written, 'what it wrote is deleted')
      assert.deepEqual(await counters(h), { requested: 2, started: 2, failed: 1, 'schemaSelection.recent_schema': 2 })
    }))

  it('seconds counts Stage D time (not the apply)', () =>
    withHarness({}, async (h) => {
      let release!: (r: ApplyResult) => void
      h.shards.applyScript.push({ pending: new Promise<ApplyResult>((resolve) => (release = resolve)) })
      const c = await submitted(h)
      const call = await h.exec.take()
      h.advance(3_000)
      const applying = once(h.shards.events, 'apply')
      call.succeed()
      await applying
      h.advance(60_000)
      release('applied_exact')
      const done = await until(h.compactor, c.id, 'succeeded')
      assert.equal((await seconds(h)).seconds, 3)
      assert.equal(done.finishedAt?.getTime(), done.createdAt.getTime() + 63_000)
    }))
})

describe('operator controls', () => {
  it('get and list: filters, limit, 404 for unknown ids', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      const other = h.shards.addShard()
      const a = await submitted(h)
      await h.exec.take()
      const b = await submitted(h, body(), {}, other)
      const s = await submitted(h, smallBody(), { source: 'maintenance' })
      assert.deepEqual(
        (await h.compactor.list()).compactions.map((c) => c.id),
        [b.id, a.id, s.id],
      )
      assert.deepEqual(
        (await h.compactor.list({ shardId: other })).compactions.map((c) => c.id),
        [b.id],
      )
      assert.deepEqual(
        (await h.compactor.list({ status: 'running' })).compactions.map((c) => c.id),
        [a.id],
      )
      assert.deepEqual(
        (await h.compactor.list({ limit: 1 })).compactions.map((c) => c.id),
        [b.id],
      )
      assert.equal((await h.compactor.get(a.id)).id, a.id)
      await rejectsWith(Promise.resolve().then(() => h.compactor.get('c00000000-0000-0000-0000-000000000000')), 'COMPACTION_NOT_FOUND')
      await rejectsWith(Promise.resolve().then(() => h.compactor.get('nonsense')), 'COMPACTION_NOT_FOUND')
    }))

  it('forgets finished compactions older than compaction_history_retention, with their idempotency keys', () =>
    withHarness({ configs: { compaction_history_retention: '1h' } }, async (h) => {
      const first = await submitted(h, smallBody(), { idempotencyKey: 'old', source: 'maintenance' })
      h.advance(30 * 60_000)
      const second = await submitted(h, smallBody(), { source: 'maintenance' })
      h.advance(31 * 60_000)
      await h.compactor.purge()
      assert.deepEqual(
        (await h.compactor.list()).compactions.map((c) => c.id),
        [second.id],
      )
      await rejectsWith(h.compactor.get(first.id), 'COMPACTION_NOT_FOUND')
      const fresh = await submitted(h, smallBody(), { idempotencyKey: 'old', source: 'maintenance' })
      assert.notEqual(fresh.id, first.id)
    }))

  it('pages through the listing with nextCursor: queued, then running, then finished', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      const done = await submitted(h, smallBody(), { source: 'maintenance' })
      const running = await submitted(h)
      await h.exec.take()
      const q1 = await submitted(h)
      const q2 = await submitted(h)
      const seen: string[] = []
      let cursor: string | undefined
      for (let i = 0; i < 10; i++) {
        const page = await h.compactor.list({ limit: 1, ...(cursor === undefined ? {} : { cursor }) })
        seen.push(...page.compactions.map((c) => c.id))
        if (page.nextCursor === null) break
        cursor = page.nextCursor
      }
      assert.deepEqual(seen, [q2.id, q1.id, running.id, done.id])
      assert.deepEqual((await h.compactor.list({ source: 'maintenance' })).compactions.map((c) => c.id), [done.id])
      const err = await rejectsWith(h.compactor.list({ cursor: 'nonsense!' }), 'BAD_REQUEST')
      assert.match(err.message, /^query\.cursor: /)
    }))

  it('cancels a queued compaction: removed from the queue, never run', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      await submitted(h)
      const call = await h.exec.take()
      const first = await submitted(h)
      const queued = await submitted(h)
      assert.equal((await gauges(h)).queueDepth, 2)
      const c1 = await h.compactor.cancel(queued.id)
      assert.equal(c1.status, 'cancelled')
      assert.equal(c1.error?.code, 'CANCELLED')
      assert.equal(c1.startedAt, undefined)
      const c2 = await h.compactor.cancel(first.id)
      assert.equal(c2.status, 'cancelled')
      await h.compactor.sweep()
      assert.equal((await gauges(h)).queueDepth, 0)
      const next = await submitted(h)
      call.succeed()
      await h.exec.take()
      assert.equal((await h.compactor.get(next.id)).status, 'running')
      assert.equal(h.exec.calls.length, 2)
      assert.deepEqual(await counters(h), { requested: 4, started: 2, applied: 1, appliedExactMatch: 1, [`shardApplied.${h.shardId}`]: 1, concurrencyWaits: 3, 'schemaSelection.recent_schema': 2 })
    }))

  it('cancels a running compaction: aborted, outputs deleted, cancelled with CANCELLED, not counted as failed', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h)
      const call = await h.exec.take()
      const written = call.write(2)
      const done = await h.compactor.cancel(c.id)
      assert.equal(done.status, 'cancelled')
      assert.equal(done.error?.code, 'CANCELLED')
      assert.ok(call.ctx.signal.aborted)
      assert.deepEqual(h.shards.deletedKeys(), written)
      assert.deepEqual(h.shards.applied, [])
      assert.deepEqual(await counters(h), { requested: 1, started: 1, 'schemaSelection.recent_schema': 1 })
      const err = await rejectsWith(h.compactor.cancel(c.id), 'ALREADY_FINISHED')
      assert.equal(err.status, 409)
      await rejectsWith(h.compactor.cancel('c00000000-0000-0000-0000-000000000000'), 'COMPACTION_NOT_FOUND')
    }))

  it('refuses to cancel a compaction that is applying its result', () =>
    withHarness({}, async (h) => {
      let release!: (r: ApplyResult) => void
      h.shards.applyScript.push({ pending: new Promise<ApplyResult>((resolve) => (release = resolve)) })
      const c = await submitted(h)
      const call = await h.exec.take()
      const applying = once(h.shards.events, 'apply')
      call.succeed()
      await applying
      await rejectsWith(h.compactor.cancel(c.id), 'ALREADY_FINISHED')
      release('applied_exact')
      assert.equal((await until(h.compactor, c.id, 'succeeded')).result, 'applied_exact')
    }))

  it('wait resolves with the final compaction, whatever the outcome', () =>
    withHarness({}, async (h) => {
      const pending = h.compactor.submit(h.shardId, body(2, { wait: true }))
      const call = await h.exec.take()
      call.succeed()
      const r = await pending
      assert.ok(r.kind === 'compaction' && r.waited && r.compaction.status === 'succeeded')

      await h.set({ compaction_process_requests: false })
      const disabled = await h.compactor.submit(h.shardId, body(2, { wait: true }))
      assert.ok(disabled.kind === 'compaction' && disabled.compaction.error?.code === 'COMPACTION_DISABLED')
      const skipped = await h.compactor.submit(h.shardId, { ...smallBody(), wait: true }, { source: 'maintenance' })
      assert.ok(skipped.kind === 'compaction' && skipped.compaction.status === 'skipped')

      await h.set({ compaction_process_requests: true })
      h.shards.applyScript.push('not_applied_no_match')
      const noop = h.compactor.submit(h.shardId, body(2, { wait: true }))
      ;(await h.exec.take()).succeed()
      const r2 = await noop
      assert.ok(r2.kind === 'compaction' && r2.waited && r2.compaction.status === 'not_applied' && r2.compaction.reason?.code === 'SPINE_MOVED')
    }))

  it('events: progress snapshots (coalesced), then one done; a finished compaction yields only done', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      await submitted(h)
      const blocker = await h.exec.take()
      const c = await submitted(h)
      const it = h.compactor.events(c.id)
      const seen: string[] = []
      const first = await it.next()
      assert.ok(!first.done)
      seen.push(`${first.value.type}:${first.value.compaction.status}`)
      const reading = (async () => {
        for await (const e of it) seen.push(`${e.type}:${e.compaction.status}:${e.compaction.progress.chunksDone}`)
      })()
      blocker.succeed()
      const call = await h.exec.take()
      call.ctx.onProgress({ chunksTotal: 2, chunksDone: 1 })
      call.succeed()
      await until(h.compactor, c.id, 'succeeded')
      await reading
      assert.equal(seen[0], 'progress:queued')
      assert.equal(seen.at(-1), 'done:succeeded:1')
      assert.ok(seen.slice(1, -1).every((s) => s.startsWith('progress:running')), seen.join(', '))
      assert.equal(h.compactor.listenerCount('change'), 0)

      const finished: string[] = []
      for await (const e of h.compactor.events(c.id)) finished.push(e.type)
      assert.deepEqual(finished, ['done'])
      await rejectsWith(h.compactor.events('c00000000-0000-0000-0000-000000000000').next(), 'COMPACTION_NOT_FOUND')
    }))

  it('events end when their signal aborts, releasing the listener', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h)
      await h.exec.take()
      const stop = new AbortController()
      const it = h.compactor.events(c.id, { signal: stop.signal })
      assert.equal((await it.next()).value?.type, 'progress')
      const next = it.next()
      stop.abort()
      assert.equal((await next).done, true)
      assert.equal(h.compactor.listenerCount('change'), 0)
    }))

  it('JSON per docs/api.md#list-inspect-and-cancel', () =>
    withHarness({}, async (h) => {
      const c = await submitted(h, body(2, { partBytes: 7 }))
      const call = await h.exec.take()
      call.succeed()
      const done = await until(h.compactor, c.id, 'succeeded')
      const json = toCompactionJson(done)
      assert.deepEqual(Object.keys(json).sort(), [
        'attempt',
        'createdAt',
        'desc',
        'finishedAt',
        'id',
        'inputs',
        'instance',
        'kind',
        'merges',
        'output',
        'progress',
        'result',
        'schemaSelection',
        'shardId',
        'source',
        'startedAt',
        'status',
        'timeoutMs',
        'writerSchemaId',
      ])
      assert.deepEqual(json.desc, { lower: [0], upper: [2], since: [0] })
      assert.deepEqual(json.inputs, { batches: 2, parts: 2, runs: 2, updates: 1200, encodedBytes: 14 })
      assert.equal(json.createdAt, '2024-05-01T00:00:00.000Z')
      assert.equal(json.writerSchemaId, 1)
      assert.equal(json.output?.parts.length, 1)
      assert.deepEqual([json.kind, json.attempt, json.instance], ['range', 1, 'test-a'])
      assert.deepEqual(json.merges, [{ desc: { lower: [0], upper: [2], since: [0] }, inputs: json.inputs, result: 'applied_exact' }])
    }))
})

describe('lifecycle', () => {
  it('start and stop are idempotent; a stopped compactor refuses work and says so', async () => {
    const h = await harness()
    h.compactor.start()
    assert.equal(h.compactor.status(), 'running')
    const s1 = h.compactor.stop()
    const s2 = h.compactor.stop({ graceMs: 10_000 })
    assert.equal(s1, s2)
    await s1
    assert.equal(h.compactor.status(), 'stopped')
    await rejectsWith(h.compactor.submit(h.shardId, body()), 'SERVICE_UNAVAILABLE')
    assert.throws(() => h.compactor.start())
    await h.close()
  })

  it('stop lets running compactions finish within the grace; queued ones stay queued for the cluster', () =>
    withHarness({ configs: { compaction_concurrency_limit: 1 } }, async (h) => {
      const a = await submitted(h)
      const call = await h.exec.take()
      const b = await submitted(h)
      const stopping = h.compactor.stop({ graceMs: 60_000 })
      assert.equal(h.compactor.status(), 'stopped')
      call.succeed()
      await stopping
      assert.equal((await h.compactor.get(a.id)).status, 'succeeded')
      assert.equal((await h.compactor.get(b.id)).status, 'queued')
      assert.equal(h.exec.calls.length, 1)
      assert.equal((await gauges(h)).running, 0)

      const peer = await harness({ peer: h, instanceId: 'test-b' })
      try {
        ;(await peer.exec.take()).succeed()
        const done = await until(peer.compactor, b.id, 'succeeded')
        assert.deepEqual([done.instance, done.attempt], ['test-b', 1])
      } finally {
        await peer.close()
      }
    }))

  it('stop aborts what outlives the grace, deletes its outputs and queues it again; the next attempt runs elsewhere', () =>
    withHarness({}, async (h) => {
      const a = await submitted(h)
      const call = await h.exec.take()
      const written = call.write(2)
      await h.compactor.stop({ graceMs: 1 })
      const back = await h.compactor.get(a.id)
      assert.equal(back.status, 'queued')
      assert.equal(back.error, undefined)
      assert.deepEqual(h.shards.deletedKeys(), written)
      assert.equal(h.shards.claims.size, 0, 'the shard claim was released')

      const peer = await harness({ peer: h, instanceId: 'test-b' })
      try {
        const second = await peer.exec.take()
        second.succeed()
        const done = await until(peer.compactor, a.id, 'succeeded')
        assert.deepEqual([done.instance, done.attempt], ['test-b', 2])
        assert.deepEqual(h.shards.applied.map((x) => x.fence), [{ job: a.id, token: 2 }])
      } finally {
        await peer.close()
      }
    }))
})

describe('compactOnly', () => {
  it('resolves and runs Stage D without heuristics, queue or apply', () =>
    withHarness({}, async (h) => {
      const pending = h.compactor.compactOnly({ shardId: h.shardId, desc: { lower: [0], upper: [1], since: [0] }, inputs: smallBody().inputs ?? [] })
      const call = await h.exec.take()
      const output = call.succeed()
      const r = await pending
      assert.equal(r.output, output)
      assert.deepEqual(h.shards.applied, [])
      assert.deepEqual(await counters(h), {})
      assert.deepEqual((await h.compactor.list()).compactions, [])
    }))

  it('times out with TIMED_OUT and deletes what it wrote', () =>
    withHarness({ configs: { persist_compaction_minimum_timeout: '5ms' } }, async (h) => {
      const pending = h.compactor.compactOnly({ shardId: h.shardId, desc: { lower: [0], upper: [1], since: [0] }, inputs: smallBody().inputs ?? [] })
      const call = await h.exec.take()
      const written = call.write(2)
      await rejectsWith(pending, 'TIMED_OUT')
      assert.deepEqual(h.shards.deletedKeys(), written)
    }))

  it('passes known error codes through and 422s invalid requests', () =>
    withHarness({}, async (h) => {
      const pending = h.compactor.compactOnly({ shardId: h.shardId, desc: { lower: [0], upper: [1], since: [0] }, inputs: smallBody().inputs ?? [] })
      const call = await h.exec.take()
      call.fail(new TaskError('field z missing', 'SCHEMA_INCOMPATIBLE'))
      await rejectsWith(pending, 'SCHEMA_INCOMPATIBLE')
      await rejectsWith(h.compactor.compactOnly({ shardId: h.shardId, desc: { lower: [0], upper: [5], since: [0] }, inputs: smallBody().inputs ?? [] }), 'INVALID_COMPACTION')
      assert.deepEqual(await counters(h), { rejected: 1 })
    }))

  it('obeys the kill switch', () =>
    withHarness({ configs: { compaction_process_requests: false } }, async (h) => {
      const err = await rejectsWith(
        h.compactor.compactOnly({ shardId: h.shardId, desc: { lower: [0], upper: [1], since: [0] }, inputs: smallBody().inputs ?? [] }),
        'COMPACTION_DISABLED',
      )
      assert.equal(err.message, 'compaction disabled')
      assert.equal(h.exec.calls.length, 0)
    }))

  it('is aborted by stop past its grace', () =>
    withHarness({}, async (h) => {
      const pending = h.compactor.compactOnly({ shardId: h.shardId, desc: { lower: [0], upper: [1], since: [0] }, inputs: smallBody().inputs ?? [] })
      await h.exec.take()
      await h.compactor.stop({ graceMs: 1 })
      await rejectsWith(pending, 'SERVICE_UNAVAILABLE')
    }))
})

/** A MemJobStore whose claims and heartbeats can be refused as a full disk refuses them; counts them. */
class FullJobStore extends MemJobStore {
  full = false
  claims = 0
  heartbeats = 0

  override async claim(owner: string, now: number, leaseMs: number): Promise<JobRecord | null> {
    this.claims++
    if (this.full) throw noSpace('file job store claim: no space left')
    return super.claim(owner, now, leaseMs)
  }

  override async heartbeat(instance: InstanceRecord): Promise<void> {
    this.heartbeats++
    if (this.full) throw noSpace('file job store heartbeat: no space left')
    return super.heartbeat(instance)
  }
}

describe('Compactor on a job store with no space left', () => {
  it('answers a waiter INSUFFICIENT_STORAGE, backs its sweeps and heartbeats off, and starts the job once space is back', async () => {
    const store = new FullJobStore()
    await withHarness({ store }, async (h) => {
      store.full = true
      // The insert lands; the claim is refused: the waiter is not kept waiting for space.
      // NB: bounded by a ref'd timer: without an answer the waiter would wait for space for good.
      let timer: NodeJS.Timeout | undefined
      const answered = Promise.race([
        h.compactor.submit(h.shardId, body(2, { wait: true })),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the waiter got no answer within 10 s')), 10_000))),
      ]).finally(() => clearTimeout(timer))
      await assert.rejects(answered, (err: unknown) => {
        assert.ok(err instanceof AppError)
        assert.equal(err.code, 'INSUFFICIENT_STORAGE')
        assert.match(err.message, /queued and cannot start/)
        return true
      })
      const [queued] = (await h.compactor.list({ status: 'queued' })).compactions
      assert.ok(queued !== undefined)
      // Backoff: 1 s, then 2 s, then 4 s (the fake clock); a sweep or heartbeat due before is skipped.
      const claimsAt = (): number => store.claims
      const first = claimsAt()
      const beats = store.heartbeats
      await h.compactor.sweep()
      await h.compactor.heartbeat()
      assert.deepEqual([claimsAt(), store.heartbeats], [first, beats], 'within the first second: nothing tried')
      h.advance(1_000)
      await h.compactor.sweep()
      assert.equal(claimsAt(), first + 1)
      h.advance(1_000)
      await h.compactor.sweep()
      await h.compactor.heartbeat()
      assert.deepEqual([claimsAt(), store.heartbeats], [first + 1, beats], 'the backoff doubled to 2 s')
      h.advance(1_000)
      await assert.rejects(h.compactor.heartbeat(), { noSpace: true })
      assert.equal(store.heartbeats, beats + 1)
      h.advance(3_999)
      await h.compactor.sweep()
      assert.equal(claimsAt(), first + 1, 'then to 4 s')
      // Space is back: the next heartbeat lands, and the scheduler claims the queued job.
      store.full = false
      h.advance(1)
      await h.compactor.heartbeat()
      await h.compactor.sweep()
      await h.exec.take()
      assert.equal((await h.compactor.get(queued.id)).status, 'running')
      assert.ok(h.errors.length <= 4, `reported ${h.errors.length} times`)
    })
  })
})
