/** Waiting for a compaction to reach a state, on the compactor's `change` events (never a timer). */
import { isFinished, type Compaction } from '../../src/compact/compaction.js'
import type { Compactor } from '../../src/compact/compactor.js'

/**
 * Resolves with compaction `id` once `ready` holds for it; throws if it ends first. `expected`
 * names what `ready` waits for, in the errors.
 */
export async function whenCompaction(compactor: Compactor, id: string, ready: (c: Compaction) => boolean, expected = 'ready'): Promise<Compaction> {
  // NB: listening before reading, so a change between the read and the wait is not missed.
  let changed = 0
  let wake: (() => void) | null = null
  const onChange = (): void => {
    changed++
    wake?.()
  }
  compactor.on('change', onChange)
  try {
    for (let i = 0; i < 10_000; i++) {
      const seen = changed
      const c = await compactor.get(id)
      if (ready(c)) return c
      if (isFinished(c.status)) throw new Error(`compaction ${id} ended ${c.status} before it was ${expected}: ${JSON.stringify(c.reason ?? c.error ?? null)}`)
      if (changed === seen) await new Promise<void>((resolve) => (wake = resolve))
      wake = null
    }
  } finally {
    compactor.off('change', onChange)
  }
  throw new Error(`compaction ${id} never became ${expected}`)
}
