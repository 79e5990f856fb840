/**
 * A shard whose trace grows long while compaction is paused: what each append costs must not
 * grow with the trace: an append writes a delta against the version before (what it changed), a
 * whole state only when the chain's deltas would outweigh the last one, and at least every
 * `DELTA_CHAIN` versions. Pinned structurally (decodes of the state, bytes
 * of the versions written, versions kept in consensus), not by timing.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { ShardId } from '../../src/core/ids.js'
import { DELTA_CHAIN, Machine, type StateCodec } from '../../src/shard/machine.js'
import { shardStateCodec, type ShardState } from '../../src/shard/state.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { KEEP_VERSIONS } from '../../src/shard/gc.js'
import { watched } from '../support/watched-consensus.js'
import { isWholeVersion, makeHarness, wholeVersionAtOrBefore, type Harness } from './harness.js'

const U64 = { timestamp: 'u64' as const, keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

/** The shard state codec, counting its decodes. */
function countingCodec(): StateCodec<ShardState> & { decodes: number } {
  const codec = {
    decodes: 0,
    encode: (s: ShardState) => shardStateCodec.encode(s),
    decode: (json: unknown) => {
      codec.decodes++
      return shardStateCodec.decode(json)
    },
    deltaBytes: (s: ShardState, base: ShardState) => shardStateCodec.deltaBytes?.(s, base) ?? null,
    decodeDelta: (json: unknown, base: ShardState) => {
      codec.decodes++
      return (shardStateCodec.decodeDelta as NonNullable<typeof shardStateCodec.decodeDelta>)(json, base)
    },
  }
  return codec
}

async function appendAt(h: Harness, id: ShardId, t: number): Promise<void> {
  await h.shards.writeBatch(id, { kind: 'json', lower: [t], upper: [t + 1], updates: [{ key: `k${t}`, val: t, time: t, diff: 1 }] })
}

describe('a long trace', () => {
  let h: Harness
  let codec: ReturnType<typeof countingCodec>
  const consensus = new MemConsensus()
  before(async () => {
    codec = countingCodec()
    h = await makeHarness({ consensus, service: { machine: new Machine(consensus, codec) } })
  })
  after(() => h.close())

  it("decodes the shard's state only when another writer changed it, not once per append", async () => {
    const id = (await h.shards.create({ name: 'decodes', ...U64 })).state.shardId
    await h.shards.get(id)
    const before = codec.decodes
    for (let t = 0; t < 40; t++) await appendAt(h, id, t)
    await h.shards.get(id)
    // Every append reads the head first (for the schema); its version is the one this process wrote.
    assert.equal(codec.decodes - before, 0, `${codec.decodes - before} decodes for 40 appends and a read`)

    // Another instance's write: the next head read decodes that version, once.
    const other = new Machine(consensus, shardStateCodec)
    await other.apply(id, 'downgrade_since', (cur) => ({ kind: 'continue', state: { ...(cur?.state as ShardState) }, result: null }))
    await appendAt(h, id, 40)
    await appendAt(h, id, 41)
    assert.equal(codec.decodes - before, 1)
  })
})

