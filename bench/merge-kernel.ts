/**
 * Micro benchmark of the merge kernel alone (no I/O, no Arrow): R sorted runs of
 * (key 16 B, val 32 B, u64 time, i64 diff), cut into ~8 MiB parts, ~30% of updates colliding
 * across runs, times advanced to a since. Reports input M updates/s for the kernel, and for the
 * kernel plus gathering each output row's key and value bytes (what the caller does next).
 *
 *   node --import tsx bench/merge-kernel.ts [--sizes 1000000,10000000] [--runs 16] [--rounds 3]
 *     [--gather both|off|only] [--part-rows 131072] [--collide 0.3] [--key-bytes 16] [--val-bytes 32]
 */
import { randomFillSync } from 'node:crypto'
import { parseArgs } from 'node:util'
import { MergeKernel } from '../src/engine/merge/merge-kernel.js'
import { MergeOutput } from '../src/engine/merge/merge-output.js'
import type { MergeSource } from '../src/engine/merge/merge-source.js'
import { mulberry32 as prng } from '../src/core/prng.js'

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000000,10000000' },
    runs: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    'part-rows': { type: 'string', default: '131072' },
    collide: { type: 'string', default: '0.3' },
    'key-bytes': { type: 'string', default: '16' },
    'val-bytes': { type: 'string', default: '32' },
    gather: { type: 'string', default: 'both' },
  },
})
const SIZES = args.sizes.split(',').map(Number)
const R = Number(args.runs)
const ROUNDS = Number(args.rounds)
const PART_ROWS = Number(args['part-rows'])
const COLLIDE = Number(args.collide)
const KEY = Number(args['key-bytes'])
const VAL = Number(args['val-bytes'])
const SINCE = 1000


interface Run {
  readonly rows: number
  readonly keyBytes: Uint8Array
  readonly valBytes: Uint8Array
  readonly keyOffsets: Int32Array
  readonly valOffsets: Int32Array
  readonly time0: Uint32Array
  readonly time1: Uint32Array
  /** (low, high) word pairs. */
  readonly diffs: Uint32Array
}

/**
 * `total` updates over R runs. Distinct (key, val) items are generated in ascending key order (a
 * big-endian counter with random gaps, then random bytes); each goes to one random run, and a
 * fraction p also to a second run, so that 2p/(1+p) = COLLIDE of all updates collide. A copy has
 * the same time 60% of the time (then it merges, and cancels 20% of those), else another time.
 */
function generate(total: number): Run[] {
  const random = prng(42)
  const p = COLLIDE / (2 - COLLIDE)
  const items = Math.round(total / (1 + p))
  const first = new Uint8Array(items)
  const second = new Uint8Array(items).fill(255)
  const counts = new Array<number>(R).fill(0)
  for (let u = 0; u < items; u++) {
    const r = Math.floor(random() * R)
    first[u] = r
    counts[r]!++
    if (R > 1 && random() < p) {
      const s = (r + 1 + Math.floor(random() * (R - 1))) % R
      second[u] = s
      counts[s]!++
    }
  }
  const runs = counts.map((n) => ({
    rows: n,
    keyBytes: new Uint8Array(n * KEY),
    valBytes: new Uint8Array(n * VAL),
    keyOffsets: Int32Array.from({ length: n + 1 }, (_, i) => i * KEY),
    valOffsets: Int32Array.from({ length: n + 1 }, (_, i) => i * VAL),
    time0: new Uint32Array(n),
    time1: new Uint32Array(n),
    diffs: new Uint32Array(2 * n),
  }))
  for (const run of runs) {
    randomFillSync(run.keyBytes)
    randomFillSync(run.valBytes)
  }
  const fill = new Array<number>(R).fill(0)
  let hi = 0
  let lo = 0
  const gap = Math.max(1, Math.floor(2 ** 32 / (items / 2 ** 20 + 1)))
  for (let u = 0; u < items; u++) {
    lo += 1 + Math.floor(random() * gap)
    if (lo > 0xffff_ffff) {
      hi += Math.floor(lo / 2 ** 32)
      lo %= 2 ** 32
    }
    const a = runs[first[u]!]!
    const i = fill[first[u]!]!++
    const kv = new DataView(a.keyBytes.buffer, i * KEY, KEY)
    kv.setUint32(0, hi >>> 0)
    if (KEY >= 8) kv.setUint32(4, lo >>> 0)
    const time = Math.floor(random() * 2000)
    a.time1[i] = time < SINCE ? SINCE : time
    a.diffs[2 * i] = 1
    const s = second[u]!
    if (s !== 255) {
      const b = runs[s]!
      const j = fill[s]!++
      b.keyBytes.set(a.keyBytes.subarray(i * KEY, (i + 1) * KEY), j * KEY)
      b.valBytes.set(a.valBytes.subarray(i * VAL, (i + 1) * VAL), j * VAL)
      const same = random() < 0.6
      const t = same ? time : time + 2000
      b.time1[j] = t < SINCE ? SINCE : t
      const cancel = same && random() < 0.2
      b.diffs[2 * j] = cancel ? 0xffff_ffff : 1
      b.diffs[2 * j + 1] = cancel ? 0xffff_ffff : 0
    }
  }
  return runs
}

