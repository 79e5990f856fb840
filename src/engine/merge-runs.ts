/**
 * Merges sorted runs of parts into consolidated output, one chunk at a time: persist's
 * `compact_runs` (docs/compaction.md#consolidation) and, with an as-of filter, the snapshot read.
 *
 * Per part: decode (zero-copy views), migrate to the target schema (never dropping a column),
 * re-sort when the run was not in the preferred order, drop rows outside the batch's registered
 * description (truncated user batches), advance times by the since, compute the sort keys, and
 * hand it to the kernel. The kernel's output rows are copied into a builder and cut into parts
 * of about `targetSizeBytes`.
 *
 * I/O is two callbacks, so the same code runs in a worker thread (parts arrive as messages) or on
 * the caller's thread (tests). Memory: one decoded part per run plus the output being built,
 * which `chunk_runs` has budgeted.
 */
import * as ac from '../core/antichain.js'
import { timestampKind } from '../core/timestamp.js'
import type { Antichain } from '../core/antichain.js'
import type { Product } from '../core/timestamp.js'
import { AppError } from '../errors.js'
import { canRepresent } from '../columnar/evolution.js'
import { dataTypeEquals, formatDataType, type DataType } from '../columnar/data-type.js'
import { migrateUpdates } from '../columnar/migrate.js'
import { decodePart } from '../columnar/part-format.js'
import { sortAndConsolidate } from '../columnar/sort-consolidate.js'
import { compareBytes, sortKeyColumn, type SortKeyColumn } from '../columnar/sort-key.js'
import type { ColumnCopier } from '../columnar/column-builder.js'
import { diffWords, sameShape, sumDiffs, UpdatesBuilder, withTimes, type ProductTimes, type Updates } from '../columnar/updates.js'
import { MergeKernel } from './merge/merge-kernel.js'
import type { MergeOutput } from './merge/merge-output.js'
import type { MergeSource } from './merge/merge-source.js'
import type { MergePartInput, MergeProgress, MergeRunInput, MergeRunsStats, MergeRunsTask } from './protocol.js'

export type { MergePartInput, MergeRunInput, MergeRunsStats, MergeRunsTask } from './protocol.js'

export interface MergedPart {
  readonly updates: Updates
  /** Seconds spent computing the part's statistics (diff sum, key lower). */
  readonly statsSeconds: number
  /** Structured/codec sort key of the first key, for the part's `keyLower`. */
  readonly keyLower: Uint8Array
  readonly diffsSum: bigint
}

export interface MergeRunsIo {
  /** The bytes of part `part` of run `run`. */
  fetch(run: number, part: number): Promise<Uint8Array>
  /**
   * Takes one output part; resolves when the next may be built (it may first wait for room among
   * the outputs in flight: upload backpressure).
   * NB: `part.updates` lives in buffers the next part reuses: consume it (encode, copy) before
   * the returned promise resolves.
   */
  emit(part: MergedPart): Promise<void>
  /** Part `part` of run `run` (from `fetch`) is no longer read: its bytes may be reused. */
  release?(run: number, part: number): void
  /** Called after every kernel step with cumulative counts. */
  progress?(p: MergeProgress): void
  /**
   * A builder of the task's shape, made with `reuseBuffers`, to build the outputs in (a worker
   * lends the same one to each task, so its buffers grow once). Default: a new one.
   */
  readonly builder?: UpdatesBuilder
  /** The kernel's output buffer, reused across tasks by a worker (default: a new one). */
  readonly output?: MergeOutput
  /** Checked between steps; a raised signal ends the merge with its reason. */
  readonly signal?: AbortSignal
  /**
   * The output may be cut anywhere (a snapshot's body, chunk by chunk), so a merge of one run
   * with an as-of emits each part that needs no merging as it was read, without the kernel: its
   * rows sorted, every time at or below the as-of, no zero diff, and no two neighbours (across
   * parts too) with the same key and value. `emit` then gets parts of the input's sizes.
   */
  readonly passThrough?: boolean
}

/** A part read and prepared for the kernel. */
interface ReadPart {
  readonly run: number
  readonly part: number
  readonly prepared: Prepared
}

interface Prepared {
  readonly updates: Updates
  readonly source: MergeSource
  readonly keys: SortKeyColumn
  readonly rowBase: number
}

interface Loaded {
  readonly run: number
  readonly part: number
  readonly keys: SortKeyColumn
}

