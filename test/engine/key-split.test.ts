import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { KEY_LOWER_MAX_BYTES, type HollowPart, type RunOrder } from '../../src/core/batch.js'
import { description } from '../../src/core/description.js'
import { newPartId, newWriterKey } from '../../src/core/ids.js'
import { partialBatchKey } from '../../src/core/paths.js'
import { mulberry32 } from '../../src/core/prng.js'
import { binary, int64 } from '../../src/columnar/data-type.js'
import { encodePart } from '../../src/columnar/part-format.js'
import { sortKeyColumn } from '../../src/columnar/sort-key.js'
import { UpdatesBuilder } from '../../src/columnar/updates.js'
import { keyLowerAt } from '../../src/shard/batch-writer.js'
import { balancedKey, SAMPLE_MIN_PART_BYTES, sampleKeys, splitByKey, splittable, worthSampling, type KeySplit } from '../../src/engine/key-split.js'
import type { Chunk, PlannedRun } from '../../src/engine/runs.js'

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`key-split test seed: ${seed} (rerun with FC_SEED=${seed})`)

const desc = description([0n], [1n], [0n])
const writer = newWriterKey()

/** A run's part as the test knows it: its keys (sorted within the run) and its real encoding. */
interface BuiltPart {
  readonly keys: readonly Uint8Array[]
  readonly bytes: Uint8Array
  readonly part: HollowPart
}

/** Encodes `keys` (binary, in this order) as a real part, its key lower taken as the batch writer does. */
function buildPart(keys: readonly Uint8Array[], order: RunOrder): BuiltPart {
  const b = new UpdatesBuilder({ keyType: binary, valType: int64, timeKind: 'u64' })
  keys.forEach((k, i) => b.append(k, BigInt(i), 0n, 1n))
  const u = b.finish()
  const bytes = encodePart(u, { desc, order, schemaId: 0 })
  const keyLower = order === 'unordered' ? '' : keyLowerAt(sortKeyColumn(u.keys, binary, order), 0)
  const part: HollowPart = { kind: 'hollow', key: partialBatchKey(writer, newPartId()), encodedSizeBytes: bytes.byteLength, keyLower, diffsSum: null, schemaId: 0, stats: { updates: keys.length } }
  return { keys, bytes, part }
}

interface BuiltRun {
  readonly run: PlannedRun
  readonly parts: readonly BuiltPart[]
}

function plannedRun(input: number, parts: readonly BuiltPart[], order: RunOrder | null, exploded: boolean, schemaId = 0): BuiltRun {
  return { run: { input, meta: { order, schemaId }, parts: parts.map((p) => p.part), exploded }, parts }
}

function chunkOf(runs: readonly BuiltRun[]): Chunk {
  return { runs: runs.map((r) => r.run), memoryBytes: runs.reduce((s, r) => s + Math.max(...r.run.parts.map((p) => p.encodedSizeBytes)), 0) }
}

const sortKeys = (keys: readonly Uint8Array[]): Uint8Array[] => [...keys].sort((a, b) => Buffer.compare(a, b))
const cut = (k: Uint8Array): Uint8Array => k.subarray(0, KEY_LOWER_MAX_BYTES)
const has = (split: KeySplit, half: number, r: number, i: number): boolean => split.tasks[half]?.runs[r]?.parts.includes(i) ?? false

/**
 * Checks a split of `runs` against the keys themselves: the number of tasks, that every row's
 * half reads its part, `sharers`, that unsplittable runs are read whole, and that a half reads a
 * part of a splittable run only when the part's key span (its first key, cut, to the next
 * part's) reaches into the half's range.
 */
