/**
 * The hot core of compaction: a resumable, streaming k-way merge of sorted runs that consolidates
 * equal (key, val, time) updates (docs/compaction.md#consolidation). Pure CPU: no I/O, no Arrow.
 *
 * A loser tree picks the run whose head row is smallest by (key, val, time, run index). Each run's
 * head keeps its first key and value bytes as big-endian, sign-flipped int32 words (plus clamped
 * lengths), so almost every comparison is an integer compare; bytes are compared only on ties of
 * long keys or values. Rows of one (key, val) from every run form a group; the group's (time, diff)
 * pairs are summed as wrapping i64 word pairs, sorted by time when the caller said advancing may
 * have reordered them (product timestamps: docs/concepts.md#advancing-a-time-by-a-frontier), and emitted without the zero sums.
 */
import { MergeOrderError } from './merge-order-error.js'
import { MergeOutput } from './merge-output.js'
import { checkMergeSource, type MergeSource } from './merge-source.js'

/** What `step()` stopped for. */
export type MergeStep =
  /** Run `run` has exhausted its parts but has not ended: `push` its next part or `end` it. */
  | { readonly kind: 'need'; readonly run: number }
  /** The output reached `maxRows` or `maxBytes`: drain it (and usually `reset()` it), then step again. */
  | { readonly kind: 'full' }
  /** Every run ended and every row was emitted. */
  | { readonly kind: 'done' }

export interface MergeKernelOptions {
  /** Number of runs R; runs are numbered 0..R-1. */
  readonly runs: number
  /**
   * True when advancing may have reordered times within a (key, val) of a run (product
   * timestamps): each group's times are sorted. False promises times ascend within a (key, val) of
   * each run (u64): a time going backwards is then a MergeOrderError.
   */
  readonly timesMayBeUnsorted: boolean
  /** Where rows are appended; a fresh one if omitted. */
  readonly output?: MergeOutput
  /**
   * Called once per pushed source, with its id, when the kernel no longer reads it. NB: rows
   * already in the output may still point at it; drain the output before dropping its buffers.
   */
  readonly onRelease?: (id: number) => void
}

const FULL: MergeStep = Object.freeze({ kind: 'full' })
const DONE: MergeStep = Object.freeze({ kind: 'done' })

/**
 * Head word layout, per run: [key words…, key length, val words…, val length]. Lengths above the
 * cache are clamped to cache size + 1; an ended run's words are all ENDED, which sorts after every
 * live head because a live key length word is at most KB + 1.
 *
 * NB: a const enum so that tsx/esbuild inline the numbers; V8 in Node 20 does not constant-fold
 * module-level consts, and a context-slot load plus a Smi check in every compare cost ~15% of the
 * instructions (callgrind).
 */
const enum Head {
  /** Cached key words and bytes. */
  KW = 4,
  KB = KW * 4,
  /** Cached value words and bytes. */
  VW = 2,
  VB = VW * 4,
  KLEN = KW,
  V0 = KLEN + 1,
  VLEN = V0 + VW,
  /** Words per head. */
  W = VLEN + 1,
  /** XOR with this flips the sign bit: unsigned order becomes int32 order. */
  SIGN = -0x80000000,
  ENDED = 0x7fffffff,
}

if ((Head.W as number) !== 8) throw new Error('merge kernel: the unrolled head compares assume 8 words')

interface Queued {
  readonly source: MergeSource
  readonly id: number
}

const EMPTY_VIEW: DataView = new DataView(new ArrayBuffer(0))

/**
 * Writes `nw` words of `bytes[off .. off+len)` (zero-padded) into `H` at `at`. Padding with zero
 * bytes keeps word order consistent with bytewise order; equal words need a length check.
 */
