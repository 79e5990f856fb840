/**
 * Writer maintenance (persist's `WriterMaintenance`): the merge requests an append makes become
 * compactions under the same heuristics, queue and kill switch as submitted ones.
 *
 * **Backlog.** An append also asks for the oldest spine batch of several batches that is not
 * compact (a merge the spine made), unless its own requests cover it (persist's writers claim old
 * merge requests too, on appends that bring no new work). Requests dropped while compaction was
 * paused, by a full queue, or whose compaction failed, leave such batches; without this, a trace
 * that grew long while compaction was paused was compacted only as fast as new merges covering the
 * old batches came along: after about as many appends again as the pause took, while every
 * snapshot merged all of its runs. One job per spine batch per `BACKLOG_RETRY_MS`: the idempotency
 * key `backlog:<spine id>:<period>` makes a spine batch asked for while its job is queued or
 * running that same job, on every instance, and gives one whose job failed or was lost another
 * chance in the next period. None while a compaction holds a claim on the shard. This process also
 * remembers the last key it submitted for each of the `BACKLOG_KEYS_KEPT` shards it submitted for
 * last, so most appends ask the job store nothing.
 *
 * NB: a full queue (or a stopping compactor) drops a request, counted as `dropped`; the trace keeps
 * the work (a non-compact spine batch), so a later append (its backlog request), the idle sweep or
 * an operator request picks it up. While `compaction_maintenance_enabled` is false no request is
 * made at all.
 */
import { isAppError } from '../errors.js'
import { setNewest } from '../core/newest-map.js'
import type { Shards } from '../shard/shards.js'
import { covers, formatSpineId } from '../trace/spine-id.js'
import { nonCompactMergeReqs } from '../trace/trace.js'
import type { Compactor } from './compactor.js'
import type { createCompactorShards } from './compactor-shards.js'

/** How long a backlog request for one spine batch stands before it may be asked for again. */
export const BACKLOG_RETRY_MS = 10 * 60 * 1000

/** Shards whose last backlog key this process remembers (the oldest forgotten first). */
export const BACKLOG_KEYS_KEPT = 4096

/** Subscribes the compactor to the shards' merge requests; returns the unsubscribe. */
export function startWriterMaintenance(
  shards: Pick<Shards, 'onMergeRequests'>,
  compactor: Pick<Compactor, 'status' | 'submitResolved'>,
  port: Pick<ReturnType<typeof createCompactorShards>, 'maintenanceRequest'>,
  onError: (err: unknown, context: string) => void,
  enabled: () => boolean,
  now: () => number = Date.now,
): () => void {
  /** Per shard: the idempotency key of the last backlog request this process submitted. */
  const lastBacklog = new Map<string, string>()
  return shards.onMergeRequests((shardId, reqs, current) => {
    if (compactor.status() === 'stopped' || !enabled()) return
    const submit = (desc: (typeof reqs)[number]['desc'], inputs: (typeof reqs)[number]['inputs'], idempotencyKey?: string): void => {
      const resolved = port.maintenanceRequest(
        current.state,
        desc,
        inputs.map((i) => i.batch),
      )
      compactor.submitResolved(resolved, { source: 'maintenance', ...(idempotencyKey === undefined ? {} : { idempotencyKey }) }).catch((err: unknown) => {
        if (idempotencyKey !== undefined && lastBacklog.get(shardId) === idempotencyKey) lastBacklog.delete(shardId)
        if (isAppError(err) && (err.code === 'QUEUE_FULL' || err.code === 'SERVICE_UNAVAILABLE')) return
        onError(err, `queueing writer maintenance for shard ${resolved.shardId} failed; a later append or an operator request picks the work up`)
      })
    }
    for (const req of reqs) submit(req.desc, req.inputs)
    // A shard a compaction holds a claim on is left to it (as the idle sweep does): a backlog job
    // beside it would more often compact inputs the other replaces.
    if ((current.state.claims?.length ?? 0) > 0) return
    // NB: spine batches of several batches: the merges the spine made; one batch of several runs
    // (a client's append) is left to requests, as before.
    const oldest = nonCompactMergeReqs(current.state.trace).find((r) => r.inputs.length > 1)
    if (oldest === undefined || reqs.some((r) => covers(r.id, oldest.id))) return
    const key = `backlog:${formatSpineId(oldest.id)}:${Math.floor(now() / BACKLOG_RETRY_MS)}`
    if (lastBacklog.get(shardId) === key) return
    setNewest(lastBacklog, shardId, key, BACKLOG_KEYS_KEPT)
    submit(oldest.desc, oldest.inputs, key)
  })
}