function checkSplit(runs: readonly BuiltRun[], workers: number, samples: readonly (readonly Uint8Array[])[]): KeySplit {
  const chunk = chunkOf(runs)
  const split = splitByKey(chunk, 'structured', 0, workers, samples)
  const usable = runs.map((r) => splittable(r.run, 'structured', 0))
  const candidates = runs.flatMap((r, n) => (usable[n] ? [...(samples[n] ?? []), ...r.parts.slice(1).flatMap((p) => (p.part.keyLower === '' ? [] : [cut(p.keys[0] as Uint8Array)]))] : []))
  for (const task of split.tasks) {
    assert.equal(task.runs.length, runs.length)
    task.runs.forEach((rr, r) => {
      assert.equal(rr.run, chunk.runs[r])
      rr.parts.forEach((p, j) => assert.ok(j === 0 || p > (rr.parts[j - 1] as number), 'part indices ascend'))
    })
  }
  // One copy is shared only by halves that both start with it: a run's first part read by both.
  runs.forEach((r, n) =>
    r.parts.forEach((_, i) => {
      const readers = split.tasks.filter((_, h) => has(split, h, n, i)).length
      assert.equal(split.sharers(r.run, i), i === 0 && readers === 2 ? 2 : 1, `sharers(run ${n}, ${i})`)
    }),
  )
  if (workers < 2 || candidates.length === 0) {
    assert.equal(split.tasks.length, 1)
    const [task] = split.tasks
    assert.equal(task?.keyRange, undefined)
    runs.forEach((r, n) => assert.deepEqual(task?.runs[n]?.parts, r.parts.map((_, i) => i)))
    return split
  }
  assert.equal(split.tasks.length, 2)
  const key = split.tasks[0]?.keyRange?.upper
  assert.ok(key instanceof Uint8Array)
  assert.deepEqual(split.tasks[0]?.keyRange, { lower: null, upper: key })
  assert.deepEqual(split.tasks[1]?.keyRange, { lower: key, upper: null })
  assert.ok(candidates.some((c) => Buffer.compare(c, key) === 0), 'the split key is a sample or a key lower')
  runs.forEach((r, n) => {
    r.parts.forEach((p, i) => {
      for (const k of p.keys) {
        const half = Buffer.compare(k, key) < 0 ? 0 : 1
        assert.ok(has(split, half, n, i), `key ${Buffer.from(k).toString('hex')} of run ${n} part ${i} lies in half ${half}, which does not read the part`)
      }
      if (!usable[n]) {
        assert.ok(has(split, 0, n, i) && has(split, 1, n, i), `unsplittable run ${n} is read whole by both halves`)
        return
      }
      if (r.parts.some((q, j) => j > 0 && q.part.keyLower === '')) return
      const lo = i === 0 ? null : cut(p.keys[0] as Uint8Array)
      const next = r.parts[i + 1]
      const hi = next === undefined ? null : cut(next.keys[0] as Uint8Array)
      assert.equal(has(split, 0, n, i), lo === null || Buffer.compare(lo, key) < 0, `half 0 reads run ${n} part ${i} iff its span starts below the split`)
      assert.equal(has(split, 1, n, i), hi === null || Buffer.compare(hi, key) >= 0, `half 1 reads run ${n} part ${i} iff its span ends at or above the split`)
    })
  })
  return split
}

/** `other-schema`: sorted in the preferred order but written with another schema id. */
type RunKind = 'structured' | 'codec' | 'null' | 'exploded' | 'other-schema'

/**
 * A sorted run of `keys` cut into parts (a cut `c` starts a part at row `1 + c % (rows - 1)`), as
 * `kind` says (exploded: one planned run per part).
 */
function buildRuns(input: number, keys: readonly Uint8Array[], cuts: readonly number[], kind: RunKind): BuiltRun[] {
  const sorted = sortKeys(keys)
  const bounds = [...new Set(cuts.map((c) => 1 + (c % Math.max(1, sorted.length - 1))))].filter((b) => b < sorted.length).sort((a, b) => a - b)
  const edges = [0, ...bounds, sorted.length]
  const order: RunOrder | null = kind === 'structured' || kind === 'other-schema' ? 'structured' : kind === 'null' ? null : 'codec'
  const parts = edges.slice(1).map((end, j) => buildPart(sorted.slice(edges[j], end), order ?? 'codec'))
  if (kind === 'other-schema') return [plannedRun(input, parts, order, false, 1)]
  if (kind !== 'exploded') return [plannedRun(input, parts, order, false)]
  return parts.map((p) => plannedRun(input, [p], order, parts.length > 1))
}

const runSpec = (key: fc.Arbitrary<Uint8Array>) =>
  fc.record({
    keys: fc.array(key, { minLength: 1, maxLength: 24 }),
    cuts: fc.array(fc.nat(), { maxLength: 4 }),
    kind: fc.constantFrom<RunKind>('structured', 'structured', 'structured', 'codec', 'null', 'exploded', 'other-schema'),
    samples: fc.integer({ min: 0, max: 8 }),
  })

const scenario = (key: fc.Arbitrary<Uint8Array>) => fc.record({ runs: fc.array(runSpec(key), { minLength: 1, maxLength: 6 }), workers: fc.integer({ min: 0, max: 3 }) })