function fillWords(H: Int32Array, at: number, dv: DataView, bytes: Uint8Array, off: number, len: number, nw: number): void {
  const full = len >> 2
  const n = full < nw ? full : nw
  let j = 0
  for (; j < n; j++) H[at + j] = dv.getInt32(off + (j << 2)) ^ Head.SIGN
  if (j < nw) {
    const rem = len - (j << 2)
    const p = off + (j << 2)
    let w = 0
    if (rem > 0) w = bytes[p]! << 24
    if (rem > 1) w |= bytes[p + 1]! << 16
    if (rem > 2) w |= bytes[p + 2]! << 8
    H[at + j] = w ^ Head.SIGN
    for (j++; j < nw; j++) H[at + j] = Head.SIGN
  }
}

/**
 * Compares `a[aOff .. aOff+aLen)` with `b[bOff .. bOff+bLen)` bytewise, a proper prefix first,
 * starting at byte `from` of both (the caller knows the bytes before it are equal); four bytes at a
 * time while both have them.
 */
function compareBytes(a: DataView, aOff: number, aLen: number, b: DataView, bOff: number, bLen: number, from: number): number {
  const n = aLen < bLen ? aLen : bLen
  let i = from
  for (; i + 4 <= n; i += 4) {
    const x = a.getUint32(aOff + i)
    const y = b.getUint32(bOff + i)
    if (x !== y) return x < y ? -1 : 1
  }
  for (; i < n; i++) {
    const x = a.getUint8(aOff + i)
    const y = b.getUint8(bOff + i)
    if (x !== y) return x - y
  }
  return aLen - bLen
}

/**
 * Full (key, val) comparison of row `ia` of `a` with row `ib` of `b`, given that their cached head
 * words tied: negative, zero or positive.
 */
function compareRows(a: MergeSource, ka: DataView, va: DataView, ia: number, b: MergeSource, kb: DataView, vb: DataView, ib: number): number {
  const ko = a.keyOffsets[ia]!
  const kp = b.keyOffsets[ib]!
  const kla = a.keyOffsets[ia + 1]! - ko
  const klb = b.keyOffsets[ib + 1]! - kp
  // Tied key words: the first Head.KB bytes are equal when both keys are at least that long.
  const c = compareBytes(ka, ko, kla, kb, kp, klb, kla >= Head.KB && klb >= Head.KB ? Head.KB : 0)
  if (c !== 0) return c
  const vo = a.valOffsets[ia]!
  const vp = b.valOffsets[ib]!
  const vla = a.valOffsets[ia + 1]! - vo
  const vlb = b.valOffsets[ib + 1]! - vp
  // Value words are cached only for keys of at most Head.KB bytes.
  return compareBytes(va, vo, vla, vb, vp, vlb, kla <= Head.KB && vla >= Head.VB && vlb >= Head.VB ? Head.VB : 0)
}

/**
 * Resumable k-way merge + consolidation over R runs. Drive it with `step()`; answer `need` with
 * `push` or `end`. Rows come out in (key, val, time) order, one per distinct (key, val, time) whose
 * diffs do not sum to zero. After it throws, every further `step()` throws the same error.
 */
export class MergeKernel {
  readonly output: MergeOutput
  readonly runs: number
  readonly #timesMayBeUnsorted: boolean
  readonly #onRelease: ((id: number) => void) | null
  readonly #need: readonly MergeStep[]

  // Per run.
  readonly #heads: Int32Array
  readonly #pos: Int32Array
  readonly #src: (MergeSource | null)[]
  readonly #srcId: Float64Array
  readonly #dvKey: DataView[]
  readonly #dvVal: DataView[]
  readonly #queue: Queued[][]
  readonly #ended: Uint8Array
  readonly #part: Int32Array
  /** tree[0] is the winner; tree[1..R-1] hold the losers of the internal nodes. */
  readonly #tree: Int32Array
  #started = false
  /** The run whose part ran out while it was the winner, waiting for `push` or `end`; -1 if none. */
  #pending = -1
  #done = false
  #failure: unknown = null

