import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { binary, bool, field, float64, int64, struct, uint64, unit, utf8, type DataType } from '../../src/columnar/data-type.js'
import { parseValue, valueToJson, type Value } from '../../src/columnar/values.js'
import { announceSeed, arbDataType, arbValue, refCompare, seed } from './arbitraries.js'

announceSeed('values.test.ts')

const parse = (t: DataType, json: unknown): Value => {
  const r = parseValue(t, json, 'val')
  if (!r.ok) throw new Error(r.error)
  return r.value
}

const error = (t: DataType, json: unknown): string => {
  const r = parseValue(t, json, 'val')
  assert.equal(r.ok, false, `expected ${JSON.stringify(json)} to be rejected as ${t.type}`)
  return r.ok ? '' : r.error
}

const nullProto = (o: Record<string, unknown>): Record<string, unknown> => Object.assign(Object.create(null) as Record<string, unknown>, o)

describe('JSON values', () => {
  it('parse each type into its JS value and back', () => {
    assert.equal(parse(utf8, 'héllo'), 'héllo')
    assert.deepEqual(parse(binary, 'AAH/'), new Uint8Array([0, 1, 255]))
    assert.equal(valueToJson(binary, new Uint8Array([0, 1, 255])), 'AAH/')
    assert.equal(parse(int64, -5), -5n)
    assert.equal(parse(int64, '-9223372036854775808'), -(2n ** 63n))
    assert.equal(valueToJson(int64, -(2n ** 63n)), '-9223372036854775808')
    assert.equal(valueToJson(int64, 42n), 42)
    assert.equal(parse(uint64, '18446744073709551615'), 2n ** 64n - 1n)
    assert.equal(valueToJson(uint64, 2n ** 64n - 1n), '18446744073709551615')
    assert.equal(valueToJson(uint64, 2n ** 53n - 1n), 2 ** 53 - 1)
    assert.equal(valueToJson(uint64, 2n ** 53n), '9007199254740992')
    assert.equal(parse(float64, 1.5), 1.5)
    assert.ok(Number.isNaN(parse(float64, 'NaN')))
    assert.equal(parse(float64, '-Infinity'), -Infinity)
    assert.ok(Object.is(parse(float64, '-0'), -0))
    assert.equal(valueToJson(float64, NaN), 'NaN')
    assert.equal(valueToJson(float64, Infinity), 'Infinity')
    assert.equal(valueToJson(float64, -0), '-0')
    assert.equal(valueToJson(float64, 0), 0)
    assert.equal(parse(bool, true), true)
    assert.equal(parse(unit, null), null)
    assert.equal(valueToJson(unit, null), null)
  })

  it('parse structs into null-prototype objects, missing nullable fields as null', () => {
    const t = struct([field('id', int64), field('name', utf8, true), field('u', unit), field('__proto__', bool, true)])
    const v = parse(t, JSON.parse('{"id": 1, "__proto__": true}'))
    assert.deepEqual(v, nullProto({ id: 1n, name: null, u: null, ['__proto__']: true }))
    assert.equal(Object.getPrototypeOf(v), null)
    assert.deepEqual(valueToJson(t, v), nullProto({ id: 1, name: null, u: null, ['__proto__']: true }))
    assert.equal(JSON.stringify(valueToJson(t, v)), '{"id":1,"name":null,"u":null,"__proto__":true}')
  })

  it('does not read inherited properties as fields', () => {
    const t = struct([field('constructor', utf8, true), field('toString', int64, true)])
    assert.deepEqual(parse(t, {}), nullProto({ constructor: null, toString: null }))
  })

  it('round-trip random values of random types through JSON', () => {
    fc.assert(
      fc.property(
        arbDataType(3).chain((t) => fc.tuple(fc.constant(t), arbValue(t))),
        ([t, v]) => {
          const json = JSON.parse(JSON.stringify(valueToJson(t, v))) as unknown
          const back = parse(t, json)
          assert.equal(refCompare(t, v, back), 0)
          assert.equal(JSON.stringify(valueToJson(t, back)), JSON.stringify(json))
        },
      ),
      { seed, numRuns: 500 },
    )
  })

  it('name the field path and the expected type in errors', () => {
    const t = struct([field('price', int64), field('tags', struct([field('a', uint64, true)]), true)])
    assert.equal(error(t, { price: 1.5 }), 'val.price: expected int64 (an integer or a decimal string); numbers beyond 2^53 must be decimal strings')
    assert.equal(error(t, { price: 'abc' }), 'val.price: expected int64 (an integer or a decimal string)')
    assert.equal(error(t, { price: '9223372036854775808' }), 'val.price: 9223372036854775808 is out of range for int64')
    assert.equal(error(t, { price: 2 ** 60 }), 'val.price: expected int64 (an integer or a decimal string); numbers beyond 2^53 must be decimal strings')
    assert.equal(error(t, { price: 1, tags: { a: -1 } }), 'val.tags.a: -1 is out of range for uint64')
    assert.equal(error(t, { price: 1, tags: 5 }), 'val.tags: expected struct (an object)')
    assert.equal(error(t, {}), 'val.price: missing non-null field')
    assert.equal(error(t, { price: null }), 'val.price: must not be null (expected int64 (an integer or a decimal string))')
    assert.equal(error(t, { price: 1, extra: 2 }), 'val.extra: unknown field')
    assert.equal(error(t, [1]), 'val: expected struct (an object)')
    assert.equal(error(utf8, null), 'val: must not be null (expected utf8 (a string))')
    assert.equal(error(utf8, 5), 'val: expected utf8 (a string)')
    assert.equal(error(utf8, 'a\uD800b'), 'val: string is not well-formed Unicode (lone surrogate)')
    assert.equal(error(binary, 'not base64!'), 'val: expected binary (a base64 string)')
    assert.equal(error(binary, 'AAA'), 'val: expected binary (a base64 string)')
    assert.equal(error(float64, 'inf'), 'val: expected float64 (a number, or "NaN", "Infinity", "-Infinity", "-0")')
    assert.equal(error(bool, 'true'), 'val: expected bool (true or false)')
    assert.equal(error(unit, 0), 'val: expected unit (null)')
    assert.equal(error(int64, '01'), 'val: expected int64 (an integer or a decimal string)')
    assert.equal(error(uint64, '-0'), 'val: expected uint64 (a non-negative integer or a decimal string)')
  })
})
