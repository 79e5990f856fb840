/**
 * Runs in merge order: the inputs' runs as a merge reads them (persist's `order_runs`), and a chunk
 * of them. Shared by compaction (which chunks them within the memory bound) and snapshot reads
 * (which merge them all at once).
 */
import { runs, type BatchPart, type HollowBatch, type RunMeta, type RunOrder } from '../core/batch.js'

/** One run as compaction sees it: where it came from and its parts. */
export interface PlannedRun {
  /** Index of the input batch the run belongs to. */
  readonly input: number
  readonly meta: RunMeta
  readonly parts: readonly BatchPart[]
  /** True when this run is one part of a run exploded for being in the wrong order. */
  readonly exploded: boolean
}

/**
 * Whether `run` is stored sorted in `order` across its parts: written in that order (null counts as
 * `codec`) and not exploded. Only then do its parts' key lowers and record batches follow `order`.
 */
export function sortedIn(run: PlannedRun, order: RunOrder): boolean {
  return !run.exploded && (run.meta.order ?? 'codec') === order
}

/**
 * `order_runs`: round robin over the inputs, taking each input's next run in turn. A run whose
 * order (null counts as `codec`) is not the preferred one is exploded into single-part runs, since
 * nothing can be assumed about order across its parts. Empty inputs contribute nothing.
 */
export function orderRuns(inputs: readonly HollowBatch[], preferred: RunOrder): PlannedRun[] {
  return roundRobin(inputs.map((b, input) => batchRuns(b, input, preferred)))
}

/** The runs of input `input` (batch `b`) as a merge reads them: exploded where out of order. */
export function batchRuns(b: HollowBatch, input: number, preferred: RunOrder): PlannedRun[] {
  const out: PlannedRun[] = []
  for (const r of runs(b)) {
    if ((r.meta.order ?? 'codec') === preferred) {
      out.push({ input, meta: r.meta, parts: r.parts, exploded: false })
    } else {
      for (const p of r.parts) out.push({ input, meta: r.meta, parts: [p], exploded: r.parts.length > 1 })
    }
  }
  return out
}

/** One run of each list in turn, round after round, until every list is used up. */
export function roundRobin(lists: readonly (readonly PlannedRun[])[]): PlannedRun[] {
  const ordered: PlannedRun[] = []
  for (let round = 0; ; round++) {
    let took = false
    for (const list of lists) {
      const r = list[round]
      if (r !== undefined) {
        ordered.push(r)
        took = true
      }
    }
    if (!took) return ordered
  }
}

export interface Chunk {
  readonly runs: readonly PlannedRun[]
  /** Σ over the chunk's runs of each run's largest part. */
  readonly memoryBytes: number
}

