/**
 * The messages between the main thread and the engine's worker threads: one discriminated union per
 * direction (`ToWorker`, `FromWorker`), and the task kinds with their payloads and results. Every
 * message of a task carries its `taskId`; a message for a task that has ended is dropped by its
 * receiver (releasing any slot it lends).
 *
 * A task is a conversation. The main thread `start`s it; a merge task asks for parts (`need`), the
 * main thread answers each with `part` or `part-failed`; a task that produces parts announces a
 * built output with `ready`, is told `go` when the receiver has room (upload backpressure), and
 * then posts it (`output`); `progress` reports running totals; `done` or `failed` ends it. `abort`
 * asks the worker to stop: it answers with `failed`.
 *
 * A write task is fed its request body by `body` messages as the bytes arrive; the worker tells
 * what it has consumed with `body-taken` (the main thread keeps a bounded window of body bytes in
 * flight). Both sides batch: the main thread fills a chunk of about a MiB before posting it unless
 * the worker has nothing left to read, and the worker acknowledges once it has consumed every
 * chunk it was sent, or `BODY_ACK_BYTES` since its last acknowledgement. Its parts come back as a
 * merge task's do (`ready`, `go`, `output`).
 *
 * A merge task with a stream output (snapshot reads) posts `chunk`s of encoded response bytes
 * without asking: it may have `maxOutstanding` chunks unanswered, and each `go` answers one (the
 * main thread sends it when the socket has taken the chunk). The `last` chunk ends the task's
 * output (the body, or its part of it): the task has read every part by then, and only its `done`
 * follows.
 *
 * Outside any task, a worker posts `loaded` once, when its code has loaded (the pool's `loaded()`).
 *
 * Who owns bytes that cross (the one place that says so):
 * - `part.bytes` with `lent: true` is a view of a `SharedSlots` slot (shared-slots.ts) carrying one
 *   hold for the receiving task: the worker reads it in place and releases the hold when done (or
 *   at once, if the task has ended). With `lent: false` the buffer was transferred (it now belongs
 *   to the worker) or is shared memory the sender keeps alive and never changes.
 * - `output.bytes` with `lent: true` is a view of the worker's own output slot with one hold for the
 *   main thread, released when its receiver is done with it; the worker reuses the slot after that.
 *   With `lent: false` the buffer was transferred to the main thread. `pageAligned` says the slot
 *   is page-aligned memory, which the main thread marks so before it writes the part to disk.
 * - `body.bytes` (when not empty) is a view of a `SharedSlots` slot of the main thread with one hold
 *   for the worker, which releases it once the chunk is read (at once, if the task has ended).
 *   The main thread copies request bytes into it: a socket's buffers are never lent or transferred.
 * - `chunk.bytes` is transferred: the main thread owns it and writes it to the response.
 * - An inline part's bytes in a merge task (`MergePartInput.inline`) are copied with `start`.
 * - Everything else is copied by structured clone.
 */
import type { Antichain } from '../core/antichain.js'
import type { RunOrder } from '../core/batch.js'
import type { Description } from '../core/description.js'
import type { Timestamp, TimestampKindName } from '../core/timestamp.js'
import type { DataType } from '../columnar/data-type.js'
import type { SortOrder } from '../columnar/sort-key.js'
import type { Antichain as Frontier } from '../core/antichain.js'

// ---- merge tasks -------------------------------------------------------------------------------

/** What each worker is started with (`workerData`). */
export interface WorkerData {
  /** How many nice steps the worker lowers its thread's priority by (thread-priority.ts). */
  readonly nice: number
  /** How long the worker's pools keep free memory while idle, in ms (reuse-idle.ts). */
  readonly reuseIdleMs: number
}

export interface MergePartInput {
  /** The description the part's batch is registered with (rows outside it are dropped). */
  readonly registeredLower: Antichain
  readonly registeredUpper: Antichain
  readonly encodedSizeBytes: number
  /** An inline part's bytes, sent with the task (the worker never asks for them). */
  readonly inline?: Uint8Array
}

export interface MergeRunInput {
  readonly order: RunOrder | null
  readonly parts: readonly MergePartInput[]
}

