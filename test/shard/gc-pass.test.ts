/**
 * The periodic GC pass (gc.ts `pass`): what it collects of a growing installation. Each collection
 * lists the shard's blobs (an S3 LIST), so the pass counts those listings: each instance of a
 * cluster lists only its share of the shards, and deleted shards left with nothing but their
 * tombstone are listed again only every TOMBSTONE_RECHECK_PASSES passes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { ShardId } from '../../src/core/ids.js'
import { shardPrefix } from '../../src/core/paths.js'
import type { Blob } from '../../src/location/blob.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { inGcShare, TOMBSTONE_RECHECK_PASSES, type GcShare } from '../../src/shard/gc.js'
import { makeHarness, type Harness } from './harness.js'

const U64 = { timestamp: 'u64' as const, keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

/** A blob store that records the prefix of every listing. */
function listingBlob(inner: Blob, listed: string[]): Blob {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'list') return (prefix: string, ...rest: unknown[]) => (listed.push(prefix), (target.list as (...a: unknown[]) => AsyncIterable<unknown>).call(target, prefix, ...rest))
      const v: unknown = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

/** `n` shards, each with one part in blob storage. */
async function shardsWithParts(h: Harness, n: number): Promise<ShardId[]> {
  await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
  const ids: ShardId[] = []
  for (let i = 0; i < n; i++) {
    const id = (await h.shards.create(U64)).state.shardId
    await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [1], updates: [{ key: `k${i}`, val: 1, time: 0, diff: 1 }] })
    ids.push(id)
  }
  return ids
}

const listedShards = (listed: readonly string[], ids: readonly ShardId[]): ShardId[] => ids.filter((id) => listed.includes(shardPrefix(id)))

describe('the periodic GC pass', () => {
  it('lists a deleted shard left with only its tombstone again only every TOMBSTONE_RECHECK_PASSES passes', async (t) => {
    const listed: string[] = []
    const h = await makeHarness({ blob: listingBlob(new MemBlob(), listed), gcGraceMs: 0 })
    t.after(() => h.close())
    const [live, deleted] = (await shardsWithParts(h, 2)) as [ShardId, ShardId]
    await h.shards.delete(deleted)
    assert.equal(await h.shards.collectAll(), 2, 'the first pass collects both: the deleted shard loses its part')
    const perPass: number[] = []
    for (let pass = 2; pass <= TOMBSTONE_RECHECK_PASSES + 1; pass++) {
      listed.length = 0
      const n = await h.shards.collectAll()
      assert.deepEqual(listedShards(listed, [live]), [live], `pass ${pass} lists the live shard`)
      perPass.push(n)
      if (pass === TOMBSTONE_RECHECK_PASSES) assert.deepEqual(listedShards(listed, [deleted]), [deleted], `pass ${pass} checks the tombstone again`)
      else assert.deepEqual(listedShards(listed, [deleted]), [], `pass ${pass} skips the finished tombstone`)
    }
    assert.deepEqual(perPass, Array.from({ length: TOMBSTONE_RECHECK_PASSES }, (_, i) => (i + 2 === TOMBSTONE_RECHECK_PASSES ? 2 : 1)))
  })

  it('finds a part written under a finished tombstone at its recheck', async (t) => {
    const h = await makeHarness({ gcGraceMs: 0 })
    t.after(() => h.close())
    const [deleted] = (await shardsWithParts(h, 1)) as [ShardId]
    await h.shards.delete(deleted)
    await h.shards.collectAll()
    await h.blob.set(`${deleted}/wlate/plate`, new Uint8Array([1]))
    for (let pass = 2; pass < TOMBSTONE_RECHECK_PASSES; pass++) await h.shards.collectAll()
    assert.equal(await h.blob.get(`${deleted}/wlate/plate`) === null, false, 'not listed meanwhile')
    await h.shards.collectAll()
    assert.equal(await h.blob.get(`${deleted}/wlate/plate`), null, 'deleted at the recheck')
  })

  it('in a cluster, each instance lists its share of the shards: together each one once', async (t) => {
    const consensus = new MemConsensus()
    const blob = new MemBlob()
    const listed: string[][] = [[], [], []]
    const harnesses: Harness[] = []
    for (let i = 0; i < 3; i++) {
      const share: GcShare = { index: i, count: 3 }
      harnesses.push(await makeHarness({ consensus, blob: listingBlob(blob, listed[i] as string[]), service: { gcShare: async () => share } }))
    }
    t.after(async () => {
      for (const h of harnesses) await h.close()
    })
    const ids = await shardsWithParts(harnesses[0] as Harness, 30)
    for (const l of listed) l.length = 0
    const collected = []
    for (const h of harnesses) collected.push(await h.shards.collectAll())
    const byInstance = listed.map((l) => listedShards(l, ids))
    assert.deepEqual(byInstance.flat().sort(), [...ids].sort(), 'every shard listed by exactly one instance')
    assert.deepEqual(collected, byInstance.map((b) => b.length))
    assert.ok(byInstance.every((b) => b.length > 0 && b.length < ids.length), `shares ${byInstance.map((b) => b.length).join('/')}`)
    for (const id of ids) assert.equal([0, 1, 2].filter((index) => inGcShare(id, { index, count: 3 })).length, 1)
  })

  it('a stop while a pass runs waits for the shard it collects, not for the rest of the pass', async (t) => {
    const listed: string[] = []
    let release: () => void = () => undefined
    const held = new Promise<void>((resolve) => (release = resolve))
    let entered: () => void = () => undefined
    const inPass = new Promise<void>((resolve) => (entered = resolve))
    const inner = new MemBlob()
    const gated = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'list')
          return async function* (prefix: string) {
            listed.push(prefix)
            entered()
            await held
            yield* inner.list(prefix)
          }
        const v: unknown = Reflect.get(target, prop, receiver)
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    const h = await makeHarness({ blob: gated, service: { gcIntervalMs: 1 } })
    t.after(() => h.close())
    const ids = await shardsWithParts(h, 20)
    h.shards.start()
    await inPass
    const stopped = h.shards.stop()
    release()
    await stopped
    assert.equal(listedShards(listed, ids).length, 1, 'the pass ended after the shard it was collecting')
  })

  it('without a share (a single instance, or membership unknown) collects every shard', async (t) => {
    const listed: string[] = []
    const h = await makeHarness({ blob: listingBlob(new MemBlob(), listed), service: { gcShare: async () => { throw new Error('job store down') } } })
    t.after(() => h.close())
    const ids = await shardsWithParts(h, 5)
    listed.length = 0
    assert.equal(await h.shards.collectAll(), 5)
    assert.deepEqual(listedShards(listed, ids), ids)
  })
})
