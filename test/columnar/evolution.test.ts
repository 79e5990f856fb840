import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { binary, bool, field, float64, int64, struct, uint64, unit, utf8, type DataType } from '../../src/columnar/data-type.js'
import { canRepresent, checkEvolution } from '../../src/columnar/evolution.js'
import { announceSeed, arbDataType, seed } from './arbitraries.js'

announceSeed('evolution.test.ts')

const s = struct
const f = field

interface Case {
  readonly name: string
  readonly old: DataType
  readonly next: DataType
  /** null: allowed; else the exact sentence (with root `val`). */
  readonly error: string | null
}

const base = s([f('id', int64), f('name', utf8, true)])

const CASES: readonly Case[] = [
  // allowed
  { name: 'no change (scalar)', old: utf8, next: utf8, error: null },
  { name: 'no change (struct)', old: base, next: base, error: null },
  { name: 'add a nullable field at the end', old: base, next: s([f('id', int64), f('name', utf8, true), f('price', float64, true)]), error: null },
  { name: 'add a nullable field at the front', old: base, next: s([f('price', float64, true), f('id', int64), f('name', utf8, true)]), error: null },
  { name: 'add a nullable field in the middle', old: base, next: s([f('id', int64), f('price', float64, true), f('name', utf8, true)]), error: null },
  { name: 'add a nullable struct field', old: base, next: s([f('id', int64), f('name', utf8, true), f('extra', s([f('x', bool)]), true)]), error: null },
  { name: 'add several nullable fields', old: s([]), next: s([f('a', utf8, true), f('b', unit, true)]), error: null },
  { name: 'make a non-null field nullable', old: base, next: s([f('id', int64, true), f('name', utf8, true)]), error: null },
  {
    name: 'add a nullable field inside a nested struct',
    old: s([f('inner', s([f('a', int64)]))]),
    next: s([f('inner', s([f('a', int64), f('b', binary, true)]))]),
    error: null,
  },
  { name: 'make a nested struct nullable', old: s([f('inner', s([f('a', int64)]))]), next: s([f('inner', s([f('a', int64)]), true)]), error: null },
  {
    name: 'make a field nested two levels deep nullable',
    old: s([f('a', s([f('b', s([f('c', uint64)]))]))]),
    next: s([f('a', s([f('b', s([f('c', uint64, true)]))]))]),
    error: null,
  },
  // rejected
  { name: 'remove a field', old: base, next: s([f('id', int64)]), error: 'field val.name was removed' },
  { name: 'remove a nested field', old: s([f('inner', s([f('a', int64), f('b', utf8)]))]), next: s([f('inner', s([f('a', int64)]))]), error: 'field val.inner.b was removed' },
  { name: 'rename a field', old: base, next: s([f('id', int64), f('title', utf8, true)]), error: 'field val.name was removed' },
  { name: 'change a field type', old: base, next: s([f('id', float64), f('name', utf8, true)]), error: 'field val.id changed type from int64 to float64' },
  { name: 'change int64 to uint64', old: base, next: s([f('id', uint64), f('name', utf8, true)]), error: 'field val.id changed type from int64 to uint64' },
  {
    name: 'change a nested field type',
    old: s([f('inner', s([f('a', int64)]))]),
    next: s([f('inner', s([f('a', utf8)]))]),
    error: 'field val.inner.a changed type from int64 to utf8',
  },
  { name: 'change a scalar field to a struct', old: s([f('a', int64)]), next: s([f('a', s([f('x', int64, true)]))]), error: 'field val.a changed type from int64 to struct<x?: int64>' },
  { name: 'make a nullable field non-null', old: base, next: s([f('id', int64), f('name', utf8, false)]), error: 'field val.name changed from nullable to non-null' },
  { name: 'add a non-null field', old: base, next: s([f('id', int64), f('name', utf8, true), f('qty', int64)]), error: 'field val.qty was added as non-null; new fields must be nullable' },
  { name: 'add a non-null unit field', old: base, next: s([f('id', int64), f('name', utf8, true), f('u', unit)]), error: 'field val.u was added as non-null; new fields must be nullable' },
  {
    name: 'add a non-null field inside a nested struct',
    old: s([f('inner', s([f('a', int64)]))]),
    next: s([f('inner', s([f('a', int64), f('b', int64)]))]),
    error: 'field val.inner.b was added as non-null; new fields must be nullable',
  },
  { name: 'reorder fields', old: base, next: s([f('name', utf8, true), f('id', int64)]), error: 'field val.name moved; existing fields must keep their order' },
  { name: 'change a top-level scalar type', old: utf8, next: binary, error: 'the val schema changed type from utf8 to binary' },
  { name: 'change a top-level struct to a scalar', old: base, next: int64, error: 'the val schema changed type from struct<id: int64, name?: utf8> to int64' },
  { name: 'change a top-level scalar to a struct', old: int64, next: s([f('id', int64, true)]), error: 'the val schema changed type from int64 to struct<id?: int64>' },
]

describe('checkEvolution', () => {
  for (const c of CASES) {
    it(`${c.error === null ? 'allows' : 'rejects'}: ${c.name}`, () => {
      assert.equal(checkEvolution(c.old, c.next, 'val'), c.error)
      assert.equal(canRepresent(c.old, c.next), c.error === null)
    })
  }

  it('names fields without a root prefix by default', () => {
    assert.equal(checkEvolution(base, s([f('id', int64)])), 'field name was removed')
    assert.equal(checkEvolution(utf8, int64), 'the schema changed type from utf8 to int64')
  })
})

describe('canRepresent', () => {
  it('is reflexive and, over random types, agrees with checkEvolution', () => {
    fc.assert(
      fc.property(arbDataType(3), arbDataType(3), (a, b) => {
        assert.ok(canRepresent(a, a))
        assert.equal(canRepresent(a, b), checkEvolution(a, b) === null)
      }),
      { seed, numRuns: 300 },
    )
  })

  it('rejects the reverse of a field addition (the field would be lost)', () => {
    const wider = s([f('id', int64), f('name', utf8, true), f('price', float64, true)])
    assert.ok(canRepresent(base, wider))
    assert.ok(!canRepresent(wider, base))
  })

  it('is transitive along evolution chains', () => {
    const a = s([f('x', int64)])
    const b = s([f('x', int64, true), f('y', utf8, true)])
    const c = s([f('w', bool, true), f('x', int64, true), f('y', utf8, true), f('z', s([f('q', float64)]), true)])
    assert.ok(canRepresent(a, b) && canRepresent(b, c) && canRepresent(a, c))
  })
})
