import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import fc from 'fast-check'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { decodeUpdatesStream, UpdatesStreamWriter } from '../../src/columnar/part-format.js'
import { IpcTooLargeError } from '../../src/columnar/ipc-reader.js'
import { UpdatesStreamDecoder } from '../../src/columnar/updates-stream-decoder.js'
import { updatesToJson, UpdatesBuilder, type Updates, type UpdatesShape } from '../../src/columnar/updates.js'
import { announceSeed, arbRows, arbShape, seed, type Row, type Shape } from './arbitraries.js'

announceSeed('updates-stream-decoder.test.ts')

function build(shape: Shape, rows: readonly Row[]): Updates {
  const b = new UpdatesBuilder(shape)
  for (const r of rows) b.append(r.key, r.val, r.time, r.diff)
  return b.finish()
}

const json = (us: readonly Updates[]): string => JSON.stringify(us.flatMap((u) => updatesToJson(u)), (_, v) => (typeof v === 'bigint' ? String(v) : v))

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** `bytes` cut at the given fractions. */
function cut(bytes: Uint8Array, fractions: readonly number[]): Uint8Array[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.byteLength)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let at = 0
  for (const p of points) {
    out.push(bytes.subarray(at, p))
    at = p
  }
  out.push(bytes.subarray(at))
  return out
}

describe('UpdatesStreamDecoder', () => {
  it('decodes a stream of several batches pushed in arbitrary pieces as decodeUpdatesStream decodes it whole', () => {
    fc.assert(
      fc.property(
        arbShape(2).chain((s) => fc.tuple(fc.constant(s), fc.array(arbRows(s, 12), { minLength: 1, maxLength: 4 }), fc.array(fc.integer({ min: 1, max: 999 }).map((n) => n / 1000), { maxLength: 12 }))),
        ([shape, batches, fractions]) => {
          const writer = new UpdatesStreamWriter(shape)
          const inputs = batches.map((rows) => build(shape, rows))
          const bytes = concat([...inputs.map((u) => writer.write(u)), writer.end()])
          const whole = decodeUpdatesStream(bytes, shape)
          assert.ok(whole.ok, whole.ok ? '' : whole.error)
          const decoder = new UpdatesStreamDecoder(shape, { maxMessageBytes: 1 << 20 })
          const got: Updates[] = []
          let next = 0
          for (const piece of cut(bytes, fractions)) {
            const r = decoder.push(piece.slice())
            assert.ok(r.ok, r.ok ? '' : r.error)
            for (const b of r.value) {
              assert.equal(b.firstRow, next)
              next += b.updates.length
              got.push(b.updates)
            }
          }
          const end = decoder.end()
          assert.ok(end.ok)
          assert.equal(end.value, whole.value.length)
          assert.equal(json(got), json([whole.value]))
        },
      ),
      { seed, numRuns: 150 },
    )
  })

  const shape: UpdatesShape = { keyType: utf8, valType: int64, timeKind: 'u64' }

  it('numbers rows across batches in its errors', () => {
    const k = arrow.vectorFromArray(['a', null, 'c'], new arrow.Utf8())
    const table = (keys: arrow.Vector) =>
      new arrow.Table({
        k: keys,
        v: arrow.vectorFromArray([1n, 2n, 3n], new arrow.Int64()),
        t: arrow.vectorFromArray([1n, 2n, 3n], new arrow.Uint64()),
        d: arrow.vectorFromArray([1n, 1n, 1n], new arrow.Int64()),
      })
    const good = table(arrow.vectorFromArray(['a', 'b', 'c'], new arrow.Utf8()))
    const bad = table(k)
    const bytes = arrow.RecordBatchStreamWriter.writeAll([...good.batches, ...bad.batches]).toUint8Array(true)
    const decoder = new UpdatesStreamDecoder(shape, { maxMessageBytes: 1 << 20 })
    const r = decoder.push(bytes)
    assert.ok(!r.ok)
    assert.match(r.error, /^invalid Arrow stream: column k: row 4 is null/)
  })

  it('refuses a message larger than allowed before allocating it (IpcTooLargeError), and a truncated stream at its end', () => {
    const writer = new UpdatesStreamWriter(shape)
    const b = new UpdatesBuilder(shape)
    for (let i = 0; i < 100; i++) b.append(`key ${i}`, BigInt(i), 1n, 1n)
    const bytes = concat([writer.write(b.finish()), writer.end()])
    const small = new UpdatesStreamDecoder(shape, { maxMessageBytes: 512 })
    // Thrown, not returned as a malformed stream: the caller answers it as a body too large.
    assert.throws(() => small.push(bytes), (err: Error) => err instanceof IpcTooLargeError && /larger than the 512 bytes allowed/.test(err.message))
    const truncated = new UpdatesStreamDecoder(shape, { maxMessageBytes: 1 << 20 })
    assert.ok(truncated.push(bytes.subarray(0, bytes.byteLength - 100)).ok)
    const end = truncated.end()
    assert.ok(!end.ok)
    assert.match(end.error, /runs past the end of the stream/)
    const trailing = new UpdatesStreamDecoder(shape, { maxMessageBytes: 1 << 20 })
    const after = trailing.push(concat([bytes, new Uint8Array([1, 2, 3])]))
    assert.ok(!after.ok)
    assert.match(after.error, /bytes follow the end-of-stream marker/)
  })

  it('writes the bytes apache-arrow writes for the same batches', () => {
    const b = new UpdatesBuilder(shape)
    b.append('x', 5n, 2n, 1n)
    b.append('y', -7n, 3n, -2n)
    const u = b.finish()
    const writer = new UpdatesStreamWriter(shape)
    const ours = concat([writer.write(u), writer.write(u), writer.end()])
    const theirs = arrow.tableFromIPC(ours)
    assert.equal(theirs.batches.length, 2)
    assert.deepEqual(
      arrow.RecordBatchStreamWriter.writeAll(theirs.batches).toUint8Array(true),
      ours,
    )
  })
})
