import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { describe, it } from 'node:test'
import { type HollowBatch } from '../../src/core/batch.js'
import type { ShardId } from '../../src/core/ids.js'
import { shardPrefix } from '../../src/core/paths.js'
import { AppError } from '../../src/errors.js'
import { DEFAULT_CONFIG_VALUES } from '../../src/dyncfg/registry.js'
import { hollowKeys } from '../../src/shard/batch-writer.js'
import { renewPeriodMs } from '../../src/shard/reader-leases.js'
import { FileBlob } from '../../src/location/file-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { applyMergeRes } from '../../src/shard/state.js'
import { makeHarness, snapshotDocument, wholeVersionAtOrBefore, type Harness } from './harness.js'

async function keys(h: Harness, id: ShardId): Promise<string[]> {
  const out: string[] = []
  for await (const m of h.blob.list(shardPrefix(id))) out.push(m.key)
  return out.sort()
}

async function counter(h: Harness, name: string): Promise<number> {
  const metric = await h.registry.getSingleMetric(name)?.get()
  return metric?.values[0]?.value ?? 0
}

/** A shard with one appended blob part at [0, 2), and a compaction-like replacement of that batch written but not applied. */
async function setup(h: Harness): Promise<{ id: ShardId; appended: HollowBatch; replacement: HollowBatch }> {
  await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
  const id = (await h.shards.create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
  const rows = [{ key: 'a', val: 1, time: 1, diff: 2 }]
  const w = await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: rows })
  const replacement = (await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: rows, append: false })).batch
  return { id, appended: w.batch, replacement }
}

async function applyReplacement(h: Harness, id: ShardId, output: HollowBatch): Promise<void> {
  const r = await h.machine.apply(id, 'merge_res', (cur) => applyMergeRes(cur!.state, output))
  assert.equal(r.result.result, 'applied_exact')
}

