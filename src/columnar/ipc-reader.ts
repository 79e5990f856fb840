/**
 * A strict, bounded reader of Arrow IPC files and streams, for the few Arrow types compactd uses
 * (Null, Int, FloatingPoint, Utf8, Binary, Bool, Struct). Columns come out as Arrow `Data` whose
 * buffers are views into the input bytes (copied only when a buffer is misaligned for its type).
 *
 * Why not apache-arrow's reader: parts and request bodies are untrusted. Arrow JS trusts the
 * flatbuffers it reads, so crafted metadata (aliased tables, huge vector lengths, buffers past the
 * end) can make it loop for a very long time or hand back silently short buffers. Here every
 * flatbuffer access is bounds-checked, the work is budgeted by the input size, record batches may
 * not overlap, and every buffer is checked against the lengths it must hold before use.
 *
 * Errors are thrown as `IpcError` with a sentence; callers wrap them.
 */
import * as arrow from 'apache-arrow'
import { isUtf8 } from 'node:buffer'

export class IpcError extends Error {
  override readonly name = 'IpcError'
}

/** A well-formed message whose body is larger than the reader allows (`maxMessageBytes`): too large, not malformed. */
export class IpcTooLargeError extends IpcError {
  constructor(
    readonly bodyBytes: number,
    readonly maxBytes: number,
  ) {
    super(`a message body of ${bodyBytes} bytes is larger than the ${maxBytes} bytes allowed`)
  }
}

/** The Arrow type of a schema field, for the subset read here (`other` names anything else). */
export type IpcType =
  | { readonly kind: 'null' }
  | { readonly kind: 'int'; readonly bitWidth: number; readonly signed: boolean }
  | { readonly kind: 'float'; readonly precision: 'half' | 'single' | 'double' }
  | { readonly kind: 'utf8' }
  | { readonly kind: 'binary' }
  | { readonly kind: 'bool' }
  | { readonly kind: 'struct'; readonly children: readonly IpcField[] }
  | { readonly kind: 'other'; readonly name: string }

export interface IpcField {
  readonly name: string
  readonly nullable: boolean
  readonly type: IpcType
  /** Whether the field is dictionary-encoded (never supported). */
  readonly dictionary: boolean
}

export interface IpcSchema {
  readonly fields: readonly IpcField[]
  readonly metadata: ReadonlyMap<string, string>
}

/** One record batch, not yet loaded: its metadata and its body. */
export interface IpcBatchRef {
  readonly length: number
  readonly nodes: readonly { readonly length: number; readonly nullCount: number }[]
  readonly buffers: readonly { readonly offset: number; readonly length: number }[]
  readonly body: Uint8Array
}

export interface IpcContents {
  readonly schema: IpcSchema
  readonly batches: readonly IpcBatchRef[]
}

const TYPE_NAMES = [
  'NONE', 'Null', 'Int', 'FloatingPoint', 'Binary', 'Utf8', 'Bool', 'Decimal', 'Date', 'Time', 'Timestamp', 'Interval', 'List',
  'Struct', 'Union', 'FixedSizeBinary', 'FixedSizeList', 'Map', 'Duration', 'LargeBinary', 'LargeUtf8', 'LargeList',
  'RunEndEncoded', 'BinaryView', 'Utf8View', 'ListView', 'LargeListView',
]
export const HEADER_SCHEMA = 1
export const HEADER_DICTIONARY_BATCH = 2
export const HEADER_RECORD_BATCH = 3
/** MetadataVersion V4 (Arrow ≥ 0.15 writes V4 or V5). */
const MIN_METADATA_VERSION = 3
const MAX_DEPTH = 64
const MAX_METADATA_ENTRIES = 1024
const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31] // "ARROW1"

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Bounds-checked flatbuffer access within `[start, end)` of `bytes`, with a work budget. */
export class Flat {
  readonly view: DataView
  budget: number

  constructor(
    readonly bytes: Uint8Array,
    readonly start: number,
    readonly end: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    this.budget = 256 + 2 * (end - start)
  }

