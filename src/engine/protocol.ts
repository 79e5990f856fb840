/**
 * The messages between the main thread and the engine's worker threads: one discriminated union per
 * direction (`ToWorker`, `FromWorker`), and the task kinds with their payloads and results. Every
 * message of a task carries its `taskId`; a message for a task that has ended is dropped by its
 * receiver (releasing any slot it lends).
 *
 * A task is a conversation. The main thread `start`s it; a merge task asks for parts (`need`), the
 * main thread answers each with `part` or `part-failed`; a task that produces output announces a
 * built output with `ready`, is told `go` when the receiver has room (upload backpressure), and
 * then posts it (`output`); `progress` reports running totals; `done` or `failed` ends it. `abort`
 * asks the worker to stop: it answers with `failed`.
 *
 * Who owns bytes that cross (the one place that says so):
 * - `part.bytes` with `lent: true` is a view of a `SharedSlots` slot (shared-slots.ts) carrying one
 *   hold for the receiving task: the worker reads it in place and releases the hold when done (or
 *   at once, if the task has ended). With `lent: false` the buffer was transferred (it now belongs
 *   to the worker) or is shared memory the sender keeps alive and never changes.
 * - `output.bytes` with `lent: true` is a view of the worker's own output slot with one hold for the
 *   main thread, released when its receiver is done with it; the worker reuses the slot after that.
 *   With `lent: false` the buffer was transferred to the main thread.
 * - Everything else is copied by structured clone.
 */
import type { Antichain } from '../core/antichain.js'
import type { RunOrder } from '../core/batch.js'
import type { Description } from '../core/description.js'
import type { Timestamp, TimestampKindName } from '../core/timestamp.js'
import type { DataType } from '../columnar/data-type.js'
import type { SortOrder } from '../columnar/sort-key.js'

// ---- merge tasks -------------------------------------------------------------------------------

export interface MergePartInput {
  /** The description the part's batch is registered with (rows outside it are dropped). */
  readonly registeredLower: Antichain
  readonly registeredUpper: Antichain
  readonly encodedSizeBytes: number
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

export type MergeOutputMode = PartsOutput

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

/** One output a task hands to the main thread. */
export interface EncodedOutput {
  readonly bytes: Uint8Array
  /** See the ownership rules above. */
  readonly lent: boolean
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
}

// ---- task kinds --------------------------------------------------------------------------------

/** Every task kind: what starts it and what its `done` carries. */
export type TaskStart = { readonly kind: 'merge'; readonly payload: MergeTaskPayload }
export type TaskKind = TaskStart['kind']
export type TaskResult = { readonly kind: 'merge'; readonly stats: MergeRunsStats }

// ---- messages ----------------------------------------------------------------------------------

export type ToWorker =
  | { readonly type: 'start'; readonly taskId: number; readonly task: TaskStart }
  | { readonly type: 'part'; readonly taskId: number; readonly run: number; readonly part: number; readonly bytes: Uint8Array; readonly lent: boolean }
  | { readonly type: 'part-failed'; readonly taskId: number; readonly run: number; readonly part: number; readonly message: string }
  | { readonly type: 'go'; readonly taskId: number }
  | { readonly type: 'abort'; readonly taskId: number }

export type FromWorker =
  | { readonly type: 'need'; readonly taskId: number; readonly run: number; readonly part: number }
  | { readonly type: 'ready'; readonly taskId: number }
  | { readonly type: 'output'; readonly taskId: number; readonly output: EncodedOutput }
  | { readonly type: 'progress'; readonly taskId: number; readonly progress: MergeProgress }
  | { readonly type: 'done'; readonly taskId: number; readonly result: TaskResult }
  | { readonly type: 'failed'; readonly taskId: number; readonly code: string; readonly message: string }

/** A message the main thread sends within a running task (everything but `start`). */
export type TaskReply = Exclude<ToWorker, { readonly type: 'start' }>

/** A message a running task sends before it ends (everything but `done` and `failed`). */
export type TaskMessage = Exclude<FromWorker, { readonly type: 'done' | 'failed' }>

/** `msg` without its task id (the channel adds it). */
export type WithoutTaskId<M> = M extends unknown ? Omit<M, 'taskId'> : never
