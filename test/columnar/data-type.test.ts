import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import {
  dataTypeEquals,
  dataTypeToJson,
  field,
  formatDataType,
  int64,
  MAX_TYPE_DEPTH,
  parseDataType,
  struct,
  toArrowType,
  unit,
  utf8,
  type DataType,
} from '../../src/columnar/data-type.js'

const parsed = (json: unknown): DataType => {
  const r = parseDataType(json, 'keySchema')
  if (!r.ok) throw new Error(r.error)
  return r.value
}

const error = (json: unknown): string => {
  const r = parseDataType(json, 'keySchema')
  assert.equal(r.ok, false, `expected ${JSON.stringify(json)} to be rejected`)
  return r.ok ? '' : r.error
}

describe('parseDataType', () => {
  it('accepts every scalar type and returns the shared instance', () => {
    for (const name of ['utf8', 'binary', 'int64', 'uint64', 'float64', 'bool', 'unit']) {
      const t = parsed({ type: name })
      assert.equal(t.type, name)
      assert.equal(t, parsed({ type: name }))
      assert.ok(Object.isFrozen(t))
    }
  })

  it('accepts nested structs, nullable defaulting to false, and round-trips through JSON', () => {
    const json = {
      type: 'struct',
      fields: [
        { name: 'id', type: { type: 'uint64' } },
        { name: 'who', type: { type: 'struct', fields: [{ name: 'name', type: { type: 'utf8' }, nullable: true }] }, nullable: true },
      ],
    }
    const t = parsed(json)
    assert.deepEqual(dataTypeToJson(t), {
      type: 'struct',
      fields: [
        { name: 'id', type: { type: 'uint64' }, nullable: false },
        { name: 'who', type: { type: 'struct', fields: [{ name: 'name', type: { type: 'utf8' }, nullable: true }] }, nullable: true },
      ],
    })
    assert.ok(dataTypeEquals(parsed(dataTypeToJson(t)), t))
    assert.ok(Object.isFrozen(t) && t.type === 'struct' && Object.isFrozen(t.fields) && Object.isFrozen(t.fields[0]))
  })

  it('accepts an empty struct', () => {
    assert.deepEqual(dataTypeToJson(parsed({ type: 'struct', fields: [] })), { type: 'struct', fields: [] })
  })

  it('rejects with the path of the offending part', () => {
    assert.equal(error({ type: 'int32' }), 'keySchema.type: unknown type "int32"; expected one of utf8, binary, int64, uint64, float64, bool, unit, struct')
    assert.equal(error('utf8'), 'keySchema: a type must be an object like {"type":"utf8"}')
    assert.equal(error(null), 'keySchema: a type must be an object like {"type":"utf8"}')
    assert.equal(error([]), 'keySchema: a type must be an object like {"type":"utf8"}')
    assert.match(error({}), /^keySchema\.type: must be a string/)
    assert.equal(error({ type: 'utf8', nullable: true }), 'keySchema.nullable: unknown property of a utf8 type')
    assert.equal(error({ type: 'struct' }), 'keySchema.fields: must be an array of fields')
    assert.equal(error({ type: 'struct', fields: [], extra: 1 }), 'keySchema.extra: unknown property of a struct type')
    assert.equal(error({ type: 'struct', fields: [3] }), 'keySchema.fields[0]: a field must be an object {name, type, nullable}')
    assert.equal(
      error({ type: 'struct', fields: [{ name: 'a', type: { type: 'utf8' } }, { name: 'a', type: { type: 'int64' } }] }),
      'keySchema.fields[1].name: duplicate field name "a"',
    )
    assert.equal(error({ type: 'struct', fields: [{ name: '', type: { type: 'utf8' } }] }), 'keySchema.fields[0].name: must not be empty')
    assert.equal(error({ type: 'struct', fields: [{ name: 7, type: { type: 'utf8' } }] }), 'keySchema.fields[0].name: must be a string')
    assert.equal(error({ type: 'struct', fields: [{ name: 'a' }] }), 'keySchema.fields[0].type: missing')
    assert.equal(error({ type: 'struct', fields: [{ name: 'a', type: { type: 'utf8' }, nullable: 'yes' }] }), 'keySchema.fields[0].nullable: must be a boolean')
    assert.equal(error({ type: 'struct', fields: [{ name: 'a', type: { type: 'utf8' }, kind: 1 }] }), 'keySchema.fields[0].kind: unknown property of a field')
    assert.equal(
      error({ type: 'struct', fields: [{ name: 'a', type: { type: 'struct', fields: [{ name: 'b', type: { type: 'decimal' } }] } }] }),
      'keySchema.fields[0].type.fields[0].type.type: unknown type "decimal"; expected one of utf8, binary, int64, uint64, float64, bool, unit, struct',
    )
    assert.match(error({ type: 'struct', fields: [{ name: 'x'.repeat(257), type: { type: 'utf8' } }] }), /^keySchema\.fields\[0\]\.name: must be at most 256 characters/)
  })

  it('bounds nesting depth and total fields', () => {
    let deep: unknown = { type: 'utf8' }
    for (let i = 0; i < MAX_TYPE_DEPTH + 1; i++) deep = { type: 'struct', fields: [{ name: 'f', type: deep }] }
    assert.match(error(deep), /nest deeper than 32 levels$/)
    const wide = { type: 'struct', fields: Array.from({ length: 5000 }, (_, i) => ({ name: `f${i}`, type: { type: 'bool' } })) }
    assert.match(error(wide), /^keySchema\.fields\[4096\]: a type may have at most 4096 fields in all$/)
  })
})

