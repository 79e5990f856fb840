/**
 * Checks a client-supplied HollowBatch (POST /append) against what blob storage really holds, and
 * returns it with every part's facts taken from the part itself, so that nothing a client claims
 * (sizes, diff sums, key lowers, run order, schema) can later make a read or a compaction fail.
 *
 * Each part (hollow: fetched; inline: its bytes) must decode as a part of this shard's timestamp
 * kind whose inline description equals the batch's, whose schema id is registered with exactly the
 * part's key and value types and matches its run's, and whose order agrees with the run's declared
 * order (`unordered` accepts any). Parts of an ordered run must follow each other in that order.
 * Inline parts, bytes the client made up, must also hold only rows in `[lower, upper)`, in their
 * declared order. `len` becomes the number of rows.
 *
 * NB: a truncated registration (a desc narrower than the parts', docs/concepts.md#registered-and-written-descriptions) is
 * refused: compactd's writer never produces one, and refusing keeps every read exact.
 */
import * as descs from '../core/description.js'
import { runs, type BatchPart, type HollowBatch, type RunMeta } from '../core/batch.js'
import type { ShardId } from '../core/ids.js'
import { blobKey } from '../core/paths.js'
import type { TimestampKind } from '../core/timestamp.js'
import { dataTypeEquals } from '../columnar/data-type.js'
import { decodePart, PartFormatError, type DecodedPart } from '../columnar/part-format.js'
import { compareRows, firstUnsortedRow, rowOrderKeys, sortKeyColumn } from '../columnar/sort-key.js'
import { timeAt, UpdatesBuilder, type Updates } from '../columnar/updates.js'
import type { Blob } from '../location/blob.js'
import { firstRowOutside } from '../engine/write-header.js'
import { keyLowerAt, runLimited } from './batch-writer.js'
import { schemaById, type ShardState } from './state.js'

export type CheckedBatch = { readonly ok: true; readonly batch: HollowBatch } | { readonly ok: false; readonly error: string }

interface PartFacts {
  readonly part: BatchPart
  readonly rows: number
  readonly schemaId: number
  /** First and last rows (a copy, so the decoded part can be dropped); null when empty. */
  readonly edges: Updates | null
}

/** `batch` verified against blob storage and normalized; `at` names it in errors (`body.batch`). */
export async function checkClientBatch(blob: Blob, shardId: ShardId, tk: TimestampKind, state: ShardState, batch: HollowBatch, at: string, concurrency: number): Promise<CheckedBatch> {
  const metas = runMetaPerPart(batch)
  const jobs = batch.parts.map((p, i) => async (): Promise<PartFacts | string> => {
    const where = `${at}.parts[${i}]`
    let bytes: Uint8Array
    if (p.kind === 'hollow') {
      const got = await blob.get(blobKey(shardId, p.key))
      if (got === null) return `${where}.key: part ${p.key} does not exist in this shard`
      bytes = got
    } else {
      bytes = p.updates
    }
    let decoded: DecodedPart
    try {
      decoded = decodePart(bytes)
    } catch (e) {
      if (e instanceof PartFormatError) return `${where}: not a valid part (${e.message})`
      throw e
    }
    const { meta, updates } = decoded
    const run = metas[i] as RunMeta
    if (meta.timeKind !== tk.name) return `${where}: part holds ${meta.timeKind} times, the shard ${tk.name}`
    if (!descs.equals(tk, meta.desc, batch.desc)) {
      return `${where}: part was written with desc ${descs.format(tk, meta.desc)}, not the batch's ${descs.format(tk, batch.desc)}`
    }
    const schema = schemaById(state, meta.schemaId)
    if (schema === undefined || !dataTypeEquals(schema.key, meta.keyType) || !dataTypeEquals(schema.val, meta.valType)) {
      return `${where}: part schema ${meta.schemaId} is not a schema of this shard`
    }
    if (run.schemaId !== null && run.schemaId !== meta.schemaId) return `${where}: part schema ${meta.schemaId} differs from its run's schemaId ${run.schemaId}`
    const declared = run.order ?? 'codec'
    if (declared !== 'unordered' && declared !== meta.order) return `${where}: part order ${meta.order} differs from its run's order ${declared}`
    const n = updates.length
    if (p.kind === 'inline') {
      // NB: an inline part is whatever bytes the client sent, not a part compactd wrote: its rows
      // must honour the description and the declared order, or a read would fail on them later.
      const outside = firstRowOutside(tk, updates, meta.desc)
      if (outside !== -1) return `${where}: row ${outside} has time ${tk.format(timeAt(updates, outside))}, outside the batch's [lower, upper)`
      if (meta.order !== 'unordered' && firstUnsortedRow(rowOrderKeys(updates, meta.order), n) !== -1) return `${where}: rows are not in ${meta.order} order`
    }
    const keyLower = meta.order === 'unordered' || n === 0 ? '' : keyLowerAt(sortKeyColumn(updates.keys, updates.keyType, meta.order), 0)
    const normalized: BatchPart =
      p.kind === 'hollow'
        ? { kind: 'hollow', key: p.key, encodedSizeBytes: bytes.byteLength, keyLower, diffsSum: meta.diffsSum, schemaId: meta.schemaId, stats: { updates: n } }
        : { kind: 'inline', encodedSizeBytes: bytes.byteLength, updates: bytes }
    return { part: normalized, rows: n, schemaId: meta.schemaId, edges: n === 0 ? null : edgeRows(updates) }
  })
  const facts = await runLimited(jobs, concurrency)
  const firstError = facts.find((f): f is string => typeof f === 'string')
  if (firstError !== undefined) return { ok: false, error: firstError }
  const checked = facts as PartFacts[]

  // Parts of an ordered run must follow each other.
  let index = 0
  const runMeta: RunMeta[] = []
  for (const run of runs(batch)) {
    const order = run.meta.order ?? 'codec'
    const schemaId = (checked[index] as PartFacts).schemaId
    let prev: Updates | null = null
    for (let j = 0; j < run.parts.length; j++, index++) {
      const f = checked[index] as PartFacts
      if (f.schemaId !== schemaId) return { ok: false, error: `${at}.parts[${index}]: part schema ${f.schemaId} differs from the schema ${schemaId} of the run's first part` }
      if (order === 'unordered' || f.edges === null) continue
      if (prev !== null && compareRows(rowOrderKeys(prev, order), 1, rowOrderKeys(f.edges, order), 0) > 0) {
        return { ok: false, error: `${at}.parts[${index}]: its first row sorts before the last row of the part before it in the same ${order} run` }
      }
      prev = f.edges
    }
    runMeta.push({ order, schemaId })
  }
  const parts = checked.map((f) => f.part)
  const len = checked.reduce((s, f) => s + f.rows, 0)
  return { ok: true, batch: { ...batch, len, parts, runMeta } }
}

/** The run metadata of each part, by part index. */
function runMetaPerPart(batch: HollowBatch): RunMeta[] {
  const out: RunMeta[] = []
  for (const run of runs(batch)) for (let j = 0; j < run.parts.length; j++) out.push(run.meta)
  return out
}

/** Rows 0 and n-1 of `u` (n ≥ 1), copied. */
function edgeRows(u: Updates): Updates {
  const b = new UpdatesBuilder(u, { capacity: 2 })
  const src = b.bind(u)
  b.appendRow(src, 0)
  b.appendRow(src, u.length - 1)
  return b.finish()
}