  #check(p: number, n: number, what: string): void {
    if (!(p >= this.start && p + n <= this.end)) throw new IpcError(`${what} lies outside its flatbuffer`)
  }

  spend(n: number): void {
    this.budget -= n
    if (this.budget < 0) throw new IpcError('metadata flatbuffer refers to more data than it holds')
  }

  u8(p: number): number {
    this.#check(p, 1, 'a byte')
    return this.view.getUint8(p)
  }

  u16(p: number): number {
    this.#check(p, 2, 'a short')
    return this.view.getUint16(p, true)
  }

  i32(p: number): number {
    this.#check(p, 4, 'an int')
    return this.view.getInt32(p, true)
  }

  u32(p: number): number {
    this.#check(p, 4, 'an int')
    return this.view.getUint32(p, true)
  }

  /** A non-negative int64 that must fit in a safe integer. */
  count64(p: number, what: string): number {
    this.#check(p, 8, what)
    const lo = this.view.getUint32(p, true)
    const hi = this.view.getInt32(p + 4, true)
    if (hi < 0 || hi > 0x1fffff) throw new IpcError(`${what} ${hi < 0 ? 'is negative' : 'is too large'}`)
    return hi * 0x100000000 + lo
  }

  root(): number {
    return this.#deref(this.start, 'root table')
  }

  #deref(p: number, what: string): number {
    const target = p + this.u32(p)
    this.#check(target, 4, what)
    return target
  }

  /** The position of field `i` of the table at `t`, or 0 when absent. */
  field(t: number, i: number): number {
    this.spend(1)
    const vt = t - this.i32(t)
    this.#check(vt, 4, 'a vtable')
    const vtLen = this.u16(vt)
    const objLen = this.u16(vt + 2)
    if (vtLen < 4 || vtLen % 2 !== 0) throw new IpcError('a vtable has a bad size')
    this.#check(vt, vtLen, 'a vtable')
    this.#check(t, objLen, 'a table')
    if (4 + 2 * i >= vtLen) return 0
    const o = this.u16(vt + 4 + 2 * i)
    if (o === 0) return 0
    if (o >= objLen) throw new IpcError('a table field lies outside its table')
    return t + o
  }

  table(t: number, i: number): number {
    const p = this.field(t, i)
    return p === 0 ? 0 : this.#deref(p, 'a table')
  }

  /** Vector at field `i`: [position of first element, length], or null when absent. */
  vector(t: number, i: number, elemSize: number): [number, number] | null {
    const p = this.field(t, i)
    if (p === 0) return null
    const v = this.#deref(p, 'a vector')
    const len = this.u32(v)
    this.#check(v + 4, len * elemSize, 'a vector')
    this.spend(len)
    return [v + 4, len]
  }

  /** The table the i-th element of a vector of tables points to. */
  tableAt(elems: number, i: number): number {
    return this.#deref(elems + 4 * i, 'a table')
  }

  string(t: number, i: number): string | null {
    const r = this.vector(t, i, 1)
    if (r === null) return null
    this.spend(r[1])
    try {
      return utf8.decode(this.bytes.subarray(r[0], r[0] + r[1]))
    } catch {
      throw new IpcError('a string in the metadata is not UTF-8')
    }
  }

  bool(t: number, i: number): boolean {
    const p = this.field(t, i)
    return p !== 0 && this.u8(p) !== 0
  }
}

function readType(fb: Flat, typeType: number, t: number): IpcType {
  switch (typeType) {
    case 1:
      return { kind: 'null' }
    case 2: {
      if (t === 0) throw new IpcError('an Int type has no table')
      const wp = fb.field(t, 0)
      return { kind: 'int', bitWidth: wp === 0 ? 0 : fb.i32(wp), signed: fb.bool(t, 1) }
    }
    case 3: {
      if (t === 0) throw new IpcError('a FloatingPoint type has no table')
      const pp = fb.field(t, 0)
      const p = pp === 0 ? 0 : fb.u16(pp)
      return { kind: 'float', precision: p === 0 ? 'half' : p === 1 ? 'single' : 'double' }
    }
    case 4:
      return { kind: 'binary' }
    case 5:
      return { kind: 'utf8' }
    case 6:
      return { kind: 'bool' }
    case 13:
      return { kind: 'struct', children: [] }
    default:
      return { kind: 'other', name: TYPE_NAMES[typeType] ?? `type #${typeType}` }
  }
}

