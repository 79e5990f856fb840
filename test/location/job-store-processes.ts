/**
 * Three child processes (job-store-racer.ts) sharing one job store: claims race across processes
 * and fencing holds across them. Run for each adapter that processes can share (file, PostgreSQL).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { JobRecord } from '../../src/location/job-store.js'
import { openJobStore } from '../../src/location/open.js'
import { LineReader } from '../support/line-reader.js'
import { put, queuedJob } from './job-store-records.js'

const RACER = fileURLToPath(new URL('./job-store-racer.ts', import.meta.url))

/** Registers the test; `consensusUrl()` names a fresh, empty store for it. */
export function claimsAcrossProcesses(consensusUrl: () => Promise<string>): void {
  it('three processes claiming from one store: each job claimed exactly once, none lost, fencing holds across them', async () => {
    const url = await consensusUrl()
    const store = await openJobStore(url)
    const racers = Array.from({ length: 3 }, (_, i) => {
      const child = spawn(process.execPath, ['--import', 'tsx', RACER, url, `p${i}`], { stdio: ['pipe', 'pipe', 'pipe'] })
      const racer = { child, lines: new LineReader(child.stdout), exit: once(child, 'exit'), stderr: '' }
      child.stderr.setEncoding('utf8').on('data', (s: string) => (racer.stderr += s))
      return racer
    })
    /** The racer's next line; a racer that dies instead fails the test with what it printed. */
    const line = async (i: number): Promise<string> => {
      const racer = racers[i]
      assert.ok(racer !== undefined)
      const died = racer.exit.then(([code, signal]) => assert.fail(`racer p${i} exited (${String(code ?? signal)}) before answering: ${racer.stderr}`))
      return Promise.race([racer.lines.next(), died])
    }
    const ask = async (i: number, command: string): Promise<unknown> => {
      racers[i]?.child.stdin.write(`${command}\n`)
      return JSON.parse(await line(i)) as unknown
    }
    try {
      assert.deepEqual(await Promise.all(racers.map((_, i) => line(i))), ['ready', 'ready', 'ready'])
      const ids: string[] = []
      for (let i = 0; i < 90; i++) ids.push((await put(store, queuedJob(), 1_000)).id)

      const drained = (await Promise.all(racers.map((_, i) => ask(i, 'drain 2000 60000')))) as Array<Array<{ id: string; token: number }>>
      const claimed = drained.flat().map((c) => c.id)
      assert.deepEqual([...claimed].sort(), ids, 'each job claimed exactly once')
      for (const [i, mine] of drained.entries()) {
        for (const { id, token } of mine) {
          const job = (await store.get(id)) as JobRecord
          assert.deepEqual([job.status, job.token, job.data], ['succeeded', token, { by: `p${i}` }], id)
        }
      }
      assert.deepEqual(await store.active(), { queued: 0, running: 0 })

      // p0 claims; its lease ends; the parent rescues the job and p1 claims it: p0 is fenced.
      const job = await put(store, queuedJob())
      const first = (await ask(0, 'claim 3000 100')) as JobRecord
      assert.deepEqual([first.id, first.token, first.owner], [job.id, 1, 'p0'])
      assert.deepEqual(
        (await store.rescue(3_200)).map((j) => j.id),
        [job.id],
      )
      const second = (await ask(1, 'claim 3300 60000')) as JobRecord
      assert.deepEqual([second.id, second.token, second.owner], [job.id, 2, 'p1'])
      assert.equal(await ask(0, `renew ${job.id} 1 3400 60000`), null)
      assert.equal(await ask(0, `finish ${job.id} 1 failed 3400`), null)
      assert.equal(await ask(0, `release ${job.id} 1 3400`), null)
      assert.equal(await ask(2, `finish ${job.id} 1 failed 3400`), null, 'nor can a third process use the old token')
      assert.deepEqual(await store.get(job.id), second)
      const done = (await ask(1, `finish ${job.id} 2 succeeded 3500`)) as JobRecord
      assert.deepEqual([done.status, done.data], ['succeeded', { by: 'p1' }])
      assert.deepEqual(await store.get(job.id), done)
    } finally {
      for (const racer of racers) racer.child.stdin.end()
      await Promise.all(racers.map((r) => r.exit))
      await store.close()
    }
    // NB: outside `finally`, so a failure above is reported as itself.
    for (const [i, racer] of racers.entries()) assert.equal(racer.child.exitCode, 0, `racer p${i}: ${racer.stderr}`)
  })
}
