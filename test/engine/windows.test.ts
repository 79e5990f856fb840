import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { BatchPart, HollowPart, RunMeta } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { newPartId, newShardId, newWriterKey } from '../../src/core/ids.js'
import { blobKey, partialBatchKey } from '../../src/core/paths.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { decodePart, encodePart } from '../../src/columnar/part-format.js'
import { UpdatesBuilder, updatesToJson } from '../../src/columnar/updates.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import type { Chunk, PlannedRun } from '../../src/engine/runs.js'
import { windowChunk } from '../../src/engine/windows.js'

const shardId = newShardId()
const writer = newWriterKey()
const desc = description([0n], [10n], [0n])

/** A part of `n` rows from key `from`, written in batches of about `batchBytes`, stored in `blob`. */
async function part(blob: MemBlob, from: number, n: number, order: 'structured' | 'codec', batchBytes: number): Promise<HollowPart> {
  const b = new UpdatesBuilder({ keyType: utf8, valType: int64, timeKind: 'u64' })
  for (let i = from; i < from + n; i++) b.append(`k${String(i).padStart(6, '0')}`, BigInt(i), 1n, 1n)
  const bytes = encodePart(b.finish(), { desc, order, schemaId: 0 }, undefined, { batchBytes })
  const key = partialBatchKey(writer, newPartId())
  await blob.set(blobKey(shardId, key), bytes)
  return { kind: 'hollow', key, encodedSizeBytes: bytes.byteLength, keyLower: 'first', diffsSum: null, schemaId: 0, stats: { updates: n } }
}

const run = (input: number, parts: BatchPart[], order: RunMeta['order'], exploded = false): PlannedRun => ({ input, meta: { order, schemaId: 0 }, parts, exploded })

describe('windowChunk', () => {
  it('replaces the large parts of runs in the compaction order by their batches, and leaves the rest whole', async () => {
    const blob = new MemBlob()
    const big = await part(blob, 0, 2000, 'structured', 2048)
    const small = await part(blob, 2000, 10, 'structured', 2048)
    const otherOrder = await part(blob, 0, 2000, 'codec', 2048)
    const exploded = await part(blob, 0, 2000, 'structured', 2048)
    const chunk: Chunk = { runs: [run(0, [big, small], 'structured'), run(1, [otherOrder], 'codec'), run(2, [exploded], 'structured', true)], memoryBytes: 1 }
    const minPartBytes = small.encodedSizeBytes
    const w = await windowChunk(chunk, { blob, shardId, order: 'structured', minPartBytes })
    assert.equal(w.chunk.memoryBytes, 1)
    const [sorted, codec, expl] = w.chunk.runs as PlannedRun[]
    // Re-sorted runs keep whole parts: windows sorted one by one would not be a sorted run.
    assert.deepEqual(codec?.parts, [otherOrder])
    assert.deepEqual(expl?.parts, [exploded])
    const windows = sorted?.parts ?? []
    assert.ok(windows.length > 3, `the large part is several windows: ${windows.length}`)
    assert.equal(windows[windows.length - 1], small)
    assert.equal(w.windows.size, windows.length - 1)
    assert.deepEqual([...w.windows].filter(([, x]) => x.first).map(([p]) => p), [windows[0]])
    // Each window decodes to its rows; together they are the part's rows; key lowers follow them.
    const keys: string[] = []
    for (const [i, p] of windows.slice(0, -1).entries()) {
      const window = w.windows.get(p)
      assert.ok(window !== undefined && p.kind === 'hollow')
      const rows = updatesToJson(decodePart(await window.fetch()).updates)
      assert.equal(rows.length, p.stats.updates)
      assert.equal(p.keyLower, i === 0 ? 'first' : Buffer.from(rows[0]?.key as string).toString('base64'))
      keys.push(...rows.map((r) => r.key as string))
    }
    assert.deepEqual(keys, Array.from({ length: 2000 }, (_, i) => `k${String(i).padStart(6, '0')}`))
    // Into a caller's buffer.
    const first = w.windows.get(windows[0] as BatchPart)
    const slot = new Uint8Array((windows[0] as HollowPart).encodedSizeBytes)
    const into = await first?.fetch((size) => slot.subarray(0, size))
    assert.equal(into?.buffer, slot.buffer)
    assert.equal(updatesToJson(decodePart(slot).updates).length, (windows[0] as HollowPart).stats.updates)
  })

  it('fails clearly when a windowed part is missing', async () => {
    const blob = new MemBlob()
    const big = await part(blob, 0, 2000, 'structured', 2048)
    await blob.delete(blobKey(shardId, big.key))
    await assert.rejects(windowChunk({ runs: [run(0, [big], 'structured')], memoryBytes: 1 }, { blob, shardId, order: 'structured', minPartBytes: 0 }), /missing from blob storage/)
  })
})
