/**
 * Reader leases across instances: two `Shards` (instances `a` and `b`) on the same blob and
 * consensus stores with a zero GC grace, so only the leases in shard state protect a read on one
 * instance from GC on the other. B's reads can be held at a chosen part read (GatedBlob), without
 * timers; clocks are the harnesses' own, moved by hand.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { HollowBatch } from '../../src/core/batch.js'
import type { ShardId } from '../../src/core/ids.js'
import { shardPrefix } from '../../src/core/paths.js'
import { DEFAULT_CONFIG_VALUES } from '../../src/dyncfg/registry.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { noSpace } from '../../src/location/errors.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { hollowKeys } from '../../src/shard/batch-writer.js'
import { holdReadLease } from '../../src/shard/read-leases-state.js'
import { renewPeriodMs } from '../../src/shard/reader-leases.js'
import { shardJson } from '../../src/shard/shard-json.js'
import { GatedBlob } from '../support/gated-blob.js'
import { makeHarness, snapshotDocument, wholeVersionAtOrBefore, type Harness } from './harness.js'

const DURATION = DEFAULT_CONFIG_VALUES.persist_reader_lease_duration
const PERIOD = renewPeriodMs(DURATION)

/** A clock that moves only when told to; an hour ahead, so every blob the test writes is older than it. */
class Clock {
  ms = Date.now() + 3_600_000
  readonly now = (): Date => new Date(this.ms)
  advance(ms: number): void {
    this.ms += ms
  }
}

interface Pair {
  readonly a: Harness
  readonly b: Harness
  readonly bBlob: GatedBlob
  readonly aClock: Clock
  readonly bClock: Clock
}

async function pair(t: { after(fn: () => Promise<void>): void }): Promise<Pair> {
  const blob = new MemBlob()
  const consensus = new MemConsensus()
  const bBlob = new GatedBlob(blob, { closeInner: false })
  const aClock = new Clock()
  const bClock = new Clock()
  const a = await makeHarness({ blob, consensus, gcGraceMs: 0, service: { instanceId: 'a', now: aClock.now } })
  const b = await makeHarness({ blob: bBlob, consensus, gcGraceMs: 0, service: { instanceId: 'b', now: bClock.now } })
  t.after(async () => {
    bBlob.releaseAll()
    await b.close()
    await a.close()
  })
  return { a, b, bBlob, aClock, bClock }
}

/** On A: a shard with one appended blob batch at [0, 2) and its consolidated replacement (written, not applied). */
async function shardWithReplacement(a: Harness): Promise<{ id: ShardId; appended: HollowBatch; replacement: HollowBatch }> {
  await a.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
  const id = (await a.shards.create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
  const rows = [
    { key: 'k', val: 1, time: 1, diff: 1 },
    { key: 'k', val: 1, time: 1, diff: 1 },
    { key: 'm', val: 2, time: 0, diff: 1 },
  ]
  const appended = (await a.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: rows })).batch
  const replacement = (await a.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [rows[2], { ...rows[0], diff: 2 }], append: false })).batch
  return { id, appended, replacement }
}

async function keys(h: Harness, id: ShardId): Promise<string[]> {
  const out: string[] = []
  for await (const m of h.blob.list(shardPrefix(id))) out.push(m.key)
  return out.sort()
}

async function counter(h: Harness, op: string): Promise<number> {
  const metric = await h.registry.getSingleMetric('persist_shard_reader_lease_writes_total')?.get()
  return metric?.values.find((v) => v.labels.op === op)?.value ?? 0
}

async function headSeqno(h: Harness, id: ShardId): Promise<number> {
  return (await h.machine.head(id))?.seqno ?? -1
}

const EXPECTED_ROWS = [
  { key: 'k', val: 1, time: 1, diff: 2 },
  { key: 'm', val: 2, time: 1, diff: 1 },
]

/**
 * B starts a snapshot and is held at the read of the appended part; A replaces that batch and runs
 * GC passes; then B's read goes on. What B's snapshot ends with (its rows, or the error).
 */
