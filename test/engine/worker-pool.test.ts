import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { WorkerPool } from '../../src/engine/worker-pool.js'

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
