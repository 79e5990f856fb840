/**
 * The on-storage form of a part (docs/concepts.md#part-files) and the Arrow wire form of updates
 * (docs/api.md#arrow-batches).
 *
 * A part is one Arrow IPC **file** with columns `k`, `v` (the schema's Arrow types; unit is
 * `Null`), `t` (`uint64`, or `struct<a: uint32, b: uint32>` for product times) and `d` (`int64`),
 * written as record batches of about `PART_BATCH_BYTES` each. Its schema metadata
 * (`PART_META_KEYS`) carries the inline description (core/description.ts JSON), the run order,
 * the schema id, the timestamp kind, the wrapping i64 sum of the diffs (decimal string), the
 * key/val types (API JSON) and, when there are several batches, each batch's rows, key lower and
 * diff sum (so compaction can read a large part one batch at a time: part-windows.ts).
 *
 * Request and response bodies are Arrow IPC **streams** with the same four columns.
 *
 * Decoding is strict and bounded (ipc-reader.ts): wrong bytes, columns, types, nulls or metadata
 * give a clear error (`PartFormatError` for parts, a `Result` for request bodies), never a crash.
 * Decoded columns are views into the input bytes (zero-copy) when the input is 8-byte aligned;
 * otherwise the input is copied once.
 */
import * as arrow from 'apache-arrow'
import { parseDiff, RUN_ORDERS, type RunOrder } from '../core/batch.js'
import * as descs from '../core/description.js'
import type { Description } from '../core/description.js'
import { TIMESTAMP_KINDS, timestampKind, type TimestampKindName } from '../core/timestamp.js'
import { bitAt, liveRows, onlyData, validityOf } from './column.js'
import { dataTypeToJson, formatDataType, parseDataType, toArrowType, type DataType } from './data-type.js'
import { formatIpcType, IpcError, loadBatch, readIpcFile, readIpcStream, type ColumnPlan, type IpcContents, type IpcField, type IpcType } from './ipc-reader.js'
import { batchSlicer, type OffsetsScratch } from './batch-slices.js'
import { IPC_STREAM_END, ipcStreamSchema, layoutIpcFile, layoutIpcStream } from './ipc-writer.js'
import { err, ok, type Result } from './result.js'
import { sortKeyLowerAt } from './sort-key.js'
import { emptyUpdates, sliceUpdates, sumDiffs, updatesByteLength, UpdatesBuilder, type Updates, type UpdatesShape } from './updates.js'

export const PART_FORMAT_VERSION = 1

/** Schema metadata keys of a part file. */
export const PART_META_KEYS = {
  format: 'compactd.format',
  desc: 'compactd.desc',
  order: 'compactd.order',
  schemaId: 'compactd.schemaId',
  timestamp: 'compactd.timestamp',
  diffsSum: 'compactd.diffsSum',
  keySchema: 'compactd.keySchema',
  valSchema: 'compactd.valSchema',
  /** JSON `[{ rows, keyLower, diffsSum }]` per record batch; only when there are several. */
  batches: 'compactd.batches',
} as const

/** About how many bytes of rows (`updatesByteLength`) each record batch of a part holds. */
export const PART_BATCH_BYTES = 1 << 20

/** One record batch of a part, as the part's metadata describes it. */
export interface PartBatchInfo {
  readonly rows: number
  /** Base64 of the batch's first key in the part's order, cut like a part's key lower ('' for unordered parts). */
  readonly keyLower: string
  /** Wrapping i64 sum of the batch's diffs. */
  readonly diffsSum: bigint
}

/** A part that cannot be decoded: not Arrow, wrong columns or types, bad metadata, corrupt data. */
export class PartFormatError extends Error {
  override readonly name = 'PartFormatError'
}

/** What the writer of a part states about it. */
export interface PartWriteMeta {
  readonly desc: Description
  readonly order: RunOrder
  readonly schemaId: number
}

/** Everything a part's metadata holds. */
export interface PartMeta extends PartWriteMeta {
  readonly timeKind: TimestampKindName
  readonly keyType: DataType
  readonly valType: DataType
  /** Wrapping i64 sum of the part's diffs. */
  readonly diffsSum: bigint
}

