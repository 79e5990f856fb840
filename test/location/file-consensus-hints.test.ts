/**
 * FileConsensus finds a key's head from the last head it saw (a hint) by looking for the names
 * after it, not by listing the directory. Several instances over one directory, each with hints
 * made stale by the others' writes and truncations (down to deleted tombstones), against a model
 * of the log: every head, compare-and-set and scan answers as the model says.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { FileConsensus } from '../../src/location/file-consensus.js'
import { text, v } from './consensus-contract.js'

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`file consensus hints property test seed: ${seed} (rerun with FC_SEED=${seed})`)

/** Tombstones kept below the floor: few, so that histories reach deleted names. */
const TOMBSTONES = 2

type Op =
  | { readonly kind: 'cas'; readonly by: number; readonly stale: boolean }
  | { readonly kind: 'writes'; readonly by: number; readonly n: number }
  | { readonly kind: 'head'; readonly by: number }
  | { readonly kind: 'truncate'; readonly by: number; readonly keep: number }
  | { readonly kind: 'scan'; readonly by: number; readonly from: number }

const INSTANCES = 3
// The last instance acts rarely, so its hints fall far behind (past deleted names).
const by = fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 5, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) })
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cas' as const), by, stale: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('writes' as const), by, n: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('head' as const), by }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), by, keep: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('scan' as const), by, from: fc.nat(60) }) },
)

describe('FileConsensus: what an instance remembers of the keys it saw', () => {
  let root: string
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'compactd-fc-hints-'))
  })
  after(() => rm(root, { recursive: true, force: true }))

  it('instances with stale hints answer as the model says', async () => {
    let run = 0
    let listedPastDeleted = 0
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 50, size: 'max' }), async (ops) => {
        const dir = join(root, String(run++))
        const cs = Array.from({ length: INSTANCES }, () => new FileConsensus(dir, { tombstones: TOMBSTONES }))
        // The model: the head and the floor (live versions are floor..head, data `v<seqno>`).
        let head: number | null = null
        let floor = 0
        // What each instance last saw as the head (what it would compare-and-set against).
        const seen: (number | null)[] = cs.map(() => null)
        try {
          for (const op of ops) {
            const c = cs[op.by]!
            const stale = seen[op.by] ?? null
            if (stale !== null && stale + 1 < floor - TOMBSTONES) listedPastDeleted++
            switch (op.kind) {
              case 'cas': {
                const expected: number | null = op.stale ? (seen[op.by] ?? null) : head
                const res = await c.compareAndSet('k', expected, v(expected === null ? 0 : expected + 1))
                if (expected === head) {
                  assert.deepEqual(res, { kind: 'committed' })
                  head = expected === null ? 0 : expected + 1
                } else {
                  assert.equal(res.kind === 'mismatch' ? text(res.current) : res.kind, text(head === null ? null : v(head)))
                }
                seen[op.by] = head
                break
              }
              case 'writes':
                for (let i = 0; i < op.n; i++) {
                  assert.deepEqual(await c.compareAndSet('k', head, v(head === null ? 0 : head + 1)), { kind: 'committed' })
                  head = head === null ? 0 : head + 1
                }
                seen[op.by] = head
                break
              case 'head': {
                assert.equal(text(await c.head('k')), text(head === null ? null : v(head)))
                seen[op.by] = head
                break
              }
              case 'truncate': {
                if (head === null) break
                const to = Math.max(0, head - op.keep)
                await c.truncate('k', to)
                floor = Math.max(floor, to)
                seen[op.by] = head
                break
              }
              case 'scan': {
                const got = (await c.scan('k', op.from, 100)).map(text)
                const want: (string | null)[] = []
                if (head !== null) for (let s = Math.max(op.from, floor); s <= head; s++) want.push(text(v(s)))
                assert.deepEqual(got, want)
                break
              }
            }
          }
          // Every instance agrees at the end, whatever it saw last.
          for (const c of cs) assert.equal(text(await c.head('k')), text(head === null ? null : v(head)))
        } finally {
          for (const c of cs) await c.close()
        }
      }),
      { seed, numRuns: 80 },
    )
    console.log(`operations of an instance whose hint was behind deleted names: ${listedPastDeleted}`)
    assert.ok(listedPastDeleted > 0, 'the generator reached hints behind deleted names')
  })

  it('list reads each key’s directory once: a key seen with a version has one for good', async () => {
    const dir = join(root, 'list-once')
    const writer = new FileConsensus(dir)
    const reads: string[] = []
    const reader = new FileConsensus(dir, { beforeRead: async (key) => void reads.push(key) })
    for (const key of ['a', 'b', 'c']) await writer.compareAndSet(key, null, v(0))
    assert.deepEqual((await reader.list()).sort(), ['a', 'b', 'c'])
    assert.deepEqual(reads.sort(), ['a', 'b', 'c'])
    reads.length = 0
    await writer.compareAndSet('d', null, v(0))
    await writer.truncate('a', 0)
    assert.deepEqual((await reader.list()).sort(), ['a', 'b', 'c', 'd'])
    assert.deepEqual(reads, ['d'], 'only the new key is read')
    for (const c of [writer, reader]) await c.close()
  })

  it('a head read from a hint does not list the directory: the names after it are looked for one at a time', async () => {
    const dir = join(root, 'no-listing')
    const writer = new FileConsensus(dir)
    const reader = new FileConsensus(dir)
    for (let s = 0; s < 50; s++) await writer.compareAndSet('k', s === 0 ? null : s - 1, v(s))
    assert.equal(text(await reader.head('k')), '49:v49') // no hint yet: lists
    await writer.compareAndSet('k', 49, v(50))
    await writer.compareAndSet('k', 50, v(51))
    // A name past a gap, which no compare-and-set can make: a listing would take it for the head.
    await writeFile(join(dir, Buffer.from('k').toString('hex'), '60'.padStart(20, '0')), 'past a gap')
    assert.equal(text(await reader.head('k')), '51:v51')
    assert.equal(text(await writer.head('k')), '51:v51')
    const fresh = new FileConsensus(dir)
    assert.equal(text(await fresh.head('k')), '60:past a gap')
    for (const c of [writer, reader, fresh]) await c.close()
  })
})
