import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Histogram, Registry } from 'prom-client'
import type { Blob } from '../../src/location/blob.js'
import { InvalidUsageError, noSpace } from '../../src/location/errors.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { unreliable } from '../../src/location/unreliable.js'
import { withBlobMetrics, withConsensusMetrics, type OperationHistogram } from '../../src/location/with-metrics.js'
import { collect } from './blob-contract.js'
import { v } from './consensus-contract.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

function freshHistogram(): OperationHistogram {
  return new Histogram({ name: 'op_seconds', help: 'test', labelNames: ['op', 'outcome'], registers: [new Registry()] })
}

/** `op/outcome` → observation count, from the histogram's `_count` series. */
async function counts(h: OperationHistogram): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const value of (await h.get()).values) {
    if (value.metricName === 'op_seconds_count' && value.value > 0) out[`${String(value.labels.op)}/${String(value.labels.outcome)}`] = value.value
  }
  return out
}

describe('withBlobMetrics', () => {
  it('observes every call by op and outcome, and returns what the store returns', async () => {
    const h = freshHistogram()
    const mem = new MemBlob()
    const flaky = unreliable(mem, { seed: 1, failureRate: 0 })
    const blob = withBlobMetrics(flaky, h)
    await blob.set('k/1', bytes('x'))
    assert.deepEqual(await blob.get('k/1'), bytes('x'))
    assert.equal(await blob.get('k/2'), null)
    assert.equal(await blob.delete('k/1'), 1)
    assert.deepEqual(await collect(blob.list('k/')), [])
    await assert.rejects(blob.get('/bad'), InvalidUsageError)
    flaky.setFailureRate(1)
    flaky.setIndeterminateRate(0)
    await assert.rejects(blob.set('k/3', bytes('y')), { kind: 'determinate' })
    flaky.setIndeterminateRate(1)
    await assert.rejects(blob.set('k/3', bytes('y')), { kind: 'indeterminate' })
    await assert.rejects(collect(blob.list('')), { kind: 'indeterminate' })
    assert.deepEqual(await counts(h), {
      'set/ok': 1,
      'get/ok': 2,
      'delete/ok': 1,
      'list/ok': 1,
      'get/invalid': 1,
      'set/determinate': 1,
      'set/indeterminate': 1,
      'list/indeterminate': 1,
    })
    await blob.close()
  })

  it('counts a store with no space left apart: outcome no_space', async () => {
    const h = freshHistogram()
    const mem = new MemBlob()
    const full: Blob = {
      get: (k, o) => mem.get(k, o),
      set: async () => {
        throw noSpace('no space left')
      },
      delete: (k, o) => mem.delete(k, o),
      list: (p, o) => mem.list(p, o),
      removeInterrupted: (p, ms, o) => mem.removeInterrupted(p, ms, o),
      close: () => mem.close(),
    }
    const blob = withBlobMetrics(full, h)
    await assert.rejects(blob.set('k/1', bytes('x')), { noSpace: true })
    assert.deepEqual(await counts(h), { 'set/no_space': 1 })
  })

  it('times a listing to its end, and counts an early stop as ok', async () => {
    const h = freshHistogram()
    const mem = new MemBlob()
    for (let i = 0; i < 3; i++) await mem.set(`k/${i}`, bytes('x'))
    const blob = withBlobMetrics(mem, h)
    const listing = blob.list('k/')
    assert.deepEqual(await counts(h), {}, 'nothing observed before iterating')
    for await (const meta of listing) {
      assert.ok(meta.key.startsWith('k/'))
      break
    }
    assert.deepEqual(await counts(h), { 'list/ok': 1 })
  })
})

describe('withConsensusMetrics', () => {
  it('labels a won compareAndSet ok, a lost one mismatch, and errors by kind', async () => {
    const h = freshHistogram()
    const flaky = unreliable(new MemConsensus(), { seed: 2, failureRate: 0 })
    const c = withConsensusMetrics(flaky, h)
    assert.deepEqual(await c.compareAndSet('k', null, v(0)), { kind: 'committed' })
    assert.equal((await c.compareAndSet('k', null, v(0))).kind, 'mismatch')
    await assert.rejects(c.compareAndSet('k', 0, v(2)), InvalidUsageError)
    assert.equal((await c.head('k'))?.seqno, 0)
    assert.equal((await c.scan('k', 0, 5)).length, 1)
    assert.equal(await c.truncate('k', 0), 0)
    assert.deepEqual(await c.list(), ['k'])
    flaky.setFailureRate(1)
    flaky.setIndeterminateRate(1)
    await assert.rejects(c.compareAndSet('k', 0, v(1)), { kind: 'indeterminate' })
    flaky.setIndeterminateRate(0)
    await assert.rejects(c.head('k'), { kind: 'determinate' })
    flaky.setFailureRate(0)
    await assert.rejects(c.head('k', { signal: AbortSignal.abort() }), { name: 'AbortError' })
    assert.deepEqual(await counts(h), {
      'compare_and_set/ok': 1,
      'compare_and_set/mismatch': 1,
      'compare_and_set/invalid': 1,
      'compare_and_set/indeterminate': 1,
      'head/ok': 1,
      'head/determinate': 1,
      // An abort (not a LocationError): nothing is known about what it did.
      'head/indeterminate': 1,
      'scan/ok': 1,
      'truncate/ok': 1,
      'list/ok': 1,
    })
    const sum = (await h.get()).values.find((x) => x.metricName === 'op_seconds_sum' && x.labels.op === 'head' && x.labels.outcome === 'ok')
    assert.ok(sum !== undefined && sum.value >= 0)
    await c.close()
  })
})
