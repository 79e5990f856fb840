/**
 * The lossless JSON form of a trace, for storing in consensus: every level, in-progress merge,
 * spine batch and hollow batch with its spine id. `traceFromJson(tk, traceToJson(t))` equals `t`
 * (and parsing re-checks every invariant, so corrupt state is refused rather than loaded).
 * `traceToJsonBytes` is its text's bytes, built without converting again the batches converted for
 * an earlier trace (an append's state differs from the one before by a batch).
 */
import * as ac from '../core/antichain.js'
import { batchToJson, parseBatch, type HollowBatchJson } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { DescriptionJson } from '../core/description.js'
import { jsonFieldsThen } from '../core/json-splice.js'
import type { TimestampJson, TimestampKind } from '../core/timestamp.js'
import type { FuelingMerge, MergeState } from './merge-state.js'
import type { IdHollowBatch, SpineBatch } from './spine-batch.js'
import { formatSpineId, parseSpineId } from './spine-id.js'
import { validate, type Trace } from './trace.js'

export interface TraceJson {
  since: TimestampJson[]
  upper: TimestampJson[]
  nextId: number
  levels: MergeStateJson[]
}

export interface MergeStateJson {
  batches: SpineBatchJson[]
  merge: { id: string; since: TimestampJson[]; remainingWork: number } | null
}

export interface SpineBatchJson {
  id: string
  desc: DescriptionJson
  len: number
  parts: { id: string; batch: HollowBatchJson }[]
}

export function traceToJson(trace: Trace): TraceJson {
  const tk = trace.tk
  return {
    since: ac.toJson(tk, trace.since),
    upper: ac.toJson(tk, trace.upper),
    nextId: trace.nextId,
    levels: trace.levels.map((level) => ({
      batches: level.batches.map((sb) => ({
        id: formatSpineId(sb.id),
        desc: descs.toJson(tk, sb.desc),
        len: sb.len,
        parts: sb.parts.map((p) => ({ id: formatSpineId(p.id), batch: batchToJson(tk, p.batch) })),
      })),
      merge:
        level.merge === null
          ? null
          : { id: formatSpineId(level.merge.id), since: ac.toJson(tk, level.merge.since), remainingWork: level.merge.remainingWork },
    })),
  }
}

/**
 * The JSON of each spine batch (as UTF-8 bytes) and hollow batch entry (`{"id":…,"batch":…}`, as
 * text), kept for as long as the value lives. Both are immutable and shared by every trace value a
 * transition makes from another (a merge that completes makes a new spine batch of the same
 * entries), so a trace that gained one batch costs a few small conversions and a copy of bytes, not
 * a conversion of every batch it holds.
 */
const entryTexts = new WeakMap<IdHollowBatch, string>()
const spineBatchBytes = new WeakMap<SpineBatch, Buffer>()

function entryText(tk: TimestampKind, p: IdHollowBatch): string {
  let text = entryTexts.get(p)
  if (text === undefined) {
    text = JSON.stringify({ id: formatSpineId(p.id), batch: batchToJson(tk, p.batch) })
    entryTexts.set(p, text)
  }
  return text
}

function spineBatchJsonBytes(tk: TimestampKind, sb: SpineBatch): Buffer {
  let bytes = spineBatchBytes.get(sb)
  if (bytes === undefined) {
    const head = jsonFieldsThen({ id: formatSpineId(sb.id), desc: descs.toJson(tk, sb.desc), len: sb.len }, 'parts')
    bytes = Buffer.from(`${head}[${sb.parts.map((p) => entryText(tk, p)).join(',')}]}`)
    spineBatchBytes.set(sb, bytes)
  }
  return bytes
}

