/**
 * A fixed pool of worker threads for CPU work (decode, merge, encode), so the event loop stays
 * free for HTTP, /metrics and config changes during the largest compaction.
 *
 * A task is a conversation in the messages of protocol.ts: the pool posts `start`, the worker
 * answers with messages tagged with the task id, and the task's `onMessage` may reply through
 * its channel (e.g. with a part the worker asked for). A worker runs one task at a time; tasks wait
 * in FIFO order. A worker that dies fails its tasks and is replaced.
 *
 * A task may **park** itself through its channel while it waits on something slow outside the
 * pool (a snapshot read whose client takes no data, a write whose upload stalls: `ClientWait`):
 * its worker then takes the next task as if free, and the parked task resumes beside it when
 * unparked (they take turns at their awaits). So clients that stop reading or sending cannot hold
 * every worker and stall writes, reads and compactions.
 * At most `MAX_PARKED_PER_WORKER` tasks are parked on one worker: each holds memory (its windows
 * of parts), and a worker at the limit takes no new task until one of them ends or resumes. The
 * pool emits `parked` with the number parked in all whenever it changes (for a gauge).
 */
import { EventEmitter } from 'node:events'
import { Worker, type TransferListItem } from 'node:worker_threads'
import { reuseIdleMs } from './reuse-idle.js'
import type { FailureDetails, FromWorker, TaskMessage, TaskReply, TaskResult, TaskStart, ToWorker, WithoutTaskId, WorkerData } from './protocol.js'

export interface TaskChannel {
  /** Sends a message to the worker running this task (no-op once the task ended). */
  post(msg: WithoutTaskId<TaskReply>, transfer?: TransferListItem[]): void
  /** Parks the task (see the header): its worker may take another; false when its worker has no room for one more parked task. */
  park(): boolean
  /** The task runs again (no-op unless parked). */
  unpark(): void
}

/** Parked tasks one worker holds at most (see the header). */
export const MAX_PARKED_PER_WORKER = 4

/** How long a task's worker waits on its client before the task parks: well above the gaps of a client that keeps up. */
export const PARK_AFTER_MS = 200

/**
 * A task's waits on its client (a snapshot read's consumer, a write's body): a wait that lasts
 * `PARK_AFTER_MS` parks the task, and its end unparks it.
 */
export class ClientWait {
  readonly #channel: () => TaskChannel | null
  #timer: ReturnType<typeof setTimeout> | null = null
  #parked = false

  constructor(channel: () => TaskChannel | null) {
    this.#channel = channel
  }

  /** The worker now waits on the client (a no-op while a wait is on). */
  begin(): void {
    if (this.#timer !== null || this.#parked) return
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#parked = this.#channel()?.park() ?? false
    }, PARK_AFTER_MS)
    this.#timer.unref()
  }

  /** The wait is over (the client came back, or the task ended). */
  end(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#parked) this.#channel()?.unpark()
    this.#parked = false
  }
}

export interface TaskHandlers<R> {
  /**
   * Called when a worker takes the task, before any message: a task that feeds its worker (a
   * write's body) starts here, so nothing is read while the task waits in the queue.
   */
  onStart?(channel: TaskChannel): void
  /** Called for every message but the final `done`/`failed`; may reply through the channel. */
  onMessage(msg: TaskMessage, channel: TaskChannel): void
  /** Maps the worker's result to the task's. */
  onDone(result: TaskResult): R
}

interface Pending {
  readonly taskId: number
  readonly task: TaskStart
  readonly transfer: TransferListItem[]
  readonly handlers: TaskHandlers<unknown>
  readonly resolve: (v: unknown) => void
  readonly reject: (e: unknown) => void
  readonly signal: AbortSignal | undefined
}

/** A task a worker has taken. */
interface Running {
  readonly pending: Pending
  parked: boolean
}

interface Slot {
  worker: Worker
  /** The tasks this worker runs, by id: one, plus any parked. */
  readonly tasks: Map<number, Running>
  /** Whether this slot's first worker has loaded its code (`loaded` message). */
  loaded: boolean
}

/** Whether `slot` may take a task now: nothing of it runs unparked. */
function takesTask(slot: Slot): boolean {
  for (const t of slot.tasks.values()) if (!t.parked) return false
  return true
}

export class TaskError extends Error {
  override readonly name: string = 'TaskError'
  constructor(
    message: string,
    readonly code: string,
    /** Facts for the error response (e.g. the first bad row). */
    readonly details: FailureDetails = {},
  ) {
    super(message)
  }
}

/** The worker running a task died (crashed, ran out of memory, was terminated): the task did not finish. */
export class WorkerExitError extends TaskError {
  override readonly name = 'WorkerExitError'
  constructor(cause: Error) {
    super(`worker failed: ${cause.message}`, 'INTERNAL')
  }
}

/** The worker entry file next to this module: `.ts` when running from source, `.js` when built. */
export function defaultWorkerUrl(): URL {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  return new URL(`./worker${ext}`, import.meta.url)
}

