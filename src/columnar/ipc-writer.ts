/**
 * An Arrow IPC file of one or more record batches, laid out first and then written with one copy
 * of each column buffer into a caller's buffer.
 *
 * The bytes are exactly those of apache-arrow's `RecordBatchFileWriter.writeAll(batches)
 * .toUint8Array(true)`, whose flatbuffer encoders (`Message`, `Footer`) and buffer assembly
 * (`VectorAssembler`) this reuses through the package's deep imports:
 *
 * ```
 * "ARROW1" 00 00                                      magic, padded to 8
 * FF FF FF FF <i32 len> <Message fb> 00…              record batch metadata; 8 + len is a multiple of 8
 * <buffer> 00… <buffer> 00… …                         body: each non-empty buffer padded to 8
 * …                                                   (the next record batch, likewise)
 * FF FF FF FF 00 00 00 00                             end-of-stream marker
 * <Footer fb> <i32 footer length> "ARROW1"            schema, one block per batch; not padded
 * ```
 *
 * NB: like apache-arrow's file writer, the file holds no schema message before the batch: the
 * schema is only in the footer.
 *
 * One deliberate difference: apache-arrow writes a null count of -1 (its "not yet counted" mark)
 * for a sliced column without a validity bitmap, i.e. a sliced `Null` column, and readers refuse
 * it. This writer states the real count instead (`length` for `Null`, 0 otherwise), so the bytes
 * differ from apache-arrow's only where apache-arrow's would be invalid.
 */
import * as arrow from 'apache-arrow'
import { Footer, FileBlock } from 'apache-arrow/ipc/metadata/file'
import { FieldNode, Message, RecordBatch as RecordBatchHeader } from 'apache-arrow/ipc/metadata/message'
import { VectorAssembler } from 'apache-arrow/visitor/vectorassembler'

/** An Arrow IPC file laid out but not yet written: its exact size, then one copy into any buffer. */
export interface IpcFileLayout {
  readonly byteLength: number
  /** How many record batches it holds. */
  readonly batches: number
  /** Bytes of the largest record batch (its metadata and body): what reading the file a batch at a time holds. */
  readonly maxBatchBytes: number
  /** Writes the whole file into target[0, byteLength) (target.byteLength >= byteLength). */
  writeTo(target: Uint8Array): void
}

const MAGIC = new TextEncoder().encode('ARROW1')
const CONTINUATION = -1

const pad8 = (n: number): number => (n + 7) & ~7

/** Bytes to copy, or a run of zeros. */
type Segment = Uint8Array | number

class LaidOutFile implements IpcFileLayout {
  readonly byteLength: number
  readonly batches: number
  readonly maxBatchBytes: number
  readonly #segments: readonly Segment[]

  constructor(segments: readonly Segment[], blocks: readonly FileBlock[]) {
    this.#segments = segments
    this.batches = blocks.length
    this.maxBatchBytes = blocks.reduce((m, b) => Math.max(m, b.metaDataLength + Number(b.bodyLength)), 0)
    this.byteLength = segments.reduce<number>((n, s) => n + (typeof s === 'number' ? s : s.byteLength), 0)
  }

  writeTo(target: Uint8Array): void {
    if (target.byteLength < this.byteLength) throw new RangeError(`target holds ${target.byteLength} bytes, the file needs ${this.byteLength}`)
    let at = 0
    for (const s of this.#segments) {
      if (typeof s === 'number') {
        target.fill(0, at, at + s)
        at += s
      } else {
        target.set(s, at)
        at += s.byteLength
      }
    }
  }
}

/**
 * Columns in the order `VectorAssembler` emits their field nodes. Only struct nesting is
 * supported (the assembler re-slices the children of lists, unions and dictionaries).
 */
function preOrder(d: arrow.Data, out: arrow.Data[]): void {
  if (arrow.DataType.isDictionary(d.type)) throw new TypeError('dictionary-encoded columns are not supported')
  if (d.children.length > 0 && !arrow.DataType.isStruct(d.type)) throw new TypeError(`columns of type ${String(d.type)} are not supported`)
  out.push(d)
  for (const c of d.children) preOrder(c, out)
}

const bytesOf = (v: ArrayBufferView): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)

/**
 * Lays out `batches` (at least one, all of one schema) as a complete IPC file. Small pieces
 * (magic, message headers, footer) are encoded now; column buffers are kept as views and copied
 * only by `writeTo`.
 *
 * NB: the layout views the batches' buffers: they must stay unmodified until the last `writeTo`,
 * and the target must not overlap them.
 */
