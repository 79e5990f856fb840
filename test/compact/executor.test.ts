import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Registry } from 'prom-client'
import type { BatchPart, HollowBatch } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { newPartId, newShardId, newWriterKey } from '../../src/core/ids.js'
import { blobKey, partialBatchKey, shardPrefix } from '../../src/core/paths.js'
import { product, u64, type Timestamp, type TimestampKind } from '../../src/core/timestamp.js'
import * as ac from '../../src/core/antichain.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { decodePart, encodedPart } from '../../src/columnar/part-format.js'
import { sortAndConsolidate } from '../../src/columnar/sort-consolidate.js'
import { sortKeyColumn } from '../../src/columnar/sort-key.js'
import { keyLowerAt } from '../../src/shard/batch-writer.js'
import { sliceUpdates, UpdatesBuilder, updatesToJson } from '../../src/columnar/updates.js'
import { DEFAULT_CONFIG_VALUES, type ConfigValues } from '../../src/dyncfg/registry.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { mulberry32 as rng } from '../../src/core/prng.js'
import { createMetrics } from '../../src/metrics/metrics.js'
import type { ResolvedRequest } from '../../src/compact/compaction.js'
import { createExecutor, ExecuteError } from '../../src/compact/executor.js'
import { WorkerPool } from '../../src/engine/worker-pool.js'
import { selectSchema } from '../../src/compact/plan.js'

const SEED = Number(process.env.FC_SEED ?? Date.now() % 1_000_000)
console.log(`executor test seed: ${SEED} (FC_SEED=${SEED} to reproduce)`)

interface Row {
  key: string
  val: bigint
  time: Timestamp
  diff: bigint
}

const shape = (tk: TimestampKind) => ({ keyType: utf8, valType: int64, timeKind: tk.name })
const shardId = newShardId()
const writer = newWriterKey()

/** Writes `rows` as one sorted run cut into parts of about `rowsPerPart`, returning the batch. */
async function writeBatch(blob: MemBlob, tk: TimestampKind, lo: Timestamp, hi: Timestamp, rows: Row[], rowsPerPart: number, batchBytes?: number, statBatches = false): Promise<HollowBatch> {
  const b = new UpdatesBuilder(shape(tk))
  for (const r of rows) b.append(r.key, r.val, r.time, r.diff)
  const sorted = sortAndConsolidate(b.finish(), 'structured')
  const desc = description([lo], [hi], [tk.minimum])
  const parts: BatchPart[] = []
  for (let start = 0; start < sorted.length; start += rowsPerPart) {
    const slice = sliceUpdates(sorted, start, Math.min(sorted.length, start + rowsPerPart))
    const encoded = encodedPart(slice, { desc, order: 'structured', schemaId: 0 }, undefined, batchBytes === undefined ? {} : { batchBytes })
    const bytes = new Uint8Array(encoded.byteLength)
    encoded.writeTo(bytes)
    const key = partialBatchKey(writer, newPartId())
    await blob.set(blobKey(shardId, key), bytes)
    // Real key lowers: they let the executor split a chunk between two workers.
    const keyLower = keyLowerAt(sortKeyColumn(slice.keys, utf8, 'structured'), 0)
    // `statBatches`: the part says how large its batches are, as compactd's writers record it.
    const stats = statBatches && encoded.batches > 1 ? { updates: slice.length, batchBytes: encoded.maxBatchBytes } : { updates: slice.length }
    parts.push({ kind: 'hollow', key, encodedSizeBytes: bytes.byteLength, keyLower, diffsSum: null, schemaId: 0, stats })
  }
  return { desc, len: sorted.length, parts, runSplits: [], runMeta: parts.length > 0 ? [{ order: 'structured', schemaId: 0 }] : [] }
}

function oracle(tk: TimestampKind, rows: Row[], since: ac.Antichain): string[] {
  const sums = new Map<string, bigint>()
  for (const r of rows) {
    const t = ac.advanceBy(tk, r.time, since)
    const k = JSON.stringify([r.key, r.val.toString(), tk.toJson(t)])
    sums.set(k, BigInt.asIntN(64, (sums.get(k) ?? 0n) + r.diff))
  }
  return [...sums].filter(([, d]) => d !== 0n).map(([k, d]) => `${k}:${d}`).sort()
}

