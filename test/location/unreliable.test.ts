import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { InvalidUsageError, LocationError } from '../../src/location/errors.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { mulberry32 } from '../../src/core/prng.js'
import { unreliable } from '../../src/location/unreliable.js'
import { text, v } from './consensus-contract.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

/** The outcome of `n` blob gets through `unreliable(…, opts)`: `.` ok, `d` determinate, `i` indeterminate. */
async function pattern(seed: number, failureRate: number, n: number): Promise<string> {
  const blob = unreliable(new MemBlob(), { seed, failureRate })
  let out = ''
  for (let i = 0; i < n; i++) {
    try {
      await blob.get('k/1')
      out += '.'
    } catch (err) {
      assert.ok(err instanceof LocationError)
      out += err.kind === 'determinate' ? 'd' : 'i'
    }
  }
  return out
}

describe('unreliable', () => {
  it('is reproducible for a seed and differs across seeds', async () => {
    const a = await pattern(42, 0.3, 400)
    assert.equal(await pattern(42, 0.3, 400), a)
    assert.notEqual(await pattern(43, 0.3, 400), a)
    const failures = [...a].filter((ch) => ch !== '.').length
    assert.ok(failures > 80 && failures < 160, `${failures} of 400 failed at rate 0.3`)
    assert.ok(a.includes('d') && a.includes('i'), 'both kinds by default')
  })

  it('mulberry32 is a deterministic uniform stream in [0, 1)', () => {
    const r = mulberry32(7)
    const xs = Array.from({ length: 10_000 }, () => r())
    assert.deepEqual(
      Array.from({ length: 3 }, mulberry32(7)),
      xs.slice(0, 3),
    )
    assert.ok(xs.every((x) => x >= 0 && x < 1))
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length
    assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`)
  })

  it('determinate failures happen before the call, indeterminate ones after it', async () => {
    const mem = new MemBlob()
    const blob = unreliable(mem, { seed: 1, failureRate: 1, indeterminateRate: 0 })
    await assert.rejects(blob.set('k/1', bytes('x')), { kind: 'determinate' })
    assert.equal(await mem.get('k/1'), null, 'nothing written')
    blob.setIndeterminateRate(1)
    await assert.rejects(blob.set('k/1', bytes('x')), { kind: 'indeterminate' })
    assert.deepEqual(await mem.get('k/1'), bytes('x'), 'written, yet the caller was told it failed')
    assert.deepEqual(blob.injected, { determinate: 1, indeterminate: 1 })

    const memc = new MemConsensus()
    const c = unreliable(memc, { seed: 1, failureRate: 1, indeterminateRate: 1 })
    await assert.rejects(c.compareAndSet('k', null, v(0)), { kind: 'indeterminate' })
    assert.equal(text(await memc.head('k')), '0:v0')
    c.setIndeterminateRate(0)
    await assert.rejects(c.compareAndSet('k', 0, v(1)), { kind: 'determinate' })
    assert.equal(text(await memc.head('k')), '0:v0')
  })

  it('is toggled at runtime, and rates are checked', async () => {
    const blob = unreliable(new MemBlob(), { seed: 9, failureRate: 0 })
    for (let i = 0; i < 50; i++) await blob.set(`k/${i}`, bytes('x'))
    blob.setFailureRate(1)
    await assert.rejects(blob.get('k/1'), LocationError)
    blob.setFailureRate(0)
    assert.deepEqual(await blob.get('k/1'), bytes('x'))
    assert.throws(() => blob.setFailureRate(1.5), InvalidUsageError)
    assert.throws(() => blob.setIndeterminateRate(-0.1), InvalidUsageError)
    assert.throws(() => unreliable(new MemBlob(), { seed: 1, failureRate: Number.NaN }), InvalidUsageError)
    await blob.close()
  })

  it('fails a listing before its first item or after it', async () => {
    const mem = new MemBlob()
    for (let i = 0; i < 3; i++) await mem.set(`k/${i}`, bytes('x'))
    const blob = unreliable(mem, { seed: 3, failureRate: 1, indeterminateRate: 0 })
    const seen: string[] = []
    await assert.rejects(
      (async () => {
        for await (const m of blob.list('k/')) seen.push(m.key)
      })(),
      { kind: 'determinate' },
    )
    assert.equal(seen.length, 0)
    blob.setIndeterminateRate(1)
    await assert.rejects(
      (async () => {
        for await (const m of blob.list('k/')) seen.push(m.key)
      })(),
      { kind: 'indeterminate' },
    )
    assert.equal(seen.length, 1)
  })
})