function readField(fb: Flat, f: number, depth: number): IpcField {
  if (depth > MAX_DEPTH) throw new IpcError(`fields nest deeper than ${MAX_DEPTH} levels`)
  const name = fb.string(f, 0) ?? ''
  const nullable = fb.bool(f, 1)
  const ttp = fb.field(f, 2)
  const typeType = ttp === 0 ? 0 : fb.u8(ttp)
  let type = readType(fb, typeType, fb.table(f, 3))
  const dictionary = fb.table(f, 4) !== 0
  const kids = fb.vector(f, 5, 4)
  const children: IpcField[] = []
  if (kids !== null) for (let i = 0; i < kids[1]; i++) children.push(readField(fb, fb.tableAt(kids[0], i), depth + 1))
  if (type.kind === 'struct') type = { kind: 'struct', children }
  else if (children.length > 0 && type.kind !== 'other') throw new IpcError(`field ${JSON.stringify(name)} of type ${type.kind} has children`)
  return { name, nullable, type, dictionary }
}

export function readSchema(fb: Flat, s: number, withMetadata: boolean): IpcSchema {
  const ep = fb.field(s, 0)
  if (ep !== 0 && fb.u16(ep) !== 0) throw new IpcError('big-endian Arrow data is not supported')
  const fs = fb.vector(s, 1, 4)
  const fields: IpcField[] = []
  if (fs !== null) for (let i = 0; i < fs[1]; i++) fields.push(readField(fb, fb.tableAt(fs[0], i), 1))
  const metadata = new Map<string, string>()
  if (withMetadata) {
    const kv = fb.vector(s, 2, 4)
    if (kv !== null) {
      if (kv[1] > MAX_METADATA_ENTRIES) throw new IpcError(`schema metadata has more than ${MAX_METADATA_ENTRIES} entries`)
      for (let i = 0; i < kv[1]; i++) {
        const e = fb.tableAt(kv[0], i)
        const k = fb.string(e, 0)
        const v = fb.string(e, 1)
        if (k !== null) metadata.set(k, v ?? '')
      }
    }
  }
  return { fields, metadata }
}

export interface Message {
  readonly headerType: number
  readonly header: number
  readonly bodyLength: number
}

export function readMessage(fb: Flat): Message {
  const m = fb.root()
  const vp = fb.field(m, 0)
  const version = vp === 0 ? 0 : fb.u16(vp)
  if (version < MIN_METADATA_VERSION) throw new IpcError(`Arrow metadata version V${version + 1} is too old (V4 or later needed)`)
  const htp = fb.field(m, 1)
  const headerType = htp === 0 ? 0 : fb.u8(htp)
  const header = fb.table(m, 2)
  if (header === 0) throw new IpcError('an IPC message has no header')
  const blp = fb.field(m, 3)
  const bodyLength = blp === 0 ? 0 : fb.count64(blp, 'a message body length')
  return { headerType, header, bodyLength }
}

export function readBatchHeader(fb: Flat, rb: number, body: Uint8Array): IpcBatchRef {
  const lp = fb.field(rb, 0)
  const length = lp === 0 ? 0 : fb.count64(lp, 'a record batch length')
  if (length > 0x7fffffff) throw new IpcError('a record batch has more than 2^31-1 rows')
  if (fb.table(rb, 3) !== 0) throw new IpcError('compressed Arrow record batches are not supported')
  const nv = fb.vector(rb, 1, 16)
  const bv = fb.vector(rb, 2, 16)
  const nodes: { length: number; nullCount: number }[] = []
  const buffers: { offset: number; length: number }[] = []
  if (nv !== null) {
    for (let i = 0; i < nv[1]; i++) {
      nodes.push({ length: fb.count64(nv[0] + 16 * i, 'a node length'), nullCount: fb.count64(nv[0] + 16 * i + 8, 'a null count') })
    }
  }
  if (bv !== null) {
    for (let i = 0; i < bv[1]; i++) {
      const offset = fb.count64(bv[0] + 16 * i, 'a buffer offset')
      const len = fb.count64(bv[0] + 16 * i + 8, 'a buffer length')
      if (offset + len > body.length) throw new IpcError(`buffer ${i} lies outside the record batch body`)
      buffers.push({ offset, length: len })
    }
  }
  const spans = buffers.filter((b) => b.length > 0).sort((a, b) => a.offset - b.offset)
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]!.offset < spans[i - 1]!.offset + spans[i - 1]!.length) throw new IpcError('two buffers of the record batch overlap')
  }
  return { length, nodes, buffers, body }
}

