import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { BatchPart, RunOrder } from '../../src/core/batch.js'
import type { PartialBatchKey } from '../../src/core/paths.js'
import { keyLowerPlan, Prefetcher } from '../../src/engine/prefetcher.js'
import type { PlannedRun } from '../../src/engine/runs.js'

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`prefetcher test seed: ${seed} (rerun with FC_SEED=${seed})`)

const keyOf = (run: number, part: number): string => `${run}:${part}`

interface Fetch {
  readonly key: string
  readonly marker: Uint8Array
  readonly promise: Promise<Uint8Array>
  resolve(): void
}

/**
 * A Prefetcher over `sizes` whose `fetch` records every start and hands back a deferred promise
 * (resolved only by `settle`) carrying the marker `[run, part]`. After every fetch start and every
 * take it checks that the bytes fetched but not yet taken fit the budget.
 */
class Harness {
  readonly fetches = new Map<string, Fetch[]>()
  readonly startOrder: string[] = []
  readonly pending: Fetch[] = []
  readonly taken = new Set<string>()
  /** Parts fetched before they were taken. */
  readonly prefetched = new Set<string>()
  /** Parts whose fetch this harness resolved and saw settle. */
  readonly settled = new Set<string>()
  readonly plans: boolean[] = []
  readonly partTaken: boolean[] = []
  readonly results: { key: string; marker: Promise<Uint8Array> }[] = []
  outstanding = 0
  readonly prefetcher: Prefetcher

  constructor(
    readonly sizes: readonly (readonly number[])[],
    readonly budget: number,
    /** The plan given to the Prefetcher (none: its default). */
    readonly plan?: readonly (readonly [number, number])[],
  ) {
    this.prefetcher = new Prefetcher({
      fetch: (run, part) => this.#fetch(run, part),
      partSizes: sizes,
      prefetchBudgetBytes: budget,
      ...(plan === undefined ? {} : { plan }),
      onPrefetchPlan: (all) => this.plans.push(all),
      onPartTaken: (prefetched) => this.partTaken.push(prefetched),
    })
  }

  size(run: number, part: number): number {
    return this.sizes[run]?.[part] ?? 0
  }

  #fetch(run: number, part: number): Promise<Uint8Array> {
    const key = keyOf(run, part)
    let resolve!: (b: Uint8Array) => void
    const promise = new Promise<Uint8Array>((r) => {
      resolve = r
    })
    const marker = Uint8Array.of(run, part)
    const f: Fetch = { key, marker, promise, resolve: () => resolve(marker) }
    this.fetches.set(key, [...(this.fetches.get(key) ?? []), f])
    this.startOrder.push(key)
    this.pending.push(f)
    // A fetch of a part being taken is the take's own fetch, not a prefetch.
    if (!this.taken.has(key)) {
      this.prefetched.add(key)
      this.outstanding += this.size(run, part)
    }
    this.#checkBudget(`after fetch of ${key} started`)
    return promise
  }

  #checkBudget(when: string): void {
    assert.ok(this.outstanding <= this.budget, `${this.outstanding} bytes fetched ahead > budget ${this.budget} ${when}`)
  }

  /** Resolves the `index`-th pending fetch and waits until every reaction to it has run. */
  async settle(index: number): Promise<void> {
    const [f] = this.pending.splice(index, 1)
    if (f === undefined) return
    f.resolve()
    // NB: reactions run in registration order, so once this await resumes, the Prefetcher's own
    // `then` on the same promise has run.
    await f.promise
    this.settled.add(f.key)
  }

  async settleAll(): Promise<void> {
    for (let n = this.pending.length; n > 0; n--) await this.settle(0)
  }

  /** Takes a part, checking the `onPartTaken` report and the budget. */
  take(run: number, part: number): void {
    const key = keyOf(run, part)
    const fetchedAhead = this.prefetched.has(key)
    const expectPrefetched = this.settled.has(key)
    this.taken.add(key)
    if (fetchedAhead) this.outstanding -= this.size(run, part)
    const reports = this.partTaken.length
    this.results.push({ key, marker: this.prefetcher.take(run, part) })
    assert.equal(this.partTaken.length, reports + 1, `one onPartTaken report per take (${key})`)
    assert.equal(this.partTaken[reports], expectPrefetched, `onPartTaken for ${key}: settled before the take is ${expectPrefetched}`)
    this.#checkBudget(`after take of ${key}`)
    this.#checkAhead(key)
  }

  /**
   * The prefetcher keeps going while parts fit: walking the plan ("first part of every run, then
   * second part…"), past the parts fetched ahead and the ones already taken that fit now, it stops
   * only at a part that does not fit the budget beside the bytes already fetched ahead. A part
   * taken before it was prefetched (even one larger than the budget) never stops it.
   */
  #checkAhead(after: string): void {
    const plan: (readonly [number, number])[] = this.plan === undefined ? [] : [...this.plan]
    for (let i = 0; this.plan === undefined && i < Math.max(0, ...this.sizes.map((p) => p.length)); i++) {
      this.sizes.forEach((p, run) => (i < p.length ? plan.push([run, i]) : undefined))
    }
    for (const [run, part] of plan) {
      const key = keyOf(run, part)
      if (this.prefetched.has(key)) continue
      const fits = this.outstanding + this.size(run, part) <= this.budget
      if (this.taken.has(key)) continue
      assert.ok(!fits, `after take of ${after}: part ${key} fits the budget but was not prefetched`)
      return
    }
  }

  /** Every part fetched exactly once, and every take answered with its own part's bytes. */
  async checkEnd(): Promise<void> {
    await this.settleAll()
    this.sizes.forEach((parts, run) =>
      parts.forEach((_, part) => assert.equal(this.fetches.get(keyOf(run, part))?.length, 1, `part ${keyOf(run, part)} fetched once`)),
    )
    assert.equal(this.startOrder.length, this.sizes.reduce((n, p) => n + p.length, 0))
    for (const r of this.results) {
      const bytes = await r.marker
      assert.equal(bytes, this.fetches.get(r.key)?.[0]?.marker, `take of ${r.key} gives that part's bytes`)
    }
  }
}