export interface DecodedPart {
  readonly meta: PartMeta
  readonly updates: Updates
}

export const COLUMN_NAMES = ['k', 'v', 't', 'd'] as const

function timeArrowType(kind: TimestampKindName): arrow.DataType {
  return kind === 'u64'
    ? new arrow.Uint64()
    : new arrow.Struct([new arrow.Field('a', new arrow.Uint32(), false), new arrow.Field('b', new arrow.Uint32(), false)])
}

function arrowSchema(shape: UpdatesShape, metadata: Map<string, string>): arrow.Schema {
  return new arrow.Schema(
    [
      new arrow.Field('k', toArrowType(shape.keyType), shape.keyType.type === 'unit'),
      new arrow.Field('v', toArrowType(shape.valType), shape.valType.type === 'unit'),
      new arrow.Field('t', timeArrowType(shape.timeKind), false),
      new arrow.Field('d', new arrow.Int64(), false),
    ],
    metadata,
  )
}

function recordBatch(u: Updates, schema: arrow.Schema): arrow.RecordBatch {
  const n = u.length
  let t: arrow.Data
  if (u.timeKind === 'u64') {
    t = arrow.makeData({ type: new arrow.Uint64(), length: n, nullCount: 0, data: u.times }) as arrow.Data
  } else {
    const tt = schema.fields[2]!.type as arrow.Struct
    t = arrow.makeData({
      type: tt,
      length: n,
      nullCount: 0,
      children: [
        arrow.makeData({ type: new arrow.Uint32(), length: n, nullCount: 0, data: u.times.a }),
        arrow.makeData({ type: new arrow.Uint32(), length: n, nullCount: 0, data: u.times.b }),
      ],
    }) as arrow.Data
  }
  const d = arrow.makeData({ type: new arrow.Int64(), length: n, nullCount: 0, data: u.diffs }) as arrow.Data
  const data = arrow.makeData({
    type: new arrow.Struct(schema.fields),
    length: n,
    nullCount: 0,
    children: [onlyData(u.keys), onlyData(u.vals), t, d],
  })
  assertDisjoint(data)
  return new arrow.RecordBatch(schema, data)
}

/**
 * NB: apache-arrow's writer merges consecutive chunks that share an ArrayBuffer and touch or
 * overlap, so two columns viewing the same bytes would be written wrong. Builders and decoded
 * parts never alias; this guard makes a caller that does fail loudly instead.
 */
function assertDisjoint(root: arrow.Data): void {
  const spans: ArrayBufferView[] = []
  const walk = (d: arrow.Data): void => {
    for (const b of [d.valueOffsets, d.values, d.nullBitmap] as (ArrayBufferView | undefined)[]) if (b !== undefined && b.byteLength > 0) spans.push(b)
    for (const c of d.children) walk(c)
  }
  walk(root)
  const byBuffer = new Map<ArrayBufferLike, ArrayBufferView[]>()
  for (const s of spans) byBuffer.set(s.buffer, [...(byBuffer.get(s.buffer) ?? []), s])
  for (const group of byBuffer.values()) {
    group.sort((a, b) => a.byteOffset - b.byteOffset)
    for (let i = 1; i < group.length; i++) {
      if (group[i]!.byteOffset < group[i - 1]!.byteOffset + group[i - 1]!.byteLength) throw new Error('columns of one batch share overlapping buffers; copy them first')
    }
  }
}

export interface EncodeOptions {
  /** Bytes of rows per record batch; default `PART_BATCH_BYTES`. */
  readonly batchBytes?: number
  /** Reused memory for the batches' value offsets (NB: write the layout before reusing it). */
  readonly scratch?: OffsetsScratch
}

/** A part file laid out but not yet written: its exact size, then one copy into any buffer. */
export interface EncodedPart {
  readonly byteLength: number
  /** How many record batches it holds, and the bytes of the largest (see `IpcFileLayout`). */
  readonly batches: number
  readonly maxBatchBytes: number
  /** Writes the whole file into target[0, byteLength) (target.byteLength >= byteLength; may be a view over a SharedArrayBuffer). */
  writeTo(target: Uint8Array): void
}