/** Parts up to this size (windows of large parts: windows.ts) are asked for one ahead per run. */
const LOOK_AHEAD_MAX_BYTES = 4 << 20

export async function mergeRuns(task: MergeRunsTask, io: MergeRunsIo): Promise<MergeRunsStats> {
  const tk = timestampKind(task.timeKind)
  const product = task.timeKind === 'product'
  io.output?.reset()
  const kernel = new MergeKernel({ runs: task.runs.length, timesMayBeUnsorted: product, onRelease: (id) => released.push(id), ...(io.output === undefined ? {} : { output: io.output }) })
  // Buffers are kept across parts: the output of one part is encoded before the next is built.
  const shape = { keyType: task.keyType, valType: task.valType, timeKind: task.timeKind }
  const builder = io.builder !== undefined && sameShape(io.builder.shape, shape) ? io.builder : new UpdatesBuilder(shape, { reuseBuffers: true })
  // NB: a lent builder may hold the rows of a task that failed midway.
  builder.truncate(0)
  const loaded = new Map<number, Loaded>()
  // The loaded sources' copiers, and the row of its part each source starts at (the kernel's
  // rows count from there), by source id, as the output gather reads them.
  const keyCopiers: (ColumnCopier | undefined)[] = []
  const valCopiers: (ColumnCopier | undefined)[] = []
  const rowBases: number[] = []
  const released: number[] = []
  const nextPart = new Int32Array(task.runs.length)
  let nextId = 0
  let updatesRead = 0
  let bytesRead = 0
  let updatesWritten = 0
  let partsWritten = 0
  let fetchSeconds = 0
  let firstKey: Uint8Array | null = null

  // Each run's next part when it is small (a window of a large part), asked for as soon as the one
  // before is loaded, so that it is there when the kernel needs it (a round trip to the main
  // thread per small part would otherwise stall the merge every time), and every run's first
  // part, asked for at once.
  const asked = task.runs.map(() => new Map<number, Promise<Uint8Array>>())
  const ask = (run: number, index: number): void => {
    const later = io.fetch(run, index)
    // NB: awaited when its turn comes; until then a failure must not count as unhandled.
    later.catch(() => undefined)
    asked[run]!.set(index, later)
  }
  const fetchPart = (run: number, index: number): Promise<Uint8Array> => {
    const mine = asked[run]!
    const bytes = mine.get(index) ?? io.fetch(run, index)
    mine.delete(index)
    const next = task.runs[run]!.parts[index + 1]
    if (next !== undefined && next.encodedSizeBytes <= LOOK_AHEAD_MAX_BYTES && !mine.has(index + 1)) ask(run, index + 1)
    return bytes
  }

  /** Reads, decodes and prepares run `run`'s next part; null when the run has no more. */
  const read = async (run: number): Promise<ReadPart | null> => {
    const runInput = task.runs[run] as MergeRunInput
    const index = nextPart[run] as number
    const partInput = runInput.parts[index]
    if (partInput === undefined) return null
    nextPart[run] = index + 1
    const started = performance.now()
    const bytes = await fetchPart(run, index)
    fetchSeconds += (performance.now() - started) / 1000
    bytesRead += bytes.byteLength
    const decoded = decodePart(bytes)
    let updates = decoded.updates
    updatesRead += updates.length
    // NB: only a part registered with a narrower description than it was written with (a
    // truncated user batch) is cut to the registered one (docs/concepts.md#registered-and-written-descriptions). A compaction
    // output holds times advanced past its upper and must never be cut.
    const truncate =
      !ac.equals(tk, decoded.meta.desc.lower, partInput.registeredLower) || !ac.equals(tk, decoded.meta.desc.upper, partInput.registeredUpper)
    updates = toTargetSchema(updates, task.keyType, task.valType)
    if ((runInput.order ?? 'codec') !== task.order) updates = sortAndConsolidate(updates, task.order)
    return { run, part: index, prepared: prepareSource(updates, truncate ? partInput : null, task) }
  }

  /** Hands a read part to the kernel. */
  const push = (p: ReadPart): void => {
    const id = nextId++
    const bound = builder.bind(p.prepared.updates)
    loaded.set(id, { run: p.run, part: p.part, keys: p.prepared.keys })
    keyCopiers[id] = bound.keys
    valCopiers[id] = bound.vals
    rowBases[id] = p.prepared.rowBase
    kernel.push(p.run, p.prepared.source, id)
  }

  const load = async (run: number): Promise<boolean> => {
    const p = await read(run)
    if (p === null) return false
    push(p)
    return true
  }

  const flush = async (): Promise<void> => {
    if (builder.byteLength() === 0 && firstKey === null) return
    const updates = builder.finish()
    if (updates.length > 0) {
      partsWritten++
      const t0 = performance.now()
      const diffsSum = sumDiffs(updates)
      await io.emit({ updates, keyLower: firstKey ?? new Uint8Array(0), diffsSum, statsSeconds: (performance.now() - t0) / 1000 })
    }
    firstKey = null
  }

  const unload = (id: number): void => {
    const l = loaded.get(id)
    if (l === undefined) return
    loaded.delete(id)
    keyCopiers[id] = undefined
    valCopiers[id] = undefined
    io.release?.(l.run, l.part)
  }

  const drain = (): void => {
    const out = kernel.output
    const n = out.rows
    if (n > 0 && firstKey === null) {
      const id = out.src[0] as number
      const l = loaded.get(id) as Loaded
      const r = (out.row[0] as number) + (rowBases[id] as number)
      firstKey = l.keys.bytes.slice(l.keys.offsets[r], l.keys.offsets[r + 1])
    }
    builder.appendGathered(keyCopiers, valCopiers, rowBases, out)
    updatesWritten += n
    out.reset()
    for (const id of released.splice(0)) unload(id)
  }

  for (let run = 0; run < task.runs.length; run++) if (task.runs[run]!.parts.length > 0) ask(run, 0)
  // A snapshot of one run whose parts need no merging sends them on as they are; from the first
  // part that does, the kernel takes over (it is then handed that part and every later one).
  let first = 0
  if (io.passThrough === true && task.runs.length === 1 && task.asOf !== null && task.keyRange == null) {
    const words = asOfWords(task)
    const asOf = asOfColumn(task)
    let held: ReadPart | null = null
    for (;;) {
      if (io.signal?.aborted) throw io.signal.reason
      const next = await read(0)
      if (next !== null && next.prepared.source.length === 0) {
        // An empty part adds nothing, and the part after it is compared with the one before.
        io.release?.(next.run, next.part)
        continue
      }
      if (held !== null) {
        if (next !== null && sameRowAt(held.prepared, held.prepared.source.length - 1, next.prepared, 0)) {
          push(held)
          push(next)
          break
        }
        // NB: never empty (empty parts are skipped above).
        const { updates, keys } = held.prepared
        const t0 = performance.now()
        const diffsSum = sumDiffs(updates)
        partsWritten++
        updatesWritten += updates.length
        await io.emit({ updates: withTimes(updates, asOf(updates.length)), keyLower: keys.bytes.slice(keys.offsets[0], keys.offsets[1]), diffsSum, statsSeconds: (performance.now() - t0) / 1000 })
        io.release?.(held.run, held.part)
        held = null
      }
      if (next === null) {
        kernel.end(0)
        break
      }
      if (!needsNoMerge(next.prepared, words)) {
        push(next)
        break
      }
      held = next
    }
    first = 1
  }
  for (let run = first; run < task.runs.length; run++) {
    if (!(await load(run))) kernel.end(run)
  }
  const target = Math.max(1, task.targetSizeBytes)
  for (let steps = 0; ; steps++) {
    if (io.signal?.aborted) throw io.signal.reason
    const step = kernel.step(task.yieldAfterUpdates, Math.max(1, target - builder.byteLength()))
    if (step.kind === 'need') {
      drain()
      if (!(await load(step.run))) kernel.end(step.run)
      continue
    }
    drain()
    io.progress?.({ updatesRead, bytesRead, updatesWritten })
    if (builder.byteLength() >= target) await flush()
    if (step.kind === 'done') break
    // Let other work on this thread (messages, the caller's event loop) run between chunks.
    if (steps % 8 === 7) await new Promise((resolve) => setImmediate(resolve))
  }
  await flush()
  for (const id of [...loaded.keys()]) unload(id)
  return { updatesRead, bytesRead, updatesWritten, partsWritten, fetchSeconds }
}

