import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MergeKernel } from '../../../src/engine/merge/merge-kernel.js'
import { MergeOrderError } from '../../../src/engine/merge/merge-order-error.js'
import { MergeOutput } from '../../../src/engine/merge/merge-output.js'
import { consolidateReference } from '../../support/consolidate-reference.js'
import { mulberry32 as rng } from '../../../src/core/prng.js'
import { diffOf, drive, I64_MAX, I64_MIN, show, sourceOf, type TestRow } from './merge-harness.js'

const enc = (s: string) => new TextEncoder().encode(s)
const row = (key: string, val: string, time1: number, diff: bigint, time0 = 0): TestRow => ({ key: enc(key), val: enc(val), time0, time1, diff, kept: true })

/** Emitted rows as `key/val@time:diff`, reading keys from the pushed sources. */
function collect(kernel: MergeKernel, sources: TestRow[][]): string[] {
  const out = kernel.output
  const got: string[] = []
  for (let i = 0; i < out.rows; i++) {
    const r = sources[out.src[i]!]![out.row[i]!]!
    got.push(`${new TextDecoder().decode(r.key)}/${new TextDecoder().decode(r.val)}@${out.time1[i]}:${diffOf(out.diffLo[i]!, out.diffHi[i]!)}`)
  }
  return got
}

