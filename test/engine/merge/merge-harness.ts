/**
 * Test support for the merge kernel: builds MergeSources from reference rows and drives a kernel the
 * way a compactor would, checking the step contract and the release contract as it goes.
 */
import assert from 'node:assert/strict'
import { MergeKernel } from '../../../src/engine/merge/merge-kernel.js'
import { MergeOutput } from '../../../src/engine/merge/merge-output.js'
import type { MergeSource } from '../../../src/engine/merge/merge-source.js'
import type { ReferenceRow } from '../../support/consolidate-reference.js'
import { mulberry32 as rng } from '../../../src/core/prng.js'

/** A row as a test writes it: the reference row plus whether the source's keep mask keeps it. */
export interface TestRow extends ReferenceRow {
  readonly kept: boolean
}

export const I64_MIN = -(1n << 63n)
export const I64_MAX = (1n << 63n) - 1n

export function diffWords(d: bigint): [number, number] {
  const u = BigInt.asUintN(64, d)
  return [Number(u & 0xffff_ffffn), Number(BigInt.asIntN(32, u >> 32n))]
}

export function diffOf(lo: number, hi: number): bigint {
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo >>> 0))
}


/**
 * Builds a source; `pad` puts junk before the first key/val byte and slices the byte arrays out of
 * a larger buffer, so offsets that do not start at 0 and non-zero byteOffsets are exercised.
 */
export function sourceOf(rows: readonly TestRow[], pad = 0): MergeSource {
  const n = rows.length
  const keyLen = rows.reduce((s, r) => s + r.key.length, 0)
  const valLen = rows.reduce((s, r) => s + r.val.length, 0)
  const keyBuf = new Uint8Array(pad + keyLen + pad + 3).fill(0xa5)
  const valBuf = new Uint8Array(pad + valLen + pad + 3).fill(0x5a)
  const keyBytes = keyBuf.subarray(pad > 0 ? 1 : 0)
  const valBytes = valBuf.subarray(pad > 0 ? 1 : 0)
  const keyOffsets = new Int32Array(n + 1)
  const valOffsets = new Int32Array(n + 1)
  const time0 = new Uint32Array(n)
  const time1 = new Uint32Array(n)
  const diffs = new Uint32Array(2 * n)
  const keep = new Uint8Array(n)
  let ko = pad
  let vo = pad
  rows.forEach((r, i) => {
    keyOffsets[i] = ko
    valOffsets[i] = vo
    keyBytes.set(r.key, ko)
    valBytes.set(r.val, vo)
    ko += r.key.length
    vo += r.val.length
    time0[i] = r.time0
    time1[i] = r.time1
    const [lo, hi] = diffWords(r.diff)
    diffs[2 * i] = lo
    diffs[2 * i + 1] = hi
    keep[i] = r.kept ? 1 : 0
  })
  keyOffsets[n] = ko
  valOffsets[n] = vo
  const allKept = rows.every((r) => r.kept)
  return { length: n, keyOffsets, keyBytes, valOffsets, valBytes, time0, time1, diffs, keep: allKept && pad % 2 === 0 ? null : keep }
}

/** Overwrites a released source so any later read by the kernel shows up as wrong output. */
function poison(s: MergeSource): void {
  ;(s.keyBytes as Uint8Array).fill(0xee)
  ;(s.valBytes as Uint8Array).fill(0x11)
  ;(s.time0 as Uint32Array).fill(7)
  ;(s.diffs as Uint32Array).fill(3)
}

export interface DriveOptions {
  /** run → parts → rows */
  readonly runs: readonly (readonly (readonly TestRow[])[])[]
  readonly timesMayBeUnsorted: boolean
  /** Seed of the driver's decisions: limits, push-ahead, resets, padding. */
  readonly seed: number
  /** Use no limits and push every part up front. */
  readonly plain?: boolean
}

export interface DriveResult {
  readonly rows: ReferenceRow[]
  readonly steps: number
}

/**
 * Runs a kernel over `runs` to completion and returns the emitted rows (keys and values copied out
 * of the sources as a compactor would). Asserts: `need` only for a run that is not ended, `full`
 * only at a limit and after progress, every source released exactly once and never referenced by a
 * row appended after its release.
 */