describe('GC', () => {
  it('deletes unreferenced parts older than the grace period and keeps referenced ones', async (t) => {
    const h = await makeHarness({ gcGraceMs: 60_000 })
    t.after(() => h.close())
    const { id, appended, replacement } = await setup(h)
    const live = hollowKeys(id, appended)
    const garbage = hollowKeys(id, replacement)
    assert.deepEqual(await keys(h, id), [...live, ...garbage].sort())

    // Too young: nothing deleted. The head (1) is whole (as a delta it would outweigh the new
    // shard's first version: machine.ts), so the version before it goes.
    const floor = await wholeVersionAtOrBefore(h.consensus, id, 1)
    assert.equal(floor, 1)
    const first = await h.shards.gc(id)
    assert.deepEqual(first, { deletedParts: 0, deletedBytes: 0, truncatedBelowSeqno: floor })
    assert.deepEqual((await h.consensus.scan(id, 0, 10)).map((v) => v.seqno), [1])
    assert.equal(await counter(h, 'persist_gc_started_total'), 1)

    h.advance(60_000)
    const size = (await h.blob.get(garbage[0]!))!.byteLength
    const second = await h.shards.gc(id)
    assert.deepEqual(second, { deletedParts: 1, deletedBytes: size, truncatedBelowSeqno: floor })
    assert.deepEqual(await keys(h, id), live)
    assert.equal(await counter(h, 'persist_gc_deleted_parts_total'), 1)
    assert.equal(await counter(h, 'persist_gc_deleted_bytes_total'), size)
    assert.equal(await counter(h, 'persist_gc_finished_total'), 2)
    assert.equal(await counter(h, 'persist_gc_noop_total'), 0, 'the first pass truncated')
  })

  it('waits a grace period after first finding a part unreferenced (another instance may still read it)', async (t) => {
    const h = await makeHarness({ gcGraceMs: 60_000 })
    t.after(() => h.close())
    const { id, appended, replacement } = await setup(h)
    h.advance(120_000)
    await applyReplacement(h, id, replacement)
    // The old part is old enough, but was referenced until just now.
    assert.equal((await h.shards.gc(id)).deletedParts, 0)
    h.advance(59_000)
    assert.equal((await h.shards.gc(id)).deletedParts, 0)
    h.advance(1_000)
    assert.equal((await h.shards.gc(id)).deletedParts, 1)
    assert.deepEqual(await keys(h, id), hollowKeys(id, replacement))
    assert.ok(!(await keys(h, id)).includes(hollowKeys(id, appended)[0]!))
  })

  it('keeps the parts and versions of a state an in-flight snapshot holds, until it ends', async (t) => {
    const h = await makeHarness({ gcGraceMs: 0 })
    t.after(() => h.close())
    const { id, appended, replacement } = await setup(h)
    // The read commits this instance's reader lease (version 2) and reads that version.
    const read = await h.shards.snapshot(id, 1, { format: 'json' })
    assert.equal(read.seqno, 2)
    await applyReplacement(h, id, replacement)
    // The read's version (2) is kept, and it is whole (on a shard this small, a delta and its read
    // would cost about what the whole state does: machine.ts), so the versions before it go.
    const heldFloor = await wholeVersionAtOrBefore(h.consensus, id, 2)
    assert.equal(heldFloor, 2)
    const held = await h.shards.gc(id)
    assert.deepEqual(held, { deletedParts: 0, deletedBytes: 0, truncatedBelowSeqno: heldFloor })
    assert.deepEqual(await keys(h, id), [...hollowKeys(id, appended), ...hollowKeys(id, replacement)].sort())
    // The read still finds its parts.
    assert.equal((await snapshotDocument(read.body)).updates.length, 1)
    // Its reader lease outlives it until a renewal period passes with no read of the shard here.
    assert.equal((await h.shards.gc(id)).deletedParts, 0)
    h.advance(renewPeriodMs(DEFAULT_CONFIG_VALUES.persist_reader_lease_duration))
    await h.shards.readerLeases.renew()
    const headFloor = await wholeVersionAtOrBefore(h.consensus, id, (await h.shards.get(id)).seqno)
    const released = await h.shards.gc(id)
    assert.equal(released.deletedParts, 1)
    assert.equal(released.truncatedBelowSeqno, headFloor, 'no longer held back by the read: up to the whole version the head is read from')
    assert.deepEqual(await keys(h, id), hollowKeys(id, replacement))
    // The passes the reader lease held back deleted nothing; the first truncated the versions
    // before the one the read needs, the second did nothing.
    assert.equal(await counter(h, 'persist_gc_noop_total'), 1, 'the second pass the reader lease held back')
  })

  it('keeps pinned keys (writes and compactions in flight) whatever their age', async (t) => {
    const h = await makeHarness({ gcGraceMs: 0 })
    t.after(() => h.close())
    const { id, replacement } = await setup(h)
    const release = h.leases.pin(id, hollowKeys(id, replacement))
    assert.equal((await h.shards.gc(id)).deletedParts, 0)
    release()
    assert.equal((await h.shards.gc(id)).deletedParts, 1)
  })

  it('keeps a pinned output that commits and unpins while the pass reads the head', async (t) => {
    // The pass reads the head; meanwhile the compaction commits its output and unpins it. The pass
    // must have taken the pins before that read, else it sees the output neither pinned nor in its head.
    const mem = new MemConsensus()
    let during: (() => Promise<void>) | null = null
    const consensus = new Proxy(mem, {
      get(target, prop) {
        if (prop === 'head') {
          return async (key: string) => {
            const head = await target.head(key)
            const hook = during
            during = null
            await hook?.()
            return head
          }
        }
        const v = Reflect.get(target, prop, target) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    const h = await makeHarness({ gcGraceMs: 0, consensus })
    t.after(() => h.close())
    const { id, replacement } = await setup(h)
    const release = h.leases.pin(id, hollowKeys(id, replacement))
    during = async () => {
      await applyReplacement(h, id, replacement)
      release()
    }
    await h.shards.collect(id)
    assert.equal(during, null, 'the hook ran')
    for (const k of hollowKeys(id, replacement)) assert.ok((await h.blob.get(k)) !== null, `the applied output ${k} is kept`)
  })

  it('collects the parts of a batch never appended, and leaves keys that are not parts of the shard alone', async (t) => {
    const h = await makeHarness({ gcGraceMs: 0 })
    t.after(() => h.close())
    await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
    const id = (await h.shards.create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }], append: false })
    const stray = `${id}/not-a-part`
    await h.blob.set(stray, new Uint8Array([1]))
    const r = await h.shards.gc(id)
    assert.equal(r.deletedParts, 1)
    assert.deepEqual(await keys(h, id), [stray])
    assert.equal((await h.shards.gc(id)).deletedParts, 0)
    assert.equal(await counter(h, 'persist_gc_noop_total'), 1)
  })

  it('removes what a write cut short left on a file store (a temp file) once untouched for the grace, counted in deletedBytes', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-gc-temp-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const h = await makeHarness({ gcGraceMs: 60_000, blob: new FileBlob(dir) })
    t.after(() => h.close())
    const { id } = await setup(h)
    const writerDir = dirname(join(dir, (await keys(h, id))[0]!))
    const stale = join(writerDir, '.tmp-0123456789abcdef~')
    const fresh = join(writerDir, '.tmp-fedcba9876543210~')
    await writeFile(stale, new Uint8Array(1000))
    await writeFile(fresh, new Uint8Array(10))
    const old = new Date(Date.now() - 3_600_000)
    await utimes(stale, old, old)
    const r = await h.shards.gc(id)
    assert.deepEqual([r.deletedParts, r.deletedBytes], [0, 1000])
    assert.ok((await readdir(writerDir)).includes('.tmp-fedcba9876543210~'))
    assert.ok(!(await readdir(writerDir)).includes('.tmp-0123456789abcdef~'))
    const read = await h.shards.snapshot(id, 1, { format: 'json' })
    assert.equal((await snapshotDocument(read.body)).updates.length, 1)
  })

  it('is SHARD_NOT_FOUND for an unknown shard; collectAll passes over every shard', async (t) => {
    const h = await makeHarness({ gcGraceMs: 0 })
    t.after(() => h.close())
    await assert.rejects(h.shards.gc('s00000000-0000-4000-8000-000000000000' as ShardId), (e: unknown) => e instanceof AppError && e.code === 'SHARD_NOT_FOUND')
    const { id } = await setup(h)
    assert.equal(await h.shards.collectAll(), 1)
    assert.equal((await keys(h, id)).length, 1)
    h.shards.start()
    h.shards.start()
    await h.shards.stop()
    await h.shards.stop()
  })

  it('never deletes the blob of a part whose key another shard holds (keys are per shard)', async (t) => {
    const h = await makeHarness({ gcGraceMs: 0 })
    t.after(() => h.close())
    const a = await setup(h)
    const b = await setup(h)
    await h.shards.gc(a.id)
    for (const k of hollowKeys(b.id, b.appended)) assert.ok((await h.blob.get(k)) !== null)
    for (const k of hollowKeys(b.id, b.replacement)) assert.ok((await h.blob.get(k)) !== null)
  })
})
