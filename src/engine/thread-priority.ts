/**
 * Scheduling priority of the calling thread. On Linux a thread is a task with its own nice value,
 * and `setpriority(PRIO_PROCESS, tid)` changes that thread alone; Node's `os.setPriority` is that
 * call, given the thread's id, which `/proc/thread-self` names. Worker threads lower their own
 * priority so that, when every core is busy merging, the kernel runs the event loop (the control
 * plane: /healthz, scrapes, small requests) as soon as it has something to do, instead of after a
 * worker's time slice. Workers lose nothing when the main thread is idle.
 */
import { readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

/** The highest nice value (the lowest priority) Linux has. */
const MAX_NICE = 19

/**
 * Lowers the calling thread's priority by `increment` nice steps (at most to 19; a thread starts
 * at its creator's nice value). Returns the thread's new nice value, or null where nothing changed:
 * an increment of 0, no per-thread priorities (not Linux, no /proc), or the kernel refused; a
 * refusal is not an error: the thread then runs at the process's priority.
 */
export function lowerThreadPriority(increment: number): number | null {
  if (increment <= 0 || process.platform !== 'linux') return null
  try {
    // NB: the link reads `<pid>/task/<tid>`.
    const match = /\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))
    if (match === null) return null
    const tid = Number(match[1])
    const nice = Math.min(MAX_NICE, getPriority(tid) + increment)
    setPriority(tid, nice)
    return nice
  } catch {
    return null
  }
}
