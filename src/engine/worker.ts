/**
 * Worker-thread entry: runs the pool's tasks (protocol.ts), one at a time, but for tasks parked
 * while they wait on their client (worker-pool.ts): the pool may start another task beside them.
 *
 * - Merge tasks (`mergeRuns`) ask for their parts by message (inline parts came with the task).
 *   With parts output, a finished part is encoded only once the main thread says `go` (room among
 *   its outputs in flight: the upload backpressure), then leaves as a message while the next is
 *   built. With stream output (snapshot reads), each chunk of rows is encoded as the response body
 *   (Arrow IPC stream messages or JSON text) and posted while the worker has credit.
 * - Write tasks (`BatchWrite`) read their request body as the main thread forwards it, and post
 *   parts as merges do.
 */
import { parentPort, workerData, type TransferListItem } from 'node:worker_threads'
import { OffsetsScratch } from '../columnar/batch-slices.js'
import { ByteSink, writeJsonRows } from '../columnar/json-rows-writer.js'
import { SortScratch } from '../columnar/sort-consolidate.js'
import { encodedPart, UpdatesStreamWriter } from '../columnar/part-format.js'
import { emptyUpdates, sameShape, updatesByteLength, UpdatesBuilder, type Updates, type UpdatesShape } from '../columnar/updates.js'
import { timestampKind } from '../core/timestamp.js'
import { isAppError } from '../errors.js'
import { isPageAlignedView } from '../location/direct-io.js'
import { MergeOutput } from './merge/merge-output.js'
import { mergeRuns, type MergedPart } from './merge-runs.js'
import { BODY_ACK_BYTES, type EncodedOutput, type FailureDetails, type FromWorker, type MergeTaskPayload, type PartsOutput, type StreamOutput, type ToWorker, type WorkerData, type WriteTaskPayload } from './protocol.js'
import { BufferPool } from './buffer-pool.js'
import { releaseSlot, SharedSlots } from './shared-slots.js'
import { BatchWrite } from './write-batch.js'
import { reuseIdleMs, setReuseIdleMs } from './reuse-idle.js'
import { lowerThreadPriority } from './thread-priority.js'

const port = parentPort
if (port === null) throw new Error('worker.ts must run in a worker thread')
/** What the pool started this worker with. */
const data: WorkerData = workerData
// NB: workers yield to the event loop when cores are short (thread-priority.ts).
lowerThreadPriority(data.nice)
setReuseIdleMs(data.reuseIdleMs)

/** Output buffers, reused across parts and tasks. */
const outputs = new SharedSlots({ pageAligned: true })

/** The value offsets of outputs' record batches (each output is written before the next is laid out). */
const scratch = new OffsetsScratch()

/** Builders kept between tasks, at most. */
const MAX_KEPT_BUILDERS = 3

/**
 * Output builders lent to tasks (a merge borrows one, a write two), kept between tasks so that
 * their buffers grow once (growth by doubling copied every buffer and made as much garbage, for
 * every task), dropped when idle. A builder of another shape is replaced.
 * NB: a task normally starts after the last one ended, but one whose handler failed on the main
 * thread may still be ending, and a parked read holds its builder: a lent builder is never lent
 * twice.
 */
const builders = {
  free: [] as UpdatesBuilder[],
  idle: null as ReturnType<typeof setTimeout> | null,
  lend(shape: UpdatesShape): UpdatesBuilder {
    if (this.idle !== null) clearTimeout(this.idle)
    this.idle = null
    const i = this.free.findIndex((b) => sameShape(b.shape, shape))
    if (i >= 0) return this.free.splice(i, 1)[0] as UpdatesBuilder
    return new UpdatesBuilder(shape, { reuseBuffers: true })
  },
  giveBack(builder: UpdatesBuilder): void {
    this.free.unshift(builder)
    this.free.length = Math.min(this.free.length, MAX_KEPT_BUILDERS)
    if (this.idle !== null) clearTimeout(this.idle)
    this.idle = setTimeout(() => {
      this.free = []
      this.idle = null
    }, reuseIdleMs())
    this.idle.unref()
  },
}

/** Record batch bodies of writes, reused across tasks. */
const bodies = new BufferPool()

/**
 * One object of a kind kept for the next task (setting one up is a task's fixed cost: it matters
 * for small snapshots). NB: as with builders, a task that finds it lent gets a fresh one.
 */
class Kept<T> {
  readonly #make: () => T
  #kept: T | null = null

  constructor(make: () => T) {
    this.#make = make
  }

