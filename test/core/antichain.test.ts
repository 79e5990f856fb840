import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as ac from '../../src/core/antichain.js'
import { product, u64, type Product, type Timestamp, type TimestampKind } from '../../src/core/timestamp.js'

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31))
console.log(`antichain.test.ts: FC_SEED=${seed}`)
const params = { seed, numRuns: 300 }

const p = (a: number, b: number): Product => [a, b] as const

describe('advanceBy: the worked examples of docs/concepts.md#advancing-a-time-by-a-frontier', () => {
  const cases: [TimestampKind, Timestamp, ac.Antichain, Timestamp][] = [
    [u64, 0n, [10n], 10n],
    [u64, 1n, [10n], 10n],
    [u64, 12n, [10n], 12n],
    [u64, 0n, [2n], 2n],
    [u64, 257n, [2n], 257n],
    [u64, 7n, [], 7n],
    [product, p(0, 10), [p(10, 0)], p(10, 10)],
    [product, p(10, 0), [p(10, 0)], p(10, 0)],
    [product, p(3, 3), [p(10, 0)], p(10, 3)],
    [product, p(0, 5), [p(0, 11), p(10, 0)], p(0, 5)],
    [product, p(2, 12), [p(0, 11), p(10, 0)], p(2, 12)],
    [product, p(3, 3), [p(5, 0), p(0, 5)], p(3, 3)],
  ]
  for (const [tk, t, f, want] of cases) {
    it(`${tk.format(t)} by ${ac.format(tk, f)} is ${tk.format(want)}`, () => {
      assert.ok(tk.equals(ac.advanceBy(tk, t, f), want))
    })
  }
})

describe('frontiers', () => {
  it('orders frontiers as persist does', () => {
    assert.ok(ac.frontierLessEqual(u64, [3n], [5n]))
    assert.ok(!ac.frontierLessEqual(u64, [5n], [3n]))
    assert.ok(ac.frontierLessEqual(u64, [7n], []))
    assert.ok(!ac.frontierLessEqual(u64, [], [7n]))
    assert.deepEqual(ac.join(u64, [3n], [5n]), [5n])
    assert.deepEqual(ac.join(u64, [3n], []), [])
    assert.ok(!ac.lessEqual(u64, [], 0n))
  })
  it('parses canonically and names what is wrong', () => {
    assert.deepEqual(ac.parse(product, [[10, 0], [0, 11], [10, 0]]), { ok: true, value: [p(0, 11), p(10, 0)] })
    assert.deepEqual(ac.parse(u64, ['18446744073709551615']), { ok: true, value: [(1n << 64n) - 1n] })
    assert.equal(u64.toJson(1n << 60n), '1152921504606846976')
    assert.equal(u64.toJson(5n), 5)
    for (const bad of [5, [-1], ['1.5'], ['18446744073709551616'], [1.5], [{}]]) assert.equal(ac.parse(u64, bad).ok, false)
    assert.match((ac.parse(u64, [1, 5]) as { error: string }).error, /comparable/)
    assert.equal(ac.parse(product, [[1, 2, 3]]).ok, false)
    assert.equal(ac.parse(product, [[2 ** 32, 0]]).ok, false)
  })
})

const u64T = fc.bigInt({ min: 0n, max: 40n })
const prodT = fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 })).map(([a, b]) => p(a, b))
const frontier = (tk: TimestampKind, t: fc.Arbitrary<Timestamp>) => fc.array(t, { maxLength: 4 }).map((xs) => ac.canonical(tk, xs))

for (const [tk, t] of [[u64, u64T], [product, prodT]] as [TimestampKind, fc.Arbitrary<Timestamp>][]) {
  describe(`antichain laws (${tk.name}, fast-check)`, () => {
    it('canonical form is an antichain, sorted, idempotent', () => {
      fc.assert(
        fc.property(fc.array(t, { maxLength: 6 }), (xs) => {
          const a = ac.canonical(tk, xs)
          for (const x of a) for (const y of a) if (!tk.equals(x, y)) assert.ok(!tk.lessEqual(x, y))
          assert.deepEqual(ac.canonical(tk, a), a)
          for (const x of xs) assert.ok(ac.lessEqual(tk, a, x))
        }),
        params,
      )
    })
    it('join and meet are commutative, idempotent bounds of the frontier order', () => {
      fc.assert(
        fc.property(frontier(tk, t), frontier(tk, t), (a, b) => {
          const j = ac.join(tk, a, b)
          const m = ac.meet(tk, a, b)
          assert.ok(ac.equals(tk, j, ac.join(tk, b, a)))
          assert.ok(ac.equals(tk, m, ac.meet(tk, b, a)))
          assert.ok(ac.equals(tk, ac.join(tk, a, a), a))
          assert.ok(ac.frontierLessEqual(tk, a, j) && ac.frontierLessEqual(tk, b, j))
          assert.ok(ac.frontierLessEqual(tk, m, a) && ac.frontierLessEqual(tk, m, b))
        }),
        params,
      )
    })
    it('advanceBy moves forward and preserves comparisons with times beyond the frontier', () => {
      fc.assert(
        fc.property(t, frontier(tk, t), t, (x, f, y) => {
          const adv = ac.advanceBy(tk, x, f)
          assert.ok(tk.lessEqual(x, adv))
          if (ac.lessEqual(tk, f, y)) assert.equal(tk.lessEqual(x, y), tk.lessEqual(adv, y))
          if (tk.totallyOrdered && f.length > 0) assert.ok(ac.lessEqual(tk, f, adv))
        }),
        params,
      )
    })
    it('lessThan is lessEqual without equality; JSON round-trips', () => {
      fc.assert(
        fc.property(frontier(tk, t), t, (f, x) => {
          assert.equal(ac.lessThan(tk, f, x), f.some((e) => tk.lessEqual(e, x) && !tk.equals(e, x)))
          const back = ac.parse(tk, JSON.parse(JSON.stringify(ac.toJson(tk, f))))
          assert.ok(back.ok && ac.equals(tk, back.value, f))
        }),
        params,
      )
    })
  })
}