describe('data type helpers', () => {
  it('struct() builds frozen types and throws on invalid fields', () => {
    const t = struct([field('a', int64), field('b', utf8, true)])
    assert.equal(formatDataType(t), 'struct<a: int64, b?: utf8>')
    assert.throws(() => struct([field('a', int64), field('a', utf8)]), /duplicate field name "a"/)
  })

  it('equality is structural: names, order, nullability, nested types', () => {
    const a = struct([field('a', int64), field('b', utf8, true)])
    assert.ok(dataTypeEquals(a, struct([field('a', int64), field('b', utf8, true)])))
    assert.ok(!dataTypeEquals(a, struct([field('a', int64), field('b', utf8, false)])))
    assert.ok(!dataTypeEquals(a, struct([field('b', utf8, true), field('a', int64)])))
    assert.ok(!dataTypeEquals(a, struct([field('a', int64)])))
    assert.ok(!dataTypeEquals(a, int64))
    assert.ok(dataTypeEquals(int64, int64))
    assert.ok(!dataTypeEquals(int64, utf8))
  })

  it('maps to Arrow types, unit to Null with a nullable field', () => {
    const t = toArrowType(struct([field('a', int64), field('u', unit), field('s', struct([field('x', utf8, true)]), true)]))
    assert.ok(arrow.DataType.isStruct(t))
    const [a, u, s] = t.children
    assert.ok(a && arrow.DataType.isInt(a.type) && a.type.bitWidth === 64 && a.type.isSigned && !a.nullable)
    assert.ok(u && arrow.DataType.isNull(u.type) && u.nullable)
    assert.ok(s && arrow.DataType.isStruct(s.type) && s.nullable && s.type.children[0]!.nullable)
    assert.ok(arrow.DataType.isBinary(toArrowType({ type: 'binary' })))
    assert.ok(arrow.DataType.isUtf8(toArrowType(utf8)))
    assert.ok(arrow.DataType.isFloat(toArrowType({ type: 'float64' })))
    assert.ok(arrow.DataType.isBool(toArrowType({ type: 'bool' })))
    const u64 = toArrowType({ type: 'uint64' })
    assert.ok(arrow.DataType.isInt(u64) && !u64.isSigned && u64.bitWidth === 64)
  })
})
