import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isProtectedPath } from '../../src/http/auth.js'

describe('isProtectedPath', () => {
  const table: Array<[string, boolean]> = [
    ['/v1', true],
    ['/v1/', true],
    ['/v1/shards', true],
    ['/v1/compactions/c1', true],
    ['/v10/shards', false],
    ['/v1x', false],
    ['/healthz', false],
    ['/metrics', false],
    ['/docs/v1/x', false],
    ['/', false],
  ]
  for (const [path, expected] of table) it(`${path} → ${expected}`, () => assert.equal(isProtectedPath(path), expected))
})
