/**
 * A contender's process: forked by run.ts with an IPC channel, it takes one `ChildJob`, runs it,
 * sends back one `ChildMessage` with its own peak RSS (`process.resourceUsage().maxRSS`, which is
 * why every contender gets a fresh process) and CPU time, and exits.
 */
import type { ChildJob, ChildMessage, ChildResult } from './contenders.js'
import { runCompactd } from './contender-compactd.js'
import { runDuckDb } from './contender-duckdb.js'
import { runFloor } from './contender-floor.js'

function run(job: ChildJob): Promise<ChildResult> {
  switch (job.contender) {
    case 'compactd':
      return runCompactd(job)
    case 'floor-codec':
      return runFloor(job, 'codec')
    case 'floor-raw':
      return runFloor(job, 'raw')
    case 'duckdb-2t':
    case 'duckdb-1t':
      return runDuckDb(job)
  }
}

if (process.send === undefined) throw new Error('bench/child.ts must be forked with an IPC channel')

process.once('message', (job: ChildJob) => {
  const reply = (msg: ChildMessage): void => {
    process.send?.(msg, () => process.disconnect())
  }
  run(job).then(
    (result) => {
      const usage = process.resourceUsage()
      reply({ ok: true, result, maxRssBytes: usage.maxRSS * 1024, cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6 })
    },
    (err: unknown) => {
      process.exitCode = 1
      reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    },
  )
})
