/**
 * The periodic GC pass: every interval, one pass over this instance's share of the shards
 * (gc.ts `pass`), never two at once. Stopping aborts the pass in flight, which ends after the shard
 * it is collecting rather than after the thousands left, so a shutdown stays within its bound.
 */
export class PeriodicGc {
  readonly #intervalMs: number | null
  readonly #pass: (signal: AbortSignal) => Promise<unknown>
  readonly #onError: (err: unknown) => void
  #timer: NodeJS.Timeout | null = null
  #running: Promise<void> | null = null
  #stopping: AbortController | null = null

  /** `intervalMs` null: no periodic pass (start does nothing). */
  constructor(intervalMs: number | null, pass: (signal: AbortSignal) => Promise<unknown>, onError: (err: unknown) => void) {
    this.#intervalMs = intervalMs
    this.#pass = pass
    this.#onError = onError
  }

  /** Idempotent. The timer does not keep the process alive. */
  start(): void {
    if (this.#intervalMs === null || this.#timer !== null) return
    const stopping = (this.#stopping = new AbortController())
    this.#timer = setInterval(() => {
      if (this.#running !== null) return
      this.#running = this.#pass(stopping.signal)
        .then(() => undefined)
        .catch((err: unknown) => this.#onError(err))
        .finally(() => (this.#running = null))
    }, this.#intervalMs)
    this.#timer.unref()
  }

  /** Stops the timer and waits for the pass in flight, aborted. Idempotent. */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#stopping?.abort()
    await this.#running
  }
}
