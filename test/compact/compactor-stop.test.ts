/**
 * Compactor.stop against a job store that is slow to answer the scheduler: the stop ends within the
 * grace counted from the stop, rather than after whatever the store had queued before it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AppError } from '../../src/errors.js'
import type { Abortable } from '../../src/location/errors.js'
import type { InsertResult, JobRecord } from '../../src/location/job-store.js'
import { MemJobStore } from '../../src/location/mem-job-store.js'
import { body, harness, submitted } from './compactor-harness.js'

/**
 * A MemJobStore whose claims and inserts, once `hold` is set, wait until their caller aborts or the
 * test opens the gate: a file job store answering only after a backlog of maintenance inserts.
 */
class HeldCalls extends MemJobStore {
  hold: 'claim' | 'insert' | null = null
  held = 0
  #open: Array<() => void> = []

  override async claim(owner: string, now: number, leaseMs: number, opts?: Abortable): Promise<JobRecord | null> {
    await this.#gate('claim', opts)
    return super.claim(owner, now, leaseMs, opts)
  }

  override async insert(job: JobRecord, capacity: number, opts?: Abortable): Promise<InsertResult> {
    await this.#gate('insert', opts)
    return super.insert(job, capacity, opts)
  }

  async #gate(call: 'claim' | 'insert', opts: Abortable | undefined): Promise<void> {
    if (this.hold !== call) return
    this.held++
    await new Promise<void>((resolve, reject) => {
      this.#open.push(resolve)
      opts?.signal?.addEventListener('abort', () => reject(opts.signal?.reason as Error), { once: true })
    })
  }

  open(): void {
    this.hold = null
    for (const go of this.#open.splice(0)) go()
  }
}

/** Races `stopping` against a bound that only ends a test that would otherwise hang. */
async function stoppedOrStuck(stopping: Promise<void>): Promise<string> {
  let bound: NodeJS.Timeout | undefined
  try {
    return await Promise.race([stopping.then(() => 'stopped'), new Promise<string>((resolve) => (bound = setTimeout(() => resolve('still waiting for the store'), 10_000)))])
  } finally {
    clearTimeout(bound)
  }
}

describe('stop with a job store slow to answer', () => {
  it('does not wait for a claim in flight: it aborts it, and the grace counts from the stop', async () => {
    const store = new HeldCalls()
    const h = await harness({ store, configs: { compaction_concurrency_limit: 2 } })
    try {
      const a = await submitted(h)
      const call = await h.exec.take()
      store.hold = 'claim'
      const b = await submitted(h, body())
      for (let i = 0; i < 100 && store.held === 0; i++) await new Promise((r) => setImmediate(r))
      assert.equal(store.held, 1, "the scheduler's claim for the second job waits in the store")
      // Before, the stop waited for that claim (the store's whole backlog), and only then gave the
      // running compaction its grace. The bound here only ends a test that would otherwise hang.
      const outcome = await stoppedOrStuck(h.compactor.stop({ graceMs: 1 }))
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

  it('gives up a submission still waiting for the store: 503, nothing queued', async () => {
    const store = new HeldCalls()
    const h = await harness({ store })
    try {
      store.hold = 'insert'
      const submitting = submitted(h).then(
        () => 'queued',
        (err: unknown) => err,
      )
      for (let i = 0; i < 100 && store.held === 0; i++) await new Promise((r) => setImmediate(r))
      assert.equal(store.held, 1, 'the insert waits in the store')
      const outcome = await stoppedOrStuck(h.compactor.stop({ graceMs: 1 }))
      store.open()
      assert.equal(outcome, 'stopped')
      const err = await submitting
      assert.ok(err instanceof AppError && err.code === 'SERVICE_UNAVAILABLE', String(err))
      assert.deepEqual((await store.list({ limit: 10 })).jobs, [], 'nothing was queued')
      assert.deepEqual(h.errors, [])
    } finally {
      store.open()
      await h.close()
    }
  })
})
