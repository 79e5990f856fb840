/**
 * Two compactors sharing one job store and one shard service: the cluster's behaviour without
 * processes (test/cluster/ runs real instances on PostgreSQL and S3). Clocks are shared and fake;
 * leases expire only when a test advances the clock past them.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { STORE_FAILURE_ATTEMPTS, storeRetryPauseMs } from '../../src/compact/attempt.js'
import { AppError } from '../../src/errors.js'
import { determinate, permanent } from '../../src/location/errors.js'
import { body, harness, submitted, until, type Harness } from './compactor-harness.js'

/** Runs `fn` with instance `a`, and `b` joining when `fn` asks (so work can land on `a` first). */
async function withPair(configs: Record<string, unknown>, fn: (a: Harness, join: () => Promise<Harness>) => Promise<void>): Promise<void> {
  const a = await harness({ configs, instanceId: 'a' })
  let b: Harness | null = null
  try {
    await fn(a, async () => (b ??= await harness({ configs, peer: a, instanceId: 'b' })))
  } finally {
    await (b as Harness | null)?.close()
    await a.close()
  }
}

describe('a cluster of two compactors', () => {
  it('each counts the live instances at its heartbeat (persist_cluster_instances)', () =>
    withPair({}, async (a, join) => {
      const live = async (h: Harness): Promise<number> => (await h.metrics.cluster.instances.get()).values[0]?.value ?? NaN
      await a.compactor.heartbeat()
      assert.equal(await live(a), 1)
      const b = await join()
      await b.compactor.heartbeat()
      await a.compactor.heartbeat()
      assert.deepEqual([await live(a), await live(b)], [2, 2])
    }))

  it('a compaction submitted on one is listed, shown and followed on the other', () =>
    withPair({}, async (a, join) => {
      const c = await submitted(a)
      const call = await a.exec.take()
      const b = await join()
      assert.deepEqual(
        (await b.compactor.list()).compactions.map((x) => [x.id, x.status, x.instance]),
        [[c.id, 'running', 'a']],
      )
      const seen: string[] = []
      const following = (async () => {
        for await (const e of b.compactor.events(c.id)) seen.push(`${e.type}:${e.compaction.status}`)
      })()
      call.succeed()
      await following
      assert.equal(seen.at(-1), 'done:succeeded')
      assert.equal((await b.compactor.get(c.id)).result, 'applied_exact')
    }))

  it('a cancel on one stops the compaction the other runs, at its next lease renewal', () =>
    withPair({ compaction_lease_timeout: '300ms' }, async (a, join) => {
      const c = await submitted(a)
      const call = await a.exec.take()
      const b = await join()
      const written = call.write(2)
      call.ctx.onProgress({ updatesRead: 10 })
      const done = await b.compactor.cancel(c.id)
      assert.equal(done.status, 'cancelled')
      assert.equal(done.error?.code, 'CANCELLED')
      assert.ok(call.ctx.signal.aborted)
      assert.deepEqual(a.shards.deletedKeys(), written)
    }))

  it('an idempotency key is the cluster’s: a repeat on the other instance returns the same compaction', () =>
    withPair({}, async (a, join) => {
      const b = await join()
      const first = await submitted(a, body(), { idempotencyKey: 'k' })
      const again = await submitted(b, body(), { idempotencyKey: 'k' })
      assert.equal(again.id, first.id)
    }))

  it('a job whose owner stopped renewing is rescued and run again; the old attempt can no longer apply or record', () =>
    withPair({ compaction_lease_timeout: '10s', compaction_concurrency_limit: 1 }, async (a, join) => {
      const c = await submitted(a)
      const stale = await a.exec.take()
      const staleParts = stale.write(1)
      // a is wedged (its one permit held): no progress, so no renewal; its lease runs out.
      a.advance(11_000)
      const b = await join()
      await b.compactor.sweep()
      const fresh = await b.exec.take()
      assert.equal((await b.compactor.get(c.id)).attempt, 2)
      const output = fresh.succeed()
      const done = await until(b.compactor, c.id, 'succeeded')
      assert.deepEqual([done.instance, done.attempt, done.result], ['b', 2, 'applied_exact'])

      // The wedged attempt finishes at last: refused by the shard's claim, its outputs deleted.
      stale.succeed()
      await a.compactor.sweep()
      for (let i = 0; i < 100 && !a.shards.deletedKeys().includes(staleParts[0] as never); i++) await new Promise((r) => setImmediate(r))
      assert.deepEqual(a.shards.applied.map((x) => x.output), [output])
      assert.ok(a.shards.deletedKeys().includes(staleParts[0] as never))
      const final = await a.compactor.get(c.id)
      assert.deepEqual([final.status, final.instance, final.attempt], ['succeeded', 'b', 2])
      assert.equal(await counterValue(a, 'fenced'), 1)
      assert.equal(await counterValue(b, 'rescued'), 1)
    }))

  it('an attempt a store failed under (down, restarting) leaves the job to the rescue: it runs again once its lease expires', () =>
    withPair({ compaction_lease_timeout: '10s' }, async (a) => {
      const c = await submitted(a)
      const first = await a.exec.take()
      const written = first.write(1)
      first.fail(Object.assign(determinate('s3 get: connect ECONNREFUSED'), { writtenParts: written }))
      // Not failed: still running on its lapsing lease, its outputs deleted, the error reported.
      for (let i = 0; i < 100 && a.errors.length === 0; i++) await new Promise((r) => setImmediate(r))
      assert.ok(a.errors.some((e) => /attempt 1 of at most 5\) failed on a store; it runs again in 10 s/.test(e.context)), JSON.stringify(a.errors.map((e) => e.context)))
      assert.deepEqual(a.shards.deletedKeys(), written)
      const left = await a.store.get(c.id)
      assert.deepEqual([left?.status, left?.attempt], ['running', 1])
      assert.equal(await counterValue(a, 'storeRetries'), 1)
      await a.compactor.sweep()
      assert.equal(a.exec.calls.length, 1, 'nothing runs again before the lease expires')

      a.advance(11_000)
      await a.compactor.sweep()
      const second = await a.exec.take()
      second.succeed()
      const done = await until(a.compactor, c.id, 'succeeded')
      assert.deepEqual([done.attempt, done.result], [2, 'applied_exact'])
      assert.equal(await counterValue(a, 'rescued'), 1)
    }))

  it('attempts a store failed under run again after doubling pauses; the last of STORE_FAILURE_ATTEMPTS records the failure (STORAGE_ERROR); a permanent store error fails at once', () =>
    withPair({ compaction_lease_timeout: '10s' }, async (a) => {
      const c = await submitted(a)
      for (let attempt = 1; attempt <= STORE_FAILURE_ATTEMPTS; attempt++) {
        const call = await a.exec.take()
        assert.equal((await a.compactor.get(c.id)).attempt, attempt)
        call.fail(determinate('consensus head: connect ECONNREFUSED'))
        if (attempt === STORE_FAILURE_ATTEMPTS) break
        for (let i = 0; i < 100 && (await counterValue(a, 'storeRetries')) < attempt; i++) await new Promise((r) => setImmediate(r))
        // The pause doubles per attempt (10 s, 20 s, 40 s, 80 s): not rescued before it is over.
        const pauseMs = storeRetryPauseMs(10_000, attempt)
        assert.equal(pauseMs, 10_000 * 2 ** (attempt - 1))
        a.advance(pauseMs - 1_000)
        await a.compactor.sweep()
        assert.equal(a.exec.calls.length, attempt, `no attempt ${attempt + 1} before its pause is over`)
        a.advance(2_000)
        await a.compactor.sweep()
      }
      const done = await until(a.compactor, c.id, 'failed')
      assert.deepEqual([done.attempt, done.error?.code], [STORE_FAILURE_ATTEMPTS, 'STORAGE_ERROR'])
      assert.equal(await counterValue(a, 'storeRetries'), STORE_FAILURE_ATTEMPTS - 1)

      const p = await submitted(a)
      ;(await a.exec.take()).fail(permanent('s3 get: access denied'))
      const refused = await until(a.compactor, p.id, 'failed')
      assert.deepEqual([refused.attempt, refused.error?.code], [1, 'STORAGE_ERROR'])
    }))

  it('a lease renewal that failed (the job store away for a moment) is tried again at the next tick, though progress stands still', () =>
    withPair({ compaction_lease_timeout: '300ms' }, async (a) => {
      const renew = a.store.renew.bind(a.store)
      let calls = 0
      let wake: (() => void) | null = null
      const renewed = new Promise<void>((resolve) => (wake = resolve))
      a.store.renew = async (...args) => {
        calls++
        if (calls === 1) throw determinate('job store renew: connect ECONNREFUSED')
        const r = await renew(...args)
        wake?.()
        return r
      }
      const c = await submitted(a)
      const call = await a.exec.take()
      // One progress report, then none: only the first tick has progress to renew for.
      call.ctx.onProgress({ updatesRead: 10 })
      let timer: NodeJS.Timeout | undefined
      const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no renewal after the failed one (${calls} calls)`)), 5_000)))
      try {
        await Promise.race([renewed, bound])
      } finally {
        clearTimeout(timer)
      }
      assert.ok(a.errors.some((e) => /renewing the lease of compaction/.test(e.context)))
      call.succeed()
      assert.equal((await until(a.compactor, c.id, 'succeeded')).attempt, 1)
    }))

  it('both instances are listed while they beat; a stopped one leaves', () =>
    withPair({}, async (a, join) => {
      const b = await join()
      await a.compactor.heartbeat()
      await b.compactor.heartbeat()
      const seen = await a.compactor.instances()
      assert.deepEqual(
        seen.map((i) => [i.id, i.self]),
        [
          ['a', true],
          ['b', false],
        ],
      )
      await b.compactor.stop()
      assert.deepEqual(
        (await a.compactor.instances()).map((i) => i.id),
        ['a'],
      )
      await assert.rejects(b.compactor.submit(b.shardId, body()), (e: unknown) => e instanceof AppError && e.code === 'SERVICE_UNAVAILABLE')
    }))
})

async function counterValue(h: Harness, name: 'fenced' | 'rescued' | 'storeRetries'): Promise<number> {
  const got = await h.metrics.cluster[name].get()
  return got.values.reduce((s, v) => s + v.value, 0)
}