  lend(): T {
    const k = this.#kept
    this.#kept = null
    return k ?? this.#make()
  }

  giveBack(t: T): void {
    this.#kept = t
  }
}

/** The merge kernel's output buffer, and the JSON text buffer of snapshots. */
const kernelOutputs = new Kept(() => new MergeOutput())
const sortScratches = new Kept(() => new SortScratch())
const jsonSinks = new Kept(() => new ByteSink())

/**
 * A task this worker runs. NB: usually one at a time, but a task that waits on its client (a
 * snapshot read's, a write's upload) is parked by the pool (worker-pool.ts) and another task may
 * start beside it; they take turns at their awaits.
 */
interface Current {
  readonly taskId: number
  readonly abort: AbortController
  /** Part requests waiting for their answer, by `run:part`. */
  readonly parts: Map<string, (bytes: Uint8Array | Error) => void>
  /** Lent input slots this task holds, by `run:part`. */
  readonly held: Map<string, Uint8Array>
  /** Outputs waiting for `go`, oldest first. */
  readonly waiting: (() => void)[]
  /** Stream outputs: `go`s received and not yet used (credit for chunks). */
  credit: number
  /** Write tasks: body chunks received and not yet read (lent slots), and whoever waits for the next. */
  readonly body: { readonly bytes: Uint8Array; readonly end: boolean }[]
  bodyWaiter: (() => void) | null
}

/** The tasks this worker runs, by id. */
const tasks = new Map<number, Current>()

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'start') {
    switch (msg.task.kind) {
      case 'merge':
        void runMerge(msg.taskId, msg.task.payload)
        return
      case 'write':
        void runWrite(msg.taskId, msg.task.payload)
        return
    }
  }
  const current = tasks.get(msg.taskId)
  if (current === undefined) {
    // A part or body chunk for a task that has ended: nobody will read it.
    if (msg.type === 'part' && msg.lent) releaseSlot(msg.bytes)
    if (msg.type === 'body' && msg.bytes.byteLength > 0) releaseSlot(msg.bytes)
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
    case 'go': {
      const next = current.waiting.shift()
      if (next !== undefined) next()
      else current.credit++
      return
    }
    case 'body':
      current.body.push({ bytes: msg.bytes, end: msg.end })
      current.bodyWaiter?.()
      current.bodyWaiter = null
      return
    case 'abort':
      current.abort.abort(new Error('aborted'))
      for (const resolve of current.parts.values()) resolve(new Error('aborted'))
      current.parts.clear()
      for (const go of current.waiting.splice(0)) go()
      current.bodyWaiter?.()
      current.bodyWaiter = null
      return
  }
})

// NB: module code runs after every import has loaded: the worker is ready for tasks now.
send({ type: 'loaded' })

function send(msg: FromWorker, transfer: TransferListItem[] = []): void {
  port!.postMessage(msg, transfer)
}

function begin(taskId: number): Current {
  const state: Current = { taskId, abort: new AbortController(), parts: new Map(), held: new Map(), waiting: [], credit: 0, body: [], bodyWaiter: null }
  tasks.set(taskId, state)
  return state
}

function fail(taskId: number, err: unknown): void {
  const code = isAppError(err) ? err.code : 'INTERNAL'
  const details: FailureDetails = isAppError(err) ? detailsOf(err.extra) : {}
  send({ type: 'failed', taskId, code, message: err instanceof Error ? err.message : String(err), details })
}

function detailsOf(extra: Readonly<Record<string, unknown>>): FailureDetails {
  const out: Record<string, number | string> = {}
  for (const [k, v] of Object.entries(extra)) if (typeof v === 'number' || typeof v === 'string') out[k] = v
  return out
}

/** Waits for room among the outputs in flight (`ready` → `go`), as parts outputs do. */
function room(state: Current): Promise<void> {
  return new Promise<void>((resolve) => {
    state.waiting.push(resolve)
    send({ type: 'ready', taskId: state.taskId })
  })
}

/** Encodes a built part into an output slot (or a fresh buffer) and posts it. */
function postPart(state: Current, p: { readonly updates: Updates; readonly diffsSum: bigint; readonly keyLower: Uint8Array; readonly statsSeconds: number; readonly run: number }, meta: PartsOutput, order: MergeTaskPayload['task']['order']): void {
  const reuse = meta.reuseBuffers ?? false
  const encoded = encodedPart(p.updates, { desc: meta.desc, order, schemaId: meta.schemaId }, p.diffsSum, { scratch })
  const bytes = reuse ? outputs.acquire(encoded.byteLength) : new Uint8Array(encoded.byteLength)
  encoded.writeTo(bytes)
  const output: EncodedOutput = { bytes, lent: reuse, pageAligned: reuse && isPageAlignedView(bytes), rows: p.updates.length, diffsSum: p.diffsSum, keyLower: p.keyLower, goodBytes: updatesByteLength(p.updates), statsSeconds: p.statsSeconds, batches: encoded.batches, maxBatchBytes: encoded.maxBatchBytes, run: p.run }
  send({ type: 'output', taskId: state.taskId, output }, reuse ? [] : [bytes.buffer as ArrayBuffer])
}

