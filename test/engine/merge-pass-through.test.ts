/**
 * A snapshot of one run passes the parts that need no merging through without the kernel
 * (`MergeRunsIo.passThrough`). Its rows must be exactly the kernel's: the property compares the
 * two paths, and both with a plain model, on random runs cut into random parts; the other tests
 * check that the path is taken when it can be and left when it cannot.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { description } from '../../src/core/description.js'
import type { Timestamp, TimestampKindName } from '../../src/core/timestamp.js'
import { binary } from '../../src/columnar/data-type.js'
import { encodePart } from '../../src/columnar/part-format.js'
import { sortAndConsolidate } from '../../src/columnar/sort-consolidate.js'
import { sliceUpdates, UpdatesBuilder, updatesToJson, type UpdateJson } from '../../src/columnar/updates.js'
import { mergeRuns, type MergeRunsTask } from '../../src/engine/merge-runs.js'

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 0x7fff_ffff)
console.log(`merge pass-through properties: FC_SEED=${seed}`)

interface Row {
  readonly k: number
  readonly v: number
  readonly t: readonly [number, number]
  readonly d: bigint
}

/** One consolidated run of `rows` (sorted as a write stores it), cut into parts at `cuts`, with empty parts inserted at `empties`. */
function run(kind: TimestampKindName, rows: readonly Row[], cuts: readonly number[], empties: readonly number[] = []): Uint8Array[] {
  const b = new UpdatesBuilder({ keyType: binary, valType: binary, timeKind: kind })
  for (const r of rows) b.append(Uint8Array.of(r.k), Uint8Array.of(r.v), kind === 'u64' ? BigInt(r.t[0]) : r.t, r.d)
  const sorted = sortAndConsolidate(b.finish(), 'structured')
  const desc = kind === 'u64' ? description([0n], [100n], [0n]) : description([[0, 0]], [], [[0, 0]])
  const at = [...new Set([0, ...cuts.map((c) => c % (sorted.length + 1)), sorted.length])].sort((x, y) => x - y)
  const parts: Uint8Array[] = []
  for (let i = 0; i + 1 < at.length; i++) parts.push(encodePart(sliceUpdates(sorted, at[i]!, at[i + 1]!), { desc, order: 'structured', schemaId: 0 }))
  if (parts.length === 0) parts.push(encodePart(sorted, { desc, order: 'structured', schemaId: 0 }))
  for (const e of empties) parts.splice(e % (parts.length + 1), 0, encodePart(sliceUpdates(sorted, 0, 0), { desc, order: 'structured', schemaId: 0 }))
  return parts
}

/** The snapshot of the run at `asOf`, merged with or without the pass-through; its rows, and how many chunks it came in. */
async function snapshot(kind: TimestampKindName, parts: readonly Uint8Array[], asOf: Timestamp, passThrough: boolean): Promise<{ rows: UpdateJson[]; chunks: number }> {
  const desc = kind === 'u64' ? description([0n], [100n], [0n]) : description([[0, 0]], [], [[0, 0]])
  const task: MergeRunsTask = {
    timeKind: kind,
    since: [asOf],
    asOf,
    runs: [{ order: 'structured', parts: parts.map((p) => ({ registeredLower: desc.lower, registeredUpper: desc.upper, encodedSizeBytes: p.byteLength })) }],
    keyType: binary,
    valType: binary,
    order: 'structured',
    targetSizeBytes: 1 << 20,
    yieldAfterUpdates: 7,
  }
  const rows: UpdateJson[] = []
  let chunks = 0
  await mergeRuns(task, {
    fetch: async (_run, part) => parts[part]!,
    emit: async (p) => {
      chunks++
      rows.push(...updatesToJson(p.updates))
    },
    passThrough,
  })
  return { rows, chunks }
}

/** The model: rows at or before `asOf`, at `asOf`, summed by (key, val), zeros dropped, by key then val. */
function model(kind: TimestampKindName, rows: readonly Row[], asOf: readonly [number, number]): UpdateJson[] {
  const sums = new Map<string, bigint>()
  for (const r of rows) {
    const visible = kind === 'u64' ? r.t[0] <= asOf[0] : r.t[0] <= asOf[0] && r.t[1] <= asOf[1]
    if (!visible) continue
    const id = `${r.k.toString(16).padStart(2, '0')}${r.v.toString(16).padStart(2, '0')}`
    sums.set(id, BigInt.asIntN(64, (sums.get(id) ?? 0n) + r.d))
  }
  const b64 = (n: number): string => Buffer.of(n).toString('base64')
  return [...sums]
    .filter(([, d]) => d !== 0n)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([id, d]) => ({ key: b64(parseInt(id.slice(0, 2), 16)), val: b64(parseInt(id.slice(2), 16)), time: kind === 'u64' ? asOf[0] : [asOf[0], asOf[1]], diff: Number(d) }))
}

const row = fc.record({
  k: fc.nat(40),
  v: fc.nat(2),
  t: fc.tuple(fc.nat(6), fc.nat(6)),
  d: fc.constantFrom(1n, -1n, 2n, 3n),
})

describe('snapshot of one run: parts passed through', () => {
  for (const kind of ['u64', 'product'] as const) {
    it(`gives the kernel's rows and the model's (${kind} times; FC_SEED printed above)`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(row, { maxLength: 60 }), fc.array(fc.nat(60), { maxLength: 6 }), fc.array(fc.nat(8), { maxLength: 2 }), fc.tuple(fc.nat(7), fc.nat(7)), async (rows, cuts, empties, asOf) => {
          const parts = run(kind, rows, cuts, empties)
          const t: Timestamp = kind === 'u64' ? BigInt(asOf[0]) : asOf
          const fast = await snapshot(kind, parts, t, true)
          const kernel = await snapshot(kind, parts, t, false)
          assert.deepEqual(fast.rows, kernel.rows)
          assert.deepEqual(fast.rows, model(kind, rows, asOf))
        }),
        { seed, numRuns: 300 },
      )
    })
  }

  const distinct = (n: number, t: number): Row[] => Array.from({ length: n }, (_, i) => ({ k: i, v: 0, t: [t, 0], d: 1n }))

  it('emits each part as it was read when none needs merging', async () => {
    const parts = run('u64', distinct(40, 3), [10, 20, 30])
    assert.equal((await snapshot('u64', parts, 5n, true)).chunks, 4)
    // The kernel builds one chunk of the target size instead.
    assert.equal((await snapshot('u64', parts, 5n, false)).chunks, 1)
  })

  it('hands the rest to the kernel at a part with a row after the as-of, and at equal rows across a boundary', async () => {
    const late = distinct(40, 3).map((r, i) => (i === 25 ? { ...r, t: [9, 0] as const } : r))
    const a = await snapshot('u64', run('u64', late, [10, 20, 30]), 5n, true)
    // Parts 1 and 2 went through; the third (with the late row) and the fourth through the kernel.
    assert.equal(a.chunks, 3)
    assert.equal(a.rows.length, 39)
    // Key 19 at times 1 and 3 straddles the cut at row 20: the two rows are summed into one.
    const twice = [...distinct(20, 3), { k: 19, v: 0, t: [1, 0] as const, d: 1n }, ...distinct(40, 3).slice(20)]
    for (const empties of [[], [1]]) {
      // The same with an empty part between the two (it must not hide the equal rows).
      const b = await snapshot('u64', run('u64', twice, [20, 30], empties), 5n, true)
      assert.deepEqual(b.rows, model('u64', twice, [5, 0]))
      assert.equal(b.rows.find((r) => r.key === Buffer.of(19).toString('base64'))?.diff, 2)
    }
  })
})