/** Reads an Arrow IPC stream: a schema message, record batches, an optional end-of-stream marker. */
export function readIpcStream(bytes: Uint8Array, opts: { metadata?: boolean } = {}): IpcContents {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let pos = 0
  let schema: IpcSchema | null = null
  const batches: IpcBatchRef[] = []
  for (;;) {
    if (pos === bytes.length) break
    if (pos + 4 > bytes.length) throw new IpcError('the stream ends inside a message length')
    let metaLen = view.getInt32(pos, true)
    pos += 4
    if (metaLen === -1) {
      if (pos + 4 > bytes.length) throw new IpcError('the stream ends inside a message length')
      metaLen = view.getInt32(pos, true)
      pos += 4
    }
    if (metaLen === 0) {
      if (pos !== bytes.length) throw new IpcError('bytes follow the end-of-stream marker')
      break
    }
    if (metaLen < 0 || pos + metaLen > bytes.length) throw new IpcError('a message runs past the end of the stream')
    const fb = new Flat(bytes, pos, pos + metaLen)
    const msg = readMessage(fb)
    pos += metaLen
    if (pos + msg.bodyLength > bytes.length) throw new IpcError('a message body runs past the end of the stream')
    const body = bytes.subarray(pos, pos + msg.bodyLength)
    pos += msg.bodyLength
    if (msg.headerType === HEADER_SCHEMA) {
      if (schema !== null) throw new IpcError('the stream has a second schema message')
      schema = readSchema(fb, msg.header, opts.metadata ?? false)
    } else if (msg.headerType === HEADER_RECORD_BATCH) {
      if (schema === null) throw new IpcError('a record batch comes before the schema')
      batches.push(readBatchHeader(fb, msg.header, body))
    } else if (msg.headerType === HEADER_DICTIONARY_BATCH) {
      throw new IpcError('dictionary batches are not supported')
    } else {
      throw new IpcError(`unexpected IPC message type ${msg.headerType}`)
    }
  }
  if (schema === null) throw new IpcError('the stream has no schema message')
  return { schema, batches }
}

function hasMagic(bytes: Uint8Array, at: number): boolean {
  return MAGIC.every((b, i) => bytes[at + i] === b)
}

/** Whether `bytes` start like an Arrow IPC file. */
export function looksLikeIpcFile(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && hasMagic(bytes, 0)
}

/** Reads an Arrow IPC file: magic, stream, footer (schema, record batch blocks), footer length, magic. */
export function readIpcFile(bytes: Uint8Array, opts: { metadata?: boolean } = {}): IpcContents {
  const n = bytes.length
  if (n < 6 + 2 + 4 + 6 || !hasMagic(bytes, 0) || !hasMagic(bytes, n - 6)) throw new IpcError('not an Arrow IPC file (no ARROW1 magic at both ends)')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const footerLen = view.getInt32(n - 10, true)
  const footerStart = n - 10 - footerLen
  if (footerLen <= 0 || footerStart < 8) throw new IpcError('the file footer length is out of range')
  const fb = new Flat(bytes, footerStart, n - 10)
  const footer = fb.root()
  const s = fb.table(footer, 1)
  if (s === 0) throw new IpcError('the file footer has no schema')
  const schema = readSchema(fb, s, opts.metadata ?? false)
  const dicts = fb.vector(footer, 2, 24)
  if (dicts !== null && dicts[1] > 0) throw new IpcError('dictionary batches are not supported')
  const blocks = fb.vector(footer, 3, 24)
  const batches: IpcBatchRef[] = []
  let floor = 8
  if (blocks !== null) {
    for (let i = 0; i < blocks[1]; i++) {
      const b = blocks[0] + 24 * i
      const offset = fb.count64(b, 'a block offset')
      const metaLen = fb.i32(b + 8)
      const bodyLen = fb.count64(b + 16, 'a block body length')
      if (offset < floor || metaLen < 8 || offset + metaLen + bodyLen > footerStart) {
        throw new IpcError(`record batch block ${i} is out of range or overlaps another`)
      }
      floor = offset + metaLen + bodyLen
      let p = offset
      let len = view.getInt32(p, true)
      p += 4
      if (len === -1) {
        len = view.getInt32(p, true)
        p += 4
      }
      if (len <= 0 || p + len > offset + metaLen) throw new IpcError(`record batch block ${i} has a bad message length`)
      const mfb = new Flat(bytes, p, p + len)
      const msg = readMessage(mfb)
      if (msg.headerType !== HEADER_RECORD_BATCH) throw new IpcError(`block ${i} is not a record batch`)
      if (msg.bodyLength !== bodyLen) throw new IpcError(`record batch block ${i} disagrees with its message on the body length`)
      batches.push(readBatchHeader(mfb, msg.header, bytes.subarray(offset + metaLen, offset + metaLen + bodyLen)))
    }
  }
  return { schema, batches }
}