/**
 * How many nice steps below the event loop worker threads run by default (thread-priority.ts):
 * enough that the kernel runs the event loop first when cores are short (a weight about 10× the
 * workers'), not so many that other processes on the machine starve the merge.
 */
export const DEFAULT_WORKER_NICE = 10

export interface WorkerPoolOptions {
  /** The worker entry file. Default: `defaultWorkerUrl()`. */
  readonly url?: URL
  /** How many nice steps below the event loop the workers run, 0 to 19 (0: the same). Default: `DEFAULT_WORKER_NICE`. */
  readonly nice?: number
  /** How long the workers' pools keep free memory while idle (reuse-idle.ts). Default: this thread's hold. */
  readonly reuseIdleMs?: number
}

export class WorkerPool extends EventEmitter {
  readonly #url: URL
  readonly #data: WorkerData
  readonly #slots: Slot[] = []
  readonly #queue: Pending[] = []
  #nextTaskId = 1
  #closed = false
  readonly #loaded: Promise<void>
  #onLoaded: () => void = () => {}

  constructor(size: number, opts: WorkerPoolOptions = {}) {
    super()
    this.#url = opts.url ?? defaultWorkerUrl()
    this.#data = { nice: opts.nice ?? DEFAULT_WORKER_NICE, reuseIdleMs: opts.reuseIdleMs ?? reuseIdleMs() }
    for (let i = 0; i < Math.max(1, size); i++) this.#slots.push({ worker: this.#spawn(i), tasks: new Map(), loaded: false })
    this.#loaded = new Promise((resolve) => {
      this.#onLoaded = resolve
    })
  }

  /**
   * Resolves once every worker the pool started with has loaded its code and takes tasks. Loading
   * takes a second or more (the modules of the whole engine; longer from TypeScript sources), so a
   * server waits for it before it answers requests: the first request after a start then finds
   * the workers ready. Never rejects; a worker that dies while loading is replaced and its
   * replacement counts.
   */
  loaded(): Promise<void> {
    return this.#loaded
  }

  get size(): number {
    return this.#slots.length
  }

  /** Workers running a task now (parked ones do not count). */
  get busy(): number {
    return this.#slots.filter((s) => !takesTask(s)).length
  }

  /** Tasks waiting for a worker. */
  get queued(): number {
    return this.#queue.length
  }

  /** Tasks parked now, on every worker. */
  get parked(): number {
    let n = 0
    for (const s of this.#slots) for (const t of s.tasks.values()) if (t.parked) n++
    return n
  }

  /** Workers a task started now would find free (none while tasks wait in the queue). */
  get idle(): number {
    return this.#queue.length > 0 ? 0 : this.#slots.length - this.busy
  }

  run<R>(task: TaskStart, handlers: TaskHandlers<R>, opts: { transfer?: TransferListItem[]; signal?: AbortSignal } = {}): Promise<R> {
    if (this.#closed) return Promise.reject(new TaskError('worker pool is closed', 'INTERNAL'))
    return new Promise<R>((resolve, reject) => {
      const pending: Pending = {
        taskId: this.#nextTaskId++,
        task,
        transfer: opts.transfer ?? [],
        handlers: handlers as TaskHandlers<unknown>,
        resolve: resolve as (v: unknown) => void,
        reject,
        signal: opts.signal,
      }
      if (opts.signal?.aborted) {
        reject(opts.signal.reason)
        return
      }
      this.#queue.push(pending)
      if (opts.signal !== undefined) {
        // Aborted while it waits for a worker: out of the queue at once, so whatever its caller holds
        // until it settles (a read's budget and slots) is not held until a worker is free.
        const onQueuedAbort = (): void => {
          const at = this.#queue.indexOf(pending)
          if (at < 0) return
          this.#queue.splice(at, 1)
          reject(opts.signal?.reason)
        }
        queuedAbortListeners.set(pending, onQueuedAbort)
        opts.signal.addEventListener('abort', onQueuedAbort, { once: true })
      }
      this.#dispatch()
    })
  }

  /**
   * Test hook: terminates the worker running the oldest running task, as a crash would; it is
   * replaced and its task fails with `WorkerExitError`. Returns whether a task was running.
   */
  crashBusyWorker(): boolean {
    const slot = this.#slots.find((s) => s.tasks.size > 0)
    if (slot === undefined) return false
    void slot.worker.terminate()
    return true
  }

  /** Terminates every worker; running and queued tasks fail. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const p of this.#queue.splice(0)) p.reject(new TaskError('worker pool closed', 'INTERNAL'))
    await Promise.all(
      this.#slots.map(async (s) => {
        for (const t of s.tasks.values()) t.pending.reject(new TaskError('worker pool closed', 'INTERNAL'))
        s.tasks.clear()
        await s.worker.terminate()
      }),
    )
  }

  #spawn(index: number): Worker {
    const worker = this.#url.pathname.endsWith('.ts')
      ? // NB: running from sources, a worker does not inherit tsx's loader: register it first.
        new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(this.#url.href)}) })`, {
          eval: true,
          name: `compactd-worker-${index}`,
          workerData: this.#data,
        })
      : new Worker(this.#url, { name: `compactd-worker-${index}`, workerData: this.#data })
    worker.unref()
    worker.on('message', (msg: FromWorker) => this.#onMessage(index, msg))
    worker.on('error', (err) => this.#onExit(index, err))
    worker.on('exit', (code) => {
      if (!this.#closed) this.#onExit(index, new Error(`worker exited with code ${code}`))
    })
    return worker
  }

  #onExit(index: number, err: Error): void {
    const slot = this.#slots[index]
    if (slot === undefined || this.#closed) return
    const tasks = [...slot.tasks.values()]
    slot.tasks.clear()
    for (const t of tasks) t.pending.reject(new WorkerExitError(err))
    if (tasks.some((t) => t.parked)) this.emit('parked', this.parked)
    this.emit('worker-error', err)
    void slot.worker.terminate()
    slot.worker = this.#spawn(index)
    this.#dispatch()
  }

  #onMessage(index: number, msg: FromWorker): void {
    const slot = this.#slots[index]
    if (msg.type === 'loaded') {
      if (slot !== undefined) slot.loaded = true
      if (this.#slots.every((s) => s.loaded)) this.#onLoaded()
      return
    }
    const running = slot?.tasks.get(msg.taskId)
    if (slot === undefined || running === undefined) return
    const task = running.pending
    const channel = this.#channel(slot, running)
    if (msg.type === 'done' || msg.type === 'failed') {
      slot.tasks.delete(task.taskId)
      if (running.parked) this.emit('parked', this.parked)
      task.signal?.removeEventListener('abort', abortListeners.get(task) as () => void)
      if (msg.type === 'done') {
        try {
          task.resolve(task.handlers.onDone(msg.result))
        } catch (err) {
          task.reject(err)
        }
      } else {
        task.reject(new TaskError(msg.message, msg.code, msg.details))
      }
      this.#dispatch()
      return
    }
    try {
      task.handlers.onMessage(msg, channel)
    } catch (err) {
      // The handler failed: tell the worker to stop and fail the task.
      channel.post({ type: 'abort' })
      slot.tasks.delete(task.taskId)
      if (running.parked) this.emit('parked', this.parked)
      task.reject(err)
      this.#dispatch()
    }
  }

  #channel(slot: Slot, running: Running): TaskChannel {
    const { taskId } = running.pending
    const live = (): boolean => slot.tasks.get(taskId) === running
    return {
      post: (reply, transfer = []) => {
        if (live()) slot.worker.postMessage({ ...reply, taskId } satisfies ToWorker, transfer)
      },
      park: () => {
        if (!live()) return false
        if (running.parked) return true
        let parked = 0
        for (const t of slot.tasks.values()) if (t.parked) parked++
        if (parked >= MAX_PARKED_PER_WORKER) return false
        running.parked = true
        this.emit('parked', this.parked)
        this.#dispatch()
        return true
      },
      unpark: () => {
        if (!running.parked) return
        running.parked = false
        if (live()) this.emit('parked', this.parked)
      },
    }
  }

  #dispatch(): void {
    // NB: workers with fewer tasks first: a parked task is better left alone on its worker.
    const free = this.#slots.filter(takesTask).sort((a, b) => a.tasks.size - b.tasks.size)
    for (const slot of free) {
      const next = this.#queue.shift()
      if (next === undefined) return
      next.signal?.removeEventListener('abort', queuedAbortListeners.get(next) as () => void)
      if (next.signal?.aborted) {
        next.reject(next.signal.reason)
        continue
      }
      const running: Running = { pending: next, parked: false }
      slot.tasks.set(next.taskId, running)
      if (next.signal !== undefined) {
        const onAbort = (): void => {
          if (slot.tasks.get(next.taskId) === running) slot.worker.postMessage({ type: 'abort', taskId: next.taskId } satisfies ToWorker)
        }
        abortListeners.set(next, onAbort)
        next.signal.addEventListener('abort', onAbort, { once: true })
      }
      slot.worker.postMessage({ type: 'start', taskId: next.taskId, task: next.task } satisfies ToWorker, next.transfer)
      if (next.handlers.onStart !== undefined) {
        try {
          next.handlers.onStart(this.#channel(slot, running))
        } catch (err) {
          slot.worker.postMessage({ type: 'abort', taskId: next.taskId } satisfies ToWorker)
          slot.tasks.delete(next.taskId)
          next.reject(err)
        }
      }
    }
  }
}

const abortListeners = new WeakMap<Pending, () => void>()
/** The listener that takes a task out of the queue if it is aborted before a worker takes it. */
const queuedAbortListeners = new WeakMap<Pending, () => void>()
