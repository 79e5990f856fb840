import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { KEY_LOWER_MAX_BYTES, runs } from '../../src/core/batch.js'
import { newShardId, newWriterKey } from '../../src/core/ids.js'
import { blobKey, parseBlobKey } from '../../src/core/paths.js'
import { u64 } from '../../src/core/timestamp.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { decodePart, encodedPart } from '../../src/columnar/part-format.js'
import { sumDiffs, updatesFromJson, updatesToJson, type UpdateJson } from '../../src/columnar/updates.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { builtBatch, flushInlineParts, hollowKeys, runLimited, takeBuiltPart, userBatchDesc, type BuiltPart } from '../../src/shard/batch-writer.js'

const shape = { keyType: utf8, valType: int64, timeKind: 'u64' as const }
const desc = userBatchDesc(u64, [0n], [10n])

function rows(json: UpdateJson[]) {
  const r = updatesFromJson(json, shape)
  if (!r.ok) throw new Error(r.error)
  return r.value
}

/** A built part of `json`, in record batches of about `batchBytes` of rows. */
function encoded(json: UpdateJson[], batchBytes?: number): BuiltPart {
  const u = rows(json)
  const layout = encodedPart(u, { desc, order: 'structured', schemaId: 0 }, undefined, batchBytes === undefined ? {} : { batchBytes })
  const bytes = new Uint8Array(layout.byteLength)
  layout.writeTo(bytes)
  return { bytes, rows: u.length, diffsSum: sumDiffs(u), keyLower: new TextEncoder().encode(json[0]?.key as string), batches: layout.batches, maxBatchBytes: layout.maxBatchBytes }
}