export function drive(opts: DriveOptions): DriveResult {
  const random = rng(opts.seed)
  const R = opts.runs.length
  const sources: MergeSource[] = []
  const released = new Set<number>()
  const poisoned = new Set<number>()
  const output = new MergeOutput(1 + Math.floor(random() * 8))
  const kernel = new MergeKernel({
    runs: R,
    timesMayBeUnsorted: opts.timesMayBeUnsorted,
    output,
    onRelease: (id) => {
      assert.ok(id < sources.length, `released unknown source ${id}`)
      assert.ok(!released.has(id), `source ${id} released twice`)
      released.add(id)
    },
  })
  const nextPart = new Array<number>(R).fill(0)
  const ended = new Array<boolean>(R).fill(false)
  const pushNext = (r: number): void => {
    const parts = opts.runs[r]!
    const i = nextPart[r]!
    if (i < parts.length) {
      const id = sources.length
      const src = sourceOf(parts[i]!, opts.plain ? 0 : Math.floor(random() * 3))
      sources.push(src)
      kernel.push(r, src, id)
      nextPart[r] = i + 1
    } else {
      kernel.end(r)
      ended[r] = true
    }
  }
  if (opts.plain) {
    for (let r = 0; r < R; r++) while (!ended[r]) pushNext(r)
  }

  const rows: ReferenceRow[] = []
  let drained = 0
  const drain = (): void => {
    for (let i = drained; i < output.rows; i++) {
      const id = output.src[i]!
      assert.ok(!poisoned.has(id), `row ${rows.length} points at source ${id}, released before the row was appended`)
      const s = sources[id]!
      const j = output.row[i]!
      assert.ok(j < s.length)
      rows.push({
        key: s.keyBytes.slice(s.keyOffsets[j]!, s.keyOffsets[j + 1]!),
        val: s.valBytes.slice(s.valOffsets[j]!, s.valOffsets[j + 1]!),
        time0: output.time0[i]!,
        time1: output.time1[i]!,
        diff: diffOf(output.diffLo[i]!, output.diffHi[i]!),
      })
    }
    drained = output.rows
    for (const id of released) {
      if (!poisoned.has(id)) {
        poisoned.add(id)
        poison(sources[id]!)
      }
    }
    if (opts.plain || random() < 0.8) {
      output.reset()
      drained = 0
    }
  }

  const totalParts = opts.runs.reduce((s, r) => s + r.length, 0)
  const totalRows = opts.runs.reduce((s, r) => s + r.reduce((t, p) => t + p.length, 0), 0)
  const bound = 4 * (totalRows + totalParts + R) + 16
  for (let steps = 1; steps <= bound; steps++) {
    if (!opts.plain && random() < 0.3) {
      const r = Math.floor(random() * R)
      if (R > 0 && !ended[r]) pushNext(r)
    }
    const pick = (): number => {
      const x = random()
      return x < 0.3 ? Infinity : x < 0.6 ? 1 + Math.floor(random() * 3) : 1 + Math.floor(random() * 40)
    }
    const maxRows = opts.plain ? Infinity : pick()
    const maxBytes = opts.plain ? Infinity : pick() * 8
    const before = output.rows
    const res = kernel.step(maxRows, maxBytes)
    if (res.kind === 'need') {
      assert.ok(!ended[res.run], `need for run ${res.run}, which was ended`)
      pushNext(res.run)
    } else if (res.kind === 'full') {
      assert.ok(output.rows > before, 'full without progress')
      assert.ok(output.rows >= maxRows || output.bytes >= maxBytes, 'full below the limits')
      drain()
    } else {
      assert.ok(ended.every((e) => e), 'done before every run ended')
      drain()
      assert.equal(released.size, sources.length, 'every source is released by done')
      assert.deepEqual(kernel.step(), { kind: 'done' })
      return { rows, steps }
    }
  }
  assert.fail(`kernel did not finish within ${bound} steps`)
}

/** Printable form of rows for assertion messages. */
export function show(rows: readonly ReferenceRow[]): string[] {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
  return rows.map((r) => `${hex(r.key)}/${hex(r.val)}@(${r.time0},${r.time1})${r.diff}`)
}