/**
 * Lays out `u` as a part file with its metadata (see `encodePart`), to be written by `writeTo`
 * straight into a buffer of the caller's (e.g. a reused or shared one), each column buffer copied
 * once. Every byte of `[0, byteLength)` is written, so the target may hold old bytes.
 *
 * `diffsSum`, when the caller already has it, saves a pass over the diffs. NB: it must be
 * `sumDiffs(u)`: a wrong one makes a part that `decodePart` refuses.
 *
 * NB: the result views `u`'s buffers. Call `writeTo` before they change (an `UpdatesBuilder` with
 * `reuseBuffers` overwrites them on its next append), and never into a target that overlaps them.
 */
export function encodedPart(u: Updates, meta: PartWriteMeta, diffsSum?: bigint, opts: EncodeOptions = {}): EncodedPart {
  if (!Number.isSafeInteger(meta.schemaId) || meta.schemaId < 0) throw new TypeError('schemaId must be a non-negative integer')
  const tk = timestampKind(u.timeKind)
  const bounds = batchBounds(u, opts.batchBytes ?? PART_BATCH_BYTES)
  const batches: PartBatchInfo[] = []
  if (bounds.length > 2) {
    for (let i = 1; i < bounds.length; i++) {
      const start = bounds[i - 1] as number
      const end = bounds[i] as number
      batches.push({ rows: end - start, keyLower: batchKeyLower(u, start, meta.order), diffsSum: sumDiffs(sliceUpdates(u, start, end)) })
    }
    diffsSum ??= batches.reduce((sum, b) => BigInt.asIntN(64, sum + b.diffsSum), 0n)
  }
  const metadata = new Map<string, string>([
    [PART_META_KEYS.format, String(PART_FORMAT_VERSION)],
    [PART_META_KEYS.desc, JSON.stringify(descs.toJson(tk, meta.desc))],
    [PART_META_KEYS.order, meta.order],
    [PART_META_KEYS.schemaId, String(meta.schemaId)],
    [PART_META_KEYS.timestamp, u.timeKind],
    [PART_META_KEYS.diffsSum, (diffsSum ?? sumDiffs(u)).toString()],
    [PART_META_KEYS.keySchema, JSON.stringify(dataTypeToJson(u.keyType))],
    [PART_META_KEYS.valSchema, JSON.stringify(dataTypeToJson(u.valType))],
  ])
  if (batches.length > 0) metadata.set(PART_META_KEYS.batches, JSON.stringify(batches.map((b) => ({ rows: b.rows, keyLower: b.keyLower, diffsSum: b.diffsSum.toString() }))))
  const schema = arrowSchema(u, metadata)
  if (bounds.length <= 2) return layoutIpcFile([recordBatch(u, schema)])
  const slicer = batchSlicer(u, bounds.length - 1, opts.scratch)
  return layoutIpcFile(bounds.slice(1).map((end, i) => recordBatch(slicer.slice(bounds[i] as number, end), schema)))
}

/** Row boundaries `[0, …, length]` of batches of about `batchBytes` of rows each (one batch at least). */
function batchBounds(u: Updates, batchBytes: number): number[] {
  const n = u.length
  const rowBytes = n === 0 ? 1 : Math.max(1, updatesByteLength(u) / n)
  const rows = Math.max(1, Math.floor(batchBytes / rowBytes))
  const bounds = [0]
  for (let at = rows; at < n; at += rows) bounds.push(at)
  bounds.push(n)
  return bounds
}

/** Base64 of row `row`'s key in `order`'s sort encoding, cut to KEY_LOWER_MAX_BYTES ('' when unordered). */
function batchKeyLower(u: Updates, row: number, order: RunOrder): string {
  if (order === 'unordered') return ''
  const key = sortKeyLowerAt(u, row, order)
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')
}

/**
 * The record batches a part's metadata describes, or null when it describes none (a part of one
 * batch, or written before batches were described). Throws `PartFormatError` on a malformed list.
 */
