import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { description } from '../../src/core/description.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { decodePart, encodePart } from '../../src/columnar/part-format.js'
import { sortAndConsolidate } from '../../src/columnar/sort-consolidate.js'
import { sliceUpdates, UpdatesBuilder, updatesToJson } from '../../src/columnar/updates.js'
import { runMergeTask, type MergeTaskOutput } from '../../src/engine/merge-task.js'
import { WorkerPool } from '../../src/engine/worker-pool.js'

const desc = description([0n], [100n], [0n])

/** `runs` sorted runs of `rows` distinct keys each, cut into parts of `perPart` rows. */
function runs(count: number, rows: number, perPart: number): Uint8Array[][] {
  const out: Uint8Array[][] = []
  for (let r = 0; r < count; r++) {
    const b = new UpdatesBuilder({ keyType: utf8, valType: int64, timeKind: 'u64' })
    for (let i = 0; i < rows; i++) b.append(`k${String(i * count + r).padStart(6, '0')}`, BigInt(i), BigInt(r), 1n)
    const sorted = sortAndConsolidate(b.finish(), 'structured')
    const parts: Uint8Array[] = []
    for (let s = 0; s < sorted.length; s += perPart) {
      parts.push(encodePart(sliceUpdates(sorted, s, Math.min(sorted.length, s + perPart)), { desc, order: 'structured', schemaId: 0 }))
    }
    out.push(parts)
  }
  return out
}

describe('merge task outputs', () => {
  let pool: WorkerPool
  before(() => {
    pool = new WorkerPool(1)
  })
  after(async () => {
    await pool.close()
  })

  it('starts every task with an empty output builder, also after a task failed midway', async () => {
    // Worker pools keep one output builder across tasks: a failed task leaves rows in it.
    const input = runs(2, 1000, 250)
    const payload = {
      task: {
        timeKind: 'u64' as const,
        since: [0n],
        asOf: null,
        runs: input.map((parts) => ({ order: 'structured' as const, parts: parts.map((p) => ({ registeredLower: desc.lower, registeredUpper: desc.upper, encodedSizeBytes: p.byteLength })) })),
        keyType: utf8,
        valType: int64,
        order: 'structured' as const,
        targetSizeBytes: 1 << 20,
        yieldAfterUpdates: 100,
      },
      output: { kind: 'parts' as const, desc, schemaId: 0, reuseBuffers: true },
    }
    const outputs: Uint8Array[] = []
    const opts = (failAt: number | null) => ({
      partSizes: input.map((parts) => parts.map((p) => p.byteLength)),
      prefetchBudgetBytes: 0,
      maxOutstanding: 1,
      fetch: async (run: number, part: number) => {
        if (run === 0 && part === failAt) throw new Error('lost part')
        // A copy, as a blob read would give: the task transfers the bytes to the worker.
        return ((input[run] as Uint8Array[])[part] as Uint8Array).slice()
      },
      onOutput: async (out: MergeTaskOutput) => {
        outputs.push(out.bytes.slice())
      },
    })
    await assert.rejects(runMergeTask(pool, payload, opts(3)), /lost part/)
    assert.equal(outputs.length, 0, 'the failed task built rows but emitted none')
    await runMergeTask(pool, payload, opts(null))
    const keys = outputs.flatMap((o) => updatesToJson(decodePart(o).updates).map((r) => r.key as string))
    assert.equal(keys.length, 2 * 1000)
    assert.equal(new Set(keys).size, keys.length)
  })

  for (const maxOutstanding of [1, 2]) {
    it(`encodes an output only while fewer than ${maxOutstanding} are unfinished, and counts the waits as write stalls`, async () => {
      const input = runs(3, 2000, 500)
      // Outputs are held until the test lets them go, so the worker runs ahead and must wait.
      let unfinished = 0
      let maxUnfinished = 0
      let stalls = 0
      const held: (() => void)[] = []
      const outputs: MergeTaskOutput[] = []
      const release = (): void => {
        held.shift()?.()
        if (held.length > 0 || unfinished > 0) setTimeout(release, 2)
      }
      const stats = await runMergeTask(
        pool,
        {
          task: {
            timeKind: 'u64',
            since: [0n],
            asOf: null,
            runs: input.map((parts) => ({ order: 'structured', parts: parts.map((p) => ({ registeredLower: desc.lower, registeredUpper: desc.upper, encodedSizeBytes: p.byteLength })) })),
            keyType: utf8,
            valType: int64,
            order: 'structured',
            targetSizeBytes: 8 * 1024,
            yieldAfterUpdates: 256,
          },
          output: { kind: 'parts', desc, schemaId: 0, reuseBuffers: true },
        },
        {
          partSizes: input.map((parts) => parts.map((p) => p.byteLength)),
          prefetchBudgetBytes: 1 << 20,
          maxOutstanding,
          fetch: async (run, part) => (input[run] as Uint8Array[])[part] as Uint8Array,
          onOutput: (out) => {
            unfinished += 1
            maxUnfinished = Math.max(maxUnfinished, unfinished)
            // NB: a reused slot is valid only until onOutput settles: decode it now.
            outputs.push({ ...out, bytes: out.bytes.slice() })
            if (held.length === 0) setTimeout(release, 2)
            return new Promise<void>((resolve) =>
              held.push(() => {
                unfinished -= 1
                resolve()
              }),
            )
          },
          onWriteStall: () => {
            stalls += 1
          },
        },
      )
      assert.ok(outputs.length > 5, `expected many outputs, got ${outputs.length}`)
      assert.equal(stats.partsWritten, outputs.length)
      assert.equal(maxUnfinished, maxOutstanding)
      assert.ok(stalls > 0, 'a worker that runs ahead of slow uploads waits')
      // Every row arrives once, in key order across outputs.
      const keys = outputs.flatMap((o) => updatesToJson(decodePart(o.bytes).updates).map((r) => r.key as string))
      assert.equal(keys.length, 3 * 2000)
      assert.deepEqual(keys, [...keys].sort())
    })
  }
})