/** What a merge reads and how it consolidates (merge-runs.ts). */
export interface MergeRunsTask {
  readonly timeKind: TimestampKindName
  /** Times are advanced by this frontier (the compaction since, or `[asOf]` for a snapshot). */
  readonly since: Antichain
  /** Snapshot reads: rows with a time not ≤ asOf are dropped. */
  readonly asOf: Timestamp | null
  readonly runs: readonly MergeRunInput[]
  readonly keyType: DataType
  readonly valType: DataType
  /** Preferred order: how runs are compared and how output is sorted. */
  readonly order: SortOrder
  readonly targetSizeBytes: number
  readonly yieldAfterUpdates: number
  /**
   * Only keys in `[lower, upper)` (sort-key bytes in `order`; null: unbounded) are merged. Lets
   * two workers split one chunk by key: their outputs, concatenated, are one sorted run.
   */
  readonly keyRange?: { readonly lower: Uint8Array | null; readonly upper: Uint8Array | null }
}

/** What a merge task produces: part files with this description and schema id. */
export interface PartsOutput {
  readonly kind: 'parts'
  readonly desc: Description
  readonly schemaId: number
  /**
   * Write outputs into shared buffers the worker reuses (`SharedSlots`) instead of a fresh buffer
   * each. NB: the receiver must be done with an output's bytes when its `onOutput` settles.
   */
  readonly reuseBuffers?: boolean
}

/**
 * What a snapshot read produces: the response body itself, encoded by the worker, in chunks of
 * about `targetSizeBytes` of rows: an Arrow IPC stream (schema, record batches, end marker) or
 * the JSON document `{"asOf":…,"updates":[…]}`. A read split by key has a task per key range, and
 * their bodies, one after the other, make the body: only the first opens it (the schema message,
 * or `{"asOf":…,"updates":[`) and only the last closes it (the end marker, or `]}`). A part that
 * does not open the body starts its rows without a comma; the reader puts one between parts.
 */
export interface StreamOutput {
  readonly kind: 'stream'
  readonly format: 'arrow' | 'json'
  /** Chunks the worker may post before the first `go` (see the conversation above). */
  readonly maxOutstanding: number
  /** Whether this task's output starts the body. */
  readonly opens: boolean
  /** Whether this task's output ends the body. */
  readonly closes: boolean
}

export type MergeOutputMode = PartsOutput | StreamOutput

export interface MergeTaskPayload {
  readonly task: MergeRunsTask
  readonly output: MergeOutputMode
}

/** Running totals of a merge task. */
export interface MergeProgress {
  readonly updatesRead: number
  readonly bytesRead: number
  readonly updatesWritten: number
}

export interface MergeRunsStats extends MergeProgress {
  readonly partsWritten: number
  /** Seconds spent waiting for parts (persist's `step_seconds{part_fetch}`). */
  readonly fetchSeconds: number
}

/** One part a task hands to the main thread. */
export interface EncodedOutput {
  readonly bytes: Uint8Array
  /** See the ownership rules above. */
  readonly lent: boolean
  /** Whether `bytes` lie in page-aligned memory (a lent slot of WebAssembly memory): the receiver marks them so (shared-slots.ts). */
  readonly pageAligned: boolean
  readonly rows: number
  readonly diffsSum: bigint
  /** Sort key of the first key (uncut). */
  readonly keyLower: Uint8Array
  /** Logical bytes of the rows (column data before encoding). */
  readonly goodBytes: number
  /** Seconds spent computing the part's statistics. */
  readonly statsSeconds: number
  /** How many record batches it holds, and the bytes of the largest (a window when it is read in windows). */
  readonly batches: number
  readonly maxBatchBytes: number
  /** The run of the task's output the part belongs to (merges write one run: always 0). */
  readonly run: number
}

// ---- write tasks -------------------------------------------------------------------------------

/** How a write's request body is encoded. */
export type WriteBodyFormat = 'arrow' | 'json'

/** A write's frontiers and append fields, parsed and checked (write-header.ts). */
export interface WriteHeader {
  readonly lower: Frontier
  readonly upper: Frontier
  readonly append: boolean
  /** The shard upper a compare-and-append expects (the lower unless given). */
  readonly expectedUpper: Frontier
}