const total = (sizes: readonly (readonly number[])[]): number => sizes.reduce((s, p) => s + p.reduce((t, x) => t + x, 0), 0)

/** One step of a merge: settle some pending fetches, then take the next part of one run. */
const step = fc.record({ settle: fc.array(fc.nat(), { maxLength: 3 }), pick: fc.nat() })

const scenario = fc
  .array(fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 6 }), { minLength: 1, maxLength: 20 })
  .chain((sizes) => {
    const parts = sizes.reduce((n, p) => n + p.length, 0)
    const t = total(sizes)
    return fc.record({
      sizes: fc.constant(sizes),
      budget: fc.oneof(fc.integer({ min: 0, max: 150 }), fc.integer({ min: 0, max: t + 10 }), fc.integer({ min: t, max: t + 1000 })),
      steps: fc.array(step, { minLength: parts, maxLength: parts }),
    })
  })

describe('Prefetcher', () => {
  it('keeps fetched-but-untaken bytes within the budget, fetches each part once, reports honestly', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ sizes, budget, steps }) => {
        const h = new Harness(sizes, budget)
        await Promise.resolve()
        assert.equal(h.startOrder.length, 0, 'nothing fetched before the first take')
        const next = sizes.map(() => 0)
        for (const s of steps) {
          for (const i of s.settle) if (h.pending.length > 0) await h.settle(i % h.pending.length)
          // A merge takes each run's parts in order, interleaving runs as its keys go.
          const open = sizes.flatMap((p, run) => ((next[run] as number) < p.length ? [run] : []))
          const run = open[s.pick % open.length] as number
          const part = next[run] as number
          next[run] = part + 1
          const first = h.plans.length === 0
          h.take(run, part)
          if (first) assert.deepEqual(h.plans, [total(sizes) <= budget], 'onPrefetchPlan: whether the whole plan fit')
        }
        assert.equal(h.plans.length, steps.length > 0 ? 1 : 0, 'one plan report, at the first take')
        await h.checkEnd()
      }),
      { seed, numRuns: 300 },
    )
  })

  it('follows a given plan (every part once, each run in order) within the budget', async () => {
    // A plan is an interleaving of the runs' parts: `picks` chooses the run of each next entry.
    const planned = scenario.chain((sc) => fc.record({ sc: fc.constant(sc), picks: fc.array(fc.nat(), { minLength: sc.steps.length, maxLength: sc.steps.length }) }))
    await fc.assert(
      fc.asyncProperty(planned, async ({ sc: { sizes, budget, steps }, picks }) => {
        const interleave = (choices: readonly number[]): [number, number][] => {
          const next = sizes.map(() => 0)
          return choices.map((c) => {
            const open = sizes.flatMap((p, run) => ((next[run] as number) < p.length ? [run] : []))
            const run = open[c % open.length] as number
            const part = next[run] as number
            next[run] = part + 1
            return [run, part]
          })
        }
        const h = new Harness(sizes, budget, interleave(picks))
        for (const [n, [run, part]] of interleave(steps.map((s) => s.pick)).entries()) {
          for (const i of steps[n]!.settle) if (h.pending.length > 0) await h.settle(i % h.pending.length)
          h.take(run, part)
        }
        await h.checkEnd()
      }),
      { seed, numRuns: 300 },
    )
  })

  it('prefetches in the order of a given plan, not run by run', async () => {
    const sizes = [[10, 10, 10], [10, 10]]
    const plan = [[0, 0], [0, 1], [1, 0], [0, 2], [1, 1]] as const
    const h = new Harness(sizes, 30, plan)
    h.take(0, 0)
    assert.deepEqual(h.startOrder, ['0:0', '0:1', '1:0', '0:2'], 'the part taken, then the plan while it fits')
    await h.settleAll()
    for (const [run, part] of plan.slice(1)) h.take(run, part)
    assert.deepEqual(h.partTaken, [false, true, true, true, false])
    await h.checkEnd()
  })

  it('prefetches nothing with a zero budget: every part is fetched when taken', async () => {
    const sizes = [[10, 20], [5], [7, 7, 7]]
    const h = new Harness(sizes, 0)
    const order: [number, number][] = [[0, 0], [1, 0], [2, 0], [2, 1], [0, 1], [2, 2]]
    for (const [run, part] of order) {
      h.take(run, part)
      assert.equal(h.startOrder.at(-1), keyOf(run, part), 'the take fetched its own part, and only it')
      assert.equal(h.startOrder.length, h.taken.size)
      await h.settleAll()
    }
    assert.deepEqual(h.plans, [false])
    assert.deepEqual(h.partTaken, order.map(() => false))
    await h.checkEnd()
  })

  it('prefetches every part at the first take when the budget covers them all', async () => {
    const sizes = [[10, 20], [], [5], [7, 7, 7]]
    const h = new Harness(sizes, total(sizes))
    h.take(3, 0)
    assert.deepEqual(h.plans, [true])
    assert.deepEqual(h.startOrder, ['0:0', '2:0', '3:0', '0:1', '3:1', '3:2'], 'plan order: first parts, then second parts…')
    await h.settleAll()
    for (const [run, part] of [[0, 0], [3, 1], [0, 1], [2, 0], [3, 2]] as const) h.take(run, part)
    assert.deepEqual(h.partTaken, [false, true, true, true, true, true])
    await h.checkEnd()
  })

  it('keeps just ahead of a merge taking first parts, then second parts…', async () => {
    const sizes = [[10, 10, 10], [10, 10], [10, 10, 10]]
    const plan = ['0:0', '1:0', '2:0', '0:1', '1:1', '2:1', '0:2', '2:2']
    const h = new Harness(sizes, 25)
    for (const [n, key] of plan.entries()) {
      await h.settleAll()
      const [run, part] = key.split(':').map(Number) as [number, number]
      h.take(run, part)
      // Two parts (20 bytes) fit in 25: the one taken plus the next are fetched, or already were.
      assert.deepEqual(h.startOrder, plan.slice(0, Math.min(plan.length, n + 3)))
    }
    assert.deepEqual(h.plans, [false])
    assert.deepEqual(h.partTaken, plan.map((_, n) => n > 0))
    await h.checkEnd()
  })
})