function toTargetSchema(u: Updates, keyType: DataType, valType: DataType): Updates {
  if (dataTypeEquals(u.keyType, keyType) && dataTypeEquals(u.valType, valType)) return u
  if (!canRepresent(u.keyType, keyType) || !canRepresent(u.valType, valType)) {
    throw new AppError(
      'SCHEMA_INCOMPATIBLE',
      `a part written with key ${formatDataType(u.keyType)}, val ${formatDataType(u.valType)} cannot be represented in the chosen schema (key ${formatDataType(keyType)}, val ${formatDataType(valType)}) without losing data`,
    )
  }
  const migrated = migrateUpdates(u, keyType, valType)
  if (!migrated.ok) throw new AppError('SCHEMA_INCOMPATIBLE', migrated.error)
  return migrated.value
}

/**
 * Builds the kernel's view of a part: sort keys, advanced time words, diff words, and a keep mask
 * for rows beyond the as-of and, when `part` is given (truncation), outside its registered description.
 */
function prepareSource(u: Updates, part: MergePartInput | null, task: MergeRunsTask): Prepared {
  const keys = sortKeyColumn(u.keys, u.keyType, task.order)
  const vals = sortKeyColumn(u.vals, u.valType, task.order)
  // The rows of this task's key range: the part is sorted by key, so they are one stretch.
  const lo = task.keyRange?.lower == null ? 0 : firstRowAtLeast(keys, u.length, task.keyRange.lower)
  const hi = task.keyRange?.upper == null ? u.length : firstRowAtLeast(keys, u.length, task.keyRange.upper)
  const n = Math.max(0, hi - lo)
  const time0 = new Uint32Array(n)
  const time1 = new Uint32Array(n)
  const diffs = diffWords(u).subarray(2 * lo, 2 * (lo + n))
  let keep: Uint8Array | null = null
  const drop = (i: number): void => {
    if (keep === null) keep = new Uint8Array(n).fill(1)
    keep[i] = 0
  }
  if (u.timeKind === 'u64') {
    const tw = new Uint32Array(u.times.buffer, u.times.byteOffset + 8 * lo, 2 * n)
    const lower = part === null ? null : u64Bound(part.registeredLower)
    const upper = part === null ? null : u64Bound(part.registeredUpper)
    const since = u64Bound(task.since)
    const asOf = task.asOf === null ? null : splitU64(task.asOf as bigint)
    if (lower === null && upper === null && asOf === null) {
      // Compaction's case (nothing cut, no as-of): only times advance, in a loop without the checks.
      const [sinceHi, sinceLo] = since ?? [0, 0]
      for (let i = 0; i < n; i++) {
        const lo = tw[2 * i] as number
        const hi = tw[2 * i + 1] as number
        const below = hi < sinceHi || (hi === sinceHi && lo < sinceLo)
        time0[i] = below ? sinceHi : hi
        time1[i] = below ? sinceLo : lo
      }
    } else {
      for (let i = 0; i < n; i++) {
        let lo = tw[2 * i] as number
        let hi = tw[2 * i + 1] as number
        if (lower !== null && lessWords(hi, lo, lower[0], lower[1])) drop(i)
        else if (upper !== null && !lessWords(hi, lo, upper[0], upper[1])) drop(i)
        if (asOf !== null && lessWords(asOf[0], asOf[1], hi, lo)) drop(i)
        if (since !== null && lessWords(hi, lo, since[0], since[1])) {
          hi = since[0]
          lo = since[1]
        }
        time0[i] = hi
        time1[i] = lo
      }
    }
  } else {
    const a = u.times.a.subarray(lo, hi)
    const b = u.times.b.subarray(lo, hi)
    const lower = part === null ? null : (part.registeredLower as readonly Product[])
    const upper = part === null ? null : (part.registeredUpper as readonly Product[])
    const since = task.since as readonly Product[]
    const asOf = task.asOf as Product | null
    for (let i = 0; i < n; i++) {
      let ta = a[i] as number
      let tb = b[i] as number
      if (lower !== null && upper !== null && (!productBeyond(lower, ta, tb) || productBeyond(upper, ta, tb))) drop(i)
      if (asOf !== null && !(ta <= asOf[0] && tb <= asOf[1])) drop(i)
      if (since.length > 0) {
        let ma = Infinity
        let mb = Infinity
        for (const f of since) {
          ma = Math.min(ma, Math.max(ta, f[0]))
          mb = Math.min(mb, Math.max(tb, f[1]))
        }
        ta = ma
        tb = mb
      }
      time0[i] = ta
      time1[i] = tb
    }
  }
  const source: MergeSource = {
    length: n,
    keyOffsets: keys.offsets.subarray(lo, lo + n + 1),
    keyBytes: keys.bytes,
    valOffsets: vals.offsets.subarray(lo, lo + n + 1),
    valBytes: vals.bytes,
    time0,
    time1,
    diffs,
    keep,
  }
  return { updates: u, source, keys, rowBase: lo }
}