/** Zero-copy views of rows [from, to) of a run. */
function part(run: Run, from: number, to: number): MergeSource {
  return {
    length: to - from,
    keyOffsets: run.keyOffsets.subarray(from, to + 1),
    keyBytes: run.keyBytes,
    valOffsets: run.valOffsets.subarray(from, to + 1),
    valBytes: run.valBytes,
    time0: run.time0.subarray(from, to),
    time1: run.time1.subarray(from, to),
    diffs: run.diffs.subarray(2 * from, 2 * to),
    keep: null,
  }
}

interface Result {
  /** Wall-clock seconds. */
  readonly seconds: number
  /** Process CPU seconds (user + system): less disturbed by other load on the machine. */
  readonly cpuSeconds: number
  readonly out: number
}

/** Merges `runs`; with `gather`, copies each output row's key and value into a reused buffer. */
function merge(runs: Run[], gather: boolean): Result {
  const parts: MergeSource[] = []
  const partsOf = runs.map((run) => {
    const ids: number[] = []
    for (let from = 0; from < run.rows; from += PART_ROWS) {
      ids.push(parts.length)
      parts.push(part(run, from, Math.min(run.rows, from + PART_ROWS)))
    }
    return ids
  })
  const next = new Array<number>(runs.length).fill(0)
  const output = new MergeOutput(1 << 17)
  const kernel = new MergeKernel({ runs: runs.length, timesMayBeUnsorted: false, output })
  const sink = new Uint8Array(100_000 * (KEY + VAL))
  let out = 0
  let check = 0
  const t0 = process.hrtime.bigint()
  const c0 = process.cpuUsage()
  for (;;) {
    const res = kernel.step(100_000)
    if (res.kind === 'need') {
      const ids = partsOf[res.run]!
      const i = next[res.run]!++
      if (i < ids.length) kernel.push(res.run, parts[ids[i]!]!, ids[i]!)
      else kernel.end(res.run)
      continue
    }
    const n = output.rows
    out += n
    if (gather) {
      const src = output.src
      const row = output.row
      let at = 0
      for (let j = 0; j < n; j++) {
        const s = parts[src[j]!]!
        const r = row[j]!
        const kb = s.keyBytes
        const vb = s.valBytes
        for (let o = s.keyOffsets[r]!, e = s.keyOffsets[r + 1]!; o < e; o++) sink[at++] = kb[o]!
        for (let o = s.valOffsets[r]!, e = s.valOffsets[r + 1]!; o < e; o++) sink[at++] = vb[o]!
      }
      check += sink[at - 1] ?? 0
    } else if (n > 0) {
      check += output.diffLo[n - 1]!
    }
    output.reset()
    if (res.kind === 'done') break
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const cpu = process.cpuUsage(c0)
  if (check < 0) console.log(check)
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, out }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

console.log(`merge kernel: ${R} runs, key ${KEY} B, val ${VAL} B, ${COLLIDE * 100}% colliding, parts of ${PART_ROWS} rows, Node ${process.version}`)
const data = new Map(SIZES.map((n) => [n, generate(n)]))
const rates = new Map<string, { wall: number[]; cpu: number[] }>()
for (let round = 1; round <= ROUNDS; round++) {
  for (const n of SIZES) {
    for (const gather of args.gather === 'both' ? [false, true] : [args.gather === 'only']) {
      const runs = data.get(n)!
      const input = runs.reduce((s, r) => s + r.rows, 0)
      const { seconds, cpuSeconds, out } = merge(runs, gather)
      const label = `${input} updates${gather ? ' + gather' : ''}`
      const r = rates.get(label) ?? { wall: [], cpu: [] }
      r.wall.push(input / seconds / 1e6)
      r.cpu.push(input / cpuSeconds / 1e6)
      rates.set(label, r)
      console.log(
        `round ${round}: ${label.padEnd(28)} ${seconds.toFixed(3)} s  ${(input / seconds / 1e6).toFixed(2)} M/s wall, ` +
          `${(input / cpuSeconds / 1e6).toFixed(2)} M/s cpu  output ${((100 * out) / input).toFixed(1)}%`,
      )
    }
  }
}
console.log('medians (M updates/s by wall clock, by process CPU time):')
for (const [label, r] of rates) console.log(`  ${label.padEnd(28)} ${median(r.wall).toFixed(2)} wall  ${median(r.cpu).toFixed(2)} cpu`)