async function longReadOnB(p: Pair): Promise<{ outcome: unknown; oldPartKeptWhileHeld: boolean; id: ShardId; appended: HollowBatch }> {
  const { a, b, bBlob } = p
  const { id, appended, replacement } = await shardWithReplacement(a)
  const [oldKey] = hollowKeys(id, appended)
  assert.ok(oldKey !== undefined)
  const hold = bBlob.hold((key) => key === oldKey)
  const read = (async () => (await snapshotDocument((await b.shards.snapshot(id, 1, { format: 'json' })).body)).updates)().then(
    (rows) => rows,
    (err: unknown) => err,
  )
  await hold.reached
  assert.equal((await a.shards.applyMergeRes(id, replacement)).result, 'applied_exact')
  await a.shards.gc(id)
  await a.shards.gc(id)
  const oldPartKeptWhileHeld = (await keys(a, id)).includes(oldKey)
  hold.release()
  return { outcome: await read, oldPartKeptWhileHeld, id, appended }
}

describe('reader leases across instances', () => {
  it('a long snapshot on B survives GC passes on A with a zero grace; once B stops reading, its lease goes and so do the parts', async (t) => {
    const p = await pair(t)
    const { outcome, oldPartKeptWhileHeld, id, appended } = await longReadOnB(p)
    assert.equal(oldPartKeptWhileHeld, true, "A's GC keeps the part B's leased version references")
    assert.deepEqual(outcome, EXPECTED_ROWS)
    assert.equal(await counter(p.b, 'hold'), 1)

    // B's lease outlives the read until a renewal period passes with no read of the shard on B.
    await p.a.shards.gc(id)
    assert.ok((await keys(p.a, id)).includes(hollowKeys(id, appended)[0] as string))
    p.bClock.advance(PERIOD)
    await p.b.shards.readerLeases.renew()
    assert.equal(await counter(p.b, 'release'), 1)
    assert.deepEqual((await p.a.shards.get(id)).state.leases, undefined)
    assert.equal((await p.a.shards.gc(id)).deletedParts, 1)
    assert.ok(!(await keys(p.a, id)).includes(hollowKeys(id, appended)[0] as string))
  })

  it('without leases in state (duration 0s) the same read loses its part to GC on A', async (t) => {
    const p = await pair(t)
    await p.b.dyncfg.update({ persist_reader_lease_duration: '0s' })
    const { outcome, oldPartKeptWhileHeld } = await longReadOnB(p)
    assert.equal(oldPartKeptWhileHeld, false)
    assert.ok(outcome instanceof Error, `the read fails, got ${JSON.stringify(outcome)}`)
    assert.equal((outcome as Error & { code?: string }).code, 'DATA_LOSS')
  })

  it("a dead instance's lease holds GC back until it expires, then GC drops it and its parts go", async (t) => {
    const { a, aClock } = await pair(t)
    const { id, appended, replacement } = await shardWithReplacement(a)
    const expiresAt = new Date(aClock.now().getTime() + DURATION).toISOString()
    // Instance "dead" took a lease on the current version and never renews it.
    await a.machine.apply(id, 'hold_read_lease', (cur) =>
      holdReadLease(cur!.state, { id: 'rdead', instance: 'dead', seqno: cur!.seqno, expiresAt }, aClock.now().getTime()),
    )
    const leasedAt = (await a.shards.get(id)).seqno - 1
    assert.deepEqual(shardJson(await a.shards.get(id)).leases, [{ id: 'rdead', instance: 'dead', seqno: leasedAt, expiresAt }])
    assert.equal((await a.shards.applyMergeRes(id, replacement)).result, 'applied_exact')
    const leasedFloor = await wholeVersionAtOrBefore(a.consensus, id, leasedAt)
    const held = await a.shards.gc(id)
    // The leased version is kept, with the whole version it is read from.
    assert.deepEqual({ deleted: held.deletedParts, below: held.truncatedBelowSeqno }, { deleted: 0, below: leasedFloor })
    assert.ok((await a.consensus.scan(id, leasedAt, 1)).length === 1)
    aClock.advance(DURATION - 1)
    assert.equal((await a.shards.gc(id)).deletedParts, 0, 'still live a millisecond before it expires')

    aClock.advance(1)
    const collected = await a.shards.gc(id)
    assert.equal(collected.deletedParts, 1)
    assert.deepEqual(await keys(a, id), hollowKeys(id, replacement))
    assert.ok(!(await keys(a, id)).includes(hollowKeys(id, appended)[0] as string))
    assert.equal((await a.shards.get(id)).state.leases, undefined, 'GC dropped the expired lease')
    assert.equal(await counter(a, 'drop_expired'), 1)
    // Nothing more to drop: the next pass writes no state.
    const before = await headSeqno(a, id)
    await a.shards.gc(id)
    assert.equal(await headSeqno(a, id), before)
  })

  it('one-row snapshots in a loop commit one lease, not a state version each', async (t) => {
    const { a, b } = await pair(t)
    const id = (await a.shards.create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await a.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [{ key: 'k', val: 1, time: 1, diff: 1 }] })
    const before = await headSeqno(a, id)
    for (let i = 0; i < 40; i++) {
      const doc = await snapshotDocument((await b.shards.snapshot(id, 1, { format: 'json' })).body)
      assert.equal(doc.updates.length, 1)
    }
    assert.equal(await headSeqno(a, id), before + 1, 'one state version: the lease')
    assert.equal(await counter(b, 'hold'), 1)
    assert.deepEqual(b.shards.readerLeases.held(id)?.seqno, before + 1)
  })
})

