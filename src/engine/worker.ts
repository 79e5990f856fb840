/**
 * Worker-thread entry: runs the pool's tasks (protocol.ts), one at a time. Merge tasks
 * (`mergeRuns`) ask for their parts by message. A finished output is encoded only once the main
 * thread says `go` (room among its outputs in flight: the upload backpressure), then leaves as a
 * message while the next is built.
 */
import { parentPort, type TransferListItem } from 'node:worker_threads'
import { OffsetsScratch } from '../columnar/batch-slices.js'
import { encodedPart } from '../columnar/part-format.js'
import { sameShape, updatesByteLength, UpdatesBuilder, type UpdatesShape } from '../columnar/updates.js'
import { isAppError } from '../errors.js'
import { mergeRuns, type MergedPart } from './merge-runs.js'
import type { FromWorker, MergeTaskPayload, ToWorker } from './protocol.js'
import { releaseSlot, SharedSlots } from './shared-slots.js'

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

/** The task running now. */
interface Current {
  readonly taskId: number
  readonly abort: AbortController
  /** Part requests waiting for their answer, by `run:part`. */
  readonly parts: Map<string, (bytes: Uint8Array | Error) => void>
  /** Lent input slots this task holds, by `run:part`. */
  readonly held: Map<string, Uint8Array>
  /** Outputs waiting for `go`, oldest first. */
  readonly waiting: (() => void)[]
}

let current: Current | null = null

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'start') {
    switch (msg.task.kind) {
      case 'merge':
        void runMerge(msg.taskId, msg.task.payload)
        return
    }
  }
  if (current === null || msg.taskId !== current.taskId) {
    // A part for a task that has ended: nobody will read it.
    if (msg.type === 'part' && msg.lent) releaseSlot(msg.bytes)
    return
  }
  switch (msg.type) {
    case 'part':
    case 'part-failed': {
      const key = `${msg.run}:${msg.part}`
      const resolve = current.parts.get(key)
      current.parts.delete(key)
      if (msg.type === 'part-failed') {
        resolve?.(new Error(msg.message))
        return
      }
      if (msg.lent) {
        if (resolve === undefined) releaseSlot(msg.bytes)
        else current.held.set(key, msg.bytes)
      }
      resolve?.(msg.bytes)
      return
    }
    case 'go':
      current.waiting.shift()?.()
      return
    case 'abort':
      current.abort.abort(new Error('aborted'))
      for (const resolve of current.parts.values()) resolve(new Error('aborted'))
      current.parts.clear()
      for (const go of current.waiting.splice(0)) go()
      return
  }
})

function send(msg: FromWorker, transfer: TransferListItem[] = []): void {
  port!.postMessage(msg, transfer)
}

async function runMerge(taskId: number, payload: MergeTaskPayload): Promise<void> {
  const state: Current = { taskId, abort: new AbortController(), parts: new Map(), held: new Map(), waiting: [] }
  const release = (key: string): void => {
    const bytes = state.held.get(key)
    state.held.delete(key)
    if (bytes !== undefined) releaseSlot(bytes)
  }
  current = state
  const reuse = payload.output.reuseBuffers ?? false
  const builder = builders.lend({ keyType: payload.task.keyType, valType: payload.task.valType, timeKind: payload.task.timeKind })
  try {
    const stats = await mergeRuns(payload.task, {
      signal: state.abort.signal,
      fetch: (run, part) =>
        new Promise<Uint8Array>((resolve, reject) => {
          state.parts.set(`${run}:${part}`, (b) => (b instanceof Error ? reject(b) : resolve(b)))
          send({ type: 'need', taskId, run, part })
        }),
      release: (run, part) => release(`${run}:${part}`),
      emit: async (p: MergedPart) => {
        // NB: the encoded copy is the memory an output in flight holds, so it is made only when
        // the main thread has room for it; the builder's rows wait meanwhile.
        await new Promise<void>((resolve) => {
          state.waiting.push(resolve)
          send({ type: 'ready', taskId })
        })
        state.abort.signal.throwIfAborted()
        const encoded = encodedPart(p.updates, { desc: payload.output.desc, order: payload.task.order, schemaId: payload.output.schemaId }, p.diffsSum, { scratch })
        const bytes = reuse ? outputs.acquire(encoded.byteLength) : new Uint8Array(encoded.byteLength)
        encoded.writeTo(bytes)
        const output = {
          bytes,
          lent: reuse,
          rows: p.updates.length,
          diffsSum: p.diffsSum,
          keyLower: p.keyLower,
          goodBytes: updatesByteLength(p.updates),
          statsSeconds: p.statsSeconds,
          batches: encoded.batches,
          maxBatchBytes: encoded.maxBatchBytes,
        }
        send({ type: 'output', taskId, output }, reuse ? [] : [bytes.buffer as ArrayBuffer])
      },
      progress: (progress) => send({ type: 'progress', taskId, progress }),
      builder,
    })
    send({ type: 'done', taskId, result: { kind: 'merge', stats } })
  } catch (err) {
    const code = isAppError(err) ? err.code : 'INTERNAL'
    send({ type: 'failed', taskId, code, message: err instanceof Error ? err.message : String(err) })
  } finally {
    builders.giveBack(builder)
    if (current === state) current = null
    // Whatever the merge still held, nothing reads any more.
    for (const key of [...state.held.keys()]) release(key)
  }
}
