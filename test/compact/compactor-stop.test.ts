/**
 * Compactor.stop against a job store that is slow to answer the scheduler: the stop ends within the
 * grace counted from the stop, rather than after whatever the store had queued before it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Abortable } from '../../src/location/errors.js'
import type { JobRecord } from '../../src/location/job-store.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { body, harness, submitted } from './compactor-harness.js'

/**
 * A MemJobStore whose claims, once `hold` is set, wait until their caller aborts or the test opens
 * the gate: a file job store answering a claim only after a backlog of maintenance inserts.
 */
class HeldClaims extends MemJobStore {
  hold = false
  held = 0
  #open: Array<() => void> = []

  override async claim(owner: string, now: number, leaseMs: number, opts?: Abortable): Promise<JobRecord | null> {
    if (this.hold) {
      this.held++
      await new Promise<void>((resolve, reject) => {
        this.#open.push(resolve)
        opts?.signal?.addEventListener('abort', () => reject(opts.signal?.reason as Error), { once: true })
      })
    }
    return super.claim(owner, now, leaseMs, opts)
  }

  open(): void {
    this.hold = false
    for (const go of this.#open.splice(0)) go()
  }
}

describe('stop with a job store slow to answer', () => {
  it('does not wait for a claim in flight: it aborts it, and the grace counts from the stop', async () => {
    const store = new HeldClaims()
    const h = await harness({ store, configs: { compaction_concurrency_limit: 2 } })
    try {
      const a = await submitted(h)
      const call = await h.exec.take()
      store.hold = true
      const b = await submitted(h, body())
      for (let i = 0; i < 100 && store.held === 0; i++) await new Promise((r) => setImmediate(r))
      assert.equal(store.held, 1, "the scheduler's claim for the second job waits in the store")
      // Before, the stop waited for that claim (the store's whole backlog), and only then gave the
      // running compaction its grace. The bound here only ends a test that would otherwise hang.
      let bound: NodeJS.Timeout | undefined
      const outcome = await Promise.race([
        h.compactor.stop({ graceMs: 1 }).then(() => 'stopped'),
        new Promise<string>((resolve) => (bound = setTimeout(() => resolve('still waiting for the claim'), 10_000))),
      ])
      clearTimeout(bound)
      store.open()
      assert.equal(outcome, 'stopped')
      assert.equal(call.ctx.signal.aborted, true, 'the running compaction was aborted at the end of the grace')
      assert.equal((await h.compactor.get(a.id)).status, 'queued', 'and queued again')
      assert.equal((await h.compactor.get(b.id)).status, 'queued', 'the job whose claim was aborted stays queued')
      assert.deepEqual(h.errors, [], 'the aborted claim is no error')
      assert.deepEqual(await store.instances(0), [], 'the instance left the cluster')
    } finally {
      store.open()
      await h.close()
    }
  })
})
