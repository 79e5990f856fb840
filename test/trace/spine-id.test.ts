import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { covers, formatSpineId, parseSpineId, spineId } from '../../src/trace/spine-id.js'

describe('SpineId', () => {
  it('prints and parses lo-hi', () => {
    assert.equal(formatSpineId(spineId(0, 4)), '0-4')
    assert.deepEqual(parseSpineId('12-345'), { ok: true, value: spineId(12, 345) })
  })
  for (const bad of ['4-4', '5-4', '0', '-1-2', '01-2', '1-2x', '', 7, null, '1-99999999999999999999']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.equal(parseSpineId(bad).ok, false))
  }
  it('covers half-open ranges', () => {
    assert.equal(covers(spineId(0, 4), spineId(1, 3)), true)
    assert.equal(covers(spineId(0, 4), spineId(0, 4)), true)
    assert.equal(covers(spineId(0, 4), spineId(3, 5)), false)
    assert.equal(covers(spineId(1, 4), spineId(0, 2)), false)
  })
})
