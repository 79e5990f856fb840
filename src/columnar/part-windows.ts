/**
 * One record batch of a part read alone, so that compaction holds a window of a large part rather
 * than the whole part (parts are written as batches of about `PART_BATCH_BYTES`).
 *
 * The part's footer (at its end) gives each batch's position; its metadata gives each batch's
 * rows, key lower and diff sum (`partBatches`). A window is made a complete part file of its rows,
 * which `decodePart` decodes like any other: a head (the magic), the batch's bytes as stored, and
 * a tail (end-of-stream marker, a footer naming that one batch with the window's own diff sum,
 * the footer's length, the magic). Only the batch's bytes are read; head and tail are built here.
 */
import * as arrow from 'apache-arrow'
import { FileBlock, Footer } from 'apache-arrow/ipc/metadata/file'
import { ipcFileHead, ipcFileTail } from './ipc-writer.js'
import { PART_META_KEYS, PartFormatError, partBatches, type PartBatchInfo } from './part-format.js'

/** How many of a part's last bytes to read first: its footer fits in them unless the schema is huge. */
export const FOOTER_TAIL_BYTES = 16 * 1024

const MAGIC = new TextEncoder().encode('ARROW1')
/** The file's head (magic, padded), and what follows the footer (its length, the magic). */
const HEAD = ipcFileHead()
const END = 4 + MAGIC.byteLength

export interface PartWindow {
  /** Where the batch's bytes (message and body) are in the part file. */
  readonly offset: number
  readonly length: number
  readonly info: PartBatchInfo
  /** Size of the window's part file: head, the batch's bytes, tail. */
  readonly byteLength: number
  /** Writes the window's part file into `out`, whose bytes at `batchAt` already hold the batch's bytes. */
  finish(out: Uint8Array): void
  /** Where in the window's file the batch's bytes go. */
  readonly batchAt: number
}

const corrupt = (why: string): PartFormatError => new PartFormatError(`not a valid part: ${why}`)

/**
 * Where a part's footer is, given the part's last bytes (`tail`, at most its whole `size`): the
 * footer's offset and length in the file.
 */
export function footerSpan(tail: Uint8Array, size: number): { readonly offset: number; readonly length: number } {
  const n = tail.byteLength
  if (n < END || size < HEAD.byteLength + END || !MAGIC.every((b, i) => tail[n - MAGIC.byteLength + i] === b)) throw corrupt('no ARROW1 magic at the end')
  const length = new DataView(tail.buffer, tail.byteOffset, n).getInt32(n - END, true)
  const offset = size - END - length
  if (length <= 0 || offset < HEAD.byteLength) throw corrupt('the footer length is out of range')
  return { offset, length }
}

/**
 * The windows of a part, from its footer's bytes: one per record batch. Null when the part is one
 * batch, or its metadata does not describe its batches (then it is read whole).
 */
export function partWindows(footer: Uint8Array): PartWindow[] | null {
  let decoded: InstanceType<typeof Footer>
  try {
    decoded = Footer.decode(footer)
  } catch (e) {
    throw corrupt(`unreadable footer: ${e instanceof Error ? e.message : String(e)}`)
  }
  const blocks = [...decoded.recordBatches()]
  if (blocks.length < 2) return null
  const infos = partBatches(decoded.schema.metadata)
  if (infos === null) return null
  if (infos.length !== blocks.length) throw corrupt(`its metadata describes ${infos.length} batches, its footer ${blocks.length}`)
  return blocks.map((block, i) => {
    const info = infos[i] as PartBatchInfo
    const length = block.metaDataLength + Number(block.bodyLength)
    const metadata = new Map(decoded.schema.metadata)
    metadata.delete(PART_META_KEYS.batches)
    metadata.set(PART_META_KEYS.diffsSum, info.diffsSum.toString())
    const tail = ipcFileTail(new arrow.Schema(decoded.schema.fields, metadata), [new FileBlock(block.metaDataLength, block.bodyLength, HEAD.byteLength)])
    return {
      offset: Number(block.offset),
      length,
      info,
      byteLength: HEAD.byteLength + length + tail.byteLength,
      batchAt: HEAD.byteLength,
      finish(out: Uint8Array): void {
        out.set(HEAD, 0)
        out.set(tail, HEAD.byteLength + length)
      },
    }
  })
}
