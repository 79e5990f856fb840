import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import pg from 'pg'
import { classify } from '../../src/location/postgres-errors.js'

/** An error answer from the server with SQL state `code`. */
function serverError(code: string, message: string): pg.DatabaseError {
  const err = new pg.DatabaseError(message, message.length, 'error')
  err.code = code
  return err
}

describe('classify (PostgreSQL errors)', () => {
  it('says a full disk (53100 disk_full) is determinate and no space, on reads and writes', () => {
    for (const write of [false, true]) {
      const err = classify('postgres consensus compareAndSet "k"', write, serverError('53100', 'could not extend file "base/16384/16385": No space left on device'))
      assert.deepEqual([err.kind, err.noSpace, err.permanent], ['determinate', true, false])
    }
  })

  it('keeps other answers determinate without no space, and a lost connection during a write indeterminate', () => {
    const other = classify('q', true, serverError('23505', 'duplicate key'))
    assert.deepEqual([other.kind, other.noSpace], ['determinate', false])
    const lost = classify('q', true, serverError('08006', 'connection failure'))
    assert.deepEqual([lost.kind, lost.noSpace], ['indeterminate', false])
  })
})
