/**
 * Following one compaction to its end (`Compactor.events`, the SSE route, `wait`): its current
 * snapshot, then one `progress` per change (coalesced: a slow reader sees the latest), then one
 * `done` with the final snapshot.
 *
 * A compaction this instance runs reports every change as it happens; one another instance runs
 * is read from the job store every `remotePollMs` and reported when it differs. When this instance
 * stops before the end and will not record it itself, the follower ends with SERVICE_UNAVAILABLE
 * naming where to follow the job instead; when a queued job cannot start because the job store has
 * no space left, with INSUFFICIENT_STORAGE (the job stays queued and starts once space is freed).
 */
import { AppError } from '../errors.js'
import { isFinished, toCompactionJson, type Compaction } from './compaction.js'
import type { CompactionEvent } from './compactor-port.js'

/** What following needs of the compactor. */
export interface FollowSource {
  /** The compaction as the store holds it (throws COMPACTION_NOT_FOUND). */
  get(id: string): Promise<Compaction>
  /** Every change of a compaction this instance runs; returns the unsubscribe. */
  onChange(listener: (c: Compaction) => void): () => void
  /** True while this instance runs the job (its changes arrive by `onChange`). */
  runsHere(id: string): boolean
  /** True once this instance stopped, unless it will still record `c`'s end itself. */
  givesUp(c: Compaction): boolean
  /** True while `c` cannot move on: it is queued, and the job store has no space left to record a claim. */
  stalled(c: Compaction): boolean
  readonly remotePollMs: number
}

export async function* followCompaction(source: FollowSource, id: string, signal: AbortSignal | undefined): AsyncGenerator<CompactionEvent, void, undefined> {
  // NB: one object, because the change listener writes what the loop reads.
  const seen = { latest: await source.get(id), changed: true, wake: null as (() => void) | null }
  const unsubscribe = source.onChange((c) => {
    if (c.id !== id) return
    seen.latest = c
    seen.changed = true
    seen.wake?.()
  })
  const onAbort = (): void => seen.wake?.()
  const stopped = (): boolean => signal?.aborted === true
  signal?.addEventListener('abort', onAbort)
  try {
    for (;;) {
      if (stopped()) return
      if (isFinished(seen.latest.status)) {
        yield { type: 'done', compaction: seen.latest }
        return
      }
      if (source.givesUp(seen.latest)) {
        throw new AppError('SERVICE_UNAVAILABLE', `this instance is stopping; compaction ${id} is ${seen.latest.status} and another instance finishes it: follow it there (GET /v1/compactions/${id})`, {
          compactionId: id,
        })
      }
      if (source.stalled(seen.latest)) {
        throw new AppError(
          'INSUFFICIENT_STORAGE',
          `compaction ${id} is ${seen.latest.status} and cannot start: the job store has no space left to record it; it starts once space is freed (GET /v1/compactions/${id})`,
          { compactionId: id },
        )
      }
      if (seen.changed) {
        seen.changed = false
        yield { type: 'progress', compaction: seen.latest }
        continue
      }
      const local = source.runsHere(id)
      const timer = local ? null : setTimeout(() => seen.wake?.(), source.remotePollMs)
      await new Promise<void>((resolve) => {
        seen.wake = resolve
      })
      seen.wake = null
      if (timer !== null) clearTimeout(timer)
      if (!local && !seen.changed && !stopped()) {
        const fresh = await source.get(id)
        seen.changed = JSON.stringify(toCompactionJson(fresh)) !== JSON.stringify(toCompactionJson(seen.latest))
        seen.latest = fresh
      }
    }
  } finally {
    unsubscribe()
    signal?.removeEventListener('abort', onAbort)
  }
}