describe('the reader lease renewer', () => {
  it('renews while reads are in flight, moving the seqno up to the oldest one read; releases after a period without reads', async (t) => {
    const { a, b, bClock } = await pair(t)
    const id = (await a.shards.create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await a.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [{ key: 'k', val: 1, time: 1, diff: 1 }] })
    const first = await b.shards.snapshot(id, 1, { format: 'json' })
    const lease1 = b.shards.readerLeases.held(id)
    assert.equal(lease1?.seqno, first.seqno, 'the lease starts at the version its commit wrote, which the read reads')
    await a.shards.writeBatch(id, { kind: 'json', lower: [2], upper: [4], updates: [{ key: 'k', val: 1, time: 3, diff: 1 }] })
    const second = await b.shards.snapshot(id, 3, { format: 'json' })
    assert.equal(second.seqno, first.seqno + 1, 'the newer head is read under the same lease, with no write')
    assert.equal(await headSeqno(a, id), second.seqno)

    // Both reads in flight: a renewal extends the expiry, the seqno stays at the older read's.
    bClock.advance(PERIOD)
    await b.shards.readerLeases.renew()
    const lease2 = b.shards.readerLeases.held(id)
    assert.deepEqual(lease2, { seqno: first.seqno, expiresAt: new Date(bClock.now().getTime() + DURATION).toISOString() })
    assert.equal(await counter(b, 'renew'), 1)
    // The first read ends: the next renewal moves the seqno up to the second's.
    await snapshotDocument(first.body)
    bClock.advance(1)
    await b.shards.readerLeases.renew()
    assert.equal(b.shards.readerLeases.held(id)?.seqno, second.seqno)
    assert.deepEqual((await a.shards.get(id)).state.leases?.map((l) => [l.instance, l.seqno]), [['b', second.seqno]])
    assert.equal(await counter(b, 'renew'), 2)

    // No read in flight, but one started within the period: kept. A whole period without: released.
    await snapshotDocument(second.body)
    const leasesBefore = await counter(b, 'release')
    await b.shards.readerLeases.renew()
    assert.notEqual(b.shards.readerLeases.held(id), null)
    bClock.advance(PERIOD)
    await b.shards.readerLeases.renew()
    assert.equal(b.shards.readerLeases.held(id), null)
    assert.equal(await counter(b, 'release'), leasesBefore + 1)
    assert.equal((await a.shards.get(id)).state.leases, undefined)
  })

  it('a read commits a new expiry once less than half the duration is left, and stop() releases what no read holds', async (t) => {
    const { a, b, bClock } = await pair(t)
    const id = (await a.shards.create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })).state.shardId
    await a.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [4], updates: [{ key: 'k', val: 1, time: 1, diff: 1 }] })
    // NB: each read at another asOf, so none is answered from a body kept (snapshot-bodies.ts), which needs no lease.
    await snapshotDocument((await b.shards.snapshot(id, 1, { format: 'json' })).body)
    const held = await headSeqno(a, id)
    bClock.advance(DURATION / 2 - 1)
    await snapshotDocument((await b.shards.snapshot(id, 2, { format: 'json' })).body)
    assert.equal(await headSeqno(a, id), held, 'just over half left: shared')
    bClock.advance(1)
    await snapshotDocument((await b.shards.snapshot(id, 3, { format: 'json' })).body)
    assert.equal(await headSeqno(a, id), held + 1, 'half left: the read commits the lease again')
    assert.equal(await counter(b, 'hold'), 2)
    assert.equal((await a.shards.get(id)).state.leases?.length, 1)

    await b.shards.stop()
    assert.equal((await a.shards.get(id)).state.leases, undefined)
    assert.equal(b.shards.readerLeases.held(id), null)
  })
})