/**
 * The UTF-8 of `JSON.stringify(traceToJson(trace))`, in pieces (to be concatenated), built from
 * the kept JSON of its batches (see `spineBatchBytes`).
 *
 * With `base`, a delta: every spine batch and hollow batch entry that `trace` shares with `base`
 * (the very value: transitions share what they do not change) is written as its id, a string, in
 * place of its JSON; `traceFromJson` given `base` reads it back. An append's delta holds the
 * trace's frontiers, the spine's ids and the spine batches the append changed, not every batch.
 */
export function traceToJsonBytes(trace: Trace, base?: Trace): Buffer[] {
  const tk = trace.tk
  const shared = base === undefined ? null : sharedValues(base)
  const head = jsonFieldsThen({ since: ac.toJson(tk, trace.since), upper: ac.toJson(tk, trace.upper), nextId: trace.nextId }, 'levels')
  const out: Buffer[] = [Buffer.from(`${head}[`)]
  trace.levels.forEach((level, li) => {
    out.push(Buffer.from(`${li === 0 ? '' : ','}{"batches":[`))
    level.batches.forEach((sb, bi) => {
      if (bi > 0) out.push(Buffer.from(','))
      if (shared === null) out.push(spineBatchJsonBytes(tk, sb))
      else if (shared.has(sb)) out.push(Buffer.from(JSON.stringify(formatSpineId(sb.id))))
      else {
        const head = jsonFieldsThen({ id: formatSpineId(sb.id), desc: descs.toJson(tk, sb.desc), len: sb.len }, 'parts')
        out.push(Buffer.from(`${head}[${sb.parts.map((p) => (shared.has(p) ? JSON.stringify(formatSpineId(p.id)) : entryText(tk, p))).join(',')}]}`))
      }
    })
    const merge =
      level.merge === null ? null : { id: formatSpineId(level.merge.id), since: ac.toJson(tk, level.merge.since), remainingWork: level.merge.remainingWork }
    out.push(Buffer.from(`],"merge":${JSON.stringify(merge)}}`))
  })
  out.push(Buffer.from(']}'))
  return out
}

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string }

/** The spine batches and hollow batch entries of `base`, to write a delta against it. */
function sharedValues(base: Trace): Set<SpineBatch | IdHollowBatch> {
  const out = new Set<SpineBatch | IdHollowBatch>()
  for (const level of base.levels) {
    for (const sb of level.batches) {
      out.add(sb)
      for (const p of sb.parts) out.add(p)
    }
  }
  return out
}

/** What a delta's ids stand for: the spine batches and entries of its base, by formatted id. */
interface DeltaBase {
  readonly spineBatches: ReadonlyMap<string, SpineBatch>
  readonly entries: ReadonlyMap<string, IdHollowBatch>
}

