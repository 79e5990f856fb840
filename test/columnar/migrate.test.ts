import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { bool, dataTypeEquals, field, float64, int64, struct, utf8, type DataType, type StructField } from '../../src/columnar/data-type.js'
import { canRepresent } from '../../src/columnar/evolution.js'
import { migrateUpdates } from '../../src/columnar/migrate.js'
import { decodePart, encodePart } from '../../src/columnar/part-format.js'
import { sortAndConsolidate } from '../../src/columnar/sort-consolidate.js'
import { compareRows, rowOrderKeys } from '../../src/columnar/sort-key.js'
import { sliceUpdates, updatesToJson, UpdatesBuilder, type Updates } from '../../src/columnar/updates.js'
import { description } from '../../src/core/description.js'
import { announceSeed, arbDataType, arbRows, seed, type Row } from './arbitraries.js'

announceSeed('migrate.test.ts')

const v1 = struct([field('id', int64), field('name', utf8, true)])
const v2 = struct([field('flag', bool, true), field('id', int64, true), field('name', utf8, true), field('extra', struct([field('x', float64)]), true)])

function sample(): Updates {
  const b = new UpdatesBuilder({ keyType: utf8, valType: v1, timeKind: 'u64' })
  b.append('a', { id: 1n, name: 'one' }, 1n, 1n)
  b.append('b', { id: 2n, name: null }, 2n, 3n)
  return b.finish()
}

const json = (u: Updates): string => JSON.stringify(updatesToJson(u))

describe('migrateUpdates', () => {
  it('fills new nullable fields with null and keeps fields made nullable', () => {
    const r = migrateUpdates(sample(), utf8, v2)
    assert.ok(r.ok, r.ok ? '' : r.error)
    assert.ok(dataTypeEquals(r.value.valType, v2))
    assert.equal(
      json(r.value),
      '[{"key":"a","val":{"flag":null,"id":1,"name":"one","extra":null},"time":1,"diff":1},{"key":"b","val":{"flag":null,"id":2,"name":null,"extra":null},"time":2,"diff":3}]',
    )
    // The migrated batch is an ordinary batch of the new schema: it encodes, decodes and copies.
    const part = decodePart(encodePart(r.value, { desc: description([0n], [5n], [0n]), order: 'structured', schemaId: 2 }))
    assert.equal(json(part.updates), json(r.value))
    const b = new UpdatesBuilder(r.value)
    b.appendRange(b.bind(r.value), 0, r.value.length)
    assert.equal(json(b.finish()), json(r.value))
  })

  it('shares the buffers of unchanged columns', () => {
    const u = sample()
    const r = migrateUpdates(u, utf8, v2)
    assert.ok(r.ok)
    assert.equal(r.value.keys, u.keys)
    assert.equal(r.value.diffs, u.diffs)
    assert.equal(r.value.vals.data[0]!.children[1], u.vals.data[0]!.children[0])
    const same = migrateUpdates(u, utf8, v1)
    assert.ok(same.ok && same.value.vals === u.vals)
  })

  it('migrates sliced batches (non-zero Arrow offsets)', () => {
    const r = migrateUpdates(sliceUpdates(sample(), 1, 2), utf8, v2)
    assert.ok(r.ok)
    assert.equal(json(r.value), '[{"key":"b","val":{"flag":null,"id":2,"name":null,"extra":null},"time":2,"diff":3}]')
  })

  it('refuses a schema that cannot represent every value, naming the field', () => {
    const error = (keyType: DataType, valType: DataType): string => {
      const r = migrateUpdates(sample(), keyType, valType)
      assert.equal(r.ok, false)
      return r.ok ? '' : r.error
    }
    assert.equal(error(utf8, struct([field('id', int64)])), 'cannot migrate: field val.name was removed')
    assert.equal(error(utf8, struct([field('id', int64), field('name', utf8, false)])), 'cannot migrate: field val.name changed from nullable to non-null')
    assert.equal(error(int64, v1), 'cannot migrate: the key schema changed type from utf8 to int64')
    assert.equal(error(utf8, struct([field('id', int64), field('name', utf8, true), field('n', int64)])), 'cannot migrate: field val.n was added as non-null; new fields must be nullable')
  })

  it('keeps sorted batches sorted, in both orders, for random evolutions', () => {
    const evolve = (t: DataType): fc.Arbitrary<DataType> => {
      if (t.type !== 'struct') return fc.constant(t)
      return fc
        .tuple(
          fc.tuple(...t.fields.map((f) => fc.tuple(evolve(f.type), fc.boolean()))),
          fc.array(fc.tuple(fc.nat({ max: t.fields.length }), arbDataType(1)), { maxLength: 2 }),
        )
        .map(([kept, added]) => {
          const fields: StructField[] = t.fields.map((f, i) => field(f.name, kept[i]![0], f.nullable || kept[i]![1]))
          added.forEach(([at, type], j) => fields.splice(Math.min(at, fields.length), 0, field(`new${j}`, type, true)))
          return struct(fields)
        })
    }
    fc.assert(
      fc.property(
        fc
          .record({ keyType: arbDataType(2), valType: arbDataType(2), timeKind: fc.constantFrom('u64' as const, 'product' as const) })
          .chain((s) => fc.tuple(fc.constant(s), arbRows(s, 30), evolve(s.keyType), evolve(s.valType))),
        fc.constantFrom('structured' as const, 'codec' as const),
        ([s, rows, keyType, valType], order) => {
          assert.ok(canRepresent(s.keyType, keyType) && canRepresent(s.valType, valType))
          const b = new UpdatesBuilder(s)
          for (const r of rows as Row[]) b.append(r.key, r.val, r.time, r.diff)
          const sorted = sortAndConsolidate(b.finish(), order)
          const r = migrateUpdates(sorted, keyType, valType)
          assert.ok(r.ok, r.ok ? '' : r.error)
          const k = rowOrderKeys(r.value, order)
          for (let i = 1; i < r.value.length; i++) assert.ok(compareRows(k, i - 1, k, i) < 0, `rows ${i - 1} and ${i} out of order after migration`)
          assert.equal(r.value.length, sorted.length)
        },
      ),
      { seed, numRuns: 200 },
    )
  })
})
