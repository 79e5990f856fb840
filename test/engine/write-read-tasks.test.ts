/**
 * Write and read tasks in real worker threads, against the oracle: random rows (sorted or not,
 * duplicates, cancelling diffs, both timestamp kinds, nested and nullable schemas) sent as a JSON
 * or an Arrow body cut at arbitrary byte boundaries; the parts written must be sorted,
 * consolidated runs, and the snapshot the read tasks encode must be the oracle's, whether one task
 * reads it or two split it by key (a split below every key, at a key of the rows, above every key).
 */
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import fc from 'fast-check'
import { diffToJson } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { timestampKind, type Product, type Timestamp } from '../../src/core/timestamp.js'
import { decodePart, UpdatesStreamWriter } from '../../src/columnar/part-format.js'
import { compareRows, firstUnsortedRow, rowOrderKeys, sortKeyLowerAt } from '../../src/columnar/sort-key.js'
import { UpdatesBuilder, type Updates } from '../../src/columnar/updates.js'
import { valueToJson } from '../../src/columnar/values.js'
import type { MergeRunsTask, WriteTaskPayload } from '../../src/engine/protocol.js'
import { readTasks, type ReadPart } from '../../src/engine/read-task.js'
import { WorkerPool } from '../../src/engine/worker-pool.js'
import { runWriteTask, type WriteTaskPart } from '../../src/engine/write-task.js'
import { announceSeed, arbRows, arbShape, compareTimes, seed, type Row, type Shape } from '../columnar/arbitraries.js'
import { buildUpdates, oracleJson, rowsOf } from '../support/updates-oracle.js'

announceSeed('write-read-tasks.test.ts')

interface Written {
  readonly parts: { readonly bytes: Uint8Array; readonly run: number }[]
  readonly partsPerRun: readonly number[]
  readonly rows: number
}

/**
 * A body's bytes as a stream of the given pieces, one per turn of the event loop (so each reaches
 * the worker on its own, as bytes trickling in from a socket would).
 */
function bodyStream(bytes: Uint8Array, fractions: readonly number[]): Readable {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.byteLength)))].sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let at = 0
  for (const p of [...points, bytes.byteLength]) {
    if (p > at) pieces.push(Buffer.from(bytes.subarray(at, p)))
    at = p
  }
  return Readable.from(
    (async function* () {
      for (const piece of pieces) {
        await new Promise((resolve) => setImmediate(resolve))
        yield piece
      }
    })(),
    { objectMode: false },
  )
}

function jsonBody(shape: Shape, rows: readonly Row[], style: number): Uint8Array {
  const tk = timestampKind(shape.timeKind)
  const elems = rows.map((r, i) => {
    const fields: [string, unknown][] = [
      ['key', valueToJson(shape.keyType, r.key)],
      ['val', valueToJson(shape.valType, r.val)],
      ['time', tk.toJson(r.time)],
      ['diff', (style + i) % 5 === 0 ? String(r.diff) : diffToJson(r.diff)],
    ]
    if ((style + i) % 3 === 0) fields.reverse()
    return `{${fields.map(([k, v]) => `"${k}": ${JSON.stringify(v)}`).join(', ')}}`
  })
  const lower = shape.timeKind === 'u64' ? '[0]' : '[[0,0]]'
  const head = `"lower": ${lower}, "upper": []`
  const text = style % 2 === 0 ? `{${head}, "updates": [${elems.join(',')}]}` : `{"updates":[${elems.join(',\n')}], ${head}, "append": false}`
  return new TextEncoder().encode(text)
}

function arrowBody(shape: Shape, rows: readonly Row[], batches: number): Uint8Array {
  const writer = new UpdatesStreamWriter(shape)
  const pieces: Uint8Array[] = []
  const per = Math.max(1, Math.ceil(rows.length / Math.max(1, batches)))
  for (let at = 0; at < rows.length; at += per) pieces.push(writer.write(buildUpdates(shape, rows.slice(at, at + per))))
  pieces.push(writer.end())
  return Buffer.concat(pieces)
}

function payloadFor(shape: Shape, format: 'json' | 'arrow', targetSizeBytes: number): WriteTaskPayload {
  const tk = timestampKind(shape.timeKind)
  return {
    format,
    keyType: shape.keyType,
    valType: shape.valType,
    timeKind: shape.timeKind,
    header: format === 'arrow' ? { lower: [tk.minimum], upper: [], append: false, expectedUpper: [tk.minimum] } : null,
    shardUpper: [tk.minimum],
    order: 'structured',
    schemaId: 0,
    targetSizeBytes,
    maxBodyBytes: 1 << 24,
  }
}

