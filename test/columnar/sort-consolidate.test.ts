import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { utf8 } from '../../src/columnar/data-type.js'
import { sortAndConsolidate } from '../../src/columnar/sort-consolidate.js'
import { firstUnsortedRow, rowOrderKeys } from '../../src/columnar/sort-key.js'
import { updatesToJson, UpdatesBuilder, type Updates } from '../../src/columnar/updates.js'
import { buildUpdates, normalizedJson, oracleJson } from '../support/updates-oracle.js'
import { announceSeed, arbRows, arbShape, seed, type Row, type Shape } from './arbitraries.js'

announceSeed('sort-consolidate.test.ts')

const build = buildUpdates
const oracle = oracleJson
const normalize = (u: Updates): string => normalizedJson([u])

describe('sortAndConsolidate', () => {
  for (const order of ['structured', 'codec'] as const) {
    it(`matches a sort-and-sum oracle (${order} order)`, () => {
      fc.assert(
        fc.property(
          arbShape(2).chain((s) => fc.tuple(fc.constant(s), arbRows(s, 60))),
          ([shape, rows]) => {
            const out = sortAndConsolidate(build(shape, rows), order)
            assert.equal(normalize(out), oracle(shape, rows, order))
            const keys = rowOrderKeys(out, order)
            assert.equal(firstUnsortedRow(keys, out.length), -1)
            assert.ok(out.diffs.every((d) => d !== 0n))
            assert.equal(normalize(sortAndConsolidate(out, order)), normalize(out))
          },
        ),
        { seed, numRuns: 250 },
      )
    })
  }

  it('sums with wrapping i64 addition and drops sums that wrap to zero', () => {
    const b = new UpdatesBuilder({ keyType: utf8, valType: utf8, timeKind: 'u64' })
    const max = (1n << 63n) - 1n
    b.append('a', 'v', 1n, max)
    b.append('a', 'v', 1n, 1n)
    b.append('b', 'v', 1n, -(1n << 63n))
    b.append('b', 'v', 1n, -(1n << 63n))
    b.append('c', 'v', 2n, 5n)
    b.append('c', 'v', 1n, 5n)
    const out = updatesToJson(sortAndConsolidate(b.finish(), 'structured'))
    assert.deepEqual(JSON.parse(JSON.stringify(out)), [
      { key: 'a', val: 'v', time: 1, diff: '-9223372036854775808' },
      { key: 'c', val: 'v', time: 1, diff: 5 },
      { key: 'c', val: 'v', time: 2, diff: 5 },
    ])
  })

  it('handles an empty batch', () => {
    const out = sortAndConsolidate(new UpdatesBuilder({ keyType: utf8, valType: utf8, timeKind: 'product' }).finish(), 'codec')
    assert.equal(out.length, 0)
  })
})

describe('sortAndConsolidate on batches large enough for the radix sort', () => {
  for (const order of ['structured', 'codec'] as const) {
    it(`matches the oracle with many distinct keys of every length (${order} order)`, () => {
      const shapeArb = fc.constantFrom<Shape>(
        { keyType: { type: 'binary' }, valType: { type: 'int64' }, timeKind: 'u64' },
        { keyType: { type: 'utf8' }, valType: { type: 'unit' }, timeKind: 'product' },
        { keyType: { type: 'int64' }, valType: { type: 'utf8' }, timeKind: 'u64' },
        { keyType: { type: 'struct', fields: [{ name: 'a', type: { type: 'uint64' }, nullable: true }] }, valType: { type: 'bool' }, timeKind: 'u64' },
      )
      fc.assert(
        fc.property(
          shapeArb.chain((s) => fc.tuple(fc.constant(s), arbRows(s, 8), fc.integer({ min: 300, max: 1500 }), fc.integer())),
          ([shape, few, n, salt]) => {
            // Many rows: keys of 0..12 bytes from a seeded stream (shared prefixes, equal
            // prefixes, exact duplicates), plus the arbitrary's rows for odd values.
            const rows: Row[] = [...few]
            let x = salt | 1
            const next = (): number => {
              x ^= x << 13
              x ^= x >>> 17
              x ^= x << 5
              return x >>> 0
            }
            const keyOf = (): Row['key'] => {
              const len = next() % 13
              const bytes = Uint8Array.from({ length: len }, (_, i) => (i < 3 ? next() % 3 : next() % 256))
              switch (shape.keyType.type) {
                case 'binary':
                  // Sometimes a long shared prefix, so ties go to the next levels.
                  return salt % 2 === 0 ? bytes : Uint8Array.from([...new Uint8Array(9), ...bytes])
                case 'utf8':
                  return (salt % 3 === 0 ? 'shared-key-prefix-' : '') + Array.from(bytes, (b) => String.fromCharCode(97 + (b % 26))).join('')
                case 'int64':
                  return BigInt.asIntN(64, BigInt(next()) * BigInt(next() % 7) - 3n)
                default:
                  return next() % 5 === 0 ? Object.assign(Object.create(null), { a: null }) : Object.assign(Object.create(null), { a: BigInt(next() % 100) << 40n })
              }
            }
            for (let i = 0; i < n; i++) {
              const base = few[next() % Math.max(1, few.length)]
              if (base === undefined) break
              rows.push({ ...base, key: next() % 4 === 0 ? base.key : keyOf(), diff: BigInt((next() % 5) - 2) })
            }
            const out = sortAndConsolidate(build(shape, rows), order)
            assert.equal(normalize(out), oracle(shape, rows, order))
          },
        ),
        { seed, numRuns: 40 },
      )
    })
  }
})
