/**
 * Incremental compaction against an oracle: random histories of pushes (batches of several runs,
 * some in another order), since downgrades, exerts, and compactions planned by the real
 * batch-granular chunking (`planChunks`) whose chunks are applied one at a time, interleaved with
 * each other and with everything else, some jobs abandoned half way and some rescued
 * (`remainingInputs`, as a later attempt replans). Every part's updates are known, and every chunk's
 * output is the sort-and-sum of its runs' updates at the request's since.
 *
 * Checked after every step: the trace is valid; every hollow batch's len is its parts' updates;
 * and the snapshot at several as-ofs at or beyond the since (the updates at or before the as-of,
 * summed per key) equals the one of every update ever pushed. A chunk that does not apply leaves
 * the trace as it was. A job all of whose chunks applied leaves nothing of its inputs to a rescue.
 */
import assert from 'node:assert/strict'
import { it } from 'node:test'
import fc from 'fast-check'
import { runs, type BatchPart, type HollowBatch, type HollowPart, type RunMeta } from '../../src/core/batch.js'
import { description, type Description } from '../../src/core/description.js'
import { mulberry32 } from '../../src/core/prng.js'
import { planChunks } from '../../src/compact/plan.js'
import { applied } from '../../src/trace/apply-merge-res.js'
import { applyResult, type ApplyMode } from '../../src/trace/apply-result.js'
import { WHOLE_BATCHES, type CompactionInput } from '../../src/trace/compaction-input.js'
import { remainingInputs } from '../../src/trace/remaining-inputs.js'
import { allHollowBatches, downgradeSince, emptyTrace, exert, pushBatch, spineBatches, validate } from '../../src/trace/trace.js'
import { f, partKey, tk } from './fixtures.js'

const seed = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`incremental compaction property test seed: ${seed} (rerun with FC_SEED=${seed})`)

interface Update {
  readonly key: number
  readonly time: bigint
  readonly diff: bigint
}

type Op =
  | { kind: 'push'; width: number; runs: number[]; order: boolean; rng: number }
  | { kind: 'downgrade'; step: number }
  | { kind: 'exert'; fuel: number }
  | { kind: 'start'; what: 'merge' | 'range' | 'major'; pick: number; from: number; to: number; budget: number; target: number }
  | { kind: 'chunk'; job: number; count: number }
  | { kind: 'rescue'; job: number }
  | { kind: 'drop'; job: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('push' as const),
      width: fc.integer({ min: 1, max: 3 }),
      runs: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 0, maxLength: 4 }),
      order: fc.boolean(),
      rng: fc.integer(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('downgrade' as const), step: fc.integer({ min: 0, max: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exert' as const), fuel: fc.integer({ min: 0, max: 64 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('start' as const),
      what: fc.constantFrom('merge' as const, 'range' as const, 'major' as const),
      pick: fc.nat(),
      from: fc.nat(),
      to: fc.nat(),
      budget: fc.integer({ min: 20, max: 400 }),
      target: fc.integer({ min: 10, max: 100 }),
    }),
  },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('chunk' as const), job: fc.nat(), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('rescue' as const), job: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), job: fc.nat() }) },
)

/** A planned compaction: its request, and its chunks' outputs with what each replaces. */
interface Job {
  readonly mode: ApplyMode
  readonly desc: Description
  readonly inputs: readonly HollowBatch[]
  chunks: { readonly output: HollowBatch; readonly input: CompactionInput }[]
  next: number
  /** Whether one of its chunks did not apply (the spine moved: pushes, merges, other jobs). */
  refused: boolean
}

const outcomes = new Map<string, number>()
const count = (k: string): void => void outcomes.set(k, (outcomes.get(k) ?? 0) + 1)

