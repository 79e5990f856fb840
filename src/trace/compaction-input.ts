/**
 * What a compaction output replaces in the trace (persist's `CompactionInput`), so that the output
 * of each chunk of an incremental compaction can be applied on its own
 * (docs/compaction.md#incremental-compaction):
 *
 * | kind | replaces | persist |
 * |---|---|---|
 * | `batches` | the hollow batches (a major compaction: the spine batches) the output's desc spans, found by its lower and upper | `IdRange`, and the classic desc-based matching |
 * | `runs` | the named parts, taken out of the runs of the one hollow batch whose lower and upper are the output's; the output's runs join that batch | `PartialBatch` |
 *
 * NB: runs are named by their parts, not by run ids: a part's key is unique in the shard, so the
 * parts identify their runs in any state, including states written before this existed. Naming
 * parts rather than whole runs also lets a chunk take some parts of a run that was exploded for
 * being in another order (each of its parts is a run of its own to the merge).
 */
import type { BatchPart } from '../core/batch.js'

export type CompactionInput = { readonly kind: 'batches' } | { readonly kind: 'runs'; readonly parts: readonly BatchPart[] }

/** The desc-based input: every result before incremental compaction, and every whole-batches chunk. */
export const WHOLE_BATCHES: CompactionInput = Object.freeze({ kind: 'batches' })

/** A part's identity in a shard's trace: a hollow part's key, an inline part's bytes. */
export function partIdentity(p: BatchPart): string {
  return p.kind === 'hollow' ? p.key : `inline:${Buffer.from(p.updates.buffer, p.updates.byteOffset, p.updates.byteLength).toString('base64')}`
}
