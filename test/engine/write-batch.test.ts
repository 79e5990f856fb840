/**
 * BatchWrite on the caller's thread: how Arrow record batches reach the run writer. Small ones are
 * gathered (`GATHER_ROWS`) so that a client streaming a few rows per record batch does not pay the
 * run writer's cost per call per batch; large ones pass as they are, in body order.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { UpdatesStreamWriter } from '../../src/columnar/part-format.js'
import { RunWriter } from '../../src/engine/run-writer.js'
import { BatchWrite, GATHER_ROWS } from '../../src/engine/write-batch.js'
import type { WriteTaskPayload } from '../../src/engine/protocol.js'
import type { Row, Shape } from '../columnar/arbitraries.js'
import { buildUpdates, oracleJson, rowsOf } from '../support/updates-oracle.js'

const shape: Shape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }

function payload(): WriteTaskPayload {
  return { format: 'arrow', keyType: shape.keyType, valType: shape.valType, timeKind: 'u64', header: { lower: [0n], upper: [10n], append: false, expectedUpper: [0n] }, shardUpper: [0n], order: 'structured', schemaId: 0, targetSizeBytes: 1 << 20, maxBodyBytes: 1 << 26 }
}

/** An Arrow stream of `rows` cut into record batches of the given sizes (in turn, repeated). */
function body(rows: readonly Row[], sizes: readonly number[]): Uint8Array {
  const writer = new UpdatesStreamWriter(shape)
  const pieces: Uint8Array[] = []
  for (let at = 0, i = 0; at < rows.length; i++) {
    const n = sizes[i % sizes.length]!
    pieces.push(writer.write(buildUpdates(shape, rows.slice(at, at + n))))
    at += n
  }
  pieces.push(writer.end())
  return Buffer.concat(pieces)
}

/** Writes `bytes` in 64 KiB chunks; every row written, and how many times the run writer was called. */
async function write(bytes: Uint8Array): Promise<{ rows: Row[]; runs: number; pushes: number }> {
  const push = RunWriter.prototype.push
  let pushes = 0
  RunWriter.prototype.push = function (this: RunWriter, ...args: Parameters<RunWriter['push']>) {
    pushes++
    return push.apply(this, args)
  }
  try {
    const rows: Row[] = []
    const w = new BatchWrite(payload(), {
      emit: async (p) => {
        // NB: the part's rows live in buffers the next part reuses: copied out now.
        rows.push(...rowsOf(shape, p.updates))
      },
    })
    for (let at = 0; at < bytes.byteLength; at += 1 << 16) await w.push(bytes.subarray(at, at + (1 << 16)))
    const done = await w.end()
    return { rows, runs: done.stats.partsPerRun.length, pushes }
  } finally {
    RunWriter.prototype.push = push
  }
}

const sortedRows = (n: number): Row[] => Array.from({ length: n }, (_, i) => ({ key: `k${String(i).padStart(6, '0')}`, val: BigInt(i % 3), time: BigInt(i % 10), diff: 1n }))

describe('BatchWrite', () => {
  it('gathers small record batches before the run writer sees them, and keeps sorted ones one run', async () => {
    const rows = sortedRows(3 * GATHER_ROWS)
    const w = await write(body(rows, [1, 2, 7]))
    assert.ok(w.pushes <= 4, `${w.pushes} calls of the run writer for ${rows.length} rows in record batches of 1, 2 and 7`)
    assert.equal(w.runs, 1)
    assert.equal(oracleJson(shape, w.rows, 'structured'), oracleJson(shape, rows, 'structured'))
  })

  it('keeps body order when small and large record batches alternate', async () => {
    // Unsorted across batches: rows of the large batches interleave with the small ones.
    const rows = sortedRows(4 * GATHER_ROWS + 50).reverse()
    const w = await write(body(rows, [3, GATHER_ROWS + 5, 1, 1, GATHER_ROWS * 2, 40]))
    assert.equal(oracleJson(shape, w.rows, 'structured'), oracleJson(shape, rows, 'structured'))
  })

  it('names a bad row of a gathered batch by its index in the body', async () => {
    const rows = sortedRows(GATHER_ROWS + 100)
    rows[GATHER_ROWS + 42] = { ...rows[GATHER_ROWS + 42]!, time: 99n }
    await assert.rejects(write(body(rows, [GATHER_ROWS, 3])), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'INVALID_BATCH')
      assert.match(err.message, new RegExp(`^body: row ${GATHER_ROWS + 42}: time 99 is not in`))
      return true
    })
  })
})
