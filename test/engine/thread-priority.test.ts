import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { description } from '../../src/core/description.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { encodePart } from '../../src/columnar/part-format.js'
import { UpdatesBuilder } from '../../src/columnar/updates.js'
import { runMergeTask } from '../../src/engine/merge-task.js'
import { WorkerPool } from '../../src/engine/worker-pool.js'

const linux = process.platform === 'linux'

/** The nice value of every thread of this process, by thread id (Linux: field 19 of its stat). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>()
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
    // NB: the thread's name (field 2) is in parentheses and may hold spaces: count from after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    out.set(Number(tid), Number(fields[16]))
  }
  return out
}

/** Runs one small merge on the pool: a worker that answered has run its start-up. */
async function roundTrip(pool: WorkerPool): Promise<void> {
  const desc = description([0n], [10n], [0n])
  const b = new UpdatesBuilder({ keyType: utf8, valType: int64, timeKind: 'u64' })
  b.append('k', 1n, 1n, 1n)
  const part = encodePart(b.finish(), { desc, order: 'structured', schemaId: 0 })
  await runMergeTask(
    pool,
    {
      task: {
        timeKind: 'u64',
        since: [0n],
        asOf: null,
        runs: [{ order: 'structured', parts: [{ registeredLower: desc.lower, registeredUpper: desc.upper, encodedSizeBytes: part.byteLength }] }],
        keyType: utf8,
        valType: int64,
        order: 'structured',
        targetSizeBytes: 1 << 20,
        yieldAfterUpdates: 100,
      },
      output: { kind: 'parts', desc, schemaId: 0, reuseBuffers: true },
    },
    { partSizes: [[part.byteLength]], prefetchBudgetBytes: 0, maxOutstanding: 1, fetch: async () => part.slice(), onOutput: async () => {} },
  )
}

describe('worker thread priority', { skip: linux ? false : 'per-thread nice values are a Linux feature' }, () => {
  it('lowers the priority of the worker threads by the increment, not of the event loop', async (t) => {
    const before = threadNices()
    const main = before.get(process.pid)
    assert.notEqual(main, undefined)
    // NB: a test run already at nice 18 or 19 has no room for the increment to show.
    if (main === undefined || main >= 17) return t.skip(`this process runs at nice ${main}: no room to lower a thread by 2`)
    const nice = (main ?? 0) + 2
    const pool = new WorkerPool(1, { nice: 2 })
    try {
      await roundTrip(pool)
      const after = threadNices()
      const lowered = [...after].filter(([tid, n]) => n === nice && before.get(tid) !== nice)
      assert.equal(lowered.length, 1, `one new thread at nice ${nice}: ${JSON.stringify([...after])}`)
      assert.equal(after.get(process.pid), main, 'the main thread keeps its priority')
    } finally {
      await pool.close()
    }
  })

  it('leaves the workers at the process priority with nice 0', async () => {
    const before = threadNices()
    const pool = new WorkerPool(1, { nice: 0 })
    try {
      await roundTrip(pool)
      const changed = [...threadNices()].filter(([tid, n]) => before.has(tid) && before.get(tid) !== n)
      assert.deepEqual(changed, [])
      assert.ok([...threadNices().values()].every((n) => n <= (before.get(process.pid) ?? 0)), 'no thread runs below the process priority')
    } finally {
      await pool.close()
    }
  })
})