async function outputRows(blob: MemBlob, output: HollowBatch): Promise<string[]> {
  const sums = new Map<string, bigint>()
  for (const p of output.parts) {
    assert.equal(p.kind, 'hollow')
    const bytes = await blob.get(blobKey(shardId, (p as { key: string }).key as never))
    assert.ok(bytes)
    for (const r of updatesToJson(decodePart(bytes).updates)) {
      const k = JSON.stringify([r.key, String(r.val), r.time])
      sums.set(k, BigInt.asIntN(64, (sums.get(k) ?? 0n) + BigInt(r.diff)))
    }
  }
  return [...sums].filter(([, d]) => d !== 0n).map(([k, d]) => `${k}:${d}`).sort()
}

function randomRows(next: () => number, tk: TimestampKind, n: number, lo: number, hi: number, keyPad = 0): Row[] {
  const rows: Row[] = []
  for (let i = 0; i < n; i++) {
    const t = lo + Math.floor(next() * (hi - lo))
    rows.push({
      key: `k${Math.floor(next() * 12)}${'x'.repeat(keyPad)}`,
      val: BigInt(Math.floor(next() * 3)),
      time: tk === u64 ? BigInt(t) : ([t, Math.floor(next() * 4)] as const),
      diff: BigInt(Math.floor(next() * 5) - 2),
    })
  }
  return rows
}