export function partBatches(metadata: ReadonlyMap<string, string>): PartBatchInfo[] | null {
  const text = metadata.get(PART_META_KEYS.batches)
  if (text === undefined) return null
  const bad = (why: string): PartFormatError => new PartFormatError(`part metadata ${PART_META_KEYS.batches}: ${why}`)
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch {
    throw bad('not JSON')
  }
  if (!Array.isArray(list)) throw bad('not a list')
  return list.map((b: unknown, i) => {
    const o = (typeof b === 'object' && b !== null ? b : {}) as Record<string, unknown>
    if (!Number.isSafeInteger(o.rows) || (o.rows as number) < 0) throw bad(`batch ${i}: rows is not a count`)
    if (typeof o.keyLower !== 'string') throw bad(`batch ${i}: keyLower is not a string`)
    const sum = parseDiff(typeof o.diffsSum === 'string' ? o.diffsSum : '')
    if (!sum.ok) throw bad(`batch ${i}: diffsSum ${sum.error}`)
    return { rows: o.rows as number, keyLower: o.keyLower, diffsSum: sum.value }
  })
}

/**
 * Encodes `u` as a part file with its metadata, in a fresh buffer: the bytes apache-arrow's
 * `RecordBatchFileWriter` writes, except that sliced unit columns get their real null count
 * (ipc-writer.ts). `diffsSum` as for `encodedPart`.
 */
export function encodePart(u: Updates, meta: PartWriteMeta, diffsSum?: bigint, opts: { readonly batchBytes?: number } = {}): Uint8Array {
  const part = encodedPart(u, meta, diffsSum, opts)
  const bytes = new Uint8Array(part.byteLength)
  part.writeTo(bytes)
  return bytes
}

/** Input as an 8-byte-aligned view (copied once if it is not), so column views need no copies. */
function aligned(bytes: Uint8Array): Uint8Array {
  if (bytes.byteOffset % 8 === 0) return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return new Uint8Array(bytes)
}

function parseMeta(metadata: ReadonlyMap<string, string>): PartMeta {
  const get = (k: string): string => {
    const v = metadata.get(k)
    if (v === undefined) throw new PartFormatError(`part metadata lacks ${k}`)
    return v
  }
  const json = (k: string): unknown => {
    const text = get(k)
    try {
      return JSON.parse(text)
    } catch {
      throw new PartFormatError(`part metadata ${k} is not JSON`)
    }
  }
  const format = get(PART_META_KEYS.format)
  if (format !== String(PART_FORMAT_VERSION)) throw new PartFormatError(`part format ${JSON.stringify(format)} is not supported (expected ${PART_FORMAT_VERSION})`)
  const timeKind = get(PART_META_KEYS.timestamp)
  if (!(TIMESTAMP_KINDS as readonly string[]).includes(timeKind)) throw new PartFormatError(`part metadata ${PART_META_KEYS.timestamp}: unknown timestamp kind ${JSON.stringify(timeKind)}`)
  const tk = timestampKind(timeKind as TimestampKindName)
  const desc = descs.parse(tk, json(PART_META_KEYS.desc))
  if (!desc.ok) throw new PartFormatError(`part metadata ${PART_META_KEYS.desc}: ${desc.error}`)
  const order = get(PART_META_KEYS.order)
  if (!(RUN_ORDERS as readonly string[]).includes(order)) throw new PartFormatError(`part metadata ${PART_META_KEYS.order}: unknown run order ${JSON.stringify(order)}`)
  const schemaIdText = get(PART_META_KEYS.schemaId)
  const schemaId = /^(0|[1-9][0-9]{0,14})$/.test(schemaIdText) ? Number(schemaIdText) : NaN
  if (!Number.isSafeInteger(schemaId)) throw new PartFormatError(`part metadata ${PART_META_KEYS.schemaId} is not a non-negative integer`)
  const diffs = parseDiff(get(PART_META_KEYS.diffsSum))
  if (!diffs.ok) throw new PartFormatError(`part metadata ${PART_META_KEYS.diffsSum} ${diffs.error}`)
  const keyType = parseDataType(json(PART_META_KEYS.keySchema), PART_META_KEYS.keySchema)
  if (!keyType.ok) throw new PartFormatError(`part metadata: ${keyType.error}`)
  const valType = parseDataType(json(PART_META_KEYS.valSchema), PART_META_KEYS.valSchema)
  if (!valType.ok) throw new PartFormatError(`part metadata: ${valType.error}`)
  return {
    desc: desc.value,
    order: order as RunOrder,
    schemaId,
    timeKind: timeKind as TimestampKindName,
    keyType: keyType.value,
    valType: valType.value,
    diffsSum: diffs.value,
  }
}

