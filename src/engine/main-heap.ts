/**
 * The main thread's garbage collection while data streams through it.
 *
 * Two kinds of short-lived memory outside the JavaScript heap arrive on the main thread in bulk:
 * Node's HTTP parser hands each piece of a request body over in a fresh buffer of up to 64 KiB,
 * and a snapshot's chunks come from the worker as transferred buffers of about a MiB. Both die at
 * once (a body piece is copied into a slot of our own, a chunk is written to the socket), but V8
 * frees them only when it collects the objects that own them. The main thread allocates little
 * else, so its young generation fills slowly and no scavenge comes; what comes instead is V8's
 * answer to growing outside memory, a full mark-compact of the whole heap. Measured on 45 MB
 * Arrow writes: two to three mark-compacts per write, each 20-30 ms of the event loop's time plus
 * concurrent marking on V8's helper threads; and once they came often, the old generation's
 * headroom stayed below the young generation's size, which by V8's default test starts the next
 * marking right after the last one ends.
 *
 * `tuneMainThreadHeap()`, called once at start-up, sets two things:
 * - a young-generation collection (a scavenge: about a millisecond, as almost nothing in it
 *   survives) after every `YOUNG_GC_EVERY_BYTES` of such memory noted, so it is freed young;
 * - V8's incremental-marking triggers: a full marking starts when half of the old generation's
 *   headroom is used (at 90% at once), rather than whenever the headroom is smaller than the young
 *   generation, which is V8's default test and what sustains back-to-back marking on a small heap.
 *
 * NB: V8's flags are process-wide, so the triggers apply to the worker threads' heaps too; the
 * bench's compaction figures are measured with them. `gc` comes from a fresh context with
 * `--expose-gc` set only while that context is made, so no global `gc` appears.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Short-lived outside bytes noted on the main thread between two young-generation collections. */
export const YOUNG_GC_EVERY_BYTES = 16 << 20

/** Percent of the old generation's headroom used when a full marking starts soon, and at once. */
const MARKING_SOFT_TRIGGER_PERCENT = 50
const MARKING_HARD_TRIGGER_PERCENT = 90

type CollectYoung = () => void

let collectYoung: CollectYoung | null = null
let sinceYoung = 0

/** Once per process, on the main thread, before it serves (see above). Later calls do nothing. */
export function tuneMainThreadHeap(): void {
  if (collectYoung !== null) return
  setFlagsFromString(`--incremental-marking-soft-trigger=${MARKING_SOFT_TRIGGER_PERCENT}`)
  setFlagsFromString(`--incremental-marking-hard-trigger=${MARKING_HARD_TRIGGER_PERCENT}`)
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as (options: { type: 'minor' }) => void
  setFlagsFromString('--no-expose-gc')
  collectYoung = () => gc({ type: 'minor' })
}

/**
 * Counts `bytes` of short-lived memory outside the heap that reached the main thread (a piece of
 * a request body, a snapshot chunk from a worker); every `YOUNG_GC_EVERY_BYTES` it collects the
 * young generation. Does nothing unless `tuneMainThreadHeap()` ran.
 */
export function noteShortLivedBytes(bytes: number): void {
  if (collectYoung === null) return
  sinceYoung += bytes
  if (sinceYoung < YOUNG_GC_EVERY_BYTES) return
  sinceYoung = 0
  collectYoung()
}