  // The open group: its (key, val) (head words and a row to compare bytes with) and its entries.
  readonly #gWords = new Int32Array(Head.W)
  #gOpen = false
  #gSrc: MergeSource | null = null
  #gDvKey: DataView = EMPTY_VIEW
  #gDvVal: DataView = EMPTY_VIEW
  #gSrcId = 0
  #gRow = 0
  #gCost = 0
  /** The group's source ran out while the group referenced it; release it once the group is emitted. */
  #gDeferRelease = false
  #gT0 = new Uint32Array(16)
  #gT1 = new Uint32Array(16)
  #gLo = new Uint32Array(16)
  #gHi = new Int32Array(16)
  #gN = 0
  #gSorted = true
  // Emission of the closed group: entries [ePos, eEnd) of the group arrays.
  #ePos = 0
  #eEnd = 0

  constructor(opts: MergeKernelOptions) {
    const R = opts.runs
    if (!Number.isInteger(R) || R < 0) throw new RangeError(`runs must be a non-negative integer, got ${R}`)
    this.runs = R
    this.output = opts.output ?? new MergeOutput()
    this.#timesMayBeUnsorted = opts.timesMayBeUnsorted
    this.#onRelease = opts.onRelease ?? null
    this.#need = Array.from({ length: R }, (_, run) => Object.freeze({ kind: 'need' as const, run }))
    this.#heads = new Int32Array(Math.max(R, 1) * Head.W)
    this.#pos = new Int32Array(R)
    this.#src = new Array<MergeSource | null>(R).fill(null)
    this.#srcId = new Float64Array(R)
    this.#dvKey = new Array<DataView>(R).fill(EMPTY_VIEW)
    this.#dvVal = new Array<DataView>(R).fill(EMPTY_VIEW)
    this.#queue = Array.from({ length: R }, () => [])
    this.#ended = new Uint8Array(R)
    this.#part = new Int32Array(R).fill(-1)
    this.#tree = new Int32Array(Math.max(R, 1))
  }

  /**
   * Queues the next part of `run`, identified by `id` (a u32 the output rows and `onRelease`
   * report back; keep it unique among sources not yet released). Parts may be pushed ahead of a
   * `need`; they are read in push order. The kernel never writes to a source.
   */
  push(run: number, source: MergeSource, id: number): void {
    this.#checkRun(run)
    if (this.#ended[run] === 1) throw new Error(`merge run ${run} was ended; cannot push more parts`)
    if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) throw new RangeError(`source id ${id} is not a u32`)
    checkMergeSource(source)
    this.#queue[run]!.push({ source, id })
  }

  /** Declares that `run` has no parts beyond those pushed. Idempotent. */
  end(run: number): void {
    this.#checkRun(run)
    this.#ended[run] = 1
  }

  /**
   * Merges until the output holds at least `maxRows` rows or `maxBytes` bytes (`full`), a run
   * needs its next part (`need`), or everything is emitted (`done`). Limits count the output's
   * rows since its last `reset()`; a `full` step always emitted at least one row.
   */
  step(maxRows = Infinity, maxBytes = Infinity): MergeStep {
    if (this.#failure !== null) throw this.#failure
    try {
      return this.#step(maxRows, maxBytes)
    } catch (err) {
      this.#failure = err
      throw err
    }
  }

  #checkRun(run: number): void {
    if (!Number.isInteger(run) || run < 0 || run >= this.runs) throw new RangeError(`run ${run} is not in 0..${this.runs - 1}`)
  }

