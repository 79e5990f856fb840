import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import * as ac from '../../../src/core/antichain.js'
import { product, type Product } from '../../../src/core/timestamp.js'
import { compareByteStrings, consolidateReference } from '../../support/consolidate-reference.js'
import { MergeOrderError } from '../../../src/engine/merge/merge-order-error.js'
import { drive, I64_MAX, I64_MIN, show, type TestRow } from './merge-harness.js'

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 0x7fff_ffff)
console.log(`merge kernel properties: FC_SEED=${seed}`)

type Mode = 'u64' | 'product'

const byte = fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff)
const short = fc.array(byte, { maxLength: 6 }).map((a) => Uint8Array.from(a))
/** Long values push comparisons past the cached head words into the bytewise path. */
const withPrefix = (prefix: number, min: number) =>
  fc.tuple(fc.integer({ min, max: min + 6 }), short).map(([len, b]) => Uint8Array.from([...new Array<number>(len).fill(prefix), ...b]))
const keys = fc.array(fc.oneof({ weight: 3, arbitrary: short }, { weight: 1, arbitrary: withPrefix(0x41, 13) }), { minLength: 1, maxLength: 6 })
const vals = fc.array(fc.oneof({ weight: 3, arbitrary: short }, { weight: 1, arbitrary: withPrefix(0x42, 5) }), { minLength: 1, maxLength: 3 })

const diff = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1n, -1n, 2n, -2n) },
  { weight: 2, arbitrary: fc.constantFrom(I64_MAX, I64_MIN, I64_MAX - 1n, 1n << 62n, -(1n << 62n)) },
  { weight: 1, arbitrary: fc.constant(0n) },
)
const u64Word = fc.constantFrom(0, 1, 2, 3, 0xffff_fffe, 0xffff_ffff)
const u64Time = fc.tuple(fc.constantFrom(0, 1, 0xffff_ffff), u64Word)
const productTime = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }))

const rawRow = (time: fc.Arbitrary<[number, number]>) => fc.record({ k: fc.nat(5), v: fc.nat(2), t: time, diff })

interface Case {
  readonly mode: Mode
  readonly runs: TestRow[][][]
  readonly all: TestRow[]
  readonly seed: number
}

function lexLess(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])
}

const caseArb = (mode: Mode): fc.Arbitrary<Case> => {
  const time = mode === 'u64' ? u64Time : productTime
  const since: fc.Arbitrary<[number, number][]> = mode === 'u64' ? u64Time.map((t) => [t]) : fc.array(productTime, { maxLength: 2 })
  const run = fc.record({
    // keep < 8: 80% of rows pass the mask
    rows: fc.array(fc.record({ r: rawRow(time), keep: fc.nat(9) }), { maxLength: 24 }),
    cuts: fc.array(fc.nat(1000), { maxLength: 5 }),
  })
  return fc
    .record({ keys, vals, since, runs: fc.array(run, { minLength: 1, maxLength: 8 }), seed: fc.nat() })
    .map(({ keys, vals, since, runs, seed }) => {
      const frontier = mode === 'product' ? ac.canonical(product, since.map((t) => [t[0], t[1]] as Product)) : []
      const advance = (t: readonly [number, number]): [number, number] => {
        if (mode === 'u64') {
          const s = since[0]!
          return lexLess(t, s) ? [s[0], s[1]] : [t[0], t[1]]
        }
        const a = ac.advanceBy(product, t as Product, frontier) as Product
        return [a[0], a[1]]
      }
      const all: TestRow[] = []
      const built = runs.map(({ rows, cuts }) => {
        const sorted = rows
          .map(({ r, keep }) => ({ key: keys[r.k % keys.length]!, val: vals[r.v % vals.length]!, t: r.t, diff: r.diff, kept: keep < 8 }))
          .sort((a, b) => compareByteStrings(a.key, b.key) || compareByteStrings(a.val, b.val) || (lexLess(a.t, b.t) ? -1 : lexLess(b.t, a.t) ? 1 : 0))
        const advanced: TestRow[] = sorted.map((r) => {
          const [time0, time1] = advance(r.t)
          return { key: r.key, val: r.val, time0, time1, diff: r.diff, kept: r.kept }
        })
        all.push(...advanced.filter((r) => r.kept))
        const at = cuts.map((c) => Math.floor((c * (advanced.length + 1)) / 1001)).sort((a, b) => a - b)
        const parts: TestRow[][] = []
        let from = 0
        for (const c of [...at, advanced.length]) {
          parts.push(advanced.slice(from, c))
          from = c
        }
        return parts
      })
      return { mode, runs: built, all, seed }
    })
}

/** A case plus a run to corrupt: two kept rows with different (key, val) swapped. */
function corrupt(c: Case, pick: number): { runs: TestRow[][][]; run: number } | null {
  const candidates: { run: number; i: number; j: number }[] = []
  c.runs.forEach((parts, run) => {
    const rows = parts.flat()
    for (let i = 0; i < rows.length; i++) {
      for (let j = i + 1; j < rows.length; j++) {
        const a = rows[i]!
        const b = rows[j]!
        if (a.kept && b.kept && (compareByteStrings(a.key, b.key) || compareByteStrings(a.val, b.val)) !== 0) candidates.push({ run, i, j })
      }
    }
  })
  if (candidates.length === 0) return null
  const { run, i, j } = candidates[pick % candidates.length]!
  const runs = c.runs.map((parts, r) => {
    if (r !== run) return parts
    const rows = parts.flat()
    const a = rows[i]!
    rows[i] = rows[j]!
    rows[j] = a
    const out: TestRow[][] = []
    let from = 0
    for (const p of parts) {
      out.push(rows.slice(from, from + p.length))
      from += p.length
    }
    return out
  })
  return { runs, run }
}

describe('MergeKernel against the sort-and-sum oracle', () => {
  for (const mode of ['u64', 'product'] as const) {
    it(`${mode}: random runs, part splits, masks, limits and push orders give exactly the oracle's rows`, () => {
      fc.assert(
        fc.property(caseArb(mode), (c) => {
          const expected = consolidateReference(c.all)
          const got = drive({ runs: c.runs, timesMayBeUnsorted: mode === 'product', seed: c.seed })
          assert.deepEqual(show(got.rows), show(expected))
          const plain = drive({ runs: c.runs, timesMayBeUnsorted: mode === 'product', seed: c.seed, plain: true })
          assert.deepEqual(show(plain.rows), show(expected))
        }),
        { seed, numRuns: 400 },
      )
    })

    it(`${mode}: a run with two kept rows out of (key, val) order throws MergeOrderError naming that run`, () => {
      fc.assert(
        fc.property(caseArb(mode), fc.nat(), (c, pick) => {
          const bad = corrupt(c, pick)
          fc.pre(bad !== null)
          assert.throws(
            () => drive({ runs: bad!.runs, timesMayBeUnsorted: mode === 'product', seed: c.seed }),
            (err: unknown) => err instanceof MergeOrderError && err.run === bad!.run && err.code === 'INTERNAL',
          )
        }),
        { seed, numRuns: 200 },
      )
    })
  }
})