// ---- one run, passed through --------------------------------------------------------------

/**
 * Whether a prepared part of a one-run snapshot is already its own output: no row was dropped
 * (every time is at or below the as-of, so every advanced time is the as-of), no diff is zero,
 * and no two neighbours share key and value (they would be summed). The part is sorted, so equal
 * rows could only be neighbours.
 */
function needsNoMerge(p: Prepared, asOf: readonly [number, number]): boolean {
  const s = p.source
  if (s.keep !== null) return false
  const n = s.length
  const d = s.diffs
  for (let i = 0; i < n; i++) {
    if ((d[2 * i] as number) === 0 && (d[2 * i + 1] as number) === 0) return false
    if (s.time0[i] !== asOf[0] || s.time1[i] !== asOf[1]) return false
  }
  for (let i = 1; i < n; i++) if (sameRowAt(p, i - 1, p, i)) return false
  return true
}

/** Whether row `i` of `a` and row `j` of `b` have the same key and value. */
function sameRowAt(a: Prepared, i: number, b: Prepared, j: number): boolean {
  const x = a.source
  const y = b.source
  const xk = x.keyOffsets[i]!
  const yk = y.keyOffsets[j]!
  const xv = x.valOffsets[i]!
  const yv = y.valOffsets[j]!
  return (
    compareBytes(x.keyBytes, xk, x.keyOffsets[i + 1]! - xk, y.keyBytes, yk, y.keyOffsets[j + 1]! - yk) === 0 &&
    compareBytes(x.valBytes, xv, x.valOffsets[i + 1]! - xv, y.valBytes, yv, y.valOffsets[j + 1]! - yv) === 0
  )
}