/** A run of hollow parts whose key lowers are `lowers` ('' unknown), in `order`. */
function runOf(lowers: readonly (readonly number[] | '')[], order: RunOrder = 'structured', exploded = false): PlannedRun {
  const parts = lowers.map(
    (k, i): BatchPart => ({
      kind: 'hollow',
      key: `w0/p${i}` as PartialBatchKey,
      encodedSizeBytes: 10,
      keyLower: k === '' ? '' : Buffer.from(k).toString('base64'),
      diffsSum: null,
      schemaId: 0,
      stats: { updates: 1 },
    }),
  )
  return { input: 0, meta: { order, schemaId: 0 }, parts, exploded }
}

describe('keyLowerPlan', () => {
  it('orders parts by key lower across runs, each run in order, ties by part then run', () => {
    const runs = [runOf([[], [5], [9]]), runOf([[1], [5], [5, 1]]), runOf([[], ''])]
    // Run 2's unknown second lower goes with its first part's (the smallest key).
    assert.deepEqual(keyLowerPlan(runs, 'structured'), [
      [0, 0],
      [2, 0],
      [2, 1],
      [1, 0],
      [0, 1],
      [1, 1],
      [1, 2],
      [0, 2],
    ])
  })

  it('puts the parts of a run in another order (or exploded) with their run\'s first part', () => {
    const runs = [runOf([[3], [7]]), runOf([[9], [1]], 'codec'), runOf([[8]], 'structured', true)]
    assert.deepEqual(keyLowerPlan(runs, 'structured'), [
      [1, 0],
      [2, 0],
      [1, 1],
      [0, 0],
      [0, 1],
    ])
  })

  it('keeps a run in order even if its key lowers went down', () => {
    assert.deepEqual(keyLowerPlan([runOf([[5], [2]]), runOf([[3]])], 'structured'), [
      [1, 0],
      [0, 0],
      [0, 1],
    ])
  })

  it('plans every part once, each run in order, key lowers never going down', () => {
    const key = fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 })
    const sortedKeys = fc.array(key, { maxLength: 6 }).map((ks) => [...ks].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))))
    fc.assert(
      fc.property(fc.array(sortedKeys, { maxLength: 5 }), (runsKeys) => {
        const runs = runsKeys.map((ks) => runOf(ks))
        const plan = keyLowerPlan(runs, 'structured')
        assert.equal(plan.length, runsKeys.reduce((n, ks) => n + ks.length, 0))
        const next = runs.map(() => 0)
        let last = Buffer.alloc(0)
        for (const [run, part] of plan) {
          assert.equal(part, next[run], `run ${run}: parts in order`)
          next[run] = part + 1
          const k = Buffer.from(runsKeys[run]![part]!)
          assert.ok(Buffer.compare(last, k) <= 0, 'key lowers never go down')
          last = k
        }
      }),
      { seed, numRuns: 300 },
    )
  })
})
