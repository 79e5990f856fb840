/**
 * The cluster against a model: seeded random sequences (fast-check; the seed is printed, FC_SEED
 * reproduces) of writes, since moves, compactions (waited for or not) and snapshot reads on random
 * instances, with `kill -9` and restarts of random instances in between. Writer maintenance runs
 * as in production (its heuristics lowered so it often does), so jobs are in flight on instances
 * when they die and are rescued by others. Every snapshot read, and at the end every snapshot at
 * every asOf ≥ since on every instance, must equal the single-process model's oracle
 * (test/model/shard-model.ts `expected`).
 *
 * Bounded: few runs of few operations, at most two kills a run; no shrinking (each run restarts
 * processes, so a failure is reported as found, with its seed and operations).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { eventually, startCluster, type Cluster, type Instance } from '../support/cluster.js'
import { expected, valType, type ClusterModelShard, type Row } from '../model/shard-model.js'

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31)
console.log(`cluster model test seed: ${SEED} (rerun with FC_SEED=${SEED})`)

const RUNS = 3
const OPS = 30
const SHARDS = 2
const MAX_KILLS = 2

type Op =
  | { readonly kind: 'write'; readonly shard: number; readonly on: number; readonly width: number; readonly rows: ReadonlyArray<{ readonly key: number; readonly a: number; readonly at: number; readonly diff: number }> }
  | { readonly kind: 'since'; readonly shard: number; readonly on: number; readonly by: number }
  | { readonly kind: 'compact'; readonly shard: number; readonly on: number; readonly body: 'merges' | 'major'; readonly wait: boolean }
  | { readonly kind: 'read'; readonly shard: number; readonly on: number; readonly at: number }
  | { readonly kind: 'kill'; readonly on: number }
  | { readonly kind: 'restart'; readonly on: number }

const on = fc.nat({ max: 2 })
const shard = fc.nat({ max: SHARDS - 1 })
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      shard,
      on,
      width: fc.integer({ min: 1, max: 4 }),
      rows: fc.array(fc.record({ key: fc.nat({ max: 5 }), a: fc.nat({ max: 2 }), at: fc.nat({ max: 3 }), diff: fc.integer({ min: -2, max: 3 }) }), { maxLength: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('since' as const), shard, on, by: fc.nat({ max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), shard, on, body: fc.constantFrom('merges' as const, 'major' as const), wait: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('read' as const), shard, on, at: fc.nat({ max: 20 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kill' as const), on }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restart' as const), on }) },
)

type ModelShard = ClusterModelShard

interface UpdateJson {
  key: string
  val: { a: number }
  time: number
  diff: number
}

describe('a cluster of three against the model', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await startCluster({
      configs: {
        compaction_lease_timeout: '3s',
        persist_inline_writes_single_max_bytes: 0,
        persist_compaction_heuristic_min_inputs: 2,
        persist_compaction_heuristic_min_updates: 4,
      },
    })
  })
  after(() => cluster?.close())

  /** The instance `i` names, or the next live one (some instance is always live). */
  const pickLive = (i: number): Instance => {
    const all = cluster.instances
    for (let k = 0; k < all.length; k++) {
      const inst = all[(i + k) % all.length] as Instance
      if (inst.alive) return inst
    }
    throw new Error('no live instance')
  }

  const check = async (inst: Instance, m: ModelShard, asOf: bigint, where: string): Promise<void> => {
    const body = (await cluster.call(inst, 'GET', `/v1/shards/${m.id}/snapshot?asOf=${asOf}`, 200)) as { updates: UpdateJson[] }
    for (const u of body.updates) assert.equal(u.time, Number(asOf), where)
    const got = body.updates.map((u) => JSON.stringify([u.key, { a: u.val.a }, u.diff])).sort()
    assert.deepEqual(got, expected(m, asOf), `${where}: snapshot of ${m.id} at ${asOf} on ${inst.id}`)
  }

  it(`random writes, compactions, kills and restarts (${RUNS} runs of ${OPS} operations)`, async () => {
    let run = 0
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: OPS, maxLength: OPS }), async (ops) => {
        run++
        const shards: ModelShard[] = []
        for (let i = 0; i < SHARDS; i++) {
          const created = await cluster.call(pickLive(i), 'POST', '/v1/shards', 201, { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: valType([]) })
          shards.push({ id: String(created.shardId), since: 0n, upper: 0n, rows: [], fields: [] })
        }
        let kills = 0
        const tally: Record<string, number> = {}
        const count = (what: string): void => {
          tally[what] = (tally[what] ?? 0) + 1
        }
        for (const [step, o] of ops.entries()) {
          const where = `run ${run} step ${step} ${JSON.stringify(o)} (seed ${SEED})`
          switch (o.kind) {
            case 'write': {
              const m = shards[o.shard] as ModelShard
              const lower = m.upper
              const upper = lower + BigInt(o.width)
              const rows: Row[] = o.rows.map((r) => ({ key: `k${r.key}`, val: { a: r.a }, time: lower + BigInt(r.at % o.width), diff: BigInt(r.diff) }))
              const updates = rows.map((r) => ({ key: r.key, val: r.val, time: Number(r.time), diff: Number(r.diff) }))
              const res = await cluster.call(pickLive(o.on), 'POST', `/v1/shards/${m.id}/batches`, 201, { lower: [Number(lower)], upper: [Number(upper)], updates })
              assert.equal(res.appended, true, where)
              m.rows.push(...rows)
              m.upper = upper
              break
            }
            case 'since': {
              const m = shards[o.shard] as ModelShard
              const since = m.since + BigInt(o.by) > m.upper ? m.upper : m.since + BigInt(o.by)
              await cluster.call(pickLive(o.on), 'POST', `/v1/shards/${m.id}/since`, 200, { since: [Number(since)] })
              m.since = since
              break
            }
            case 'compact': {
              const m = shards[o.shard] as ModelShard
              const res = await cluster.request(pickLive(o.on), 'POST', `/v1/shards/${m.id}/compactions`, { ...(o.body === 'major' ? { major: true } : {}), wait: o.wait })
              // 200: skipped, or (wait) ended; 202: queued; 422: nothing the request could compact; 429: the queue is full.
              assert.ok([200, 202, 422, 429].includes(res.status), `${where}: ${res.status} ${JSON.stringify(res.body)}`)
              count(`compact=${res.status}:${String(res.body.status ?? res.body.code)}`)
              if (o.wait && res.status === 200) assert.ok(['succeeded', 'not_applied', 'skipped'].includes(String(res.body.status)), `${where}: ${JSON.stringify(res.body)}`)
              break
            }
            case 'read': {
              const m = shards[o.shard] as ModelShard
              if (m.since >= m.upper) break
              await check(pickLive(o.on), m, m.since + (BigInt(o.at) % (m.upper - m.since)), where)
              break
            }
            case 'kill': {
              const inst = cluster.instances[o.on] as Instance
              if (!inst.alive || cluster.live().length < 2 || kills >= MAX_KILLS) break
              kills++
              count('kill')
              await cluster.kill9(inst)
              break
            }
            case 'restart': {
              const inst = cluster.instances[o.on] as Instance
              if (inst.alive) break
              count('restart')
              await cluster.restart(inst)
              break
            }
          }
        }
        for (const m of shards) {
          const page = (await cluster.call(pickLive(0), 'GET', `/v1/compactions?shardId=${m.id}&limit=1000`, 200)) as { compactions: Array<{ status: string; attempt: number }> }
          for (const c of page.compactions) count(`job=${c.status}${c.attempt > 1 ? `,attempt ${c.attempt}` : ''}`)
        }
        console.log(`run ${run}: ${JSON.stringify(tally)}`)
        // Every instance back; every job of these shards settled (rescued ones included); then every snapshot, everywhere.
        await Promise.all(cluster.instances.filter((i) => !i.alive).map((i) => cluster.restart(i)))
        for (const m of shards) {
          await eventually(`the jobs of ${m.id} settle`, async () => {
            const page = (await cluster.call(pickLive(0), 'GET', `/v1/compactions?shardId=${m.id}&limit=1000`, 200)) as { compactions: Array<{ status: string }> }
            return page.compactions.every((c) => c.status !== 'queued' && c.status !== 'running') ? true : undefined
          })
        }
        for (const inst of cluster.instances) {
          for (const m of shards) {
            for (let asOf = m.since; asOf < m.upper && asOf < m.since + 6n; asOf++) await check(inst, m, asOf, `run ${run} at the end (seed ${SEED})`)
          }
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true },
    )
  })
})