function run(ops: Op[]): void {
  /** Every part's updates, by key. */
  const contents = new Map<string, readonly Update[]>()
  const pushed: Update[] = []
  let trace = emptyTrace(tk)
  let upperN = 0
  let sinceN = 0
  let jobs: Job[] = []

  const part = (updates: readonly Update[], size: number): HollowPart => {
    const key = partKey()
    contents.set(key, updates)
    return { kind: 'hollow', key, encodedSizeBytes: size, keyLower: '', diffsSum: updates.reduce((s, u) => BigInt.asIntN(64, s + u.diff), 0n), schemaId: 0, stats: { updates: updates.length } }
  }
  const updatesOf = (p: BatchPart): readonly Update[] => contents.get((p as HollowPart).key) as readonly Update[]

  /** Sort and sum at `since`: times advanced, equal (key, time) summed, zeros dropped. */
  const consolidate = (all: readonly Update[], since: bigint): Update[] => {
    const sums = new Map<string, Update>()
    for (const u of all) {
      const time = u.time < since ? since : u.time
      const k = `${u.key}@${time}`
      const prev = sums.get(k)
      sums.set(k, { key: u.key, time, diff: (prev?.diff ?? 0n) + u.diff })
    }
    return [...sums.values()].filter((u) => u.diff !== 0n)
  }

  /** Updates at or before `asOf`, summed per key (zeros dropped), as a sorted list. */
  const snapshot = (all: readonly Update[], asOf: bigint): string[] => {
    const sums = new Map<number, bigint>()
    for (const u of all) if (u.time <= asOf) sums.set(u.key, (sums.get(u.key) ?? 0n) + u.diff)
    return [...sums.entries()].filter(([, d]) => d !== 0n).sort((a, b) => a[0] - b[0]).map(([k, d]) => `${k}:${d}`)
  }

  const plan = (mode: ApplyMode, desc: Description, inputs: readonly HollowBatch[], runsOnly: boolean, budget: number, target: number): Job['chunks'] => {
    const chunks = planChunks(inputs, desc, { incremental: true, runsOnly, order: 'structured', runReservedBytes: budget, targetSizeBytes: target, windows: null })
    const parts = (bs: readonly HollowBatch[]): number => bs.reduce((s, b) => s + b.parts.length, 0)
    assert.equal(chunks.chunks.reduce((s, c) => s + c.runs.reduce((t, r) => t + r.parts.length, 0), 0), parts(inputs), 'every input part is in exactly one chunk')
    return chunks.chunks.map((c) => {
      const replaced = c.runs.flatMap((r) => r.parts)
      const out = consolidate(replaced.flatMap(updatesOf), desc.since[0] as bigint)
      const parts = out.length === 0 ? [] : [part(out, Math.max(1, Math.floor(replaced.reduce((s, p) => s + p.encodedSizeBytes, 0) / 2)))]
      const meta: RunMeta[] = parts.length === 0 ? [] : [{ order: 'structured', schemaId: 0 }]
      const output: HollowBatch = { desc: c.desc, len: out.length, parts, runSplits: [], runMeta: meta }
      return { output, input: c.kind === 'runs' ? { kind: 'runs', parts: replaced } : WHOLE_BATCHES }
    })
  }

  for (const op of ops) {
    const before = trace
    switch (op.kind) {
      case 'push': {
        const rand = mulberry32(op.rng)
        const lower = upperN
        const upper = upperN + op.width
        const metas: RunMeta[] = []
        const parts: BatchPart[] = []
        const runSplits: number[] = []
        for (const [r, n] of op.runs.entries()) {
          if (parts.length > 0) runSplits.push(parts.length)
          for (let i = 0; i < n; i++) {
            const updates = Array.from({ length: Math.floor(rand() * 4) }, () => ({
              key: Math.floor(rand() * 6),
              time: BigInt(lower + Math.floor(rand() * op.width)),
              diff: BigInt(Math.floor(rand() * 5) - 2),
            }))
            pushed.push(...updates)
            parts.push(part(updates, 10 + Math.floor(rand() * 90)))
          }
          metas.push({ order: op.order && r % 2 === 1 ? 'codec' : 'structured', schemaId: 0 })
        }
        const b: HollowBatch = { desc: description(f(lower), f(upper), f(0)), len: parts.reduce((s, p) => s + (p as HollowPart).stats.updates, 0), parts, runSplits, runMeta: metas }
        trace = pushBatch(trace, b).trace
        upperN = upper
        break
      }
      case 'downgrade':
        sinceN += op.step
        trace = downgradeSince(trace, f(sinceN))
        break
      case 'exert':
        trace = exert(trace, op.fuel).trace
        break
      case 'start': {
        const all = spineBatches(trace).filter((sb) => sb.len > 0)
        if (all.length === 0) continue
        const sb = all[op.pick % all.length] as (typeof all)[number]
        if (op.what === 'major') {
          const every = spineBatches(trace)
          const a = op.from % every.length
          const z = a + (op.to % (every.length - a))
          const covered = every.slice(a, z + 1)
          const desc = description((covered[0] as (typeof every)[number]).desc.lower, (covered.at(-1) as (typeof every)[number]).desc.upper, trace.since)
          const inputs = covered.flatMap((x) => x.parts.map((p) => p.batch))
          jobs.push({ mode: 'major', desc, inputs, chunks: plan('major', desc, inputs, false, op.budget, op.target), next: 0, refused: false })
        } else {
          const n = sb.parts.length
          const a = op.what === 'range' ? op.from % n : 0
          const z = op.what === 'range' ? a + (op.to % (n - a)) : n - 1
          const inputs = sb.parts.slice(a, z + 1).map((p) => p.batch)
          const desc = description((inputs[0] as HollowBatch).desc.lower, (inputs.at(-1) as HollowBatch).desc.upper, sb.desc.since)
          jobs.push({ mode: 'merge', desc, inputs, chunks: plan('merge', desc, inputs, false, op.budget, op.target), next: 0, refused: false })
        }
        break
      }
      case 'chunk': {
        if (jobs.length === 0) continue
        const job = jobs[op.job % jobs.length] as Job
        for (let i = 0; i < op.count && job.next < job.chunks.length; i++) {
          const c = job.chunks[job.next++] as Job['chunks'][number]
          const at = trace
          const r = applyResult(trace, c.output, job.mode, c.input)
          count(`${job.mode} ${c.input.kind} ${r.result}`)
          if (!applied(r.result)) {
            assert.equal(r.trace, at, 'a chunk that does not apply leaves the trace as it was')
            assert.ok(r.detail !== null && r.detail.message.length > 0)
            job.refused = true
          }
          trace = r.trace
          assert.equal(validate(trace), null)
        }
        if (job.next === job.chunks.length) {
          if (!job.refused) assert.deepEqual(remainingInputs(trace, job.inputs), [], 'a job all of whose chunks applied leaves nothing')
          jobs = jobs.filter((j) => j !== job)
        }
        break
      }
      case 'rescue': {
        // A later attempt: the chunks not applied yet are lost; plan again what is left.
        if (jobs.length === 0) continue
        const job = jobs[op.job % jobs.length] as Job
        job.chunks = remainingInputs(trace, job.inputs).flatMap((g) => {
          if (g.kind === 'runs') return plan(job.mode, description(g.batch.desc.lower, g.batch.desc.upper, job.desc.since), [g.batch], true, 60, 30)
          const desc = description((g.inputs[0] as HollowBatch).desc.lower, (g.inputs.at(-1) as HollowBatch).desc.upper, job.desc.since)
          return plan(job.mode, desc, g.inputs, false, 60, 30)
        })
        count(`rescue ${job.chunks.length === 0 ? 'nothing left' : 'replanned'}`)
        job.next = 0
        job.refused = false
        break
      }
      case 'drop':
        if (jobs.length > 0) jobs.splice(op.job % jobs.length, 1)
        break
    }
    assert.equal(validate(trace), null, `after ${op.kind}`)
    for (const b of allHollowBatches(trace)) assert.equal(b.len, b.parts.reduce((s, p) => s + (p as HollowPart).stats.updates, 0), 'a hollow batch holds len updates')
    const since = trace.since[0] as bigint
    const inTrace = allHollowBatches(trace).flatMap((b) => runs(b).flatMap((r) => r.parts.flatMap(updatesOf)))
    for (const asOf of [since, since + 1n, since + 3n, BigInt(upperN), BigInt(upperN) + 5n]) {
      if (asOf < since) continue
      assert.deepEqual(snapshot(inTrace, asOf), snapshot(pushed, asOf), `the snapshot at ${asOf} after ${op.kind} (before: ${before === trace ? 'unchanged' : 'changed'})`)
    }
  }
}

it('chunks applied one at a time, interleaved, abandoned and rescued, never change a snapshot at or beyond the since', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 60, size: 'max' }), (ops) => run(ops)),
    { seed, numRuns: 150 },
  )
  console.log(`chunk outcomes ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`)
  for (const k of ['merge batches applied_subset', 'merge runs applied_subset', 'major batches applied_subset', 'merge batches not_applied_no_match', 'merge runs not_applied_no_match', 'rescue replanned', 'rescue nothing left']) {
    assert.ok((outcomes.get(k) ?? 0) > 0, `the generator never produced ${k}`)
  }
})
