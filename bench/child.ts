/**
 * A contender's process: forked by run.ts with an IPC channel, it takes one `ChildJob`, runs it,
 * sends back one `ChildMessage` with its own peak RSS (`peakRssBytes`, which is why every
 * contender gets a fresh process) and CPU time, and exits.
 */
import { readFileSync } from 'node:fs'
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

/**
 * This process's peak RSS: `VmHWM` of /proc/self/status where there is one (Linux), else
 * `resourceUsage().maxRSS`. NB: on Linux `maxRSS` also counts the parent's RSS at the fork (the
 * kernel carries the forked copy's high-water mark across exec), so a child forked while the
 * orchestrator held a generated dataset reported the orchestrator's size; `VmHWM` counts only
 * this process image.
 */
function peakRssBytes(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    if (hwm !== null) return Number(hwm[1]) * 1024
  } catch {
    // Not Linux: fall through.
  }
  return process.resourceUsage().maxRSS * 1024
}

if (process.send === undefined) throw new Error('bench/child.ts must be forked with an IPC channel')

process.once('message', (job: ChildJob) => {
  const reply = (msg: ChildMessage): void => {
    process.send?.(msg, () => process.disconnect())
  }
  run(job).then(
    (result) => {
      const usage = process.resourceUsage()
      reply({ ok: true, result, maxRssBytes: peakRssBytes(), cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6 })
    },
    (err: unknown) => {
      process.exitCode = 1
      reply({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    },
  )
})
