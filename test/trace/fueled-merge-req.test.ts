import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { description } from '../../src/core/description.js'
import { removeRedundantMergeReqs, type FueledMergeReq } from '../../src/trace/fueled-merge-req.js'
import { spineId } from '../../src/trace/spine-id.js'
import { f, tk } from './fixtures.js'

/** A request over ids `[lo, hi)`, its desc the same range, since `[]` unless given. */
const req = (lo: number, hi: number, since: number[] = []): FueledMergeReq => ({
  id: spineId(lo, hi),
  desc: description(f(lo), f(hi), f(...since)),
  inputs: [],
})

describe('removeRedundantMergeReqs', () => {
  const cases: [string, FueledMergeReq[], FueledMergeReq[]][] = [
    ['empty', [], []],
    ['single', [req(0, 1)], [req(0, 1)]],
    ['duplicate', [req(0, 1), req(0, 1)], [req(0, 1)]],
    ['nothing covered: reversed', [req(0, 1), req(1, 2)], [req(1, 2), req(0, 1)]],
    ['covered', [req(1, 2), req(0, 3)], [req(0, 3)]],
    ['covered, lower equal', [req(0, 2), req(0, 3)], [req(0, 3)]],
    ['covered, upper equal', [req(1, 3), req(0, 3)], [req(0, 3)]],
    ['covered, unexpected order', [req(0, 3), req(1, 2)], [req(0, 3)]],
    ['partially overlapping', [req(0, 2), req(1, 3)], [req(1, 3), req(0, 2)]],
    ['partially overlapping, the other order', [req(1, 3), req(0, 2)], [req(0, 2), req(1, 3)]],
    ['different sinces are kept', [req(0, 1), req(0, 1, [5])], [req(0, 1, [5]), req(0, 1)]],
    ['a covering request with another since keeps the covered one', [req(1, 2, [0]), req(0, 3, [4])], [req(0, 3, [4]), req(1, 2, [0])]],
    ['a chain from one roll-up keeps only the last', [req(0, 2), req(0, 4), req(0, 8)], [req(0, 8)]],
    ['a late covering request drops several kept ones', [req(0, 8), req(0, 2), req(4, 6)], [req(0, 8)]],
  ]
  for (const [name, input, expected] of cases) {
    it(name, () => assert.deepEqual(removeRedundantMergeReqs(tk, input), expected))
  }
})