/** A batch write: the body arrives by `body` messages (write-batch.ts). */
export interface WriteTaskPayload {
  readonly format: WriteBodyFormat
  readonly keyType: DataType
  readonly valType: DataType
  readonly timeKind: TimestampKindName
  /** Arrow bodies: the header from the query string; JSON bodies: null (it is in the body). */
  readonly header: WriteHeader | null
  /**
   * The shard's upper when the write began: a JSON body's append whose expectedUpper it is already
   * past is refused (UPPER_MISMATCH) once its header is known, before the rest is written.
   */
  readonly shardUpper: Frontier
  /** Preferred order: how the batch's runs are sorted. */
  readonly order: SortOrder
  /** The schema id written into every part (the shard's latest). */
  readonly schemaId: number
  readonly targetSizeBytes: number
  /** The body limit: no single message of the body can be larger. */
  readonly maxBodyBytes: number
}

export interface WriteStats {
  /** Rows written, after consolidation (the batch's `len`). */
  readonly rows: number
  /** Rows the body held. */
  readonly bodyRows: number
  /** Parts of each run, in order. */
  readonly partsPerRun: readonly number[]
}

// ---- task kinds --------------------------------------------------------------------------------

/** Every task kind: what starts it and what its `done` carries. */
export type TaskStart = { readonly kind: 'merge'; readonly payload: MergeTaskPayload } | { readonly kind: 'write'; readonly payload: WriteTaskPayload }
export type TaskKind = TaskStart['kind']
export type TaskResult =
  | { readonly kind: 'merge'; readonly stats: MergeRunsStats }
  | { readonly kind: 'write'; readonly header: WriteHeader; readonly stats: WriteStats }

/** Facts a failure carries for its error response (e.g. the index of the first bad row). */
export type FailureDetails = Readonly<Record<string, number | string>>

// ---- messages ----------------------------------------------------------------------------------

/**
 * A write's worker acknowledges consumed body bytes at least this often while more are queued
 * (see above): one message per socket read (~64 KiB) cost each side a wake-up, ~700 for a 45 MB
 * body.
 */
export const BODY_ACK_BYTES = 1 << 20

export type ToWorker =
  | { readonly type: 'start'; readonly taskId: number; readonly task: TaskStart }
  | { readonly type: 'part'; readonly taskId: number; readonly run: number; readonly part: number; readonly bytes: Uint8Array; readonly lent: boolean }
  | { readonly type: 'part-failed'; readonly taskId: number; readonly run: number; readonly part: number; readonly message: string }
  | { readonly type: 'go'; readonly taskId: number }
  | { readonly type: 'abort'; readonly taskId: number }
  | { readonly type: 'body'; readonly taskId: number; readonly bytes: Uint8Array; readonly end: boolean }

export type FromWorker =
  | { readonly type: 'need'; readonly taskId: number; readonly run: number; readonly part: number }
  | { readonly type: 'ready'; readonly taskId: number }
  | { readonly type: 'output'; readonly taskId: number; readonly output: EncodedOutput }
  | { readonly type: 'chunk'; readonly taskId: number; readonly bytes: Uint8Array; readonly rows: number; readonly last: boolean }
  | { readonly type: 'body-taken'; readonly taskId: number; readonly byteLength: number }
  | { readonly type: 'progress'; readonly taskId: number; readonly progress: MergeProgress }
  | { readonly type: 'done'; readonly taskId: number; readonly result: TaskResult }
  | { readonly type: 'failed'; readonly taskId: number; readonly code: string; readonly message: string; readonly details: FailureDetails }
  /** Once per worker, outside any task: its code is loaded and it takes tasks. */
  | { readonly type: 'loaded' }

/** A message the main thread sends within a running task (everything but `start`). */
export type TaskReply = Exclude<ToWorker, { readonly type: 'start' }>

/** A message a running task sends before it ends (everything but `done` and `failed`). */
export type TaskMessage = Exclude<FromWorker, { readonly type: 'done' | 'failed' | 'loaded' }>

/** `msg` without its task id (the channel adds it). */
export type WithoutTaskId<M> = M extends unknown ? Omit<M, 'taskId'> : never