function readFile(bytes: Uint8Array): IpcContents {
  try {
    return readIpcFile(aligned(bytes), { metadata: true })
  } catch (e) {
    if (e instanceof IpcError) throw new PartFormatError(`not a valid part: ${e.message}`)
    throw e
  }
}

/** A part's metadata, without loading its columns. */
export function decodePartMeta(bytes: Uint8Array): PartMeta {
  const contents = readFile(bytes)
  const meta = parseMeta(contents.schema.metadata)
  try {
    planColumns(contents.schema.fields, meta, false)
  } catch (e) {
    if (e instanceof IpcError) throw new PartFormatError(`not a valid part: ${e.message}`)
    throw e
  }
  return meta
}

/** Decodes a part file: its metadata and its updates (views into `bytes` where possible). */
export function decodePart(bytes: Uint8Array): DecodedPart {
  const contents = readFile(bytes)
  const meta = parseMeta(contents.schema.metadata)
  let updates: Updates
  try {
    updates = loadUpdates(contents, meta, false)
  } catch (e) {
    if (e instanceof IpcError) throw new PartFormatError(`not a valid part: ${e.message}`)
    throw e
  }
  const sum = sumDiffs(updates)
  if (sum !== meta.diffsSum) throw new PartFormatError(`not a valid part: its diffs sum to ${sum}, its metadata says ${meta.diffsSum}`)
  return { meta, updates }
}

/**
 * Decodes an Arrow IPC stream of columns `k`, `v`, `t`, `d` (in any order, no others) against a
 * shard's shape. Types must match exactly (nullability flags may be looser than the schema, but
 * no value may be null where the schema forbids it); utf8 must be valid UTF-8. Errors name the
 * first bad column, and the row where there is one.
 */
export function decodeUpdatesStream(bytes: Uint8Array, shape: UpdatesShape): Result<Updates> {
  try {
    const contents = readIpcStream(aligned(bytes))
    return ok(loadUpdates(contents, shape, true))
  } catch (e) {
    if (e instanceof IpcError) return err(`invalid Arrow stream: ${e.message}`)
    throw e
  }
}

const EXPECTED_ARROW: Record<DataType['type'], string> = {
  utf8: 'Utf8',
  binary: 'Binary',
  int64: 'Int64',
  uint64: 'Uint64',
  float64: 'Float64',
  bool: 'Bool',
  unit: 'Null',
  struct: 'Struct',
}

function checkType(ipc: IpcField, t: DataType, path: string): void {
  if (ipc.dictionary) throw new IpcError(`column ${path}: dictionary-encoded columns are not supported`)
  const it = ipc.type
  const bad = (): never => {
    throw new IpcError(`column ${path}: expected ${formatDataType(t)} (Arrow ${EXPECTED_ARROW[t.type]}), got ${formatIpcType(it)}`)
  }
  switch (t.type) {
    case 'utf8':
    case 'binary':
    case 'bool':
      if (it.kind !== t.type) bad()
      return
    case 'unit':
      if (it.kind !== 'null') bad()
      return
    case 'int64':
    case 'uint64':
      if (it.kind !== 'int' || it.bitWidth !== 64 || it.signed !== (t.type === 'int64')) bad()
      return
    case 'float64':
      if (it.kind !== 'float' || it.precision !== 'double') bad()
      return
    case 'struct': {
      if (it.kind !== 'struct') return bad()
      const names = it.children.map((c) => c.name)
      const want = t.fields.map((f) => f.name)
      if (names.length !== want.length || names.some((n, i) => n !== want[i])) {
        throw new IpcError(`column ${path}: expected fields [${want.join(', ')}], got [${names.join(', ')}]`)
      }
      t.fields.forEach((f, i) => checkType(it.children[i]!, f.type, `${path}.${f.name}`))
      return
    }
  }
}

