/**
 * Request bodies of the end-to-end scenario, built the way a client would (apache-arrow's own
 * writer for Arrow, JSON.stringify for JSON), from the benchmark's seeded data (dataset.ts).
 */
import * as arrow from 'apache-arrow'
import { mulberry32 as prng } from '../src/core/prng.js'
import { KEY_BYTES, VAL_BYTES, type RunColumns } from './dataset.js'

/** Rows per record batch of an Arrow body (a client's choice; Arrow tools often use 64Ki). */
export const ARROW_BATCH_ROWS = 1 << 16

/** A seeded permutation of `[0, n)`. */
function permutation(n: number, seed: number): Uint32Array {
  const random = prng(seed)
  const p = new Uint32Array(n)
  for (let i = 0; i < n; i++) p[i] = i
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = p[i]!
    p[i] = p[j]!
    p[j] = t
  }
  return p
}

/**
 * The rows of one run as an Arrow IPC stream (columns k, v binary; t uint64; d int64) in record
 * batches of `ARROW_BATCH_ROWS`; in the run's (sorted) order, or shuffled with `shuffleSeed`.
 */
export function arrowBody(run: RunColumns, shuffleSeed: number | null): Uint8Array {
  const n = run.rows
  const order = shuffleSeed === null ? null : permutation(n, shuffleSeed)
  const batches: arrow.RecordBatch[] = []
  const schema = new arrow.Schema([
    new arrow.Field('k', new arrow.Binary(), false),
    new arrow.Field('v', new arrow.Binary(), false),
    new arrow.Field('t', new arrow.Uint64(), false),
    new arrow.Field('d', new arrow.Int64(), false),
  ])
  for (let start = 0; start < n; start += ARROW_BATCH_ROWS) {
    const m = Math.min(ARROW_BATCH_ROWS, n - start)
    const keys = new Uint8Array(m * KEY_BYTES)
    const vals = new Uint8Array(m * VAL_BYTES)
    const times = new Uint32Array(2 * m)
    const diffs = new Uint32Array(2 * m)
    for (let i = 0; i < m; i++) {
      const r = order === null ? start + i : order[start + i]!
      keys.set(run.keys.subarray(r * KEY_BYTES, (r + 1) * KEY_BYTES), i * KEY_BYTES)
      vals.set(run.vals.subarray(r * VAL_BYTES, (r + 1) * VAL_BYTES), i * VAL_BYTES)
      times[2 * i] = run.times[2 * r]!
      times[2 * i + 1] = run.times[2 * r + 1]!
      diffs[2 * i] = run.diffs[2 * r]!
      diffs[2 * i + 1] = run.diffs[2 * r + 1]!
    }
    const offsets = (width: number): Int32Array => Int32Array.from({ length: m + 1 }, (_, i) => i * width)
    const data = arrow.makeData({
      type: new arrow.Struct(schema.fields),
      length: m,
      nullCount: 0,
      children: [
        arrow.makeData({ type: new arrow.Binary(), length: m, nullCount: 0, valueOffsets: offsets(KEY_BYTES), data: keys }),
        arrow.makeData({ type: new arrow.Binary(), length: m, nullCount: 0, valueOffsets: offsets(VAL_BYTES), data: vals }),
        arrow.makeData({ type: new arrow.Uint64(), length: m, nullCount: 0, data: new BigUint64Array(times.buffer) }),
        arrow.makeData({ type: new arrow.Int64(), length: m, nullCount: 0, data: new BigInt64Array(diffs.buffer) }),
      ],
    })
    batches.push(new arrow.RecordBatch(schema, data))
  }
  return arrow.RecordBatchStreamWriter.writeAll(batches).toUint8Array(true)
}

/**
 * A JSON batch body of `rows` rows with utf8 keys (16 characters) and int64 values, times in
 * `[lower, lower + span)`, in random key order, with the frontiers first (as a streaming client
 * should put them).
 */
export function jsonBody(rows: number, seed: number, lower: number, span: number): Uint8Array {
  const random = prng(seed)
  const updates = new Array<{ key: string; val: number; time: number; diff: number }>(rows)
  for (let i = 0; i < rows; i++) {
    const k = Math.floor(random() * rows * 4)
    updates[i] = { key: `key-${String(k).padStart(12, '0')}`, val: Math.floor(random() * 1e9) - 5e8, time: lower + Math.floor(random() * span), diff: 1 + Math.floor(random() * 3) }
  }
  return new TextEncoder().encode(JSON.stringify({ lower: [lower], upper: [lower + span], updates }))
}
