/**
 * Writer maintenance (persist's `WriterMaintenance`): the merge requests an append makes become
 * compactions under the same heuristics, queue and kill switch as submitted ones.
 *
 * NB: a full queue (or a stopping compactor) drops a request, counted as `dropped`; the trace keeps
 * the work (a non-compact spine batch), so a later append or an operator request picks it up. The
 * same holds while `compaction_maintenance_enabled` is false: no request is made at all.
 */
import { isAppError } from '../errors.js'
import type { Shards } from '../shard/shards.js'
import type { Compactor } from './compactor.js'
import type { createCompactorShards } from './compactor-shards.js'

/** Subscribes the compactor to the shards' merge requests; returns the unsubscribe. */
export function startWriterMaintenance(
  shards: Pick<Shards, 'onMergeRequests'>,
  compactor: Pick<Compactor, 'status' | 'submitResolved'>,
  port: Pick<ReturnType<typeof createCompactorShards>, 'maintenanceRequest'>,
  onError: (err: unknown, context: string) => void,
  enabled: () => boolean,
): () => void {
  return shards.onMergeRequests((_shardId, reqs, current) => {
    if (compactor.status() === 'stopped' || !enabled()) return
    for (const req of reqs) {
      const resolved = port.maintenanceRequest(
        current.state,
        req.desc,
        req.inputs.map((i) => i.batch),
      )
      compactor.submitResolved(resolved, { source: 'maintenance' }).catch((err: unknown) => {
        if (isAppError(err) && (err.code === 'QUEUE_FULL' || err.code === 'SERVICE_UNAVAILABLE')) return
        onError(err, `queueing writer maintenance for shard ${resolved.shardId} failed; a later append or an operator request picks the work up`)
      })
    }
  })
}