describe('compaction Stage D through worker threads', () => {
  let pool: WorkerPool
  before(() => {
    pool = new WorkerPool(2)
  })
  after(async () => {
    await pool.close()
  })

  for (const tk of [u64, product]) {
    for (const [label, bound, target, keyPad, batchBytes] of [
      ['one chunk', 1 << 30, 1 << 20, 0, undefined],
      ['many chunks with memory violations', 4 * 600, 600, 0, undefined],
      // Key lowers cut at 256 bytes: the split must not trust them as upper bounds.
      ['keys longer than a stored key lower', 1 << 30, 1 << 20, 300, undefined],
      // Parts of several record batches, read one batch at a time, split between the workers.
      ['parts read in windows', 1 << 30, 1 << 20, 0, 64],
      ['parts read in windows, long keys', 1 << 30, 1 << 20, 300, 256],
      ['many chunks of parts read in windows', 4 * 600, 600, 0, 64],
      // The same parts, saying how large their batches are: planned by their windows, one chunk.
      ['one chunk planned by windows', 1200 + 6 * 1024, 600, 0, 64],
    ] as const) {
      it(`consolidates ${tk.name} runs like sort-and-sum (${label})`, async () => {
        const next = rng(SEED + (tk === u64 ? 0 : 7) + bound + keyPad + (batchBytes ?? 0))
        let rangedReads = 0
        const blob = new (class extends MemBlob {
          override get(key: string, opts?: Parameters<MemBlob['get']>[1]): ReturnType<MemBlob['get']> {
            if (opts?.range !== undefined) rangedReads++
            return super.get(key, opts)
          }
        })()
        const registry = new Registry()
        const metrics = createMetrics(registry)
        const executor = createExecutor({ splitMinBytes: 0, pool: () => pool, blob, writerKey: writer, metrics, lookupSchema: async () => ({ key: utf8, val: int64 }), ...(batchBytes === undefined ? {} : { windowMinBytes: 0 }) })
        const inputs: HollowBatch[] = []
        const all: Row[] = []
        const ts = (x: number): Timestamp => (tk === u64 ? BigInt(x) : ([x, 0] as const))
        for (let i = 0; i < 5; i++) {
          const rows = randomRows(next, tk, 40 + Math.floor(next() * 80), i * 10, i * 10 + 10, keyPad)
          all.push(...rows)
          const planned = label === 'one chunk planned by windows'
          inputs.push(await writeBatch(blob, tk, ts(i * 10), ts(i * 10 + 10), rows, planned ? 1000 : 1 + Math.floor(next() * 30), batchBytes, planned))
        }
        const since: ac.Antichain = tk === u64 ? [25n] : [[0, 3], [25, 0]]
        const req: ResolvedRequest = {
          shardId,
          tk,
          desc: description([ts(0)], [ts(50)], since),
          inputs,
          writerSchemaId: 0,
          knownSchemaIds: new Set([0]),
    apply: 'merge',
        }
        const cfg: ConfigValues = { ...DEFAULT_CONFIG_VALUES, persist_compaction_memory_bound_bytes: bound, persist_blob_target_size: target }
        const progress: unknown[] = []
        const { output } = await executor.execute(req, cfg, {
          signal: new AbortController().signal,
          schema: selectSchema(inputs, req.knownSchemaIds, 0, true),
          onProgress: (p) => progress.push(p),
        })
        assert.deepEqual(await outputRows(blob, output), oracle(tk, all, since))
        // Parts of several batches are read in windows (ranged reads), the others whole.
        assert.equal(rangedReads > 0, batchBytes !== undefined, `ranged reads: ${rangedReads}`)
        // Every input slot came back: each worker released every part it was handed.
        assert.deepEqual(executor.inputSlots(), { ...executor.inputSlots(), lent: 0, dropped: 0 })
        assert.ok(executor.inputSlots().size > 0)
        assert.equal(output.runMeta.length, output.runSplits.length + (output.parts.length > 0 ? 1 : 0))
        assert.ok(progress.length > 0)
        const chunks = (await registry.getSingleMetric('persist_compaction_chunks_compacted_total')?.get())?.values[0]?.value ?? 0
        if (label.startsWith('many')) assert.ok(chunks > 1, `expected several chunks, got ${chunks}`)
        else assert.equal(chunks, 1)
        if (label === 'one chunk planned by windows') {
          // Without the windows' sizes, the same parts would take several chunks.
          const whole = { ...req, inputs: inputs.map((b) => ({ ...b, parts: b.parts.map((p) => (p.kind === 'hollow' ? { ...p, stats: { updates: p.stats.updates } } : p)) })) }
          assert.ok(executor.plan(whole, cfg).chunks.length > 1, 'whole parts do not fit one chunk')
          assert.equal(executor.plan(req, cfg).chunks.length, 1)
          assert.equal(output.runSplits.length, 0, 'one run')
        }
      })
    }
  }

  it('shares a first part both halves read, and lets each half fetch a later part it shares', async () => {
    const gets = new Map<string, number>()
    const blob = new (class extends MemBlob {
      override get(key: string, opts?: Parameters<MemBlob['get']>[1]): ReturnType<MemBlob['get']> {
        gets.set(key, (gets.get(key) ?? 0) + 1)
        return super.get(key, opts)
      }
    })()
    const metrics = createMetrics(new Registry())
    const executor = createExecutor({ splitMinBytes: 0, pool: () => pool, blob, writerKey: writer, metrics, lookupSchema: async () => ({ key: utf8, val: int64 }) })
    // Two runs over the same 200 keys, 20 rows a part: the split falls inside a later part of each.
    const rows = (t: number): Row[] => Array.from({ length: 200 }, (_, i) => ({ key: `k${String(i).padStart(4, '0')}`, val: 1n, time: BigInt(t), diff: 1n }))
    const inputs = [await writeBatch(blob, u64, 0n, 10n, rows(1), 20), await writeBatch(blob, u64, 10n, 20n, rows(11), 20)]
    const req: ResolvedRequest = { shardId, tk: u64, desc: description([0n], [20n], [15n]), inputs, writerSchemaId: 0, knownSchemaIds: new Set([0]), apply: 'merge' }
    const { output } = await executor.execute(req, { ...DEFAULT_CONFIG_VALUES, persist_compaction_memory_bound_bytes: 1 << 30, persist_blob_target_size: 1 << 20 }, {
      signal: new AbortController().signal,
      schema: { selection: 'recent_schema', schemaId: 0 },
      onProgress: () => undefined,
    })
    assert.equal(output.len, 200)
    for (const batch of inputs) {
      const counts = batch.parts.map((p) => gets.get(blobKey(shardId, (p as { key: string }).key as never)) ?? 0)
      assert.equal(counts[0], 1, `first part read once: ${counts.join(',')}`)
      assert.ok(counts.every((c) => c === 1 || c === 2), `every part read by one or both halves: ${counts.join(',')}`)
      assert.equal(counts.filter((c) => c === 2).length, 1, `the part spanning the split is read by each half: ${counts.join(',')}`)
    }
    assert.equal(executor.inputSlots().lent, 0)
  })

  it('a chunk that does not apply after later chunks finished: the error names every part it did not hand over', async () => {
    const blob = new MemBlob()
    const metrics = createMetrics(new Registry())
    const executor = createExecutor({ splitMinBytes: 0, pool: () => pool, blob, writerKey: writer, metrics, lookupSchema: async () => ({ key: utf8, val: int64 }) })
    const next = rng(SEED)
    const inputs = [
      await writeBatch(blob, u64, 0n, 10n, randomRows(next, u64, 60, 0, 10), 10),
      await writeBatch(blob, u64, 10n, 20n, randomRows(next, u64, 60, 10, 20), 10),
      await writeBatch(blob, u64, 20n, 30n, randomRows(next, u64, 60, 20, 30), 10),
    ]
    const inputKeys = new Set(inputs.flatMap((b) => b.parts.map((p) => blobKey(shardId, (p as { key: string }).key as never))))
    const req: ResolvedRequest = { shardId, tk: u64, desc: description([0n], [30n], [0n]), inputs, writerSchemaId: 0, knownSchemaIds: new Set([0]), apply: 'merge' }
    const cfg: ConfigValues = { ...DEFAULT_CONFIG_VALUES, persist_compaction_memory_bound_bytes: 4 * 600, persist_blob_target_size: 600, persist_enable_incremental_compaction: true }
    // The first chunk is refused only once every chunk has finished: the later ones are never handed over.
    let allDone!: () => void
    const finished = new Promise<void>((resolve) => (allDone = resolve))
    const handed: string[] = []
    let chunks = 0
    const err = await executor
      .execute(req, cfg, {
        signal: new AbortController().signal,
        schema: { selection: 'recent_schema', schemaId: 0 },
        onProgress: (p) => {
          if (typeof p.chunksTotal === 'number') chunks = p.chunksTotal
          if (p.chunksDone === p.chunksTotal) allDone()
        },
        applyChunk: async (chunk) => {
          for (const part of chunk.output.parts) if (part.kind === 'hollow') handed.push(blobKey(shardId, part.key))
          await finished
          return 'stop'
        },
      })
      .then(
        () => null,
        (e: unknown) => e,
      )
    assert.ok(chunks > 1, `several chunks: ${chunks}`)
    assert.ok(err instanceof ExecuteError, `fails: ${String(err)}`)
    const written: string[] = []
    for await (const meta of blob.list(shardPrefix(shardId))) if (!inputKeys.has(meta.key as never)) written.push(meta.key)
    const named = err.writtenParts.map((k) => blobKey(shardId, k))
    assert.ok(named.length > 0, 'later chunks wrote parts')
    assert.deepEqual([...handed, ...named].sort(), written.sort(), 'every output part is handed over or named')
    assert.equal(executor.inputSlots().lent, 0)
  })

  it('fails with the keys it wrote when a part is missing', async () => {
    const blob = new MemBlob()
    const metrics = createMetrics(new Registry())
    const executor = createExecutor({ splitMinBytes: 0, pool: () => pool, blob, writerKey: writer, metrics, lookupSchema: async () => ({ key: utf8, val: int64 }) })
    const next = rng(SEED)
    const a = await writeBatch(blob, u64, 0n, 10n, randomRows(next, u64, 50, 0, 10), 10)
    const b = await writeBatch(blob, u64, 10n, 20n, randomRows(next, u64, 50, 10, 20), 10)
    const lost = b.parts[b.parts.length - 1] as { key: string }
    await blob.delete(blobKey(shardId, lost.key as never))
    const req: ResolvedRequest = { shardId, tk: u64, desc: description([0n], [20n], [0n]), inputs: [a, b], writerSchemaId: 0, knownSchemaIds: new Set([0]), apply: 'merge' }
    const cfg: ConfigValues = { ...DEFAULT_CONFIG_VALUES, persist_compaction_memory_bound_bytes: 4 * 200, persist_blob_target_size: 200 }
    await assert.rejects(
      executor.execute(req, cfg, { signal: new AbortController().signal, schema: { selection: 'recent_schema', schemaId: 0 }, onProgress: () => undefined }),
      (err: unknown) => err instanceof ExecuteError && /missing from blob storage/.test(err.message),
    )
    // The slots of parts read before the failure are released or forgotten, never left lent.
    assert.equal(executor.inputSlots().lent, 0)
  })
})
