/**
 * A merge task's part prefetch (persist's `start_prefetches`): parts are fetched ahead of the
 * worker's requests within a byte budget.
 */
import type { SortOrder } from '../columnar/sort-key.js'
import { sortedIn, type PlannedRun } from './runs.js'

/** What a `Prefetcher` needs of its merge task (`MergeTaskOptions` satisfies it). */
export interface PrefetcherOptions {
  /** Fetches the bytes of part `part` of run `run`. */
  fetch(run: number, part: number): Promise<Uint8Array>
  /** Sizes of every run's parts, for the prefetch plan. */
  readonly partSizes: readonly (readonly number[])[]
  /** Most bytes fetched ahead and not yet taken. */
  readonly prefetchBudgetBytes: number
  /**
   * The order the merge will need the parts in, as `[run, part]`, when the caller knows it (e.g.
   * by the parts' key lowers): every part once, each run's parts in their order. Default: first
   * part of every run, then second part… Only the prefetch follows it: any part can be taken at
   * any time.
   */
  readonly plan?: readonly (readonly [number, number])[]
  /** Called once, at the first take: whether the whole plan was started within the budget. */
  onPrefetchPlan?(allStarted: boolean): void
  /** Called on every take: whether the part's prefetch had already settled. */
  onPartTaken?(prefetched: boolean, run: number, part: number): void
}

/**
 * Fetches parts ahead in plan order ("first part of every run, then second part of every run…"
 * unless the caller gives one) while the bytes fetched but not yet taken fit the budget.
 */
export class Prefetcher {
  readonly #opts: PrefetcherOptions
  readonly #order: (readonly [number, number])[] = []
  readonly #started = new Map<string, Promise<Uint8Array>>()
  readonly #settled = new Set<string>()
  readonly #taken = new Set<string>()
  #next = 0
  #outstandingBytes = 0

  #begun = false

  constructor(opts: PrefetcherOptions) {
    this.#opts = opts
    if (opts.plan !== undefined) {
      this.#order.push(...opts.plan)
      return
    }
    const maxParts = Math.max(0, ...opts.partSizes.map((p) => p.length))
    for (let i = 0; i < maxParts; i++) {
      for (let run = 0; run < opts.partSizes.length; run++) if (i < (opts.partSizes[run]?.length ?? 0)) this.#order.push([run, i])
    }
  }

  /** NB: prefetching starts with the worker's first request, not when the task is queued. */
  take(run: number, part: number): Promise<Uint8Array> {
    if (!this.#begun) {
      this.#begun = true
      this.#fill()
      this.#opts.onPrefetchPlan?.(this.#next >= this.#order.length)
    }
    const key = `${run}:${part}`
    this.#taken.add(key)
    const started = this.#started.get(key)
    this.#opts.onPartTaken?.(started !== undefined && this.#settled.has(key), run, part)
    if (started === undefined) {
      const bytes = this.#opts.fetch(run, part)
      this.#fill()
      return bytes
    }
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
      const [run, part] = this.#order[this.#next] as readonly [number, number]
      const key = `${run}:${part}`
      // A part already taken (fetched on demand) never blocks the plan, however large.
      if (this.#taken.has(key)) {
        this.#next++
        continue
      }
      const size = this.#size(run, part)
      if (this.#outstandingBytes + size > this.#opts.prefetchBudgetBytes) return
      this.#next++
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

/**
 * The order a merge of `runs` needs their parts in: by the parts' key lowers (each part is needed
 * once the merge reaches its first key), each run's parts in their order, ties by part then run.
 * A run in another order than `order` (or exploded for it) is re-sorted part by part, so its key
 * lowers say nothing: its parts, and any part whose key lower is unknown, go where the part
 * before them in the run goes (the first ones first). Only a prefetch follows it, so a wrong
 * guess costs a wait, never a wrong result.
 */
export function keyLowerPlan(runs: readonly PlannedRun[], order: SortOrder): [number, number][] {
  const none = new Uint8Array(0)
  const entries: { readonly run: number; readonly part: number; readonly key: Uint8Array }[] = []
  runs.forEach((run, r) => {
    const known = sortedIn(run, order)
    let key = none
    run.parts.forEach((p, i) => {
      if (known && p.kind === 'hollow' && p.keyLower !== '') {
        const lower = Buffer.from(p.keyLower, 'base64')
        // NB: a run's key lowers never go down; if one did, the run's order would still hold.
        if (Buffer.compare(lower, key) > 0) key = lower
      }
      entries.push({ run: r, part: i, key })
    })
  })
  entries.sort((a, b) => Buffer.compare(a.key, b.key) || a.part - b.part || a.run - b.run)
  return entries.map((e) => [e.run, e.part])
}