function checkTimeType(ipc: IpcField, kind: TimestampKindName): void {
  const it: IpcType = ipc.type
  const isU32 = (c: IpcField | undefined): boolean => c !== undefined && !c.dictionary && c.type.kind === 'int' && c.type.bitWidth === 32 && !c.type.signed
  const good =
    !ipc.dictionary &&
    (kind === 'u64'
      ? it.kind === 'int' && it.bitWidth === 64 && !it.signed
      : it.kind === 'struct' && it.children.length === 2 && it.children[0]!.name === 'a' && it.children[1]!.name === 'b' && isU32(it.children[0]) && isU32(it.children[1]))
  if (!good) throw new IpcError(`column t: expected ${kind === 'u64' ? 'Uint64' : 'Struct<a: Uint32, b: Uint32>'}, got ${formatIpcType(it)}`)
}

/** Checks the Arrow schema against the shape; returns how to load each column, in file order. */
export function planColumns(fields: readonly IpcField[], shape: UpdatesShape, checkUtf8: boolean): ColumnPlan[] {
  const seen = new Set<string>()
  for (const f of fields) {
    if (!(COLUMN_NAMES as readonly string[]).includes(f.name)) throw new IpcError(`unexpected column ${JSON.stringify(f.name)} (expected k, v, t, d)`)
    if (seen.has(f.name)) throw new IpcError(`column ${f.name} appears twice`)
    seen.add(f.name)
  }
  for (const name of COLUMN_NAMES) if (!seen.has(name)) throw new IpcError(`missing column ${name}`)
  return fields.map((f) => {
    switch (f.name) {
      case 'k':
        checkType(f, shape.keyType, 'k')
        return { name: 'k', ipc: f.type, arrowType: toArrowType(shape.keyType), checkUtf8 }
      case 'v':
        checkType(f, shape.valType, 'v')
        return { name: 'v', ipc: f.type, arrowType: toArrowType(shape.valType), checkUtf8 }
      case 't':
        checkTimeType(f, shape.timeKind)
        return { name: 't', ipc: f.type, arrowType: timeArrowType(shape.timeKind), checkUtf8 }
      default:
        if (f.dictionary || f.type.kind !== 'int' || f.type.bitWidth !== 64 || !f.type.signed) {
          throw new IpcError(`column d: expected Int64, got ${formatIpcType(f.type)}`)
        }
        return { name: 'd', ipc: f.type, arrowType: new arrow.Int64(), checkUtf8 }
    }
  })
}

/** Throws naming the first live row (numbered from `rowBase`) that is null where `t` (at `path`) forbids nulls. */
function checkNulls(d: arrow.Data, t: DataType, nullable: boolean, live: Uint8Array | null, path: string, rowBase: number): void {
  if (!nullable && t.type !== 'unit') {
    const valid = validityOf(d)
    if (valid !== null) {
      for (let r = 0; r < d.length; r++) {
        if ((live === null || live[r] === 1) && !bitAt(valid, d.offset + r)) throw new IpcError(`column ${path}: row ${rowBase + r} is null but the field is not nullable`)
      }
    }
  }
  if (t.type === 'struct') {
    const inner = liveRows(live, d, nullable)
    t.fields.forEach((f, i) => checkNulls(d.children[i]!, f.type, f.nullable, inner, `${path}.${f.name}`, rowBase))
  }
}

/**
 * The `Updates` of one loaded record batch (columns by name), after checking nulls against the
 * shape. Rows are numbered from `rowBase` in errors (the batch's first row in its stream).
 */
export function batchUpdates(cols: Record<string, arrow.Data>, length: number, shape: UpdatesShape, rowBase = 0): Updates {
  const k = cols.k!
  const v = cols.v!
  const t = cols.t!
  const d = cols.d!
  checkNulls(k, shape.keyType, false, null, 'k', rowBase)
  checkNulls(v, shape.valType, false, null, 'v', rowBase)
  if (t.nullCount > 0 || t.children.some((c) => c.nullCount > 0)) throw new IpcError('column t: times must not be null')
  if (d.nullCount > 0) throw new IpcError('column d: diffs must not be null')
  const common = {
    length,
    keyType: shape.keyType,
    valType: shape.valType,
    keys: new arrow.Vector([k]),
    vals: new arrow.Vector([v]),
    diffs: d.values as BigInt64Array,
  }
  if (shape.timeKind === 'u64') return { ...common, timeKind: 'u64', times: t.values as BigUint64Array }
  return { ...common, timeKind: 'product', times: { a: t.children[0]!.values as Uint32Array, b: t.children[1]!.values as Uint32Array } }
}

