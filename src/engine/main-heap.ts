/**
 * The main thread's garbage collection while request bodies stream through it.
 *
 * Node's HTTP parser copies every piece of a request body it reads off a socket into a fresh
 * buffer of up to 64 KiB whose memory lives outside the JavaScript heap. The write path copies
 * each one into a slot of its own at once (BodyPump), so they die young, but V8 frees them only
 * when it collects the objects that own them. The main thread allocates little else, so its young
 * generation fills slowly and no scavenge comes; what comes instead is V8's answer to growing
 * outside memory, a full mark-compact of the whole heap. Measured on a 45 MB Arrow write: two to
 * three mark-compacts per write, each 20-30 ms of the event loop's time plus concurrent marking on
 * V8's helper threads, and once they come often V8 shrinks the old generation's headroom until a
 * marking starts again right after each one ends.
 *
 * `tuneMainThreadHeap()`, called once at start-up, sets two things:
 * - a young-generation collection (a scavenge: about a millisecond, as almost nothing in it
 *   survives) after every `YOUNG_GC_EVERY_BYTES` of body read, so the buffers are freed young;
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

/** Request body bytes read on the main thread between two young-generation collections. */
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
 * Counts `bytes` of request body the main thread read off a socket; every `YOUNG_GC_EVERY_BYTES`
 * it collects the young generation. Does nothing unless `tuneMainThreadHeap()` ran.
 */
export function noteBodyBytesRead(bytes: number): void {
  if (collectYoung === null) return
  sinceYoung += bytes
  if (sinceYoung < YOUNG_GC_EVERY_BYTES) return
  sinceYoung = 0
  collectYoung()
}
