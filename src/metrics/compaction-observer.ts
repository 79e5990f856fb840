/**
 * Turns the compactor's snapshots of each compaction into throughput counters and a duration
 * histogram: every change adds what the compaction's progress moved since its previous snapshot,
 * and its final snapshot observes its duration by outcome.
 *
 * Takes plain numbers (`CompactionView`), so this layer knows nothing of the compactor; the
 * composition root maps each snapshot to a view.
 *
 * NB: progress counters are cumulative per compaction and only move forward; a snapshot whose
 * progress went backwards adds nothing. Ids of final compactions are forgotten, so memory is
 * bounded by the compactions in flight.
 */
import type { Counter, Histogram } from 'prom-client'

/** Label values of `persist_compaction_duration_seconds{outcome}`. */
export const COMPACTION_OUTCOMES = ['applied', 'not_applied', 'failed', 'timed_out', 'cancelled'] as const
export type CompactionOutcome = (typeof COMPACTION_OUTCOMES)[number]

export interface CompactionProgressView {
  readonly updatesRead: number
  readonly updatesWritten: number
  readonly bytesRead: number
}

/** One snapshot of one compaction, as the observer needs it. */
export interface CompactionView {
  readonly id: string
  readonly progress: CompactionProgressView
  /** Whether this is the compaction's last snapshot. */
  readonly final: boolean
  /** For a final compaction that ran: how it ended and how long it ran (start to finish); else null. */
  readonly ran: { readonly outcome: CompactionOutcome; readonly seconds: number } | null
}

export interface CompactionThroughputMetrics {
  readonly updatesRead: Counter
  readonly updatesWritten: Counter
  readonly bytesRead: Counter
  readonly duration: Histogram<'outcome'>
}

const KEYS = ['updatesRead', 'updatesWritten', 'bytesRead'] as const

export class CompactionObserver {
  readonly #metrics: CompactionThroughputMetrics
  readonly #seen = new Map<string, CompactionProgressView>()

  constructor(metrics: CompactionThroughputMetrics) {
    this.#metrics = metrics
  }

  observe(view: CompactionView): void {
    const before = this.#seen.get(view.id)
    for (const key of KEYS) {
      const delta = view.progress[key] - (before?.[key] ?? 0)
      if (Number.isFinite(delta) && delta > 0) this.#metrics[key].inc(delta)
    }
    if (view.final) {
      this.#seen.delete(view.id)
      if (view.ran !== null) this.#metrics.duration.observe({ outcome: view.ran.outcome }, view.ran.seconds)
      return
    }
    const next: Record<(typeof KEYS)[number], number> = { updatesRead: 0, updatesWritten: 0, bytesRead: 0 }
    for (const key of KEYS) next[key] = Math.max(view.progress[key], before?.[key] ?? 0)
    this.#seen.set(view.id, next)
  }

  /** Compactions in flight that moved at least once (for tests). */
  get tracked(): number {
    return this.#seen.size
  }
}
