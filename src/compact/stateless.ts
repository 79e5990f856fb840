/**
 * Stateless compactions (`POST /v1/compact`) in flight: Stage D only, run on the same worker pool
 * and under the same timeout as jobs, with no record, queue, permit or apply. They are tracked
 * only so that a stopping compactor can wait for them within its grace and then abort the rest.
 */
import type { HollowBatch } from '../core/batch.js'
import type { ConfigValues } from '../dyncfg/registry.js'
import { AppError } from '../errors.js'
import type { ResolvedRequest } from './compaction.js'
import { runMerge, type RunnerDeps } from './job-runner.js'
import { selectSchema, timeoutMs } from './plan.js'

interface InFlight {
  abort(reason: AppError): void
  readonly settled: Promise<void>
}

export class StatelessCompactions {
  readonly #inFlight = new Set<InFlight>()

  /**
   * Compacts `merge` and hands its output over (the caller owns its parts). Throws TIMED_OUT,
   * Stage D's error (outputs it wrote deleted), or the reason given to `abortAll`.
   */
  async run(deps: RunnerDeps, merge: ResolvedRequest, cfg: ConfigValues): Promise<HollowBatch> {
    const controller = new AbortController()
    const aborted: { reason: AppError | null } = { reason: null }
    let settle!: () => void
    const entry: InFlight = {
      abort: (reason) => {
        if (aborted.reason !== null) return
        aborted.reason = reason
        controller.abort(reason)
      },
      settled: new Promise<void>((resolve) => {
        settle = resolve
      }),
    }
    this.#inFlight.add(entry)
    try {
      const r = await runMerge(deps, merge, cfg, null, {
        signal: controller.signal,
        abortReason: () => (aborted.reason === null ? null : { code: 'CANCELLED', message: aborted.reason.message }),
        timeoutMs: timeoutMs(merge.inputs, cfg.persist_compaction_minimum_timeout),
        schema: selectSchema(merge.inputs, merge.knownSchemaIds, merge.writerSchemaId, cfg.persist_compaction_use_most_recent_schema),
        apply: false,
      })
      if (aborted.reason !== null) throw aborted.reason
      if (r.kind === 'failed') throw new AppError(r.error.code, r.error.message)
      if (r.kind !== 'applied') throw new Error('a merge run without apply hands its output over')
      return r.output
    } finally {
      this.#inFlight.delete(entry)
      settle()
    }
  }

  /** Settles when each compaction in flight now has ended. */
  settled(): Promise<void>[] {
    return [...this.#inFlight].map((a) => a.settled)
  }

  /** Aborts every compaction in flight with `reason`. */
  abortAll(reason: AppError): void {
    for (const a of this.#inFlight) a.abort(reason)
  }
}
