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

describe('Machine', () => {
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
})
