/**
 * How long memory kept for reuse stays mapped while nothing uses it: the engine's pools (shared
 * slots, the buffer pool, workers' builders) drop their free memory after this long without a
 * task, and keep it until then. One value per thread, set once at start: the main thread's from
 * `COMPACTD_REUSE_IDLE`, each worker's from its `workerData`.
 *
 * Why long: memory mapped afresh is paid for at its first touch, and on the VMs compactd is
 * measured on that costs ~3 ms per MiB (a fresh 64 MiB buffer takes ~175 ms to fill, a reused one
 * ~3 ms). A request that finds the pools emptied pays it for its whole working set: sorted 45 MB
 * Arrow writes 3 s apart took 0.42–0.52 s each with a 2 s hold, against 0.19–0.27 s back to back.
 * What is held is at most what the largest recent task used (bounded by the target size and the
 * compaction memory bound); an idle server gives it back after the hold.
 */

/** Default hold: a minute, longer than the pauses between an operator's requests. */
export const DEFAULT_REUSE_IDLE_MS = 60_000

let idleMs = DEFAULT_REUSE_IDLE_MS

/** The hold of this thread's pools, in ms. */
export function reuseIdleMs(): number {
  return idleMs
}

/** Sets this thread's hold (0: free memory is dropped as soon as a pool is idle). Pools pick it up at their next use. */
export function setReuseIdleMs(ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a reuse hold of ${ms} ms`)
  idleMs = ms
}
