/**
 * The runs of a written batch: rows in whatever order a client sends them in, out as sorted,
 * consolidated runs of parts of about the target size (persist's `BatchBuilder`).
 *
 * - Rows that arrive sorted (each batch sorted, and after the rows before it) are never sorted:
 *   equal neighbours are summed and the rows go straight into the part being built, which is
 *   handed out when it reaches the target size. They stay one run, however many parts.
 * - Rows that arrive out of order are buffered up to the target size, sorted and consolidated
 *   together, and become a new run; rows after them that continue it in order join that run.
 *   So a batch of unsorted rows has one run per buffer of them (as persist's builder does).
 *
 * NB: the last row of the run so far (the carry) is held back until the next rows show it is
 * not equal to them, so equal rows split across request batches or parts are still summed. The
 * carry may sum to zero; it is dropped when it is finally written.
 *
 * Memory: the part being built (≤ target size plus one input batch), the unsorted buffer (≤ the
 * target size plus one input batch), and what the caller's `emit` holds.
 */
import type { ColumnCopier } from '../columnar/column-builder.js'
import { sortConsolidated, SortScratch } from '../columnar/sort-consolidate.js'
import { compareRows, rowOrderKeys, sortKeyColumn, type RowOrderKeys, type SortOrder } from '../columnar/sort-key.js'
import { diffWords, I64Sum, sliceUpdates, UpdatesBuilder, updatesByteLength, type BoundSource, type GatherRows, type Updates, type UpdatesShape } from '../columnar/updates.js'

/** Called with each finished part; `run` numbers the batch's runs from 0. Consume `rows` before it resolves (the buffers are reused). */
export type EmitPart = (rows: Updates, run: number) => Promise<void>

export interface RunsWritten {
  /** Rows written (after consolidation). */
  readonly rows: number
  /** Parts of each run, in order (every run has at least one). */
  readonly partsPerRun: readonly number[]
}

/** Rows gathered per step while a part fills (so a part is cut close to the target). */
const GATHER_STEP = 4096

/**
 * Builders to build in, made with `reuseBuffers` (a worker lends the same ones to each write, so
 * their buffers grow once); default: new ones.
 */
export interface RunWriterBuilders {
  /** The part being built. */
  readonly out: UpdatesBuilder
  /** The buffer of unsorted rows. */
  readonly unsorted: UpdatesBuilder
  /** The sort's working arrays. */
  readonly scratch: SortScratch
}

export class RunWriter {
  readonly #shape: UpdatesShape
  readonly #order: SortOrder
  readonly #target: number
  readonly #emit: EmitPart
  readonly #out: UpdatesBuilder
  #carry: Updates | null = null
  #carryKeys: RowOrderKeys | null = null
  #unsorted: UpdatesBuilder | null = null
  #spare: UpdatesBuilder | null = null
  readonly #scratch: SortScratch
  readonly #parts: number[] = [0]
  #rows = 0

  constructor(shape: UpdatesShape, order: SortOrder, targetBytes: number, emit: EmitPart, builders: RunWriterBuilders | null = null) {
    this.#shape = shape
    this.#order = order
    this.#target = Math.max(1, targetBytes)
    this.#emit = emit
    this.#out = builders?.out ?? new UpdatesBuilder(shape, { reuseBuffers: true })
    this.#spare = builders?.unsorted ?? null
    this.#scratch = builders?.scratch ?? new SortScratch()
    // NB: lent builders may hold rows of a write that failed midway.
    this.#out.truncate(0)
    this.#spare?.truncate(0)
  }