async function write(pool: WorkerPool, payload: WriteTaskPayload, body: Readable): Promise<Written> {
  const parts: { bytes: Uint8Array; run: number }[] = []
  const r = await runWriteTask(pool, payload, {
    body,
    maxBodyBytes: payload.maxBodyBytes,
    maxOutstanding: 2,
    onPart: async (p: WriteTaskPart) => {
      parts.push({ bytes: p.bytes.slice(), run: p.run })
      await new Promise((resolve) => setImmediate(resolve))
    },
  })
  return { parts, partsPerRun: r.stats.partsPerRun, rows: r.stats.rows }
}

/**
 * The snapshot at `asOf` of the written parts (as inline parts of one batch), as the read task
 * encodes it; with `splitKey` (a sort key), as two tasks encode it, one each side of the key.
 */
async function snapshot(pool: WorkerPool, shape: Shape, w: Written, asOf: Timestamp, format: 'json' | 'arrow', splitKey: Uint8Array | null = null): Promise<Uint8Array> {
  const tk = timestampKind(shape.timeKind)
  const desc = description([tk.minimum], [], [tk.minimum])
  const task: MergeRunsTask = {
    timeKind: shape.timeKind,
    since: [asOf],
    asOf,
    runs: w.partsPerRun.map((_, run) => ({
      order: 'structured',
      parts: w.parts.filter((p) => p.run === run).map((p) => ({ registeredLower: desc.lower, registeredUpper: desc.upper, encodedSizeBytes: p.bytes.byteLength, inline: p.bytes })),
    })),
    keyType: shape.keyType,
    valType: shape.valType,
    order: 'structured',
    targetSizeBytes: 200,
    yieldAfterUpdates: 7,
  }
  const fetch = (): Promise<Uint8Array> => Promise.reject(new Error('inline parts are never asked for'))
  const partSizes = task.runs.map((r) => r.parts.map(() => 0))
  const body =
    splitKey === null
      ? readTasks(pool, [{ task, output: { kind: 'stream', format, maxOutstanding: 1, opens: true, closes: true }, fetch, partSizes, prefetchBudgetBytes: 0 }], {})
      : readTasks(
          pool,
          [
            { lower: null, upper: splitKey },
            { lower: splitKey, upper: null },
          ].map((keyRange, i): ReadPart => ({ task: { ...task, keyRange }, output: { kind: 'stream', format, maxOutstanding: 1 + i, opens: i === 0, closes: i === 1 }, fetch, partSizes, prefetchBudgetBytes: 0 })),
          {},
        )
  const chunks: Uint8Array[] = []
  let sawLast = false
  for await (const c of body) {
    assert.equal(sawLast, false, 'nothing after the last chunk')
    sawLast = c.last
    chunks.push(c.bytes)
  }
  assert.ok(sawLast, 'the body ends with its last chunk')
  return Buffer.concat(chunks)
}

/** A split key for `w`'s rows: below every key, the sort key of row `row` of its first part, or above every key. */
function splitKeyOf(w: Written, where: 'below' | 'row' | 'above', row: number): Uint8Array {
  if (where === 'below') return new Uint8Array(0)
  const first = w.parts[0]
  if (where === 'above' || first === undefined) return new Uint8Array(64).fill(0xff)
  const u = decodePart(first.bytes).updates
  return u.length === 0 ? new Uint8Array(0) : sortKeyLowerAt(u, row % u.length, 'structured')
}

function lessEqualTime(a: Timestamp, b: Timestamp): boolean {
  if (typeof a === 'bigint') return a <= (b as bigint)
  const x = a as Product
  const y = b as Product
  return x[0] <= y[0] && x[1] <= y[1]
}

/** The oracle's snapshot at `asOf`: rows at or before it, times advanced to it, consolidated. */
function oracleSnapshot(shape: Shape, rows: readonly Row[], asOf: Timestamp): string {
  return oracleJson(
    shape,
    rows.filter((r) => lessEqualTime(r.time, asOf)).map((r) => ({ ...r, time: asOf })),
    'structured',
  )
}