function loadUpdates(contents: IpcContents, shape: UpdatesShape, untrusted: boolean): Updates {
  const plans = planColumns(contents.schema.fields, shape, untrusted)
  const parts = contents.batches.map((b) => {
    const data = loadBatch(b, plans)
    const cols: Record<string, arrow.Data> = {}
    plans.forEach((p, i) => (cols[p.name] = data[i]!))
    return batchUpdates(cols, b.length, shape)
  })
  if (parts.length === 0) return emptyUpdates(shape)
  if (parts.length === 1) return parts[0]!
  const total = parts.reduce((s, p) => s + p.length, 0)
  const builder = new UpdatesBuilder(shape, { capacity: total })
  for (const p of parts) builder.appendRange(builder.bind(p), 0, p.length)
  return builder.finish()
}

// ---- Arrow streams for responses ------------------------------------------------------------------

function streamMetadata(shape: UpdatesShape): Map<string, string> {
  return new Map([
    [PART_META_KEYS.timestamp, shape.timeKind],
    [PART_META_KEYS.keySchema, JSON.stringify(dataTypeToJson(shape.keyType))],
    [PART_META_KEYS.valSchema, JSON.stringify(dataTypeToJson(shape.valType))],
  ])
}

/** `u` as one complete Arrow IPC stream (schema, one record batch, end-of-stream marker). */
export function encodeUpdatesStream(u: Updates): Uint8Array {
  const writer = new UpdatesStreamWriter(u)
  return toBytes(writer.layout(u, { last: true }))
}

function toBytes(layout: EncodedPart): Uint8Array {
  const out = new Uint8Array(layout.byteLength)
  layout.writeTo(out)
  return out
}

/**
 * Writes one Arrow IPC stream in pieces, for responses streamed batch by batch: `layout(u)` lays
 * out the bytes to send for a batch (the schema message too, the first time; the end-of-stream
 * marker too when `last`), `end()` the bytes that close the stream (the schema too if nothing was
 * written). The bytes are those of apache-arrow's `RecordBatchStreamWriter`, except for sliced
 * unit columns (see ipc-writer.ts).
 */
export class UpdatesStreamWriter {
  readonly #shape: UpdatesShape
  readonly #schema: arrow.Schema
  #started = false
  #ended = false

  /** `continues`: the stream was started elsewhere (its schema message is not written again). */
  constructor(shape: UpdatesShape, opts: { readonly continues?: boolean } = {}) {
    this.#shape = { keyType: shape.keyType, valType: shape.valType, timeKind: shape.timeKind }
    this.#schema = arrowSchema(this.#shape, streamMetadata(this.#shape))
    this.#started = opts.continues ?? false
  }

  /**
   * The stream bytes of a batch, laid out (NB: views `u`'s buffers until `writeTo`). An empty `u`
   * adds no record batch, except as the stream's first. `last` closes the stream.
   */
  layout(u: Updates, opts: { readonly last?: boolean } = {}): EncodedPart {
    if (this.#ended) throw new Error('stream already ended')
    const head = this.#started ? null : ipcStreamSchema(this.#schema)
    this.#started = true
    const last = opts.last ?? false
    if (last) this.#ended = true
    const batches = u.length > 0 || head !== null ? [recordBatch(u, this.#schema)] : []
    return layoutIpcStream(head, batches, last ? IPC_STREAM_END : null)
  }

  /** `layout(u)` written into a fresh buffer. */
  write(u: Updates): Uint8Array {
    return toBytes(this.layout(u))
  }

  /** The bytes that end the stream. */
  end(): Uint8Array {
    return toBytes(this.layout(emptyUpdates(this.#shape), { last: true }))
  }
}