/** Runs the scenario: samples come from each run's real first part, as the executor takes them. */
function runScenario({ runs: specs, workers }: { runs: { keys: Uint8Array[]; cuts: number[]; kind: RunKind; samples: number }[]; workers: number }): void {
  const built = specs.flatMap((s, input) => buildRuns(input, s.keys, s.cuts, s.kind).map((run) => ({ run, count: s.samples })))
  // NB: unsplittable runs get samples too: splitByKey must ignore them.
  const samples = built.map(({ run, count }) => (count === 0 ? [] : sampleKeys((run.parts[0] as BuiltPart).bytes, 'structured', count)))
  checkSplit(
    built.map((b) => b.run),
    workers,
    samples,
  )
}

/** Short keys over a small alphabet: many ties, prefixes and empty keys. */
const shortKey = fc.array(fc.constantFrom(0, 1, 2, 0xff), { maxLength: 4 }).map((b) => Uint8Array.from(b))

/** Keys around KEY_LOWER_MAX_BYTES long that share long prefixes, so key lowers and samples are cut. */
const longKey = fc
  .tuple(fc.integer({ min: KEY_LOWER_MAX_BYTES - 6, max: KEY_LOWER_MAX_BYTES + 6 }), fc.array(fc.constantFrom(0, 0x61, 0x62, 0xff), { maxLength: 4 }))
  .map(([n, tail]) => Uint8Array.from([...new Array<number>(n).fill(0x61), ...tail]))

/** Sorted uniformly random 16-byte keys. */
function randomKeys(rand: () => number, n: number): Uint8Array[] {
  return sortKeys(Array.from({ length: n }, () => Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256))))
}

/** Bytes of the parts each half reads, each weighted by the fraction of its rows in the half's range. */
function weightedBytes(runs: readonly BuiltRun[], split: KeySplit): [number, number] {
  const key = split.tasks[0]?.keyRange?.upper
  assert.ok(key instanceof Uint8Array)
  const out: [number, number] = [0, 0]
  for (const half of [0, 1] as const) {
    split.tasks[half]?.runs.forEach((rr, r) => {
      for (const i of rr.parts) {
        const p = runs[r]?.parts[i] as BuiltPart
        const inRange = p.keys.filter((k) => (Buffer.compare(k, key) < 0) === (half === 0)).length
        out[half] += (p.part.encodedSizeBytes * inRange) / p.keys.length
      }
    })
  }
  return out
}

function assertBalanced(weighted: [number, number], total: number, what: string): void {
  for (const w of weighted) assert.ok(Math.abs(w - total / 2) <= 0.15 * (total / 2), `${what}: a half reads ${Math.round((100 * w) / total)}% of the bytes (${weighted.join(' / ')})`)
}

const totalBytes = (runs: readonly BuiltRun[]): number => runs.reduce((s, r) => s + r.parts.reduce((t, p) => t + p.part.encodedSizeBytes, 0), 0)

