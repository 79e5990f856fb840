/**
 * The main-thread half of a merge task: serves the worker's part requests (prefetching within a
 * byte budget, persist's `start_prefetches`), hands each output to `onOutput`, and acknowledges
 * outputs so that at most `maxOutstanding` are in flight (persist's pipelined part uploads).
 */
import type { MergeRunsStats } from './merge-runs.js'
import type { MergeTaskPayload } from './worker.js'
import type { TaskChannel, WorkerMessage, WorkerPool } from './worker-pool.js'

export interface MergeTaskOutput {
  readonly bytes: Uint8Array
  readonly rows: number
  readonly diffsSum?: bigint
  readonly keyLower?: Uint8Array
  /** Logical bytes of the rows (column data before encoding). */
  readonly goodBytes?: number
  readonly statsSeconds?: number
}

/** Buffers that must never be transferred away (they stay referenced by state or callers). */
const inlineBuffers = new WeakSet<ArrayBufferLike>()

/** Marks `bytes` as owned elsewhere: merge tasks copy it before handing it to a worker. */
export function keepBuffer(bytes: Uint8Array): Uint8Array {
  inlineBuffers.add(bytes.buffer)
  return bytes
}

export interface MergeTaskOptions {
  /** Fetches the bytes of part `part` of run `run` (blob get, or an inline part's bytes). */
  fetch(run: number, part: number): Promise<Uint8Array>
  /** Sizes of every run's parts, for the prefetch plan. */
  readonly partSizes: readonly (readonly number[])[]
  /** Extra memory for fetching ahead, not counted against the memory bound (2 × target size). */
  readonly prefetchBudgetBytes: number
  /** Takes one output (e.g. uploads it); the task waits when `maxOutstanding` are unfinished. */
  onOutput(out: MergeTaskOutput): Promise<void>
  readonly maxOutstanding: number
  onProgress?(p: { updatesRead: number; bytesRead: number; updatesWritten: number }): void
  /** Metric hooks. */
  onPrefetchPlan?(allStarted: boolean): void
  onPartTaken?(prefetched: boolean): void
  onWriteStall?(): void
  readonly signal?: AbortSignal
}

export async function runMergeTask(pool: WorkerPool, payload: MergeTaskPayload, opts: MergeTaskOptions): Promise<MergeRunsStats> {
  const prefetch = new Prefetcher(opts)
  const inFlight: Promise<void>[] = []
  let failure: unknown = null
  const fail = (err: unknown, channel: TaskChannel): void => {
    if (failure === null) failure = err
    channel.post('abort')
  }
  try {
    const stats = await pool.run<MergeRunsStats>(
      'merge',
      payload,
      {
        onMessage: (msg: WorkerMessage, channel) => {
          if (msg.type === 'need') {
            const run = msg.run as number
            const part = msg.part as number
            prefetch.take(run, part).then(
              (bytes) => {
                // Transfer without a copy when the bytes own their whole buffer (not a view into a
                // pooled or shared one, such as an inline part held in state).
                // Shared memory is posted as is (both halves of a split chunk read one copy).
                if (bytes.buffer instanceof SharedArrayBuffer) {
                  channel.post('part', { run, part, bytes })
                  return
                }
                const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
                const payload = owned && !inlineBuffers.has(bytes.buffer) ? bytes : bytes.slice()
                channel.post('part', { run, part, bytes: payload }, [payload.buffer as ArrayBuffer])
              },
              (err: unknown) => fail(err, channel),
            )
          } else if (msg.type === 'output') {
            const done = opts.onOutput({
              bytes: msg.bytes as Uint8Array,
              rows: msg.rows as number,
              diffsSum: msg.diffsSum as bigint | undefined,
              keyLower: msg.keyLower as Uint8Array | undefined,
              goodBytes: msg.goodBytes as number | undefined,
              statsSeconds: msg.statsSeconds as number | undefined,
            })
            done.catch((err: unknown) => fail(err, channel))
            inFlight.push(done)
            const pending = inFlight.length
            if (pending < opts.maxOutstanding) {
              channel.post('ack')
            } else {
              opts.onWriteStall?.()
              const oldest = inFlight.shift() as Promise<void>
              oldest.then(
                () => channel.post('ack'),
                () => undefined,
              )
            }
          } else if (msg.type === 'progress') {
            opts.onProgress?.(msg as unknown as { updatesRead: number; bytesRead: number; updatesWritten: number })
          }
        },
        onDone: (msg) => msg.stats as MergeRunsStats,
      },
      { signal: opts.signal },
    )
    await Promise.all(inFlight)
    if (failure !== null) throw failure
    return stats
  } catch (err) {
    // Let started outputs settle so the caller knows every part that may have been written.
    await Promise.allSettled(inFlight)
    throw failure ?? err
  }
}

/**
 * Fetches parts ahead in "first part of every run, then second part of every run…" order while
 * the bytes fetched but not yet taken fit the budget.
 */
class Prefetcher {
  readonly #opts: MergeTaskOptions
  readonly #order: [number, number][] = []
  readonly #started = new Map<string, Promise<Uint8Array>>()
  readonly #settled = new Set<string>()
  readonly #taken = new Set<string>()
  #next = 0
  #outstandingBytes = 0

  constructor(opts: MergeTaskOptions) {
    this.#opts = opts
    const maxParts = Math.max(0, ...opts.partSizes.map((p) => p.length))
    for (let i = 0; i < maxParts; i++) {
      for (let run = 0; run < opts.partSizes.length; run++) if (i < (opts.partSizes[run]?.length ?? 0)) this.#order.push([run, i])
    }
    this.#fill()
    opts.onPrefetchPlan?.(this.#next >= this.#order.length)
  }

  take(run: number, part: number): Promise<Uint8Array> {
    const key = `${run}:${part}`
    this.#taken.add(key)
    const started = this.#started.get(key)
    this.#opts.onPartTaken?.(started !== undefined && this.#settled.has(key))
    if (started === undefined) return this.#opts.fetch(run, part)
    this.#started.delete(key)
    this.#outstandingBytes -= this.#size(run, part)
    this.#fill()
    return started
  }

  #size(run: number, part: number): number {
    return this.#opts.partSizes[run]?.[part] ?? 0
  }

  #fill(): void {
    while (this.#next < this.#order.length) {
      const [run, part] = this.#order[this.#next] as [number, number]
      const size = this.#size(run, part)
      if (this.#outstandingBytes + size > this.#opts.prefetchBudgetBytes) return
      this.#next++
      const key = `${run}:${part}`
      if (this.#taken.has(key)) continue
      this.#outstandingBytes += size
      const p = this.#opts.fetch(run, part)
      p.then(
        () => this.#settled.add(key),
        () => undefined,
      )
      this.#started.set(key, p)
    }
  }
}
