import assert from 'node:assert/strict'
import { EventEmitter, once } from 'node:events'
import { describe, it } from 'node:test'
import { every } from '../../src/compact/every.js'

/** Keeps the event loop alive while `fn` runs: every()'s own timer does not (it is unref'd). */
async function alive<T>(fn: () => Promise<T>): Promise<T> {
  const keep = setInterval(() => undefined, 1000)
  try {
    return await fn()
  } finally {
    clearInterval(keep)
  }
}

describe('every', () => {
  it('stops once the run in progress has ended, and runs no more', () => alive(async () => {
    const runs = new EventEmitter()
    let finish!: () => void
    let started = 0
    const errors: unknown[] = []
    const stop = every(
      1,
      () =>
        new Promise<void>((resolve) => {
          started++
          finish = resolve
          runs.emit('started')
        }),
      (err) => errors.push(err),
    )
    await once(runs, 'started')
    let stopped = false
    const stopping = stop().then(() => {
      stopped = true
    })
    // The run is still going: the stop waits for it (several turns of the event loop).
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(stopped, false)
    finish()
    await stopping
    assert.equal(stopped, true)
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(started, 1)
    assert.deepEqual(errors, [])
  }))

  it('reports a failed run to onError and runs again', () => alive(async () => {
    const errors: unknown[] = []
    const failed = new EventEmitter()
    let calls = 0
    const stop = every(
      1,
      () => {
        calls++
        throw new Error(`run ${calls}`)
      },
      (err) => {
        errors.push(err)
        if (errors.length === 2) failed.emit('twice')
      },
    )
    await once(failed, 'twice')
    await stop()
    assert.deepEqual(
      errors.slice(0, 2).map((e) => (e as Error).message),
      ['run 1', 'run 2'],
    )
  }))
})