function deltaBase(base: Trace): DeltaBase {
  const spineBatches = new Map<string, SpineBatch>()
  const entries = new Map<string, IdHollowBatch>()
  for (const level of base.levels) {
    for (const sb of level.batches) {
      spineBatches.set(formatSpineId(sb.id), sb)
      for (const p of sb.parts) entries.set(formatSpineId(p.id), p)
    }
  }
  return { spineBatches, entries }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Parses a stored trace; any malformed field or broken invariant is an error naming where. With
 * `base`, `json` is a delta against it (`traceToJsonBytes`): ids stand for its values.
 */
export function traceFromJson(tk: TimestampKind, json: unknown, base?: Trace): Parsed<Trace> {
  const refs = base === undefined ? null : deltaBase(base)
  if (!isObject(json)) return { ok: false, error: 'trace must be an object' }
  const since = ac.parse(tk, json.since)
  if (!since.ok) return { ok: false, error: `trace.since: ${since.error}` }
  const upper = ac.parse(tk, json.upper)
  if (!upper.ok) return { ok: false, error: `trace.upper: ${upper.error}` }
  if (!isCount(json.nextId)) return { ok: false, error: 'trace.nextId must be a non-negative integer' }
  if (!Array.isArray(json.levels)) return { ok: false, error: 'trace.levels must be an array' }
  const levels: MergeState[] = []
  for (const [li, lj] of json.levels.entries()) {
    const level = parseLevel(tk, lj, `trace.levels[${li}]`, refs)
    if (!level.ok) return level
    levels.push(level.value)
  }
  const trace: Trace = Object.freeze({ tk, since: since.value, upper: upper.value, nextId: json.nextId, levels: Object.freeze(levels) })
  const invalid = validate(trace)
  if (invalid !== null) return { ok: false, error: `trace: ${invalid}` }
  return { ok: true, value: trace }
}

function parseLevel(tk: TimestampKind, json: unknown, at: string, refs: DeltaBase | null): Parsed<MergeState> {
  if (!isObject(json)) return { ok: false, error: `${at} must be an object` }
  if (!Array.isArray(json.batches)) return { ok: false, error: `${at}.batches must be an array` }
  const batches: SpineBatch[] = []
  for (const [bi, bj] of json.batches.entries()) {
    const sb = typeof bj === 'string' && refs !== null ? byId(refs.spineBatches, bj, `${at}.batches[${bi}]`) : parseSpineBatch(tk, bj, `${at}.batches[${bi}]`, refs)
    if (!sb.ok) return sb
    batches.push(sb.value)
  }
  let merge: FuelingMerge | null = null
  if (json.merge !== null && json.merge !== undefined) {
    const m = json.merge
    if (!isObject(m)) return { ok: false, error: `${at}.merge must be an object or null` }
    const id = parseSpineId(m.id)
    if (!id.ok) return { ok: false, error: `${at}.merge.id: ${id.error}` }
    const mergeSince = ac.parse(tk, m.since)
    if (!mergeSince.ok) return { ok: false, error: `${at}.merge.since: ${mergeSince.error}` }
    if (!isCount(m.remainingWork)) return { ok: false, error: `${at}.merge.remainingWork must be a non-negative integer` }
    merge = Object.freeze({ id: id.value, since: mergeSince.value, remainingWork: m.remainingWork })
  }
  return { ok: true, value: Object.freeze({ batches: Object.freeze(batches), merge }) }
}

/** The value of `base` that a delta's `id` stands for. */
function byId<T>(values: ReadonlyMap<string, T>, id: string, at: string): Parsed<T> {
  const v = values.get(id)
  return v === undefined ? { ok: false, error: `${at}: ${id} is not in the version the delta is written against` } : { ok: true, value: v }
}

function parseSpineBatch(tk: TimestampKind, json: unknown, at: string, refs: DeltaBase | null): Parsed<SpineBatch> {
  if (!isObject(json)) return { ok: false, error: `${at} must be an object` }
  const id = parseSpineId(json.id)
  if (!id.ok) return { ok: false, error: `${at}.id: ${id.error}` }
  const desc = descs.parse(tk, json.desc)
  if (!desc.ok) return { ok: false, error: `${at}.desc.${desc.error}` }
  if (!isCount(json.len)) return { ok: false, error: `${at}.len must be a non-negative integer` }
  if (!Array.isArray(json.parts)) return { ok: false, error: `${at}.parts must be an array` }
  const parts: IdHollowBatch[] = []
  for (const [pi, pj] of json.parts.entries()) {
    const pat = `${at}.parts[${pi}]`
    if (typeof pj === 'string' && refs !== null) {
      const entry = byId(refs.entries, pj, pat)
      if (!entry.ok) return entry
      parts.push(entry.value)
      continue
    }
    if (!isObject(pj)) return { ok: false, error: `${pat} must be an object` }
    const pid = parseSpineId(pj.id)
    if (!pid.ok) return { ok: false, error: `${pat}.id: ${pid.error}` }
    const batch = parseBatch(tk, null, pj.batch, `${pat}.batch`)
    if (!batch.ok) return batch
    parts.push(Object.freeze({ id: pid.value, batch: batch.value }))
  }
  return { ok: true, value: Object.freeze({ id: id.value, desc: desc.value, parts: Object.freeze(parts), len: json.len }) }
}