  #step(maxRows: number, maxBytes: number): MergeStep {
    if (this.#done) return DONE
    if (this.#ePos < this.#eEnd && this.#emit(maxRows, maxBytes)) return FULL
    if (!this.#started) {
      for (let r = 0; r < this.runs; r++) {
        if (this.#src[r] === null && this.#heads[r * Head.W + Head.KLEN] !== Head.ENDED && !this.#load(r)) return this.#need[r]!
      }
      this.#build()
      this.#started = true
    }
    if (this.#pending >= 0) {
      const r = this.#pending
      if (!this.#load(r)) return this.#need[r]!
      this.#pending = -1
      this.#replay(r)
    }
    if (this.runs === 0) {
      this.#done = true
      return DONE
    }
    const H = this.#heads
    const tree = this.#tree
    for (;;) {
      const w = tree[0]!
      if (H[w * Head.W + Head.KLEN] === Head.ENDED) {
        if (this.#gOpen) {
          this.#close()
          if (this.#emit(maxRows, maxBytes)) return FULL
        }
        this.#done = true
        return DONE
      }
      const c = this.#gOpen ? this.#compareGroup(w) : 1
      if (c === 0) {
        this.#append(w)
      } else if (c > 0) {
        if (this.#gOpen) {
          this.#close()
          if (this.#ePos < this.#eEnd && this.#emit(maxRows, maxBytes)) return FULL
        }
        this.#open(w)
      } else {
        throw new MergeOrderError(w, this.#part[w]!, this.#pos[w]!, '(key, val) is smaller than an earlier row of the run')
      }
      if (!this.#advance(w)) {
        this.#pending = w
        return this.#need[w]!
      }
      this.#replay(w)
    }
  }

  /** Whether run a's head goes before run b's: by (key, val, time, run index), ended runs last. */
  #before(a: number, b: number): boolean {
    const H = this.#heads
    const ha = a * Head.W
    const hb = b * Head.W
    // NB: unrolled by hand (Head.W = 8): TurboFan does not unroll, and this runs log2(R) times a row.
    let x = H[ha]!
    let y = H[hb]!
    if (x !== y) return x < y
    x = H[ha + 1]!
    y = H[hb + 1]!
    if (x !== y) return x < y
    x = H[ha + 2]!
    y = H[hb + 2]!
    if (x !== y) return x < y
    x = H[ha + 3]!
    y = H[hb + 3]!
    if (x !== y) return x < y
    x = H[ha + 4]!
    y = H[hb + 4]!
    if (x !== y) return x < y
    x = H[ha + 5]!
    y = H[hb + 5]!
    if (x !== y) return x < y
    x = H[ha + 6]!
    y = H[hb + 6]!
    if (x !== y) return x < y
    x = H[ha + 7]!
    y = H[hb + 7]!
    if (x !== y) return x < y
    return this.#beforeOnTie(a, b)
  }

  #beforeOnTie(a: number, b: number): boolean {
    const H = this.#heads
    if (H[a * Head.W + Head.KLEN] === Head.ENDED) return a < b
    const sa = this.#src[a]!
    const sb = this.#src[b]!
    const ia = this.#pos[a]!
    const ib = this.#pos[b]!
    if (H[a * Head.W + Head.KLEN]! > Head.KB || H[a * Head.W + Head.VLEN]! > Head.VB) {
      const c = compareRows(sa, this.#dvKey[a]!, this.#dvVal[a]!, ia, sb, this.#dvKey[b]!, this.#dvVal[b]!, ib)
      if (c !== 0) return c < 0
    }
    const a0 = sa.time0[ia]!
    const b0 = sb.time0[ib]!
    if (a0 !== b0) return a0 < b0
    const a1 = sa.time1[ia]!
    const b1 = sb.time1[ib]!
    if (a1 !== b1) return a1 < b1
    return a < b
  }

  #build(): void {
    const R = this.runs
    if (R === 0) return
    const tree = this.#tree
    const win = new Int32Array(2 * R)
    for (let r = 0; r < R; r++) win[R + r] = r
    for (let n = R - 1; n >= 1; n--) {
      const a = win[2 * n]!
      const b = win[2 * n + 1]!
      if (this.#before(a, b)) {
        win[n] = a
        tree[n] = b
      } else {
        win[n] = b
        tree[n] = a
      }
    }
    tree[0] = R > 1 ? win[1]! : 0
  }

  /** Restores the tree after the head of `w`, the last winner, changed. */
  #replay(w: number): void {
    const tree = this.#tree
    let win = w
    for (let n = (w + this.runs) >> 1; n > 0; n >>= 1) {
      const l = tree[n]!
      if (this.#before(l, win)) {
        tree[n] = win
        win = l
      }
    }
    tree[0] = win
  }

  /** Loads `r`'s head from row `i` of source `s`. */
  #fill(r: number, s: MergeSource, i: number): void {
    const H = this.#heads
    const h = r * Head.W
    const ko = s.keyOffsets[i]!
    const kl = s.keyOffsets[i + 1]! - ko
    const vo = s.valOffsets[i]!
    const vl = s.valOffsets[i + 1]! - vo
    fillWords(H, h, this.#dvKey[r]!, s.keyBytes, ko, kl, Head.KW)
    if (kl > Head.KB) {
      // Value words would be compared against key bytes beyond the cache: leave them tied.
      H[h + Head.KLEN] = Head.KB + 1
      for (let j = Head.V0; j <= Head.VLEN; j++) H[h + j] = 0
      return
    }
    H[h + Head.KLEN] = kl
    fillWords(H, h + Head.V0, this.#dvVal[r]!, s.valBytes, vo, vl, Head.VW)
    H[h + Head.VLEN] = vl > Head.VB ? Head.VB + 1 : vl
  }

  /** Moves `r` past its current row. False when it needs a part first. */
  #advance(r: number): boolean {
    const s = this.#src[r]!
    const n = s.length
    const keep = s.keep
    let p = this.#pos[r]! + 1
    if (keep !== null) while (p < n && keep[p] === 0) p++
    if (p < n) {
      this.#pos[r] = p
      this.#fill(r, s, p)
      return true
    }
    this.#dropSource(r)
    return this.#load(r)
  }

  /** Releases `r`'s exhausted source, or defers that while the open or emitting group points at it. */
  #dropSource(r: number): void {
    const s = this.#src[r]!
    this.#src[r] = null
    this.#dvKey[r] = EMPTY_VIEW
    this.#dvVal[r] = EMPTY_VIEW
    if (s === this.#gSrc) this.#gDeferRelease = true
    else this.#onRelease?.(this.#srcId[r]!)
  }

  /**
   * Gives `r` a head from its queue (skipping and releasing empty or fully filtered parts), or marks
   * it ended. False when the queue is empty and the run has not ended.
   */
  #load(r: number): boolean {
    const q = this.#queue[r]!
    for (;;) {
      const next = q.shift()
      if (next === undefined) break
      const s = next.source
      this.#part[r]!++
      let p = 0
      const keep = s.keep
      if (keep !== null) while (p < s.length && keep[p] === 0) p++
      if (p >= s.length) {
        this.#onRelease?.(next.id)
        continue
      }
      this.#src[r] = s
      this.#srcId[r] = next.id
      this.#pos[r] = p
      this.#dvKey[r] = s.keyBytes.length > 0 ? new DataView(s.keyBytes.buffer, s.keyBytes.byteOffset, s.keyBytes.byteLength) : EMPTY_VIEW
      this.#dvVal[r] = s.valBytes.length > 0 ? new DataView(s.valBytes.buffer, s.valBytes.byteOffset, s.valBytes.byteLength) : EMPTY_VIEW
      this.#fill(r, s, p)
      return true
    }
    if (this.#ended[r] === 1) {
      this.#heads.fill(Head.ENDED, r * Head.W, r * Head.W + Head.W)
      return true
    }
    return false
  }

  /** Compares `w`'s head (key, val) with the open group's: negative, zero or positive. */
  #compareGroup(w: number): number {
    const H = this.#heads
    const G = this.#gWords
    const h = w * Head.W
    let x = H[h]!
    let y = G[0]!
    if (x !== y) return x < y ? -1 : 1
    x = H[h + 1]!
    y = G[1]!
    if (x !== y) return x < y ? -1 : 1
    x = H[h + 2]!
    y = G[2]!
    if (x !== y) return x < y ? -1 : 1
    x = H[h + 3]!
    y = G[3]!
    if (x !== y) return x < y ? -1 : 1
    x = H[h + 4]!
    y = G[4]!
    if (x !== y) return x < y ? -1 : 1
    x = H[h + 5]!
    y = G[5]!
    if (x !== y) return x < y ? -1 : 1
    x = H[h + 6]!
    y = G[6]!
    if (x !== y) return x < y ? -1 : 1
    x = H[h + 7]!
    y = G[7]!
    if (x !== y) return x < y ? -1 : 1

    if (G[Head.KLEN]! <= Head.KB && G[Head.VLEN]! <= Head.VB) return 0
    return compareRows(this.#src[w]!, this.#dvKey[w]!, this.#dvVal[w]!, this.#pos[w]!, this.#gSrc!, this.#gDvKey, this.#gDvVal, this.#gRow)
  }

  #open(w: number): void {
    const H = this.#heads
    const G = this.#gWords
    const h = w * Head.W
    G[0] = H[h + 0]!
    G[1] = H[h + 1]!
    G[2] = H[h + 2]!
    G[3] = H[h + 3]!
    G[4] = H[h + 4]!
    G[5] = H[h + 5]!
    G[6] = H[h + 6]!
    G[7] = H[h + 7]!
    const s = this.#src[w]!
    const i = this.#pos[w]!
    this.#gOpen = true
    this.#gSrc = s
    this.#gDvKey = this.#dvKey[w]!
    this.#gDvVal = this.#dvVal[w]!
    this.#gSrcId = this.#srcId[w]!
    this.#gRow = i
    const kl = H[h + Head.KLEN]!
    const vl = H[h + Head.VLEN]!
    this.#gCost = kl <= Head.KB && vl <= Head.VB ? kl + vl + 16 : s.keyOffsets[i + 1]! - s.keyOffsets[i]! + s.valOffsets[i + 1]! - s.valOffsets[i]! + 16
    this.#gN = 0
    this.#gSorted = true
    this.#append(w)
  }

  /** Adds `w`'s head (time, diff) to the group, summing into the last entry when the time repeats. */
  #append(w: number): void {
    const s = this.#src[w]!
    const i = this.#pos[w]!
    const t0 = s.time0[i]!
    const t1 = s.time1[i]!
    const lo = s.diffs[2 * i]!
    const hi = s.diffs[2 * i + 1]! | 0
    const n = this.#gN
    if (n > 0) {
      const l = n - 1
      const l0 = this.#gT0[l]!
      const l1 = this.#gT1[l]!
      if (t0 === l0 && t1 === l1) {
        const sum = this.#gLo[l]! + lo
        const sumLo = sum >>> 0
        const sumHi = (this.#gHi[l]! + hi + (sum > 0xffff_ffff ? 1 : 0)) | 0
        this.#gLo[l] = sumLo
        this.#gHi[l] = sumHi
        if (sumLo === 0 && sumHi === 0) this.#gN = l // NB: dropping a zero entry keeps the kept entries sorted
        return
      }
      if (t0 < l0 || (t0 === l0 && t1 < l1)) {
        if (!this.#timesMayBeUnsorted) {
          throw new MergeOrderError(w, this.#part[w]!, i, 'time is smaller than an earlier time of the same (key, val) while times were promised sorted')
        }
        this.#gSorted = false
      }
    }
    if (lo === 0 && hi === 0) return
    if (n === this.#gT0.length) this.#growGroup()
    this.#gT0[n] = t0
    this.#gT1[n] = t1
    this.#gLo[n] = lo
    this.#gHi[n] = hi
    this.#gN = n + 1
  }

  #growGroup(): void {
    const n = this.#gT0.length * 2
    const t0 = new Uint32Array(n)
    const t1 = new Uint32Array(n)
    const lo = new Uint32Array(n)
    const hi = new Int32Array(n)
    t0.set(this.#gT0)
    t1.set(this.#gT1)
    lo.set(this.#gLo)
    hi.set(this.#gHi)
    this.#gT0 = t0
    this.#gT1 = t1
    this.#gLo = lo
    this.#gHi = hi
  }

  /** Closes the group: its entries become the pending emission. */
  #close(): void {
    this.#gOpen = false
    let n = this.#gN
    if (!this.#gSorted && n > 1) n = this.#sortAndSum(n)
    this.#gN = 0
    this.#ePos = 0
    this.#eEnd = n
    if (n === 0) this.#emitted()
  }

  /** Emits pending entries; true when it stopped because the output reached a limit. */
  #emit(maxRows: number, maxBytes: number): boolean {
    const out = this.output
    const src = this.#gSrcId
    const row = this.#gRow
    const cost = this.#gCost
    const end = this.#eEnd
    let p = this.#ePos
    while (p < end) {
      out.push(src, row, this.#gT0[p]!, this.#gT1[p]!, this.#gLo[p]!, this.#gHi[p]!, cost)
      p++
      if (out.rows >= maxRows || out.bytes >= maxBytes) {
        this.#ePos = p
        if (p === end) this.#emitted()
        return true
      }
    }
    this.#ePos = p
    this.#emitted()
    return false
  }

  /** The closed group is fully emitted: nothing references its source any more. */
  #emitted(): void {
    this.#ePos = 0
    this.#eEnd = 0
    if (this.#gDeferRelease) {
      this.#gDeferRelease = false
      this.#onRelease?.(this.#gSrcId)
    }
    this.#gSrc = null
    this.#gDvKey = EMPTY_VIEW
    this.#gDvVal = EMPTY_VIEW
  }

  /** Sorts the first `n` group entries by time, sums equal times, drops zeros; returns the new count. */
  #sortAndSum(n: number): number {
    const T0 = this.#gT0
    const T1 = this.#gT1
    const LO = this.#gLo
    const HI = this.#gHi
    if (n <= 32) {
      for (let i = 1; i < n; i++) {
        const a0 = T0[i]!
        const a1 = T1[i]!
        const lo = LO[i]!
        const hi = HI[i]!
        let j = i - 1
        while (j >= 0 && (T0[j]! > a0 || (T0[j] === a0 && T1[j]! > a1))) {
          T0[j + 1] = T0[j]!
          T1[j + 1] = T1[j]!
          LO[j + 1] = LO[j]!
          HI[j + 1] = HI[j]!
          j--
        }
        T0[j + 1] = a0
        T1[j + 1] = a1
        LO[j + 1] = lo
        HI[j + 1] = hi
      }
    } else {
      const idx = Array.from({ length: n }, (_, i) => i)
      idx.sort((x, y) => T0[x]! - T0[y]! || T1[x]! - T1[y]!)
      const c0 = T0.slice(0, n)
      const c1 = T1.slice(0, n)
      const clo = LO.slice(0, n)
      const chi = HI.slice(0, n)
      for (let i = 0; i < n; i++) {
        const k = idx[i]!
        T0[i] = c0[k]!
        T1[i] = c1[k]!
        LO[i] = clo[k]!
        HI[i] = chi[k]!
      }
    }
    let m = 0
    for (let i = 0; i < n; i++) {
      if (m > 0 && T0[m - 1] === T0[i] && T1[m - 1] === T1[i]) {
        const sum = LO[m - 1]! + LO[i]!
        LO[m - 1] = sum >>> 0
        HI[m - 1] = (HI[m - 1]! + HI[i]! + (sum > 0xffff_ffff ? 1 : 0)) | 0
      } else {
        // The previous entry is final: drop it if it summed to zero.
        if (m > 0 && LO[m - 1] === 0 && HI[m - 1] === 0) m--
        T0[m] = T0[i]!
        T1[m] = T1[i]!
        LO[m] = LO[i]!
        HI[m] = HI[i]!
        m++
      }
    }
    if (m > 0 && LO[m - 1] === 0 && HI[m - 1] === 0) m--
    return m
  }
}
