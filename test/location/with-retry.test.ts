import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { InvalidUsageError, LocationError, noSpace } from '../../src/location/errors.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { unreliable } from '../../src/location/unreliable.js'
import { backoffDelayMs, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_WITHIN_MS, withBlobRetry, withConsensusRetry, type RetryEvent } from '../../src/location/with-retry.js'
import { collect } from './blob-contract.js'
import { text, v } from './consensus-contract.js'

const seed = process.env['FC_SEED'] === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env['FC_SEED'])
console.log(`with-retry: fast-check seed ${seed} (set FC_SEED to reproduce)`)

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
/** No real waiting in tests: delays are drawn but zero-length. */
const fast = { baseDelayMs: 0, maxDelayMs: 0 }

describe('withBlobRetry / withConsensusRetry', () => {
  it('retries determinate and indeterminate errors of idempotent calls until they succeed', async () => {
    const mem = new MemBlob()
    const flaky = unreliable(mem, { seed: 1, failureRate: 1, indeterminateRate: 0 })
    const events: RetryEvent[] = []
    let failuresLeft = 2
    const blob = withBlobRetry(flaky, {
      ...fast,
      onRetry: (e) => {
        events.push(e)
        if (--failuresLeft === 0) flaky.setFailureRate(0)
      },
    })
    await blob.set('k/1', bytes('x'))
    assert.deepEqual(
      events.map((e) => [e.op, e.attempt, e.error.kind]),
      [
        ['set', 1, 'determinate'],
        ['set', 2, 'determinate'],
      ],
    )
    assert.deepEqual(await mem.get('k/1'), bytes('x'))

    flaky.setIndeterminateRate(1)
    flaky.setFailureRate(1)
    failuresLeft = 3
    events.length = 0
    assert.deepEqual(await blob.get('k/1'), bytes('x'))
    assert.deepEqual(
      events.map((e) => e.error.kind),
      ['indeterminate', 'indeterminate', 'indeterminate'],
    )
  })

  it(`starts no retry once retryWithinMs (default ${DEFAULT_RETRY_WITHIN_MS} ms) passed: a store that fails slowly (no answer until a timeout) is tried once`, async () => {
    let clock = 0
    let calls = 0
    const mem = new MemBlob()
    // Each attempt "takes" `slowMs` on the fake clock, then fails for want of an answer.
    let slowMs = 60_000
    const hung: typeof mem = Object.assign(Object.create(mem) as MemBlob, {
      get: async () => {
        calls++
        clock += slowMs
        throw new LocationError('determinate', 's3 get: socket timeout')
      },
    })
    const blob = withBlobRetry(hung, { ...fast, now: () => clock })
    await assert.rejects(blob.get('k/1'), { name: 'LocationError' })
    assert.equal(calls, 1, 'one slow attempt, no retry')
    // Quick failures inside the window are retried as before, up to maxAttempts.
    slowMs = 1_000
    calls = 0
    await assert.rejects(blob.get('k/1'), { name: 'LocationError' })
    assert.equal(calls, DEFAULT_MAX_ATTEMPTS)
    // 4 s an attempt: the third fails 12 s in, past the window.
    slowMs = 4_000
    calls = 0
    await assert.rejects(blob.get('k/1'), { name: 'LocationError' })
    assert.equal(calls, 3)
  })

  it(`gives up after maxAttempts (default ${DEFAULT_MAX_ATTEMPTS}) with the last error`, async () => {
    const flaky = unreliable(new MemConsensus(), { seed: 2, failureRate: 1, indeterminateRate: 0 })
    await assert.rejects(withConsensusRetry(flaky, fast).head('k'), { name: 'LocationError', kind: 'determinate' })
    assert.equal(flaky.injected.determinate, DEFAULT_MAX_ATTEMPTS)
    await assert.rejects(withConsensusRetry(flaky, { ...fast, maxAttempts: 3 }).scan('k', 0, 1), LocationError)
    assert.equal(flaky.injected.determinate, DEFAULT_MAX_ATTEMPTS + 3)
    await assert.rejects(withConsensusRetry(flaky, { ...fast, maxAttempts: 1 }).list(), LocationError)
    assert.equal(flaky.injected.determinate, DEFAULT_MAX_ATTEMPTS + 4)
    assert.throws(() => withConsensusRetry(flaky, { maxAttempts: 0 }), InvalidUsageError)
  })

  it('compareAndSet: an indeterminate error goes up at once (the write landed), a determinate one is retried', async () => {
    const mem = new MemConsensus()
    const flaky = unreliable(mem, { seed: 3, failureRate: 1, indeterminateRate: 1 })
    const c = withConsensusRetry(flaky, fast)
    await assert.rejects(c.compareAndSet('k', null, v(0)), { name: 'LocationError', kind: 'indeterminate' })
    assert.equal(flaky.injected.indeterminate, 1, 'not retried')
    assert.equal(text(await mem.head('k')), '0:v0', 'the caller re-reading state finds it')

    flaky.setIndeterminateRate(0)
    let retries = 0
    const retried = withConsensusRetry(flaky, {
      ...fast,
      onRetry: () => {
        if (++retries === 2) flaky.setFailureRate(0)
      },
    })
    assert.deepEqual(await retried.compareAndSet('k', 0, v(1)), { kind: 'committed' })
    assert.equal(retries, 2)
    assert.deepEqual(await retried.compareAndSet('k', 0, v(1)), { kind: 'mismatch', current: v(1) })
  })

  it('never retries a store with no space left: it answers at once', async () => {
    const events: RetryEvent[] = []
    let sets = 0
    let cas = 0
    const full = noSpace('no space left')
    const blob = withBlobRetry(
      {
        get: async () => null,
        set: async () => {
          sets++
          throw full
        },
        delete: async () => null,
        list: () => new MemBlob().list(''),
        removeInterrupted: async () => 0,
        close: async () => undefined,
      },
      { ...fast, onRetry: (e) => events.push(e) },
    )
    await assert.rejects(blob.set('k/1', bytes('x')), full)
    const mem = new MemConsensus()
    const consensus = withConsensusRetry(
      {
        head: (k, o) => mem.head(k, o),
        compareAndSet: async () => {
          cas++
          throw full
        },
        scan: (k, from, limit, o) => mem.scan(k, from, limit, o),
        truncate: (k, seqno, o) => mem.truncate(k, seqno, o),
        list: (o) => mem.list(o),
        close: () => mem.close(),
      },
      { ...fast, onRetry: (e) => events.push(e) },
    )
    await assert.rejects(consensus.compareAndSet('k', null, v(0)), full)
    assert.deepEqual([sets, cas, events], [1, 1, []])
  })

  it('never retries InvalidUsageError or unknown errors', async () => {
    const events: RetryEvent[] = []
    const blob = withBlobRetry(new MemBlob(), { ...fast, onRetry: (e) => events.push(e) })
    await assert.rejects(blob.get('../bad'), InvalidUsageError)
    const c = withConsensusRetry(new MemConsensus(), { ...fast, onRetry: (e) => events.push(e) })
    await assert.rejects(c.compareAndSet('k', null, v(3)), InvalidUsageError)
    let calls = 0
    const boom = withBlobRetry(
      {
        get: async () => {
          calls++
          throw new TypeError('a bug')
        },
        set: async () => undefined,
        delete: async () => null,
        list: () => new MemBlob().list(''),
        removeInterrupted: async () => 0,
        close: async () => undefined,
      },
      { ...fast, onRetry: (e) => events.push(e) },
    )
    await assert.rejects(boom.get('k'), TypeError)
    assert.equal(calls, 1)
    assert.deepEqual(events, [])
  })

  it('waits a full-jitter backoff, and an abort during the wait ends it at once', async () => {
    const flaky = unreliable(new MemBlob(), { seed: 4, failureRate: 1, indeterminateRate: 0 })
    const controller = new AbortController()
    const delays: number[] = []
    const blob = withBlobRetry(flaky, {
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      random: () => 0.5,
      onRetry: (e) => {
        delays.push(e.delayMs)
        controller.abort()
      },
    })
    const started = Date.now()
    await assert.rejects(blob.get('k/1', { signal: controller.signal }), { name: 'AbortError' })
    assert.ok(Date.now() - started < 10_000, 'the wait was cut short')
    assert.deepEqual(delays, [30_000])
    assert.equal(flaky.injected.determinate, 1)
  })

  it('backoff delays grow exponentially and stay within [0, min(max, base·2^(n−1)))', () => {
    assert.equal(backoffDelayMs(1, 100, 10_000, () => 0.999), 99.9)
    assert.equal(backoffDelayMs(4, 100, 10_000, () => 0.5), 400)
    assert.equal(backoffDelayMs(60, 100, 10_000, () => 0.5), 5000)
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, base, max, r) => {
          const delay = backoffDelayMs(attempt, base, max, () => r)
          const cap = Math.min(max, base * 2 ** (attempt - 1))
          return delay >= 0 && delay <= cap && (cap === 0 || delay < cap)
        },
      ),
      { seed, numRuns: 500 },
    )
  })

  it('a real wait is bounded by maxDelayMs', async () => {
    const flaky = unreliable(new MemBlob(), { seed: 5, failureRate: 1, indeterminateRate: 0 })
    const delays: number[] = []
    const blob = withBlobRetry(flaky, { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 8, onRetry: (e) => delays.push(e.delayMs) })
    await assert.rejects(blob.delete('k/1'), LocationError)
    assert.equal(delays.length, 3)
    assert.ok(delays.every((d, i) => d >= 0 && d < Math.min(8, 5 * 2 ** i)), String(delays))
  })

  it('a list that fails part-way is restarted without repeating keys', async () => {
    const mem = new MemBlob()
    for (let i = 0; i < 10; i++) await mem.set(`l/${i}`, bytes(String(i)))
    const flaky = unreliable(mem, { seed: 6, failureRate: 1, indeterminateRate: 1 })
    let retries = 0
    const blob = withBlobRetry(flaky, {
      ...fast,
      onRetry: () => {
        if (++retries === 3) flaky.setFailureRate(0)
      },
    })
    const keys = (await collect(blob.list('l/'))).map((m) => m.key)
    assert.deepEqual(
      keys,
      Array.from({ length: 10 }, (_, i) => `l/${i}`),
    )
    assert.equal(retries, 3)
  })

  it('over an unreliable store, bounded retries carry every write through', async () => {
    const mem = new MemBlob()
    const blob = withBlobRetry(unreliable(mem, { seed: 7, failureRate: 0.3 }), { ...fast, maxAttempts: 20 })
    for (let i = 0; i < 100; i++) await blob.set(`u/${i}`, bytes(String(i)))
    for (let i = 0; i < 100; i++) assert.deepEqual(await blob.get(`u/${i}`), bytes(String(i)))
    assert.equal((await collect(mem.list('u/'))).length, 100)
  })

})