export function formatIpcType(t: IpcType): string {
  switch (t.kind) {
    case 'int':
      return `${t.signed ? 'Int' : 'Uint'}${t.bitWidth}`
    case 'float':
      return t.precision === 'double' ? 'Float64' : t.precision === 'single' ? 'Float32' : 'Float16'
    case 'struct':
      return `Struct<${t.children.map((c) => `${c.name}: ${formatIpcType(c.type)}`).join(', ')}>`
    case 'other':
      return t.name
    default:
      return t.kind === 'utf8' ? 'Utf8' : t.kind === 'binary' ? 'Binary' : t.kind === 'bool' ? 'Bool' : 'Null'
  }
}

// ---- loading columns ---------------------------------------------------------------------------

/** How to load one column: its IPC field type (buffer layout) and the Arrow type to give its `Data`. */
export interface ColumnPlan {
  readonly name: string
  readonly ipc: IpcType
  readonly arrowType: arrow.DataType
  /** Check that every utf8 value is well-formed UTF-8 (for untrusted input). */
  readonly checkUtf8: boolean
}

interface Cursor {
  node: number
  buffer: number
}

/**
 * Loads the columns of a batch. Checks sizes first (O(columns)), then contents (O(rows)). Rows are
 * numbered from `rowBase` in errors (the batch's first row in its stream).
 */
export function loadBatch(batch: IpcBatchRef, plans: readonly ColumnPlan[], rowBase = 0): arrow.Data[] {
  const cur: Cursor = { node: 0, buffer: 0 }
  const deferred: (() => void)[] = []
  const cols = plans.map((p) => loadNode(batch, p.ipc, p.arrowType, batch.length, p.name, cur, deferred, p.checkUtf8, rowBase))
  if (cur.node !== batch.nodes.length) throw new IpcError(`the record batch has ${batch.nodes.length} field nodes, the schema needs ${cur.node}`)
  if (cur.buffer !== batch.buffers.length) throw new IpcError(`the record batch has ${batch.buffers.length} buffers, the schema needs ${cur.buffer}`)
  for (const check of deferred) check()
  return cols
}

function view<T extends Int32Array | BigInt64Array | BigUint64Array | Float64Array | Uint32Array>(
  Ctor: { new (b: ArrayBufferLike, o: number, n: number): T; BYTES_PER_ELEMENT: number },
  bytes: Uint8Array,
  count: number,
): T {
  const need = count * Ctor.BYTES_PER_ELEMENT
  if ((bytes.byteOffset % Ctor.BYTES_PER_ELEMENT) === 0) return new Ctor(bytes.buffer, bytes.byteOffset, count)
  const copy = bytes.slice(0, need)
  return new Ctor(copy.buffer, 0, count)
}

