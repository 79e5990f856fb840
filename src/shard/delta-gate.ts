/**
 * Whether this instance writes shard state versions as deltas (machine.ts `MachineOptions.writeDeltas`):
 * while the dynamic config `persist_state_deltas_enabled` is true and every live instance, as the
 * last read of the membership saw them, reads deltas (its heartbeat advertises format 2, job-store.ts
 * `InstanceRecord.stateFormats`). An instance whose heartbeat lacks the field is a build from
 * before deltas, which reads whole versions only: while it is live, every instance writes whole
 * versions, so a rolling upgrade (or a rollback) never hands it a version it cannot read.
 *
 * Until the first read of the membership, and once the last is older than `staleMs` (the job store
 * failing: a build that joined meanwhile would not be seen), versions are whole.
 */
import type { InstanceRecord } from '../location/job-store.js'

/** The envelope version of a delta (machine.ts `Envelope`). */
const DELTA_FORMAT = 2

export interface StateDeltaGateOptions {
  /** `persist_state_deltas_enabled`. */
  readonly enabled: () => boolean
  readonly now: () => number
  /** How long a read of the membership holds (three heartbeats: as long as an instance stays listed). */
  readonly staleMs: number
}

export class StateDeltaGate {
  readonly #o: StateDeltaGateOptions
  /** When the membership was last read, and whether every live instance read deltas then. */
  #seen: { readonly atMs: number; readonly allRead: boolean } | null = null

  constructor(opts: StateDeltaGateOptions) {
    this.#o = opts
  }

  /** The live instances, as just read (this one's included). */
  observe(live: readonly InstanceRecord[]): void {
    this.#seen = { atMs: this.#o.now(), allRead: live.every((i) => i.stateFormats?.includes(DELTA_FORMAT) === true) }
  }

  /** Whether a version written now may be a delta. */
  writeDeltas(): boolean {
    const seen = this.#seen
    if (seen === null || !seen.allRead || this.#o.now() - seen.atMs > this.#o.staleMs) return false
    return this.#o.enabled()
  }
}