  /** Adds rows (validated against the shape); resolves when they are consumed (`u` may be dropped). */
  async push(u: Updates): Promise<void> {
    if (u.length === 0) return
    if (this.#unsorted !== null) {
      append(this.#unsorted, u)
      if (this.#unsorted.byteLength() >= this.#target) await this.#flushUnsorted()
      return
    }
    const scan = scanSorted(u, this.#order, this.#carryKeys)
    if (scan === 'unsorted') {
      if (this.#startBuffering(u).byteLength() >= this.#target) await this.#flushUnsorted()
      return
    }
    await this.#appendSorted(u, scan === 'duplicates')
  }

  /** Writes what is left; the rows and runs written. */
  async end(): Promise<RunsWritten> {
    if (this.#unsorted !== null) await this.#flushUnsorted()
    const carry = this.#takeCarry()
    if (carry !== null && !isZeroDiff(carry)) {
      const b = this.#out.bind(carry)
      this.#out.appendRow(b, 0)
    }
    await this.#flush()
    return { rows: this.#rows, partsPerRun: this.#parts.filter((n) => n > 0) }
  }

  /** Rows after the carry with no equal neighbours and no zero diffs: straight in; otherwise consolidated first. */
  async #appendSorted(u: Updates, duplicates: boolean): Promise<void> {
    const n = u.length
    const src = this.#out.bind(u)
    const carryKeys = this.#carryKeys
    const carry = this.#takeCarry()
    if (!duplicates) {
      if (carry !== null && !isZeroDiff(carry)) this.#out.appendRow(this.#out.bind(carry), 0)
      await this.#appendRange(u, src, 0, n - 1)
      const [major, minor] = timeWordsAt(u, n - 1)
      this.#setCarry(src, n - 1, major, minor, src.diffs[2 * (n - 1)]!, src.diffs[2 * (n - 1) + 1]!)
      return
    }
    const k = rowOrderKeys(u, this.#order)
    // Groups of equal rows over [carry, u...]: every group but the last goes out, the last is the
    // new carry. Source 0 is `u`, source 1 the carry.
    const rows = newGather(n + 1)
    const acc = new I64Sum()
    let head = -1
    let headSrc = 0
    if (carry !== null) {
      const dw = diffWords(carry)
      acc.reset(dw[0]!, dw[1]!)
      headSrc = 1
      head = 0
    }
    const dw = src.diffs
    for (let i = 0; i < n; i++) {
      const equal = i === 0 ? carryKeys !== null && compareRows(carryKeys, 0, k, 0) === 0 : compareRows(k, i - 1, k, i) === 0
      if (equal) {
        acc.add(dw[2 * i]!, dw[2 * i + 1]!)
        continue
      }
      if (head >= 0 && !acc.isZero()) pushGroup(rows, headSrc, head, headSrc === 1 ? (carryKeys as RowOrderKeys) : k, acc)
      head = i
      headSrc = 0
      acc.reset(dw[2 * i]!, dw[2 * i + 1]!)
    }
    const keys: (ColumnCopier | undefined)[] = [src.keys]
    const vals: (ColumnCopier | undefined)[] = [src.vals]
    if (carry !== null) {
      const c = this.#out.bind(carry)
      keys[1] = c.keys
      vals[1] = c.vals
    }
    await this.#appendGathered(keys, vals, rows)
    // The last group (source 0: it holds u's last row).
    this.#setCarry(src, head, k.major[head]!, k.minor[head]!, acc.lo, acc.hi)
  }

  #startBuffering(u: Updates): UpdatesBuilder {
    const buffer = this.#spare ?? new UpdatesBuilder(this.#shape, { reuseBuffers: true })
    this.#spare = null
    // The rows of the part being built and the carry join the buffer: they will be sorted with it.
    const pending = this.#out.finish()
    append(buffer, pending)
    const carry = this.#takeCarry()
    if (carry !== null) append(buffer, carry)
    append(buffer, u)
    this.#unsorted = buffer
    return buffer
  }

  /** Sorts and consolidates the buffer into a new run; its last row is the carry. */
  async #flushUnsorted(): Promise<void> {
    const buffer = this.#unsorted as UpdatesBuilder
    this.#unsorted = null
    const u = buffer.finish()
    if (this.#parts[this.#parts.length - 1]! > 0) this.#parts.push(0)
    const k = rowOrderKeys(u, this.#order)
    const g = sortConsolidated(k, diffWords(u), u.length, this.#scratch)
    if (g.rows > 0) {
      const src = this.#out.bind(u)
      const last = g.rows - 1
      await this.#appendPermuted(u, src, sliceGather(g, 0, last))
      this.#setCarry(src, g.row[last]!, g.time0[last]!, g.time1[last]!, g.diffLo[last]!, g.diffHi[last]!)
    }
    // NB: the carry is a copy, so the buffer's memory may be reused now.
    this.#spare = buffer
  }

  async #appendRange(u: Updates, src: BoundSource, start: number, end: number): Promise<void> {
    const rowBytes = bytesPerRow(u)
    for (let at = start; at < end; ) {
      const room = Math.max(1, this.#rowsThatFit(rowBytes))
      const stop = Math.min(end, at + room)
      this.#out.appendRange(src, at, stop)
      at = stop
      if (this.#out.byteLength() >= this.#target) await this.#flush()
    }
  }

  /**
   * Appends sorted rows of one source (`appendPermuted`), as many at a time as fill the part being
   * built (by the source's bytes per row), so that each pass over the source copies a part's worth.
   */
  async #appendPermuted(u: Updates, src: BoundSource, rows: GatherRows): Promise<void> {
    const rowBytes = bytesPerRow(u)
    for (let at = 0; at < rows.rows; ) {
      const room = Math.max(GATHER_STEP, this.#rowsThatFit(rowBytes))
      const stop = Math.min(rows.rows, at + room)
      this.#out.appendPermuted(src.keys, src.vals, sliceGather(rows, at, stop))
      at = stop
      if (this.#out.byteLength() >= this.#target) await this.#flush()
    }
  }

  /** Rows of `rowBytes` each that the part being built still has room for. */
  #rowsThatFit(rowBytes: number): number {
    return Math.ceil((this.#target - this.#out.byteLength()) / rowBytes)
  }

  async #appendGathered(keys: readonly (ColumnCopier | undefined)[], vals: readonly (ColumnCopier | undefined)[], rows: GatherRows): Promise<void> {
    for (let at = 0; at < rows.rows; at += GATHER_STEP) {
      this.#out.appendGathered(keys, vals, [0, 0], sliceGather(rows, at, Math.min(rows.rows, at + GATHER_STEP)))
      if (this.#out.byteLength() >= this.#target) await this.#flush()
    }
  }

  async #flush(): Promise<void> {
    if (this.#out.length === 0) return
    const part = this.#out.finish()
    const run = this.#parts.length - 1
    this.#rows += part.length
    this.#parts[run]!++
    await this.#emit(part, run)
  }

  #setCarry(src: BoundSource, row: number, major: number, minor: number, diffLo: number, diffHi: number): void {
    const b = new UpdatesBuilder(this.#shape, { capacity: 1 })
    // NB: bound to the one row, not the whole source (binding is a pass over the source's columns).
    b.appendFrom(b.bind(sliceUpdates(src.updates, row, row + 1)), 0, major, minor, diffLo, diffHi)
    this.#carry = b.finish()
    this.#carryKeys = rowOrderKeys(this.#carry, this.#order)
  }

  #takeCarry(): Updates | null {
    const c = this.#carry
    this.#carry = null
    this.#carryKeys = null
    return c
  }
}

/**
 * Whether the rows of `u` are sorted (in `order`) after `before` (its row 0), and whether they
 * need consolidating: equal neighbours, or zero diffs. Reads the time words where they lie (no
 * copy), and compares key bytes four at a time: it runs over every row of every write.
 */
function scanSorted(u: Updates, order: SortOrder, before: RowOrderKeys | null): 'unsorted' | 'duplicates' | 'distinct' {
  const n = u.length
  const dw = diffWords(u)
  // A zero diff is consolidated away like an equal neighbour (row 0's here, the others' in the loop).
  let duplicates = n > 0 && dw[0] === 0 && dw[1] === 0
  const keys = sortKeyColumn(u.keys, u.keyType, order)
  const vals = sortKeyColumn(u.vals, u.valType, order)
  if (before !== null && n > 0) {
    const k = rowOrderKeys(sliceUpdates(u, 0, 1), order)
    const c = compareRows(before, 0, k, 0)
    if (c > 0) return 'unsorted'
    if (c === 0) duplicates = true
  }
  const kb = keys.bytes
  const vb = vals.bytes
  const kv = new DataView(kb.buffer, kb.byteOffset, kb.byteLength)
  const vv = new DataView(vb.buffer, vb.byteOffset, vb.byteLength)
  const ko = keys.offsets
  const vo = vals.offsets
  const u64 = u.timeKind === 'u64' ? new Uint32Array(u.times.buffer, u.times.byteOffset, 2 * n) : null
  const ta = u.timeKind === 'product' ? u.times.a : null
  const tb = u.timeKind === 'product' ? u.times.b : null
  for (let i = 1; i < n; i++) {
    let c = compareRange(kb, kv, ko[i - 1]!, ko[i]!, ko[i]!, ko[i + 1]!)
    if (c === 0) c = compareRange(vb, vv, vo[i - 1]!, vo[i]!, vo[i]!, vo[i + 1]!)
    if (c === 0) {
      const a0 = u64 !== null ? u64[2 * i - 1]! : ta![i - 1]!
      const a1 = u64 !== null ? u64[2 * i + 1]! : ta![i]!
      if (a0 !== a1) c = a0 < a1 ? -1 : 1
      else {
        const b0 = u64 !== null ? u64[2 * i - 2]! : tb![i - 1]!
        const b1 = u64 !== null ? u64[2 * i]! : tb![i]!
        c = b0 === b1 ? 0 : b0 < b1 ? -1 : 1
      }
    }
    if (c > 0) return 'unsorted'
    if (c === 0 || (dw[2 * i] === 0 && dw[2 * i + 1] === 0)) duplicates = true
  }
  return duplicates ? 'duplicates' : 'distinct'
}

/** Bytewise order of `b[s1, e1)` and `b[s2, e2)` (a proper prefix first), four bytes at a time. */
function compareRange(b: Uint8Array, dv: DataView, s1: number, e1: number, s2: number, e2: number): number {
  const l1 = e1 - s1
  const l2 = e2 - s2
  const n = l1 < l2 ? l1 : l2
  let i = 0
  for (; i + 4 <= n; i += 4) {
    const x = dv.getUint32(s1 + i)
    const y = dv.getUint32(s2 + i)
    if (x !== y) return x < y ? -1 : 1
  }
  for (; i < n; i++) {
    const x = b[s1 + i]!
    const y = b[s2 + i]!
    if (x !== y) return x - y
  }
  return l1 - l2
}

/** The order words `(major, minor)` of row `i`'s time (see updates.ts `timeOrderWords`). */
function timeWordsAt(u: Updates, i: number): [number, number] {
  if (u.timeKind === 'product') return [u.times.a[i]!, u.times.b[i]!]
  const w = new Uint32Array(u.times.buffer, u.times.byteOffset + 8 * i, 2)
  return [w[1]!, w[0]!]
}

function append(b: UpdatesBuilder, u: Updates): void {
  if (u.length > 0) b.appendRange(b.bind(u), 0, u.length)
}

function isZeroDiff(one: Updates): boolean {
  const w = diffWords(one)
  return w[0] === 0 && w[1] === 0
}

interface GatherBuffer extends GatherRows {
  rows: number
}

/** `u`'s average bytes per row (at least 1). */
function bytesPerRow(u: Updates): number {
  return Math.max(1, updatesByteLength(u) / Math.max(1, u.length))
}

function newGather(capacity: number): GatherBuffer {
  return {
    rows: 0,
    src: new Uint32Array(capacity),
    row: new Uint32Array(capacity),
    time0: new Uint32Array(capacity),
    time1: new Uint32Array(capacity),
    diffLo: new Uint32Array(capacity),
    diffHi: new Int32Array(capacity),
  }
}

function pushGroup(g: GatherBuffer, src: number, row: number, k: RowOrderKeys, sum: I64Sum): void {
  const i = g.rows++
  g.src[i] = src
  g.row[i] = row
  g.time0[i] = k.major[row]!
  g.time1[i] = k.minor[row]!
  g.diffLo[i] = sum.lo
  g.diffHi[i] = sum.hi
}

function sliceGather(g: GatherRows, start: number, end: number): GatherRows {
  return {
    rows: Math.max(0, end - start),
    src: g.src.subarray(start, end),
    row: g.row.subarray(start, end),
    time0: g.time0.subarray(start, end),
    time1: g.time1.subarray(start, end),
    diffLo: g.diffLo.subarray(start, end),
    diffHi: g.diffHi.subarray(start, end),
  }
}