async function runMerge(taskId: number, payload: MergeTaskPayload): Promise<void> {
  const state = begin(taskId)
  const release = (key: string): void => {
    const bytes = state.held.get(key)
    state.held.delete(key)
    if (bytes !== undefined) releaseSlot(bytes)
  }
  const task = payload.task
  const out = payload.output
  const builder = builders.lend({ keyType: task.keyType, valType: task.valType, timeKind: task.timeKind })
  const stream = out.kind === 'stream' ? new StreamEncoder(state, task, out) : null
  const kernelOutput = kernelOutputs.lend()
  try {
    const stats = await mergeRuns(task, {
      signal: state.abort.signal,
      fetch: (run, part) => {
        const inline = task.runs[run]?.parts[part]?.inline
        if (inline !== undefined) return Promise.resolve(inline)
        return new Promise<Uint8Array>((resolve, reject) => {
          state.parts.set(`${run}:${part}`, (b) => (b instanceof Error ? reject(b) : resolve(b)))
          send({ type: 'need', taskId, run, part })
        })
      },
      release: (run, part) => release(`${run}:${part}`),
      emit: async (p: MergedPart) => {
        if (stream !== null) return stream.rows(p.updates)
        // NB: the encoded copy is the memory an output in flight holds, so it is made only when
        // the main thread has room for it; the builder's rows wait meanwhile.
        await room(state)
        state.abort.signal.throwIfAborted()
        postPart(state, { ...p, run: 0 }, out as PartsOutput, task.order)
      },
      progress: stream === null ? (progress) => send({ type: 'progress', taskId, progress }) : undefined,
      builder,
      output: kernelOutput,
      passThrough: stream !== null,
    })
    if (stream !== null) await stream.end()
    send({ type: 'done', taskId, result: { kind: 'merge', stats } })
  } catch (err) {
    fail(taskId, err)
  } finally {
    builders.giveBack(builder)
    kernelOutputs.giveBack(kernelOutput)
    stream?.dispose()
    tasks.delete(state.taskId)
    // Whatever the merge still held, nothing reads any more.
    for (const key of [...state.held.keys()]) release(key)
  }
}

/**
 * A snapshot's response body (or its part of one: `StreamOutput`), encoded chunk by chunk. Each
 * chunk is held back until the next is encoded (or the end), so the last one carries the end of
 * the body and a small snapshot is one message.
 */
class StreamEncoder {
  readonly #state: Current
  readonly #out: StreamOutput
  readonly #json: { readonly sink: ByteSink; readonly head: string } | null
  readonly #arrow: UpdatesStreamWriter | null
  readonly #shape: UpdatesShape
  #pending: { bytes: Uint8Array; rows: number } | null = null
  /** Nothing is encoded yet (the body's opening, when this part has it, comes first). */
  #first = true
  /** Rows encoded so far (JSON rows after the first take a comma). */
  #rows = 0

  constructor(state: Current, task: MergeTaskPayload['task'], out: StreamOutput) {
    this.#state = state
    this.#out = out
    state.credit = out.maxOutstanding
    this.#shape = { keyType: task.keyType, valType: task.valType, timeKind: task.timeKind }
    if (out.format === 'json') {
      const asOf = task.asOf === null ? null : timestampKind(task.timeKind).toJson(task.asOf)
      const sink = jsonSinks.lend()
      sink.length = 0
      this.#json = { sink, head: `{"asOf":${JSON.stringify(asOf)},"updates":[` }
      this.#arrow = null
    } else {
      this.#json = null
      this.#arrow = new UpdatesStreamWriter(this.#shape, { continues: !out.opens })
    }
  }

