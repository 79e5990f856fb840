/**
 * The record batches of a part as slices of its rows whose variable-length key and value columns
 * start their value offsets at 0, rebased into reused memory (see `batchSlicer`).
 */
import * as arrow from 'apache-arrow'
import { onlyData } from './column.js'
import { sliceUpdates, type Updates } from './updates.js'

/**
 * Memory a writer of many parts keeps for the rebased value offsets of their batches (see
 * `encodedPart`), so that cutting a part into batches allocates nothing. One layout at a time: a
 * layout made with it must be written before the next is made.
 */
export class OffsetsScratch {
  #buf = new Int32Array(0)

  /** At least `n` entries (their contents are not kept). */
  take(n: number): Int32Array {
    if (this.#buf.length < n) this.#buf = new Int32Array(Math.max(n, 2 * this.#buf.length))
    return this.#buf
  }
}

/**
 * Slices of `u` (the record batches of one part) whose binary and string key and value columns
 * carry their own value offsets, starting at 0. NB: apache-arrow's assembler rebases the offsets of
 * a slice that does not start at byte 0 into a fresh array (~5% of a compaction worker's time);
 * here they are written into one region of `scratch` instead, every slice's in its own stretch.
 * At most `slices` slices, disjoint, as a part's batches are.
 */
export function batchSlicer(u: Updates, slices: number, scratch: OffsetsScratch = new OffsetsScratch()): { slice(start: number, end: number): Updates } {
  const keys = onlyData(u.keys)
  const vals = onlyData(u.vals)
  const rebase = (d: arrow.Data): boolean => (arrow.DataType.isBinary(d.type) || arrow.DataType.isUtf8(d.type)) && d.nullCount === 0
  const columns = (rebase(keys) ? 1 : 0) + (rebase(vals) ? 1 : 0)
  // Each column's offsets for every slice, in order: rows + 1 entries per slice.
  const region = scratch.take(columns * (u.length + slices))
  let at = 0
  const cut = (d: arrow.Data, start: number, end: number): arrow.Data => {
    if (!rebase(d)) return d.slice(start, end - start)
    const offs = d.valueOffsets as Int32Array
    const n = end - start
    if (at + n + 1 > region.length) throw new RangeError(`batch slices of a part must be disjoint, at most ${slices} of them`)
    const into = region.subarray(at, at + n + 1)
    at += n + 1
    const begin = offs[start] as number
    for (let j = 0; j <= n; j++) into[j] = (offs[start + j] as number) - begin
    return arrow.makeData({ type: d.type as arrow.Binary, length: n, nullCount: 0, valueOffsets: into, data: (d.values as Uint8Array).subarray(begin, offs[end] as number) }) as arrow.Data
  }
  return {
    slice: (start, end) => {
      const rest = sliceUpdates(u, start, end)
      return { ...rest, keys: new arrow.Vector([cut(keys, start, end)]), vals: new arrow.Vector([cut(vals, start, end)]) }
    },
  }
}