export function layoutIpcFile(batches: readonly arrow.RecordBatch[]): IpcFileLayout {
  const first = batches[0]
  if (first === undefined) throw new TypeError('an IPC file needs at least one record batch')
  const magic = ipcFileHead()
  const segments: Segment[] = [magic]
  const blocks: FileBlock[] = []
  let at = magic.byteLength
  for (const batch of batches) {
    const block = layoutBatch(batch, at, segments)
    blocks.push(block)
    at += block.metaDataLength + Number(block.bodyLength)
  }
  segments.push(ipcFileTail(first.schema, blocks))
  return new LaidOutFile(segments, blocks)
}

/** The end-of-stream marker of an IPC stream. */
export const IPC_STREAM_END: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])

/** The schema message an IPC stream starts with (as apache-arrow's stream writer writes it). */
export function ipcStreamSchema(schema: arrow.Schema): Uint8Array {
  const fb = Message.encode(Message.from(schema))
  const metaLength = pad8(8 + fb.byteLength)
  const out = new Uint8Array(metaLength)
  const v = new DataView(out.buffer)
  v.setInt32(0, CONTINUATION, true)
  v.setInt32(4, metaLength - 8, true)
  out.set(fb, 8)
  return out
}

/**
 * A stretch of an IPC stream laid out: `head` (e.g. the schema message), one record batch message
 * per batch, then `tail` (e.g. the end-of-stream marker). Column buffers are copied only by
 * `writeTo`; the same NB as `layoutIpcFile` holds.
 */
export function layoutIpcStream(head: Uint8Array | null, batches: readonly arrow.RecordBatch[], tail: Uint8Array | null): IpcFileLayout {
  const segments: Segment[] = head === null ? [] : [head]
  const blocks = batches.map((batch) => layoutBatch(batch, 0, segments))
  if (tail !== null) segments.push(tail)
  return new LaidOutFile(segments, blocks)
}

/** The start of every IPC file: the magic, padded to 8 bytes. */
export function ipcFileHead(): Uint8Array {
  const head = new Uint8Array(8)
  head.set(MAGIC, 0)
  return head
}

/**
 * The end of an IPC file whose record batches are at `blocks`: the end-of-stream marker, the
 * footer (`schema`, the blocks), the footer's length and the magic.
 */
export function ipcFileTail(schema: arrow.Schema, blocks: readonly FileBlock[]): Uint8Array {
  const footerFb = Footer.encode(new Footer(schema, arrow.MetadataVersion.V5, [...blocks], []))
  const tail = new Uint8Array(8 + footerFb.byteLength + 4 + MAGIC.byteLength)
  const tv = new DataView(tail.buffer)
  tv.setInt32(0, CONTINUATION, true)
  tv.setInt32(4, 0, true)
  tail.set(footerFb, 8)
  tv.setInt32(8 + footerFb.byteLength, footerFb.byteLength, true)
  tail.set(MAGIC, 8 + footerFb.byteLength + 4)
  return tail
}

/** Appends `batch`'s message and body to `segments`; returns its block (it starts at `offset`). */
function layoutBatch(batch: arrow.RecordBatch, offset: number, segments: Segment[]): FileBlock {
  const columns: arrow.Data[] = []
  for (const c of batch.data.children) preOrder(c, columns)
  const assembled = VectorAssembler.assemble(batch)
  if (assembled.nodes.length !== columns.length) throw new Error(`IPC layout: ${assembled.nodes.length} field nodes for ${columns.length} columns`)
  const nodes = assembled.nodes.map((n, i) => (n.nullCount >= 0 ? n : new FieldNode(n.length, arrow.DataType.isNull(columns[i]!.type) ? n.length : 0)))
  const header = new RecordBatchHeader(batch.numRows, nodes, assembled.bufferRegions, null, assembled.variadicBufferCounts, batch.metadata)
  const messageFb = Message.encode(Message.from(header, assembled.byteLength))
  const metaLength = pad8(8 + messageFb.byteLength)

  const head = new Uint8Array(metaLength)
  const hv = new DataView(head.buffer)
  hv.setInt32(0, CONTINUATION, true)
  hv.setInt32(4, metaLength - 8, true)
  head.set(messageFb, 8)
  segments.push(head)

  let body = 0
  for (const b of assembled.buffers) {
    if (b.byteLength === 0) continue
    segments.push(bytesOf(b))
    const padding = pad8(b.byteLength) - b.byteLength
    if (padding > 0) segments.push(padding)
    body += pad8(b.byteLength)
  }
  if (body !== assembled.byteLength) throw new Error(`IPC body of ${body} bytes disagrees with its buffer regions (${assembled.byteLength} bytes)`)
  return new FileBlock(metaLength, assembled.byteLength, offset)
}