  /** Gives back what it borrowed (the task ended). */
  dispose(): void {
    if (this.#json !== null) jsonSinks.giveBack(this.#json.sink)
  }

  /** Encodes a chunk of rows (NB: before returning: their buffers are reused). */
  async rows(u: Updates): Promise<void> {
    const bytes = this.#encode(u, false)
    const previous = this.#pending
    this.#pending = { bytes, rows: u.length }
    if (previous !== null) await this.#post(previous.bytes, previous.rows, false)
  }

  async end(): Promise<void> {
    // The body's end if this part closes it; else nothing, unless nothing was encoded yet and this
    // part opens the body (a part with no rows still opens it).
    const tail = this.#out.closes || this.#first ? this.#encode(emptyUpdates(this.#shape), this.#out.closes) : new Uint8Array(0)
    const previous = this.#pending
    this.#pending = null
    if (previous === null) return this.#post(tail, 0, true)
    if (tail.byteLength === 0) return this.#post(previous.bytes, previous.rows, true)
    const bytes = new Uint8Array(previous.bytes.byteLength + tail.byteLength)
    bytes.set(previous.bytes)
    bytes.set(tail, previous.bytes.byteLength)
    return this.#post(bytes, previous.rows, true)
  }

  /** The bytes of `u`'s rows, after the body's opening if this is the first encode, before its end if `closing`. */
  #encode(u: Updates, closing: boolean): Uint8Array {
    const first = this.#first
    this.#first = false
    if (this.#json !== null) {
      const { sink, head } = this.#json
      if (first && this.#out.opens) sink.ascii(head)
      writeJsonRows(sink, u, this.#rows === 0)
      this.#rows += u.length
      if (closing) sink.ascii(']}')
      return sink.take()
    }
    const layout = (this.#arrow as UpdatesStreamWriter).layout(u, { last: closing })
    const bytes = new Uint8Array(layout.byteLength)
    layout.writeTo(bytes)
    return bytes
  }

  async #post(bytes: Uint8Array, rows: number, last: boolean): Promise<void> {
    const state = this.#state
    if (state.credit === 0) await new Promise<void>((resolve) => state.waiting.push(resolve))
    else state.credit--
    state.abort.signal.throwIfAborted()
    send({ type: 'chunk', taskId: state.taskId, bytes, rows, last }, [bytes.buffer as ArrayBuffer])
  }
}

async function runWrite(taskId: number, payload: WriteTaskPayload): Promise<void> {
  const state = begin(taskId)
  const meta: PartsOutput = { kind: 'parts', desc: { lower: [], upper: [], since: [] }, schemaId: payload.schemaId, reuseBuffers: true }
  const shape: UpdatesShape = { keyType: payload.keyType, valType: payload.valType, timeKind: payload.timeKind }
  const lent = { out: builders.lend(shape), unsorted: builders.lend(shape), scratch: sortScratches.lend() }
  try {
    const write = new BatchWrite(payload, {
      emit: async (p) => {
        await room(state)
        state.abort.signal.throwIfAborted()
        postPart(state, p, { ...meta, desc: write.desc() }, payload.order)
      },
      builders: lent,
      buffers: bodies,
    })
    let unacknowledged = 0
    for (;;) {
      const chunk = await nextBodyChunk(state)
      if (chunk.bytes.byteLength > 0) {
        try {
          await write.push(chunk.bytes)
        } finally {
          // The chunk is a lent slot, and nothing refers to it once pushed.
          releaseSlot(chunk.bytes)
        }
        unacknowledged += chunk.bytes.byteLength
        // NB: once nothing sent is left unread, the main thread may be holding a partial chunk
        // until this acknowledgement says so.
        if (state.body.length === 0 || unacknowledged >= BODY_ACK_BYTES) {
          send({ type: 'body-taken', taskId, byteLength: unacknowledged })
          unacknowledged = 0
        }
      }
      if (chunk.end) break
    }
    const written = await write.end()
    send({ type: 'done', taskId, result: { kind: 'write', header: written.header, stats: written.stats } })
  } catch (err) {
    fail(taskId, err)
  } finally {
    // NB: `out` last, so that the next write is lent it again (the builders keep their roles, and
    // the one grown to parts of the target size stays the one that builds them).
    builders.giveBack(lent.unsorted)
    builders.giveBack(lent.out)
    sortScratches.giveBack(lent.scratch)
    tasks.delete(state.taskId)
    for (const c of state.body.splice(0)) if (c.bytes.byteLength > 0) releaseSlot(c.bytes)
  }
}

function nextBodyChunk(state: Current): Promise<{ readonly bytes: Uint8Array; readonly end: boolean }> {
  state.abort.signal.throwIfAborted()
  const next = state.body.shift()
  if (next !== undefined) return Promise.resolve(next)
  return new Promise<void>((resolve) => {
    state.bodyWaiter = resolve
  }).then(() => nextBodyChunk(state))
}