describe('splitByKey', () => {
  it('gives every row to a half that reads its part, and sharers() shares only first parts read by both', () => {
    fc.assert(fc.property(scenario(shortKey), runScenario), { seed, numRuns: 150 })
  })

  it('keeps every row covered when key lowers and samples are cut to KEY_LOWER_MAX_BYTES', () => {
    fc.assert(fc.property(scenario(longKey), runScenario), { seed, numRuns: 100 })
  })

  it('reads unsplittable runs (exploded, in another order, or of another schema) whole in both halves', () => {
    const rand = mulberry32(seed)
    const keys = randomKeys(rand, 300)
    const runs = [
      ...buildRuns(0, keys, [99, 199], 'structured'),
      ...buildRuns(1, randomKeys(rand, 90), [29, 59], 'codec'),
      ...buildRuns(2, randomKeys(rand, 90), [29, 59], 'null'),
      ...buildRuns(3, randomKeys(rand, 90), [29, 59], 'exploded'),
      ...buildRuns(4, randomKeys(rand, 90), [29, 59], 'other-schema'),
    ]
    assert.equal(runs.length, 7)
    // As the executor does: only splittable runs are sampled.
    const samples = runs.map((r) => (splittable(r.run, 'structured', 0) ? sampleKeys((r.parts[0] as BuiltPart).bytes, 'structured') : []))
    const split = checkSplit(runs, 2, samples)
    assert.equal(split.tasks.length, 2)
    for (let r = 1; r < runs.length; r++) for (const task of split.tasks) assert.deepEqual(task.runs[r]?.parts, runs[r]?.run.parts.map((_, i) => i))
    // The sorted run is divided: some of its parts are read by one half only.
    const sorted = runs[0]?.run as PlannedRun
    assert.ok(
      sorted.parts.some((_, i) => split.tasks.filter((t) => t.runs[0]?.parts.includes(i)).length === 1),
      `the sorted run is divided: ${JSON.stringify(split.tasks.map((t) => t.runs[0]?.parts))}`,
    )
  })

  it('finds the most balanced candidate by binary search, as trying every candidate would', () => {
    fc.assert(
      fc.property(fc.array(shortKey, { minLength: 1, maxLength: 60 }), fc.array(fc.tuple(shortKey, fc.nat({ max: 1000 })), { maxLength: 40 }), (candidates, weights) => {
        // Bytes below a key: the weights of points below it, so never falling as the key grows.
        const below = (k: Uint8Array): number => weights.reduce((s, [p, w]) => s + (Buffer.compare(p, k) < 0 ? w : 0), 0)
        const total = weights.reduce((s, [, w]) => s + w, 0)
        const imbalance = (k: Uint8Array): number => Math.abs(2 * below(k) - total)
        const best = Math.min(...candidates.map(imbalance))
        const chosen = balancedKey([...candidates], below, total)
        assert.ok((candidates as Uint8Array[]).includes(chosen), 'one of the candidates')
        assert.equal(imbalance(chosen), best)
      }),
      { seed, numRuns: 300 },
    )
  })

  it('balances 16 single-part runs of random keys within 15%', () => {
    const rand = mulberry32(seed)
    const runs = Array.from({ length: 16 }, (_, r) => buildRuns(r, randomKeys(rand, 300 + Math.floor(rand() * 1200)), [], 'structured')).flat()
    const samples = runs.map((r) => sampleKeys((r.parts[0] as BuiltPart).bytes, 'structured'))
    assert.ok(samples.every((s) => s.length === 64))
    const split = checkSplit(runs, 2, samples)
    assertBalanced(weightedBytes(runs, split), totalBytes(runs), '16 single-part runs')
  })

  it('balances 4 runs of a big first part and a small second within 15%, which key lowers alone do not', () => {
    const rand = mulberry32(seed)
    const runs = Array.from({ length: 4 }, (_, r) => buildRuns(r, randomKeys(rand, 2000), [1499], 'structured')).flat()
    assert.ok(runs.every((r) => r.parts.length === 2 && (r.parts[0]?.keys.length ?? 0) === 1500))
    const samples = runs.map((r) => sampleKeys((r.parts[0] as BuiltPart).bytes, 'structured'))
    assertBalanced(weightedBytes(runs, checkSplit(runs, 2, samples)), totalBytes(runs), 'with samples')
    // Without samples, the only candidates are the second parts' lowers, near the 75th percentile.
    const [lower] = weightedBytes(runs, checkSplit(runs, 2, runs.map(() => [])))
    assert.ok(lower > 0.65 * totalBytes(runs), `key lowers alone put ${Math.round((100 * lower) / totalBytes(runs))}% below the split`)
  })

  it('balances 8 runs of many small parts (as windows are) within 15% from key lowers alone', () => {
    const rand = mulberry32(seed)
    const cuts = Array.from({ length: 19 }, (_, i) => 100 * (i + 1) - 1)
    const runs = Array.from({ length: 8 }, (_, r) => buildRuns(r, randomKeys(rand, 2000), cuts, 'structured')).flat()
    assert.ok(runs.every((r) => r.parts.length === 20 && !worthSampling(r.run, 'structured', 0)), 'small first parts are not sampled')
    assertBalanced(weightedBytes(runs, checkSplit(runs, 2, runs.map(() => []))), totalBytes(runs), 'without samples')
  })
})

describe('worthSampling', () => {
  it('samples a usable first part from SAMPLE_MIN_PART_BYTES up, never a small or unusable one', () => {
    const rand = mulberry32(seed)
    const [small] = buildRuns(0, randomKeys(rand, 50), [], 'structured')
    const [other] = buildRuns(1, randomKeys(rand, 50), [], 'codec')
    assert.ok(small !== undefined && other !== undefined)
    const sized = (r: BuiltRun, bytes: number): PlannedRun => ({ ...r.run, parts: r.run.parts.map((p, i) => (i === 0 ? { ...p, encodedSizeBytes: bytes } : p)) })
    assert.equal(worthSampling(small.run, 'structured', 0), false, 'a small part')
    assert.equal(worthSampling(sized(small, SAMPLE_MIN_PART_BYTES - 1), 'structured', 0), false, 'just below the size')
    assert.equal(worthSampling(sized(small, SAMPLE_MIN_PART_BYTES), 'structured', 0), true, 'a large part')
    assert.equal(worthSampling(sized(other, SAMPLE_MIN_PART_BYTES), 'structured', 0), splittable(other.run, 'structured', 0), 'only a usable one')
    assert.equal(worthSampling({ ...small.run, parts: [] }, 'structured', 0), false, 'no parts')
  })
})
