import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { compareRows, firstUnsortedRow, rowOrderKeys } from '../../src/columnar/sort-key.js'
import { shapeOf, sliceUpdates, UpdatesBuilder, updatesByteLength, type Updates } from '../../src/columnar/updates.js'
import { RunWriter } from '../../src/engine/run-writer.js'
import { announceSeed, arbRows, arbShape, seed, type Row, type Shape } from '../columnar/arbitraries.js'
import { buildUpdates, normalizedJson, oracleJson, rowsOf } from '../support/updates-oracle.js'

announceSeed('run-writer.test.ts')

/** A copy of `u` (the writer reuses the buffers of what it emits). */
function copy(u: Updates): Updates {
  const b = new UpdatesBuilder(shapeOf(u))
  b.appendRange(b.bind(u), 0, u.length)
  return b.finish()
}

interface Written {
  readonly runs: Updates[][]
  readonly rows: number
  readonly partsPerRun: readonly number[]
}

async function write(shape: Shape, chunks: readonly Updates[], target: number, order: 'structured' | 'codec'): Promise<Written> {
  const runs: Updates[][] = []
  const writer = new RunWriter(shape, order, target, async (rows, run) => {
    assert.ok(run === runs.length - 1 || run === runs.length, `run ${run} after ${runs.length} runs`)
    if (run === runs.length) runs.push([])
    assert.ok(rows.length > 0, 'no empty parts')
    runs[run]!.push(copy(rows))
    await new Promise((r) => setImmediate(r))
  })
  for (const c of chunks) await writer.push(c)
  const done = await writer.end()
  return { runs, ...done }
}

/** The input cut into chunks at the given row fractions. */
function chunksOf(u: Updates, fractions: readonly number[]): Updates[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * u.length)))].sort((a, b) => a - b)
  const out: Updates[] = []
  let at = 0
  for (const p of [...points, u.length]) {
    out.push(sliceUpdates(u, at, p))
    at = p
  }
  return out
}

describe('RunWriter', () => {
  for (const order of ['structured', 'codec'] as const) {
    it(`writes sorted, consolidated runs whose union is the oracle's consolidation (${order} order)`, async () => {
      await fc.assert(
        fc.asyncProperty(
          arbShape(2).chain((s) =>
            fc.tuple(fc.constant(s), arbRows(s, 60), fc.array(fc.integer({ min: 1, max: 999 }).map((n) => n / 1000), { maxLength: 6 }), fc.integer({ min: 1, max: 600 }), fc.boolean()),
          ),
          async ([shape, rows, fractions, target, presort]) => {
            const input = presort ? sortedRows(shape, rows, order) : rows
            const written = await write(shape, chunksOf(buildUpdates(shape, input), fractions), target, order)
            assert.equal(
              written.partsPerRun.reduce((a, b) => a + b, 0),
              written.runs.reduce((a, r) => a + r.length, 0),
            )
            assert.deepEqual(written.partsPerRun, written.runs.map((r) => r.length))
            assert.equal(written.rows, written.runs.flat().reduce((n, u) => n + u.length, 0))
            for (const run of written.runs) {
              // Each run: strictly increasing (key, val, time) across its parts, no zero diffs.
              const all = concat(shape, run)
              const k = rowOrderKeys(all, order)
              assert.equal(firstUnsortedRow(k, all.length), -1)
              for (let i = 1; i < all.length; i++) assert.notEqual(compareRows(k, i - 1, k, i), 0, 'equal rows left in a run')
              assert.ok(all.diffs.every((d) => d !== 0n))
            }
            // Together the runs consolidate to the oracle's answer.
            const together = written.runs.flat()
            const rowsOut = together.flatMap((u) => rowsOf(shape, u))
            assert.equal(oracleJson(shape, rowsOut, order), oracleJson(shape, input, order))
            // Sorted input is one run, and consolidated exactly.
            if (presort) {
              assert.ok(written.runs.length <= 1, `sorted input made ${written.runs.length} runs`)
              assert.equal(normalizedJson(together), oracleJson(shape, input, order))
            }
          },
        ),
        { seed, numRuns: 200 },
      )
    })
  }

  it('cuts parts at about the target size and keeps a sorted stream in one run', async () => {
    const shape: Shape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    const b = new UpdatesBuilder(shape)
    for (let i = 0; i < 10_000; i++) b.append(`key-${String(i).padStart(6, '0')}`, BigInt(i), 1n, 1n)
    const u = b.finish()
    const written = await write(shape, chunksOf(u, [0.1, 0.35, 0.5, 0.9]), 32 * 1024, 'structured')
    assert.equal(written.runs.length, 1)
    assert.equal(written.rows, 10_000)
    const sizes = written.runs[0]!.map((p) => updatesByteLength(p))
    assert.ok(sizes.length >= 10, `${sizes.length} parts`)
    // Every part but the last reaches the target, and overshoots it by at most a row.
    for (const n of sizes.slice(0, -1)) assert.ok(n >= 32 * 1024 && n <= 32 * 1024 + 64, `a part of ${n} bytes`)
  })

  it('gives unsorted input one run per buffer of the target size', async () => {
    const shape: Shape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    const b = new UpdatesBuilder(shape)
    for (let i = 0; i < 10_000; i++) b.append(`key-${String((i * 7919) % 10_000).padStart(6, '0')}`, 1n, 1n, 1n)
    const written = await write(shape, chunksOf(b.finish(), Array.from({ length: 19 }, (_, i) => (i + 1) / 20)), 64 * 1024, 'structured')
    assert.ok(written.runs.length >= 3 && written.runs.length <= 6, `${written.runs.length} runs`)
    assert.equal(written.rows, 10_000)
  })
})

function sortedRows(shape: Shape, rows: readonly Row[], order: 'structured' | 'codec'): Row[] {
  // Sorted by the oracle's order, duplicates kept (the writer must sum them).
  const u = buildUpdates(shape, rows)
  const k = rowOrderKeys(u, order)
  const idx = rows.map((_, i) => i).sort((a, b) => compareRows(k, a, k, b))
  return idx.map((i) => rows[i]!)
}

function concat(shape: Shape, us: readonly Updates[]): Updates {
  const b = new UpdatesBuilder(shape)
  for (const u of us) b.appendRange(b.bind(u), 0, u.length)
  return b.finish()
}