describe('MergeKernel', () => {
  it('consolidates one (key, val) that spans part boundaries in several runs into one row per time', () => {
    const parts: TestRow[][] = [
      [row('a', 'x', 1, 1n), row('k', 'v', 5, 1n)], // run 0, part 0
      [row('k', 'v', 5, 2n)], // run 0, part 1
      [row('k', 'v', 5, 3n), row('z', 'z', 1, 1n)], // run 0, part 2
      [row('k', 'v', 5, 10n)], // run 1, part 0
      [], // run 1, part 1 (empty)
      [row('k', 'v', 5, 20n), row('k', 'v', 6, -1n)], // run 1, part 2
      [row('b', 'b', 1, 1n), row('k', 'v', 5, 100n)], // run 2, part 0
      [row('k', 'v', 6, 1n), row('k', 'v', 7, 4n)], // run 2, part 1
    ]
    const runOf = [0, 0, 0, 1, 1, 1, 2, 2]
    const kernel = new MergeKernel({ runs: 3, timesMayBeUnsorted: false })
    const next = [0, 0, 0]
    let needs = 0
    for (let i = 0; i < 50; i++) {
      const res = kernel.step()
      if (res.kind === 'done') break
      assert.equal(res.kind, 'need')
      if (res.kind !== 'need') continue
      needs++
      const idx = runOf.findIndex((r, j) => r === res.run && j >= next[res.run]!)
      if (idx < 0) kernel.end(res.run)
      else {
        kernel.push(res.run, sourceOf(parts[idx]!), idx)
        next[res.run] = idx + 1
      }
    }
    assert.ok(needs >= 8 + 3)
    assert.deepEqual(collect(kernel, parts), ['a/x@1:1', 'b/b@1:1', 'k/v@5:136', 'k/v@7:4', 'z/z@1:1'])
  })

  it('with no runs is done at once; ended runs without parts are done', () => {
    assert.deepEqual(new MergeKernel({ runs: 0, timesMayBeUnsorted: false }).step(), { kind: 'done' })
    const k = new MergeKernel({ runs: 2, timesMayBeUnsorted: true })
    assert.deepEqual(k.step(), { kind: 'need', run: 0 })
    k.end(1)
    assert.deepEqual(k.step(), { kind: 'need', run: 0 })
    k.end(0)
    k.end(0) // idempotent
    assert.deepEqual(k.step(), { kind: 'done' })
    assert.deepEqual(k.step(), { kind: 'done' })
    assert.equal(k.output.rows, 0)
  })

  it('sums diffs with i64 wrap-around and drops exact cancellations', () => {
    const rows = [row('k', 'v', 1, I64_MAX), row('k', 'v', 1, 1n), row('k', 'v', 2, I64_MIN), row('k', 'v', 2, I64_MIN), row('k', 'v', 3, 5n), row('k', 'v', 3, -5n)]
    const got = drive({ runs: [[rows.slice(0, 3)], [rows.slice(3)]], timesMayBeUnsorted: false, seed: 1, plain: true })
    assert.deepEqual(show(got.rows), show([{ ...rows[0]!, diff: I64_MIN }]))
  })

  it('sorts a group whose times advancing reordered, and rejects that order when times were promised sorted', () => {
    const run0 = [row('k', 'v', 9, 1n, 5), row('k', 'v', 5, 1n, 5), row('k', 'v', 9, 1n, 5)]
    const run1 = [row('k', 'v', 7, 2n, 5), row('k', 'v', 5, -1n, 5)]
    const expected = consolidateReference([...run0, ...run1])
    assert.deepEqual(show(drive({ runs: [[run0], [run1]], timesMayBeUnsorted: true, seed: 2 }).rows), show(expected))
    assert.throws(
      () => drive({ runs: [[run0], [run1]], timesMayBeUnsorted: false, seed: 2, plain: true }),
      (err: unknown) => err instanceof MergeOrderError && /times were promised sorted/.test(err.message),
    )
  })

  it('sorts and sums a large group of unsorted times spread over runs and parts', () => {
    const random = rng(7)
    const runs: TestRow[][][] = []
    for (let r = 0; r < 5; r++) {
      const rows = Array.from({ length: 60 }, () => row('k', 'v', Math.floor(random() * 6), BigInt(Math.floor(random() * 5) - 2), Math.floor(random() * 6)))
      runs.push([rows.slice(0, 17), rows.slice(17, 17), rows.slice(17, 45), rows.slice(45)])
    }
    const expected = consolidateReference(runs.flat(2))
    assert.ok(expected.length > 10)
    assert.deepEqual(show(drive({ runs, timesMayBeUnsorted: true, seed: 3 }).rows), show(expected))
    assert.deepEqual(show(drive({ runs, timesMayBeUnsorted: true, seed: 4, plain: true }).rows), show(expected))
  })

  it('throws MergeOrderError naming run and part for a decrease across a part boundary, and keeps throwing', () => {
    const k = new MergeKernel({ runs: 2, timesMayBeUnsorted: false })
    k.push(0, sourceOf([row('a', '', 1, 1n)]), 0)
    k.push(1, sourceOf([row('b', '', 1, 1n), row('m', '', 1, 1n)]), 1)
    k.push(1, sourceOf([row('c', '', 1, 1n)]), 2)
    k.end(0)
    k.end(1)
    let caught: unknown
    try {
      for (let i = 0; i < 10; i++) k.step()
    } catch (err) {
      caught = err
    }
    assert.ok(caught instanceof MergeOrderError)
    assert.equal(caught.run, 1)
    assert.equal(caught.part, 1)
    assert.equal(caught.row, 0)
    assert.equal(caught.status, 500)
    assert.match(caught.message, /run 1, part 1, row 0/)
    assert.throws(() => k.step(), (err: unknown) => err === caught)
  })

  it('stops when the output reaches maxRows or maxBytes, even inside a group, and resumes exactly', () => {
    const rows = [row('k', 'vv', 1, 1n), row('k', 'vv', 2, 1n), row('k', 'vv', 3, 1n), row('l', 'vv', 1, 1n)]
    const sources = [rows]
    const k = new MergeKernel({ runs: 1, timesMayBeUnsorted: false, output: new MergeOutput(1) })
    k.push(0, sourceOf(rows), 0)
    k.end(0)
    assert.deepEqual(k.step(2), { kind: 'full' })
    assert.deepEqual(collect(k, sources), ['k/vv@1:1', 'k/vv@2:1'])
    assert.equal(k.output.bytes, 2 * (1 + 2 + 16))
    k.output.reset()
    // 19 bytes per row: the second row reaches 38.
    assert.deepEqual(k.step(Infinity, 38), { kind: 'full' })
    assert.deepEqual(collect(k, sources), ['k/vv@3:1', 'l/vv@1:1'])
    k.output.reset()
    assert.deepEqual(k.step(1), { kind: 'done' })
    assert.equal(k.output.rows, 0)
  })

  it('reports a source released only after the last row that points at it is in the output', () => {
    const released: [number, number][] = []
    const k = new MergeKernel({ runs: 2, timesMayBeUnsorted: false, onRelease: (id) => released.push([id, k.output.rows]) })
    // The group k/v starts at the last row of source 0 and continues in source 1 and in run 1.
    k.push(0, sourceOf([row('a', 'v', 1, 1n), row('k', 'v', 1, 1n)]), 0)
    k.push(1, sourceOf([row('k', 'v', 1, 1n)]), 2)
    k.push(1, sourceOf([]), 3)
    k.end(1)
    assert.deepEqual(k.step(), { kind: 'need', run: 0 })
    assert.equal(released.length, 0)
    k.push(0, sourceOf([row('k', 'v', 1, 1n), row('z', 'v', 1, 1n)]), 1)
    k.end(0)
    assert.deepEqual(k.step(), { kind: 'done' })
    assert.deepEqual([...k.output.src.subarray(0, k.output.rows)], [0, 0, 1])
    // Source 0 is released after the k/v row (output row 1) was appended; empty source 3 at load.
    assert.deepEqual(released.find(([id]) => id === 0), [0, 2])
    assert.deepEqual(released.map(([id]) => id).sort(), [0, 1, 2, 3])
  })

  it('rejects bad runs, pushes after end and malformed sources', () => {
    const k = new MergeKernel({ runs: 1, timesMayBeUnsorted: false })
    assert.throws(() => k.push(1, sourceOf([]), 0), RangeError)
    assert.throws(() => k.end(-1), RangeError)
    assert.throws(() => k.push(0, sourceOf([]), -1), RangeError)
    const bad = { ...sourceOf([row('a', 'b', 1, 1n)]), keyOffsets: new Int32Array(1) }
    assert.throws(() => k.push(0, bad, 0), /keyOffsets has 1 entries, needs 2/)
    k.end(0)
    assert.throws(() => k.push(0, sourceOf([]), 0), /ended/)
    assert.throws(() => new MergeKernel({ runs: 1.5, timesMayBeUnsorted: false }), RangeError)
  })
})
