/**
 * Worker-thread entry: runs merge tasks (`mergeRuns`) for the pool. Parts arrive as messages on
 * request. A finished output is encoded only once the main thread says `go` (room among its
 * outputs in flight: the upload backpressure), then leaves as a message while the next is built.
 * Outputs are encoded part files (for compaction and for snapshot reads alike).
 */
import { parentPort } from 'node:worker_threads'
import type { Description } from '../core/description.js'
import { OffsetsScratch } from '../columnar/batch-slices.js'
import { encodedPart } from '../columnar/part-format.js'
import { sameShape, updatesByteLength, UpdatesBuilder, type UpdatesShape } from '../columnar/updates.js'
import { isAppError } from '../errors.js'
import { mergeRuns, type MergedPart, type MergeRunsTask } from './merge-runs.js'
import { releaseSlot, SharedSlots } from './shared-slots.js'

/** What a merge task produces: part files with this description and schema id. */
export interface MergeOutputMode {
  readonly kind: 'parts'
  readonly desc: Description
  readonly schemaId: number
  /**
   * Write outputs into shared buffers the worker reuses (`SharedSlots`) instead of a fresh buffer
   * each. NB: the receiver must be done with an output's bytes when its `onOutput` settles.
   */
  readonly reuseBuffers?: boolean
}

export interface MergeTaskPayload {
  readonly task: MergeRunsTask
  readonly output: MergeOutputMode
}

interface Inbound {
  readonly taskId: number
  readonly type: 'start' | 'part' | 'go' | 'abort'
  readonly payload?: MergeTaskPayload
  readonly run?: number
  readonly part?: number
  readonly bytes?: Uint8Array
  /** The bytes are a lent slot (shared-slots.ts): release the hold when done with them. */
  readonly slot?: boolean
  readonly error?: string
}

const port = parentPort
if (port === null) throw new Error('worker.ts must run in a worker thread')

/** Output buffers, reused across parts and tasks. */
const outputs = new SharedSlots()

/** The value offsets of outputs' record batches (each output is written before the next is laid out). */
const scratch = new OffsetsScratch()

/** Free builders lent to tasks are dropped after the worker has been idle this long. */
const BUILDER_IDLE_MS = 2_000

/**
 * The output builder lent to each task, kept between tasks so that its buffers grow once (growth
 * by doubling copied every buffer and made as much garbage, for every task), dropped when idle.
 * NB: a task normally starts after the last one ended, but one whose handler failed on the main
 * thread may still be ending: a task that finds the builder lent gets a fresh one.
 */
const builders = {
  kept: null as UpdatesBuilder | null,
  lent: false,
  idle: null as ReturnType<typeof setTimeout> | null,
  lend(shape: UpdatesShape): UpdatesBuilder {
    if (this.lent) return new UpdatesBuilder(shape, { reuseBuffers: true })
    if (this.idle !== null) clearTimeout(this.idle)
    this.idle = null
    if (this.kept === null || !sameShape(this.kept.shape, shape)) this.kept = new UpdatesBuilder(shape, { reuseBuffers: true })
    this.lent = true
    return this.kept
  },
  giveBack(builder: UpdatesBuilder): void {
    if (builder !== this.kept) return
    this.lent = false
    this.idle = setTimeout(() => {
      this.kept = null
      this.idle = null
    }, BUILDER_IDLE_MS)
    this.idle.unref()
  },
}

let current: {
  taskId: number
  abort: AbortController
  parts: Map<string, (bytes: Uint8Array | Error) => void>
  /** Lent input slots this task holds, by `run:part`. */
  held: Map<string, Uint8Array>
  /** Outputs waiting for `go`, oldest first. */
  waiting: (() => void)[]
} | null = null

port.on('message', (msg: Inbound) => {
  if (msg.type === 'start') {
    void start(msg.taskId, msg.payload as MergeTaskPayload)
    return
  }
  if (current === null || msg.taskId !== current.taskId) {
    // A part for a task that has ended: nobody will read it.
    if (msg.type === 'part' && msg.slot === true && msg.bytes !== undefined) releaseSlot(msg.bytes)
    return
  }
  if (msg.type === 'part') {
    const key = `${msg.run}:${msg.part}`
    const resolve = current.parts.get(key)
    current.parts.delete(key)
    if (msg.slot === true && msg.bytes !== undefined) {
      if (resolve === undefined) releaseSlot(msg.bytes)
      else current.held.set(key, msg.bytes)
    }
    resolve?.(msg.bytes ?? new Error(msg.error ?? 'part fetch failed'))
  } else if (msg.type === 'go') {
    current.waiting.shift()?.()
  } else if (msg.type === 'abort') {
    current.abort.abort(new Error('aborted'))
    for (const resolve of current.parts.values()) resolve(new Error('aborted'))
    current.parts.clear()
    for (const go of current.waiting.splice(0)) go()
  }
})

async function start(taskId: number, payload: MergeTaskPayload): Promise<void> {
  const state = { taskId, abort: new AbortController(), parts: new Map<string, (b: Uint8Array | Error) => void>(), held: new Map<string, Uint8Array>(), waiting: [] as (() => void)[] }
  const release = (key: string): void => {
    const bytes = state.held.get(key)
    state.held.delete(key)
    if (bytes !== undefined) releaseSlot(bytes)
  }
  current = state
  const post = (type: string, fields: Record<string, unknown> = {}, transfer: ArrayBuffer[] = []): void =>
    port!.postMessage({ taskId, type, ...fields }, transfer)
  const reuse = payload.output.reuseBuffers ?? false
  const builder = builders.lend({ keyType: payload.task.keyType, valType: payload.task.valType, timeKind: payload.task.timeKind })
  try {
    const stats = await mergeRuns(payload.task, {
      signal: state.abort.signal,
      fetch: (run, part) =>
        new Promise<Uint8Array>((resolve, reject) => {
          state.parts.set(`${run}:${part}`, (b) => (b instanceof Error ? reject(b) : resolve(b)))
          post('need', { run, part })
        }),
      release: (run, part) => release(`${run}:${part}`),
      emit: async (p: MergedPart) => {
        // NB: the encoded copy is the memory an output in flight holds, so it is made only when
        // the main thread has room for it; the builder's rows wait meanwhile.
        await new Promise<void>((resolve) => {
          state.waiting.push(resolve)
          post('ready')
        })
        state.abort.signal.throwIfAborted()
        const encoded = encodedPart(p.updates, { desc: payload.output.desc, order: payload.task.order, schemaId: payload.output.schemaId }, p.diffsSum, { scratch })
        const bytes = reuse ? outputs.acquire(encoded.byteLength) : new Uint8Array(encoded.byteLength)
        encoded.writeTo(bytes)
        const fields = { bytes, lent: reuse, rows: p.updates.length, diffsSum: p.diffsSum, keyLower: p.keyLower, goodBytes: updatesByteLength(p.updates), statsSeconds: p.statsSeconds }
        post('output', fields, reuse ? [] : [bytes.buffer as ArrayBuffer])
      },
      progress: (p) => post('progress', p),
      builder,
    })
    post('done', { stats })
  } catch (err) {
    const code = isAppError(err) ? err.code : 'INTERNAL'
    post('error', { code, message: err instanceof Error ? err.message : String(err) })
  } finally {
    builders.giveBack(builder)
    if (current === state) current = null
    // Whatever the merge still held, nothing reads any more.
    for (const key of [...state.held.keys()]) release(key)
  }
}