/** A MemConsensus whose compareAndSet can be refused as a full disk refuses it. */
class FullConsensus extends MemConsensus {
  full = false
  override async compareAndSet(...args: Parameters<MemConsensus['compareAndSet']>): ReturnType<MemConsensus['compareAndSet']> {
    if (this.full) throw noSpace('file consensus compareAndSet: no space left')
    return super.compareAndSet(...args)
  }
}

describe('reader leases on a consensus store with no space left', () => {
  it('a read whose lease cannot be written reads as with leases off: every part is there, and writes are refused', async (t) => {
    const consensus = new FullConsensus()
    const a = await makeHarness({ consensus, gcGraceMs: 0 })
    t.after(() => a.close())
    const { id } = await shardWithReplacement(a)
    consensus.full = true
    const doc = await snapshotDocument((await a.shards.snapshot(id, 1, { format: 'json' })).body)
    assert.deepEqual(doc.updates, EXPECTED_ROWS)
    await assert.rejects(a.shards.writeBatch(id, { kind: 'json', lower: [2], upper: [3], updates: [] }), { noSpace: true })
    consensus.full = false
    const again = await snapshotDocument((await a.shards.snapshot(id, 1, { format: 'json' })).body)
    assert.deepEqual(again.updates, EXPECTED_ROWS)
  })

  it('GC frees space on a full disk and answers for it, leaving an expired lease it cannot drop to the next pass', async (t) => {
    const consensus = new FullConsensus()
    const clock = new Clock()
    const a = await makeHarness({ consensus, gcGraceMs: 0, service: { now: clock.now } })
    t.after(() => a.close())
    const { id, appended, replacement } = await shardWithReplacement(a)
    const expiresAt = new Date(clock.now().getTime() + DURATION).toISOString()
    await a.machine.apply(id, 'hold_read_lease', (cur) => holdReadLease(cur!.state, { id: 'rdead', instance: 'dead', seqno: cur!.seqno, expiresAt }, clock.now().getTime()))
    assert.equal((await a.shards.applyMergeRes(id, replacement)).result, 'applied_exact')
    clock.advance(DURATION)
    consensus.full = true
    const collected = await a.shards.gc(id)
    assert.equal(collected.deletedParts, 1)
    assert.ok(!(await keys(a, id)).includes(hollowKeys(id, appended)[0] as string))
    assert.equal(shardJson(await a.shards.get(id)).leases.length, 1, 'the expired lease stays until a pass can write')
    consensus.full = false
    await a.shards.gc(id)
    assert.equal((await a.shards.get(id)).state.leases, undefined)
  })
})