/** The as-of as the kernel's two time words ((hi, lo) of a u64, (a, b) of a product). */
function asOfWords(task: MergeRunsTask): [number, number] {
  if (task.timeKind === 'u64') return splitU64(task.asOf as bigint)
  const [a, b] = task.asOf as Product
  return [a, b]
}

/** A time column of `n` copies of the as-of (reused between parts: it is consumed by `emit`). */
function asOfColumn(task: MergeRunsTask): (n: number) => BigUint64Array | ProductTimes {
  let u64 = new BigUint64Array(0)
  let a = new Uint32Array(0)
  let b = new Uint32Array(0)
  return (n) => {
    if (task.timeKind === 'u64') {
      if (u64.length < n) u64 = new BigUint64Array(n).fill(task.asOf as bigint)
      return u64.subarray(0, n)
    }
    if (a.length < n) {
      const [ta, tb] = task.asOf as Product
      a = new Uint32Array(n).fill(ta)
      b = new Uint32Array(n).fill(tb)
    }
    return { a: a.subarray(0, n), b: b.subarray(0, n) }
  }
}

/** The first row whose key is ≥ `bound` (rows sorted by key), or `length`. */
function firstRowAtLeast(keys: SortKeyColumn, length: number, bound: Uint8Array): number {
  let lo = 0
  let hi = length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const start = keys.offsets[mid] as number
    const c = compareBytes(keys.bytes, start, (keys.offsets[mid + 1] as number) - start, bound, 0, bound.length)
    if (c < 0) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The single element of a u64 frontier as (hi, lo) words; null for the empty frontier (no bound). */
function u64Bound(f: Antichain): [number, number] | null {
  const t = f[0]
  return t === undefined ? null : splitU64(t as bigint)
}

function splitU64(t: bigint): [number, number] {
  return [Number(t >> 32n), Number(t & 0xffff_ffffn)]
}

/** (hi1, lo1) < (hi2, lo2) */
function lessWords(hi1: number, lo1: number, hi2: number, lo2: number): boolean {
  return hi1 < hi2 || (hi1 === hi2 && lo1 < lo2)
}

/** Whether some element of the frontier is ≤ (a, b). */
function productBeyond(frontier: readonly Product[], a: number, b: number): boolean {
  for (const f of frontier) if (f[0] <= a && f[1] <= b) return true
  return false
}
