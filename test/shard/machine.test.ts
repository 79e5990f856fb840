import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { determinate, indeterminate, noSpace, type LocationError } from '../../src/location/errors.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { continueWith, Machine, type StateCodec } from '../../src/shard/machine.js'

const codec: StateCodec<number> = { encode: (n) => n, decode: (json) => json as number }

/** A MemConsensus whose next compareAndSets fail with the errors queued in `failures`, writing nothing. */
class Failing extends MemConsensus {
  readonly failures: LocationError[] = []
  override async compareAndSet(...args: Parameters<MemConsensus['compareAndSet']>): ReturnType<MemConsensus['compareAndSet']> {
    const err = this.failures.shift()
    if (err !== undefined) throw err
    return super.compareAndSet(...args)
  }
}

/** A MemConsensus that lets a rival command commit just before each of our next `rivals` compareAndSets, and counts reads. */
class Contended extends MemConsensus {
  rivals = 0
  heads = 0
  scans = 0
  override async head(...args: Parameters<MemConsensus['head']>): ReturnType<MemConsensus['head']> {
    this.heads++
    return super.head(...args)
  }
  override async scan(...args: Parameters<MemConsensus['scan']>): ReturnType<MemConsensus['scan']> {
    this.scans++
    return super.scan(...args)
  }
  override async compareAndSet(...args: Parameters<MemConsensus['compareAndSet']>): ReturnType<MemConsensus['compareAndSet']> {
    const [key, expected, data] = args
    if (this.rivals > 0) {
      this.rivals--
      const rival = { v: 1, cmd: 'rival', commandId: `rival-${this.rivals}`, state: 1000 }
      await super.compareAndSet(key, expected, { seqno: data.seqno, data: Buffer.from(JSON.stringify(rival)) })
    }
    return super.compareAndSet(...args)
  }
}

describe('Machine', () => {
  it('retries a lost compare-and-set on the head the store returned: no scan for its own write, no head read', async () => {
    const consensus = new Contended()
    const machine = new Machine(consensus, codec)
    await machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null))
    assert.equal(consensus.heads, 1) // the first command reads the head; later ones start from what it wrote
    consensus.rivals = 5
    const r = await machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, cur?.state))
    assert.deepEqual([r.seqno, r.state, r.result], [6, 1001, 1000])
    assert.equal(consensus.scans, 0, 'a determinate mismatch cannot hide a write of ours')
    assert.equal(consensus.heads, 1, 'the mismatch carries the head')
  })

  it("runs one process's commands on a key one at a time: they never race each other for a seqno", async () => {
    const consensus = new MemConsensus()
    let mismatches = 0
    const metrics = { started: () => undefined, succeeded: () => undefined, failed: () => undefined, casMismatch: () => void mismatches++ }
    // NB: an attempt cap of 2 makes a race fatal; run at once, the eighth of these needed eight attempts.
    const machine = new Machine(consensus, codec, { maxAttempts: 2, metrics })
    await machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null))
    const order: number[] = []
    const seqnos = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const r = await machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, i))
        order.push(r.result)
        return r.seqno
      }),
    )
    assert.deepEqual(seqnos, [1, 2, 3, 4, 5, 6, 7, 8], 'in the order they came')
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6, 7])
    assert.equal(mismatches, 0)
    assert.equal((await consensus.head('k'))?.seqno, 8)
    // Other keys do not wait, and a failed command does not hold the queue.
    const gate = machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null))
    const other = await machine.apply('j', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null))
    assert.equal(other.seqno, 0)
    await gate
    await assert.rejects(machine.apply('k', 'boom', () => {
      throw new Error('boom')
    }), /boom/)
    assert.equal((await machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null))).seqno, 10)
  })

  it('after a write whose outcome was unknown, a mismatch looks for that write and returns its result', async () => {
    let lost = true
    class Flaky extends MemConsensus {
      override async compareAndSet(...args: Parameters<MemConsensus['compareAndSet']>): ReturnType<MemConsensus['compareAndSet']> {
        const r = await super.compareAndSet(...args)
        if (lost) {
          lost = false
          throw indeterminate('connection lost after the write')
        }
        return r
      }
    }
    const flaky = new Flaky()
    const machine = new Machine(flaky, codec)
    const r = await machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, 'mine'))
    assert.deepEqual([r.seqno, r.state, r.result], [0, 1, 'mine'])
    assert.equal((await flaky.head('k'))?.seqno, 0, 'written once')
  })

  it('keeps the latest state of the most recently used keys only, and a forgotten key is read from its head', async () => {
    // Keys come and go with shards created (and deleted) over HTTP: a cache of every key ever
    // used grew for as long as the server ran.
    const consensus = new MemConsensus()
    const machine = new Machine(consensus, codec, { cachedKeys: 3 })
    const inc = (key: string) => machine.apply(key, 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null))
    for (let i = 0; i < 50; i++) await inc(`k${i}`)
    assert.equal(machine.cachedKeys, 3)
    assert.equal(machine.cachedSeqno('k0'), null)
    assert.equal(machine.cachedSeqno('k49'), 0)
    assert.deepEqual((await inc('k0')).state, 2)
    assert.equal(machine.cachedSeqno('k0'), 1)
    assert.equal(machine.cachedKeys, 3)
  })

  it('passes a determinate failure of its first write up as it is: nothing of the command landed', async () => {
    const consensus = new Failing()
    const machine = new Machine(consensus, codec)
    consensus.failures.push(noSpace('no space left'))
    await assert.rejects(machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null)), { kind: 'determinate', noSpace: true })
    assert.equal(await consensus.head('k'), null)
  })

  it('after a write whose outcome was unknown, a determinate failure is indeterminate: that write may land yet', async () => {
    const consensus = new Failing()
    const machine = new Machine(consensus, codec)
    consensus.failures.push(indeterminate('connection lost'), noSpace('no space left'))
    await assert.rejects(machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null)), (err: LocationError) => {
      assert.equal(err.kind, 'indeterminate')
      assert.equal(err.noSpace, false)
      assert.match(err.message, /may have committed/)
      return true
    })
    consensus.failures.push(indeterminate('connection lost'), determinate('refused'))
    await assert.rejects(machine.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null)), { kind: 'indeterminate' })
  })

  it('a version cut short outside compactd is a permanent store error naming the key and seqno, for reads and commands', async () => {
    const consensus = new MemConsensus()
    await new Machine(consensus, codec).apply('k', 'inc', () => continueWith(1, null))
    const whole = Buffer.from(JSON.stringify({ v: 1, cmd: 'inc', commandId: 'x', state: 2 }))
    await consensus.compareAndSet('k', 0, { seqno: 1, data: whole.subarray(0, whole.byteLength - 4) })
    const restarted = new Machine(consensus, codec)
    const cutShort = (err: unknown): boolean => (err as LocationError).permanent && /state version 1 of "k" is not whole JSON/.test((err as Error).message)
    await assert.rejects(restarted.head('k'), cutShort)
    await assert.rejects(restarted.apply('k', 'inc', (cur) => continueWith((cur?.state ?? 0) + 1, null)), cutShort)
    await assert.rejects(restarted.states('k', 0, 2), cutShort)
  })
})
