import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { MergeRunsTask } from '../../src/engine/protocol.js'
import { MAX_PARKED_PER_WORKER, WorkerExitError, WorkerPool, type TaskChannel } from '../../src/engine/worker-pool.js'

describe('worker pool start-up', { timeout: 60_000 }, () => {
  it('says when every worker has loaded, before any task ran', async () => {
    const pool = new WorkerPool(2)
    try {
      let loaded = false
      const done = pool.loaded().then(() => {
        loaded = true
      })
      assert.equal(loaded, false, 'the workers load asynchronously')
      // NB: bounded by the test runner's timeout: a worker that never says `loaded` fails the test.
      await done
      assert.equal(loaded, true)
      assert.equal(pool.busy, 0, 'no task was needed to load them')
      await pool.loaded()
    } finally {
      await pool.close()
    }
  })
})

/**
 * A merge of one part that is never sent: its worker asks for the part and waits for good, as a
 * snapshot read waits for a client that takes nothing. Resolves with the task's channel once a
 * worker took it; the task's promise fails when it is aborted.
 */
function blockedTask(pool: WorkerPool, signal: AbortSignal): { readonly started: Promise<TaskChannel>; readonly done: Promise<unknown> } {
  let started: (ch: TaskChannel) => void = () => undefined
  const startedP = new Promise<TaskChannel>((resolve) => (started = resolve))
  const task: MergeRunsTask = {
    timeKind: 'u64',
    since: [0n],
    asOf: 0n,
    runs: [{ order: 'structured', parts: [{ registeredLower: [0n], registeredUpper: [], encodedSizeBytes: 100 }] }],
    keyType: { type: 'utf8' },
    valType: { type: 'int64' },
    order: 'structured',
    targetSizeBytes: 1 << 20,
    yieldAfterUpdates: 1000,
  }
  const done = pool.run<void>(
    { kind: 'merge', payload: { task, output: { kind: 'stream', format: 'json', maxOutstanding: 1, opens: true, closes: true } } },
    { onStart: (ch) => started(ch), onMessage: () => undefined, onDone: () => undefined },
    { signal },
  )
  void done.catch(() => undefined)
  return { started: startedP, done }
}

describe('worker pool: queued tasks', { timeout: 60_000 }, () => {
  it('a task aborted while it waits for a worker leaves the queue and fails at once', async () => {
    const pool = new WorkerPool(1)
    const running = new AbortController()
    try {
      await pool.loaded()
      const first = blockedTask(pool, running.signal)
      await first.started
      const queued = new AbortController()
      const second = blockedTask(pool, queued.signal)
      const later = new AbortController()
      const third = blockedTask(pool, later.signal)
      assert.equal(pool.queued, 2)
      queued.abort(new Error('the client went away'))
      // While the only worker is still busy with the first task.
      await assert.rejects(second.done, /the client went away/)
      assert.equal(pool.queued, 1)
      assert.equal(pool.busy, 1)
      // The queue goes on: the task behind it starts once the worker is free.
      running.abort()
      await assert.rejects(first.done)
      await third.started
      later.abort()
      await assert.rejects(third.done)
    } finally {
      running.abort()
      await pool.close()
    }
  })
})

describe('worker pool: parked tasks', { timeout: 60_000 }, () => {
  it('a parked task leaves its worker to the next task, up to MAX_PARKED_PER_WORKER of them; they fail with their worker', async () => {
    const pool = new WorkerPool(1)
    const abort = new AbortController()
    const parkedEvents: number[] = []
    pool.on('parked', (n: number) => parkedEvents.push(n))
    try {
      await pool.loaded()
      const first = blockedTask(pool, abort.signal)
      const channels = [await first.started]
      assert.equal(pool.busy, 1)
      // Parked with nothing queued: its worker counts as free.
      assert.equal(channels[0]!.park(), true)
      assert.equal(pool.busy, 0, 'a parked task does not keep its worker busy')
      channels[0]!.unpark()
      assert.equal(pool.busy, 1)
      // Queued behind it: starts only once it parks.
      const second = blockedTask(pool, abort.signal)
      let secondStarted = false
      void second.started.then(() => (secondStarted = true))
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(secondStarted, false, 'one task at a time while none is parked')
      assert.equal(channels[0]!.park(), true)
      channels.push(await second.started)
      assert.equal(pool.busy, 1)
      // Park as many as a worker holds; the one after them cannot park.
      for (let i = 1; i < MAX_PARKED_PER_WORKER; i++) {
        assert.equal(channels[i]!.park(), true)
        channels.push(await blockedTask(pool, abort.signal).started)
      }
      assert.equal(channels.length, MAX_PARKED_PER_WORKER + 1)
      assert.equal(channels[MAX_PARKED_PER_WORKER]!.park(), false, 'no room for one more parked task')
      assert.equal(pool.busy, 1)
      assert.equal(pool.parked, MAX_PARKED_PER_WORKER)
      assert.equal(parkedEvents.at(-1), MAX_PARKED_PER_WORKER, 'every change is told')
      // Unparked, a task runs beside the one running: still no room for a new task.
      channels[0]!.unpark()
      assert.equal(channels[0]!.park(), true)
      // A worker that dies fails every task it held, parked or not.
      assert.ok(pool.crashBusyWorker())
      await assert.rejects(first.done, WorkerExitError)
      await assert.rejects(second.done, WorkerExitError)
      assert.equal(pool.parked, 0)
      assert.equal(parkedEvents.at(-1), 0)
    } finally {
      abort.abort()
      await pool.close()
    }
  })
})