describe('versions of a long trace', () => {
  it('are truncated as commands go, keeping those a read or a reader lease still needs', async () => {
    const h = await makeHarness()
    try {
      const id = (await h.shards.create({ name: 'versions', ...U64 })).state.shardId
      const kept = async (): Promise<number[]> => (await h.consensus.scan(id, 0, 100_000)).map((v) => v.seqno)
      for (let t = 0; t < 300; t++) await appendAt(h, id, t)
      await h.shards.stop()
      const head = (await h.shards.get(id)).seqno
      assert.equal(head, 300)
      const seqnos = await kept()
      assert.ok(seqnos.length <= 2 * KEEP_VERSIONS + DELTA_CHAIN, `${seqnos.length} versions kept of ${head + 1}`)
      assert.ok(seqnos[0] !== undefined && seqnos[0] <= head - KEEP_VERSIONS, `oldest kept ${seqnos[0]}`)

      // A read of this process holding version `held` keeps it, every version after it, and the
      // versions it is written against from the last whole one.
      const held = head
      const heldRollup = await wholeVersionAtOrBefore(h.consensus, id, held)
      const release = h.leases.acquire(id, held, (await h.shards.get(id)).state)
      for (let t = 300; t < 500; t++) await appendAt(h, id, t)
      await h.shards.stop()
      assert.equal((await kept())[0], heldRollup)
      release()
      await appendAt(h, id, 500)
      await h.shards.stop()
      assert.ok(((await kept())[0] ?? 0) > held)
    } finally {
      await h.close()
    }
  })

  it('are deltas of what each append changed, a whole state when they would outweigh it, read back alike by another machine', async () => {
    const consensus = new MemConsensus()
    const h = await makeHarness({ consensus })
    try {
      const id = (await h.shards.create({ name: 'deltas', ...U64 })).state.shardId
      // Small at first, the state is written whole every few versions.
      for (let t = 0; t < 20; t++) await appendAt(h, id, t)
      const early = (await consensus.scan(id, 0, 100_000)).filter(isWholeVersion).map((v) => v.seqno)
      assert.ok(early.length >= 4 && early.every((s, i) => i === 0 || s - (early[i - 1] as number) <= 8), `whole versions ${early.join(',')}`)
      // So another instance (or this one after a restart) reads its head in a few versions, not
      // in a chain back to the first.
      const counted = watched(consensus)
      await new Machine(counted, shardStateCodec).head(id)
      assert.ok(counted.scanned() <= 8, `${counted.scanned()} versions read for the head of a small shard`)
      for (let t = 20; t < 3 * DELTA_CHAIN; t++) await appendAt(h, id, t)
      // The versions kept (writers truncate as they go) start at a whole one.
      const versions = await consensus.scan(id, 0, 100_000)
      assert.ok(isWholeVersion(versions[0] as (typeof versions)[number]))
      // Each chain's deltas together weigh no more than the whole version they start at, and a
      // chain is never longer than DELTA_CHAIN.
      let rollup = versions[0] as (typeof versions)[number]
      let chain = 0
      for (const v of versions) {
        if (isWholeVersion(v)) {
          rollup = v
          chain = 0
          continue
        }
        chain += v.data.byteLength
        assert.ok(chain <= rollup.data.byteLength, `version ${v.seqno}: ${chain} bytes of deltas after whole version ${rollup.seqno} of ${rollup.data.byteLength}`)
        assert.ok(v.seqno - rollup.seqno < DELTA_CHAIN, `version ${v.seqno} is ${v.seqno - rollup.seqno} after its whole version`)
      }
      // Once the trace is long, a whole version holds many deltas' worth: chains grow long.
      const wholes = versions.filter(isWholeVersion).map((v) => v.seqno)
      assert.ok((wholes[wholes.length - 1] as number) - (wholes[wholes.length - 2] as number) >= DELTA_CHAIN / 2, `whole versions ${wholes.join(',')}`)
      // A delta holds the append's batch and the spine's ids: it does not grow with the trace.
      const deltas = versions.filter((v) => !isWholeVersion(v)).map((v) => v.data.byteLength)
      assert.ok(Math.max(...deltas.slice(-10)) < 2 * Math.max(...deltas.slice(0, 10)), `deltas ${deltas.slice(0, 10).join(',')} … ${deltas.slice(-10).join(',')}`)
      const last = versions.find((v) => v.seqno === wholes[wholes.length - 1]) as (typeof versions)[number]
      assert.ok(last.data.byteLength > 10 * Math.max(...deltas.slice(-10)), `whole ${last.data.byteLength} B`)

      // Another machine (another instance, a restart) reads every version to the same state.
      const mine = await h.shards.get(id)
      const cold = new Machine(consensus, shardStateCodec)
      const head = await cold.head(id)
      assert.deepEqual(shardStateCodec.encode(head?.state as ShardState), shardStateCodec.encode(mine.state))
      const states = await new Machine(consensus, shardStateCodec).states(id, mine.seqno - 3, mine.seqno + 1)
      assert.deepEqual(states.map((v) => v.seqno), [mine.seqno - 3, mine.seqno - 2, mine.seqno - 1, mine.seqno])
      assert.deepEqual(shardStateCodec.encode((states[3] as { state: ShardState }).state), shardStateCodec.encode(mine.state))
      // Truncation keeps the whole version a kept version is written against.
      const floor = await wholeVersionAtOrBefore(consensus, id, mine.seqno)
      assert.ok(floor < mine.seqno)
      assert.equal(await cold.truncationFloor(id, mine.seqno), floor)
      const pass = await h.shards.gc(id)
      assert.equal(pass.truncatedBelowSeqno, floor)
      assert.deepEqual(shardStateCodec.encode((await new Machine(consensus, shardStateCodec).head(id))?.state as ShardState), shardStateCodec.encode(mine.state))
    } finally {
      await h.close()
    }
  })

  it('two instances writing one shard in turn read each other\'s deltas, past a whole version, alike', async () => {
    const consensus = new MemConsensus()
    const blob = new MemBlob()
    const a = await makeHarness({ consensus, blob })
    const b = await makeHarness({ consensus, blob })
    try {
      const id = (await a.shards.create({ name: 'turns', ...U64 })).state.shardId
      // Turns of 1 to 5 appends, so each instance meets chains the other wrote, of every length.
      let t = 0
      for (let turn = 0; t < DELTA_CHAIN + 40; turn++) {
        const h = turn % 2 === 0 ? b : a
        for (let i = 0; i <= turn % 5; i++) await appendAt(h, id, t++)
      }
      const [va, vb] = [await a.shards.get(id), await b.shards.get(id)]
      assert.equal(va.seqno, t)
      assert.deepEqual(shardStateCodec.encode(va.state), shardStateCodec.encode(vb.state))
      assert.equal(va.state.trace.upper[0], BigInt(t))
      const whole = (await consensus.scan(id, 0, 1000)).filter(isWholeVersion).map((v) => v.seqno)
      assert.ok(whole.length >= 2 && whole.every((s, i) => i === 0 || s - (whole[i - 1] as number) <= DELTA_CHAIN), `whole versions ${whole.join(',')}`)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