const asJsonRows = (updates: unknown[]): string => JSON.stringify((updates as { diff: unknown }[]).map((u) => ({ ...u, diff: String(u.diff) })))

describe('write and read tasks', () => {
  let pool: WorkerPool
  before(() => {
    pool = new WorkerPool(1)
  })
  after(async () => {
    await pool.close()
  })

  it('write random bodies as sorted, consolidated runs whose snapshot is the oracle', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbShape(2).chain((s) =>
          fc.tuple(
            fc.constant(s),
            arbRows(s, 50),
            fc.constantFrom<'json' | 'arrow'>('json', 'arrow'),
            fc.boolean(),
            fc.array(fc.integer({ min: 1, max: 999 }).map((n) => n / 1000), { maxLength: 8 }),
            fc.nat(20),
            fc.integer({ min: 1, max: 2000 }),
            fc.constantFrom<'none' | 'below' | 'row' | 'above'>('none', 'below', 'row', 'row', 'above'),
          ),
        ),
        async ([shape, raw, format, presort, fractions, style, target, split]) => {
          const rows = presort ? sortRows(shape, raw) : raw
          const bytes = format === 'json' ? jsonBody(shape, rows, style) : arrowBody(shape, rows, 1 + (style % 4))
          const w = await write(pool, payloadFor(shape, format, target), bodyStream(bytes, fractions))
          assert.deepEqual(w.partsPerRun, [...new Set(w.parts.map((p) => p.run))].map((run) => w.parts.filter((p) => p.run === run).length))
          let total = 0
          const written: Row[] = []
          for (let run = 0; run < w.partsPerRun.length; run++) {
            const u = concat(shape, w.parts.filter((p) => p.run === run).map((p) => decodePart(p.bytes).updates))
            total += u.length
            written.push(...rowsOf(shape, u))
            const k = rowOrderKeys(u, 'structured')
            assert.equal(firstUnsortedRow(k, u.length), -1, 'each run is sorted')
            for (let i = 1; i < u.length; i++) assert.notEqual(compareRows(k, i - 1, k, i), 0, 'and consolidated')
            assert.ok(u.diffs.every((d) => d !== 0n), 'with no zero diffs')
          }
          assert.equal(total, w.rows)
          // Together the runs consolidate to what the body's rows consolidate to.
          assert.equal(oracleJson(shape, written, 'structured'), oracleJson(shape, rows, 'structured'))
          if (presort) assert.ok(w.partsPerRun.length <= 1, `sorted rows made ${w.partsPerRun.length} runs`)
          // The snapshot at a time of the rows (or beyond all of them) is the oracle's.
          const tk = timestampKind(shape.timeKind)
          const asOf = rows.length === 0 ? tk.minimum : [...rows.map((r) => r.time)].sort(compareTimes)[style % rows.length]!
          const splitKey = split === 'none' ? null : splitKeyOf(w, split, style)
          const doc = JSON.parse(Buffer.from(await snapshot(pool, shape, w, asOf, 'json', splitKey)).toString('utf8')) as { asOf: unknown; updates: unknown[] }
          assert.deepEqual(doc.asOf, tk.toJson(asOf))
          assert.equal(asJsonRows(doc.updates), oracleSnapshot(shape, rows, asOf))
        },
      ),
      { seed, numRuns: 120 },
    )
  })

  it('read tasks encode the same rows as an Arrow IPC stream', async () => {
    const shape: Shape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    const rows: Row[] = Array.from({ length: 300 }, (_, i) => ({ key: `k${(i * 37) % 100}`, val: BigInt(i % 3), time: BigInt(i % 7), diff: BigInt((i % 5) - 2) }))
    const body = jsonBody(shape, rows, 0)
    const w = await write(pool, payloadFor(shape, 'json', 512), bodyStream(body, [0.3, 0.31, 0.9]))
    const json = JSON.parse(Buffer.from(await snapshot(pool, shape, w, 5n, 'json')).toString('utf8')) as { updates: { key: string; val: number; time: number; diff: number }[] }
    assert.ok(json.updates.length > 0)
    // One task, and two split below every key, in the middle of the rows, and above every key.
    for (const split of [null, 'below', 'row', 'above'] as const) {
      const bytes = await snapshot(pool, shape, w, 5n, 'arrow', split === null ? null : splitKeyOf(w, split, 20))
      // One stream: its schema once, then record batches to the end marker and nothing after.
      const messages = new arrow.MessageReader(bytes)
      const kinds: string[] = []
      let rows = 0
      for (let m = messages.readMessage(); m !== null; m = messages.readMessage()) {
        kinds.push(arrow.MessageHeader[m.headerType])
        if (m.isRecordBatch()) rows += m.header().length
        messages.readMessageBody(m.bodyLength)
      }
      assert.deepEqual(kinds, ['Schema', ...kinds.slice(1).map(() => 'RecordBatch')], `split: ${split}`)
      assert.equal(rows, json.updates.length, `split: ${split}: the end marker ends the stream`)
      assert.deepEqual([...bytes.subarray(-8)], [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
      const table = arrow.tableFromIPC(bytes)
      const fromArrow = table.toArray().map((r: { toJSON(): Record<string, unknown> }) => r.toJSON())
      assert.equal(fromArrow.length, json.updates.length, `split: ${split}`)
      for (let i = 0; i < fromArrow.length; i++) {
        const a = fromArrow[i]!
        const j = json.updates[i]!
        assert.deepEqual({ k: a.k, v: a.v, t: a.t, d: a.d }, { k: j.key, v: BigInt(j.val), t: BigInt(j.time), d: BigInt(j.diff) })
      }
    }
  })

  it('names the first row outside [lower, upper) by its index in the body, across chunks and batches', async () => {
    const shape: Shape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    const rows: Row[] = Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, val: 1n, time: i === 33 ? 99n : 1n, diff: 1n }))
    const payload = { ...payloadFor(shape, 'arrow', 1 << 20), header: { lower: [0n], upper: [10n], append: true, expectedUpper: [0n] } }
    await assert.rejects(write(pool, payload, bodyStream(arrowBody(shape, rows, 5), [0.2, 0.5])), (err: Error & { code?: string; details?: unknown }) => {
      assert.equal(err.code, 'INVALID_BATCH')
      assert.match(err.message, /^body: row 33: time 99 is not in \[lower \[0\], upper \[10\]\)/)
      assert.deepEqual(err.details, { row: 33 })
      return true
    })
    const text = new TextEncoder().encode(`{"lower":[0],"upper":[10],"updates":[${rows.map((r) => `{"key":"${String(r.key)}","val":1,"time":${r.time},"diff":1}`).join(',')}]}`)
    await assert.rejects(write(pool, payloadFor(shape, 'json', 1 << 20), bodyStream(text, [0.5, 0.6])), (err: Error) => {
      assert.match(err.message, /^body\.updates\[33\]\.time 99 is not in/)
      return true
    })
    // The pool is still usable.
    const ok = await write(pool, payloadFor(shape, 'json', 1 << 20), bodyStream(jsonBody(shape, rows.slice(0, 5), 0), []))
    assert.equal(ok.rows, 5)
  })

  it('an Arrow message larger than the body limit is a body too large (413), not a malformed one, whichever side sees it first', async () => {
    const shape: Shape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    const rows: Row[] = Array.from({ length: 400 }, (_, i) => ({ key: `k${i}`.padEnd(40, '.'), val: 1n, time: 1n, diff: 1n }))
    const body = arrowBody(shape, rows, 1)
    // The worker's limit only: its decoder reads the message's length before the main thread has
    // counted the bytes (which of the two comes first depends on how the body's chunks arrive).
    const payload = { ...payloadFor(shape, 'arrow', 1 << 20), maxBodyBytes: 4096 }
    const run = runWriteTask(pool, payload, { body: bodyStream(body, [0.01]), maxBodyBytes: 1 << 24, maxOutstanding: 2, onPart: async () => undefined })
    await assert.rejects(run, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PAYLOAD_TOO_LARGE')
      assert.equal(err.message, 'body: larger than the body limit of 4096 bytes (COMPACTD_BODY_LIMIT)')
      return true
    })
  })
})

function sortRows(shape: Shape, rows: readonly Row[]): Row[] {
  const u = buildUpdates(shape, rows)
  const k = rowOrderKeys(u, 'structured')
  return rows.map((_, i) => i).sort((a, b) => compareRows(k, a, k, b)).map((i) => rows[i]!)
}

function concat(shape: Shape, us: readonly Updates[]): Updates {
  const b = new UpdatesBuilder(shape)
  for (const u of us) b.appendRange(b.bind(u), 0, u.length)
  return b.finish()
}