describe('takeBuiltPart and builtBatch', () => {
  it('uploads a part under the writer key, telling the caller the key before the upload starts', async () => {
    const blob = new MemBlob()
    const shardId = newShardId()
    const writerKey = newWriterKey()
    const seen: string[] = []
    const heard: string[] = []
    const built = encoded([{ key: 'a', val: 1, time: 2, diff: 1 }, { key: 'b', val: 1, time: 3, diff: 3 }])
    const part = await takeBuiltPart({ blob, shardId, writerKey, beforeUpload: (k) => seen.push(k) }, built, 3, 0, (k) => heard.push(k))
    assert.equal(part.kind, 'hollow')
    if (part.kind !== 'hollow') return
    const key = blobKey(shardId, part.key)
    assert.deepEqual(seen, [key])
    assert.deepEqual(heard, [key])
    const parsed = parseBlobKey(key)
    assert.ok(parsed.ok && parsed.value.writerKey === writerKey)
    const bytes = await blob.get(key)
    assert.deepEqual(bytes, built.bytes)
    assert.deepEqual({ size: part.encodedSizeBytes, sum: part.diffsSum, rows: part.stats.updates, schemaId: part.schemaId }, { size: built.bytes.byteLength, sum: 4n, rows: 2, schemaId: 3 })
    assert.equal(Buffer.from(part.keyLower, 'base64').toString(), 'a')
    assert.equal(part.stats.batchBytes, undefined, 'a part of one record batch is read whole')
  })

  it('records the largest record batch of a part written in several, so compaction plans it by its windows', async () => {
    const built = encoded(Array.from({ length: 64 }, (_, i) => ({ key: `k${String(i).padStart(3, '0')}`, val: i, time: 1, diff: 1 })), 256)
    assert.ok(built.batches > 1, `several batches: ${built.batches}`)
    const part = await takeBuiltPart({ blob: new MemBlob(), shardId: newShardId(), writerKey: newWriterKey() }, built, 0, 0, () => undefined)
    assert.ok(part.kind === 'hollow')
    assert.equal(part.stats.batchBytes, built.maxBatchBytes)
    assert.ok(built.maxBatchBytes < part.encodedSizeBytes)
  })

  it('keeps a part below the inline threshold in state as a copy, and flushInlineParts moves it to blob', async () => {
    const blob = new MemBlob()
    const shardId = newShardId()
    const target = { blob, shardId, writerKey: newWriterKey() }
    const built = encoded([{ key: 'x', val: 1, time: 0, diff: 5 }])
    const inline = await takeBuiltPart(target, built, 0, 1 << 20, () => assert.fail('no upload'))
    assert.equal(inline.kind, 'inline')
    if (inline.kind !== 'inline') return
    assert.deepEqual(inline.updates, built.bytes)
    assert.notEqual(inline.updates.buffer, built.bytes.buffer, 'a copy: the built bytes are lent')
    const batch = builtBatch(desc, 1, [inline], [1], 'structured', 0)
    assert.deepEqual(hollowKeys(shardId, batch), [])
    const flushed = await flushInlineParts(target, batch, 2)
    const p = flushed.parts[0]!
    assert.equal(p.kind, 'hollow')
    if (p.kind !== 'hollow') return
    assert.equal(p.diffsSum, 5n)
    assert.equal(p.stats.updates, 1)
    assert.equal(Buffer.from(p.keyLower, 'base64').toString(), 'x')
    const stored = await blob.get(blobKey(shardId, p.key))
    assert.ok(stored !== null)
    assert.deepEqual(updatesToJson(decodePart(stored).updates), [{ key: 'x', val: 1, time: 0, diff: 5 }])
  })

  it('cuts a key lower to its longest stored length', async () => {
    const built = { ...encoded([{ key: 'k', val: 1, time: 0, diff: 1 }]), keyLower: new Uint8Array(KEY_LOWER_MAX_BYTES + 10).fill(7) }
    const part = await takeBuiltPart({ blob: new MemBlob(), shardId: newShardId(), writerKey: newWriterKey() }, built, 0, 0, () => undefined)
    assert.ok(part.kind === 'hollow')
    assert.equal(Buffer.from(part.keyLower, 'base64').byteLength, KEY_LOWER_MAX_BYTES)
  })

  it('puts the runs of a batch together: run splits and one run meta per run', () => {
    const parts = [0, 1, 2, 3, 4].map(() => ({ kind: 'inline' as const, encodedSizeBytes: 1, updates: new Uint8Array(1) }))
    const batch = builtBatch(desc, 9, parts, [2, 1, 2], 'codec', 4)
    assert.deepEqual(batch.runSplits, [2, 3])
    assert.deepEqual(batch.runMeta, [{ order: 'codec', schemaId: 4 }, { order: 'codec', schemaId: 4 }, { order: 'codec', schemaId: 4 }])
    assert.deepEqual(runs(batch).map((r) => r.parts.length), [2, 1, 2])
    assert.deepEqual(builtBatch(desc, 0, [], [], 'structured', 0), { desc, len: 0, parts: [], runSplits: [], runMeta: [] })
  })
})

describe('runLimited', () => {
  it('keeps at most `limit` jobs in flight and returns results in job order', async () => {
    let inFlight = 0
    let peak = 0
    const jobs = Array.from({ length: 9 }, (_, i) => async () => {
      inFlight++
      peak = Math.max(peak, inFlight)
      await new Promise((r) => setImmediate(r))
      inFlight--
      return i * 2
    })
    assert.deepEqual(await runLimited(jobs, 3), [0, 2, 4, 6, 8, 10, 12, 14, 16])
    assert.equal(peak, 3)
  })

  it('fails with the first error once the jobs in flight settle, starting no new ones', async () => {
    const started: number[] = []
    const jobs = Array.from({ length: 5 }, (_, i) => async () => {
      started.push(i)
      await new Promise((r) => setImmediate(r))
      if (i === 1) throw new Error('boom')
      return i
    })
    await assert.rejects(runLimited(jobs, 2), /boom/)
    assert.ok(started.length < 5)
  })
})
