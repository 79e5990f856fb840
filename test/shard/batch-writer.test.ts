import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as ac from '../../src/core/antichain.js'
import { runs } from '../../src/core/batch.js'
import { newShardId, newWriterKey } from '../../src/core/ids.js'
import { blobKey, parseBlobKey } from '../../src/core/paths.js'
import { u64 } from '../../src/core/timestamp.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { decodePart } from '../../src/columnar/part-format.js'
import { updatesFromJson, updatesToJson, type UpdateJson } from '../../src/columnar/updates.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { flushInlineParts, hollowKeys, runLimited, userBatchDesc, writeUserBatch, type BatchWriterConfig } from '../../src/shard/batch-writer.js'

const shape = { keyType: utf8, valType: int64, timeKind: 'u64' as const }
const desc = userBatchDesc(u64, [0n], [10n])

function rows(json: UpdateJson[]) {
  const r = updatesFromJson(json, shape)
  if (!r.ok) throw new Error(r.error)
  return r.value
}

const cfg = (o: Partial<BatchWriterConfig> = {}): BatchWriterConfig => ({ targetSize: 1 << 20, inlineSingleMaxBytes: 0, order: 'structured', maxOutstandingParts: 2, ...o })

describe('writeUserBatch', () => {
  it('sorts, consolidates and uploads one run under the writer key, in key order', async () => {
    const blob = new MemBlob()
    const shardId = newShardId()
    const writerKey = newWriterKey()
    const seen: string[] = []
    const input = rows([
      { key: 'b', val: 1, time: 3, diff: 1 },
      { key: 'a', val: 1, time: 2, diff: 1 },
      { key: 'b', val: 1, time: 3, diff: 2 },
      { key: 'c', val: 1, time: 1, diff: 1 },
      { key: 'c', val: 1, time: 1, diff: -1 },
    ])
    const batch = await writeUserBatch({ blob, shardId, writerKey, beforeUpload: (k) => seen.push(k) }, input, desc, 0, cfg())
    assert.equal(batch.len, 2)
    assert.deepEqual(batch.runSplits, [])
    assert.deepEqual(batch.runMeta, [{ order: 'structured', schemaId: 0 }])
    assert.equal(batch.parts.length, 1)
    const part = batch.parts[0]!
    assert.equal(part.kind, 'hollow')
    if (part.kind !== 'hollow') return
    const key = blobKey(shardId, part.key)
    assert.deepEqual(seen, [key])
    const parsed = parseBlobKey(key)
    assert.ok(parsed.ok && parsed.value.writerKey === writerKey)
    const bytes = await blob.get(key)
    assert.ok(bytes !== null)
    assert.equal(part.encodedSizeBytes, bytes.byteLength)
    const decoded = decodePart(bytes)
    assert.deepEqual(updatesToJson(decoded.updates), [
      { key: 'a', val: 1, time: 2, diff: 1 },
      { key: 'b', val: 1, time: 3, diff: 3 },
    ])
    assert.equal(part.diffsSum, 4n)
    assert.equal(part.stats.updates, 2)
    assert.equal(Buffer.from(part.keyLower, 'base64').toString(), 'a')
    assert.ok(decoded.meta.desc.lower.length === 1 && ac.equals(u64, decoded.meta.desc.upper, [10n]))
  })

  it('cuts parts at about the target size (target 1: a row per part) and keeps them in one sorted run', async () => {
    const blob = new MemBlob()
    const input = rows(Array.from({ length: 7 }, (_, i) => ({ key: `k${6 - i}`, val: i, time: i, diff: 1 })))
    const batch = await writeUserBatch({ blob, shardId: newShardId(), writerKey: newWriterKey() }, input, desc, 3, cfg({ targetSize: 1, maxOutstandingParts: 3 }))
    assert.equal(batch.parts.length, 7)
    assert.equal(runs(batch).length, 1)
    const firstKeys = batch.parts.map((p) => (p.kind === 'hollow' ? Buffer.from(p.keyLower, 'base64').toString() : '?'))
    assert.deepEqual(firstKeys, ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6'])
  })

  it('keeps parts below the inline threshold in state, and flushInlineParts moves them to blob', async () => {
    const blob = new MemBlob()
    const shardId = newShardId()
    const target = { blob, shardId, writerKey: newWriterKey() }
    const batch = await writeUserBatch(target, rows([{ key: 'x', val: 1, time: 0, diff: 5 }]), desc, 0, cfg({ inlineSingleMaxBytes: 1 << 20 }))
    assert.equal(batch.parts[0]?.kind, 'inline')
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

  it('writes nothing for rows that cancel out', async () => {
    const blob = new MemBlob()
    const shardId = newShardId()
    const batch = await writeUserBatch({ blob, shardId, writerKey: newWriterKey() }, rows([{ key: 'a', val: 1, time: 1, diff: 1 }, { key: 'a', val: 1, time: 1, diff: -1 }]), desc, 0, cfg())
    assert.deepEqual({ len: batch.len, parts: batch.parts.length, runMeta: batch.runMeta.length }, { len: 0, parts: 0, runMeta: 0 })
    for await (const meta of blob.list('')) assert.fail(`unexpected blob ${meta.key}`)
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

describe('writeUserBatch with unit values', () => {
  it('cuts parts of unit columns that decode (a row per part)', async () => {
    const blob = new MemBlob()
    const shardId = newShardId()
    const unitShape = { keyType: utf8, valType: { type: 'unit' } as const, timeKind: 'u64' as const }
    const input = updatesFromJson([{ key: 'a', val: null, time: 1, diff: 1 }, { key: 'b', val: null, time: 2, diff: 1 }], unitShape)
    assert.ok(input.ok)
    const batch = await writeUserBatch({ blob, shardId, writerKey: newWriterKey() }, input.value, desc, 0, cfg({ targetSize: 1 }))
    assert.equal(batch.parts.length, 2)
    const decoded = []
    for (const p of batch.parts) {
      assert.ok(p.kind === 'hollow')
      const bytes = await blob.get(blobKey(shardId, p.key))
      assert.ok(bytes !== null)
      decoded.push(...updatesToJson(decodePart(bytes).updates))
    }
    assert.deepEqual(decoded, [
      { key: 'a', val: null, time: 1, diff: 1 },
      { key: 'b', val: null, time: 2, diff: 1 },
    ])
  })
})
