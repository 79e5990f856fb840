/**
 * Which parts a compaction job wrote: its output parts are written under a writer key made from
 * the job's id (`c<uuid>` → `w<uuid>`), whichever attempt and instance writes them. So a later
 * attempt of a `merges` or `major` compaction, planned again from the shard's state, recognizes the
 * chunks its earlier attempts applied and leaves them out (docs/compaction.md#incremental-compaction).
 *
 * NB: a writer key only names parts (GC, reads and applies do not look at it); an id that is not a
 * compaction id (tests' jobs) gets none, and its outputs take the instance's key.
 */
import type { BatchPart } from '../core/batch.js'
import { isCompactionId, type WriterKey } from '../core/ids.js'
import { parsePartialBatchKey } from '../core/paths.js'

/** The writer key of job `job`'s outputs, or null when `job` is not a compaction id. */
export function jobWriterKey(job: string): WriterKey | null {
  return isCompactionId(job) ? (`w${job.slice(1)}` as WriterKey) : null
}

/** Whether a part is an output job `job` wrote (never, for a job without a writer key). */
export function outputOf(job: string): (p: BatchPart) => boolean {
  const key = jobWriterKey(job)
  return (p) => {
    if (key === null || p.kind !== 'hollow') return false
    const parsed = parsePartialBatchKey(p.key)
    return parsed.ok && parsed.value.writerKey === key
  }
}