function loadNode(
  batch: IpcBatchRef,
  t: IpcType,
  arrowType: arrow.DataType,
  length: number,
  path: string,
  cur: Cursor,
  deferred: (() => void)[],
  checkUtf8: boolean,
  rowBase: number,
): arrow.Data {
  const node = batch.nodes[cur.node++]
  if (node === undefined) throw new IpcError(`column ${path}: the record batch has too few field nodes`)
  if (node.length !== length) throw new IpcError(`column ${path}: has ${node.length} rows, expected ${length}`)
  if (node.nullCount > length) throw new IpcError(`column ${path}: null count exceeds its length`)
  const nextBuffer = (what: string, minBytes: number): Uint8Array => {
    const b = batch.buffers[cur.buffer++]
    if (b === undefined) throw new IpcError(`column ${path}: the record batch has too few buffers`)
    if (b.length < minBytes) throw new IpcError(`column ${path}: ${what} buffer holds ${b.length} bytes, needs ${minBytes}`)
    return batch.body.subarray(b.offset, b.offset + b.length)
  }
  if (t.kind === 'null') return arrow.makeData({ type: arrowType as arrow.Null, length })
  const nullCount = node.nullCount
  const validity = nextBuffer('validity', nullCount > 0 ? (length + 7) >> 3 : 0)
  const nullBitmap = nullCount > 0 ? validity : new Uint8Array(0)
  if (nullCount > 0) {
    deferred.push(() => {
      let valid = 0
      for (let i = 0; i < length; i++) valid += (nullBitmap[i >> 3]! >> (i & 7)) & 1
      if (length - valid !== nullCount) throw new IpcError(`column ${path}: null count ${nullCount} disagrees with its validity bitmap`)
    })
  }
  switch (t.kind) {
    case 'int':
    case 'float': {
      const width = t.kind === 'int' ? t.bitWidth / 8 : t.precision === 'double' ? 8 : 0
      if (width !== 8 && width !== 4) throw new IpcError(`column ${path}: unsupported type ${formatIpcType(t)}`)
      const values = nextBuffer('data', length * width)
      const Ctor = width === 4 ? Uint32Array : t.kind === 'float' ? Float64Array : t.signed ? BigInt64Array : BigUint64Array
      const data = view(Ctor as typeof Uint32Array, values, length)
      return arrow.makeData({ type: arrowType as arrow.Int32, length, nullCount, nullBitmap, data: data as unknown as Int32Array }) as arrow.Data
    }
    case 'bool': {
      const values = nextBuffer('data', (length + 7) >> 3)
      return arrow.makeData({ type: arrowType as arrow.Bool, length, nullCount, nullBitmap, data: values }) as arrow.Data
    }
    case 'utf8':
    case 'binary': {
      const offsetsBytes = nextBuffer('offsets', length === 0 ? 0 : (length + 1) * 4)
      const offsets = length === 0 && offsetsBytes.length < 4 ? new Int32Array(1) : view(Int32Array, offsetsBytes, length + 1)
      const values = nextBuffer('data', 0)
      deferred.push(() => {
        let prev = offsets[0]!
        if (prev < 0) throw new IpcError(`column ${path}: negative value offset`)
        for (let i = 1; i <= length; i++) {
          const o = offsets[i]!
          if (o < prev) throw new IpcError(`column ${path}: value offsets decrease at row ${rowBase + i - 1}`)
          prev = o
        }
        if (prev > values.length) throw new IpcError(`column ${path}: value offsets run past the data buffer`)
        if (checkUtf8 && t.kind === 'utf8') checkUtf8Column(values, offsets, length, path, rowBase)
      })
      return arrow.makeData({ type: arrowType as arrow.Utf8, length, nullCount, nullBitmap, valueOffsets: offsets, data: values }) as arrow.Data
    }
    case 'struct': {
      const children = t.children.map((c, i) => {
        const childType = (arrowType as arrow.Struct).children[i]?.type
        if (childType === undefined) throw new IpcError(`column ${path}: unexpected child ${c.name}`)
        return loadNode(batch, c.type, childType, length, `${path}.${c.name}`, cur, deferred, checkUtf8, rowBase)
      })
      return arrow.makeData({ type: arrowType as arrow.Struct, length, nullCount, nullBitmap, children }) as arrow.Data
    }
    default:
      throw new IpcError(`column ${path}: unsupported type ${formatIpcType(t)}`)
  }
}

/** Well-formed UTF-8 in every value: the whole range is UTF-8 and no value starts mid-character. */
function checkUtf8Column(values: Uint8Array, offsets: Int32Array, length: number, path: string, rowBase: number): void {
  const start = offsets[0]!
  const end = offsets[length]!
  if (!isUtf8(values.subarray(start, end))) throw new IpcError(`column ${path}: a value is not valid UTF-8`)
  for (let i = 0; i < length; i++) {
    const o = offsets[i]!
    if (o < end && (values[o]! & 0xc0) === 0x80) throw new IpcError(`column ${path}: row ${rowBase + i} is not valid UTF-8`)
  }
}
