/**
 * Crashes and idle shards on three real instances (one PostgreSQL, one S3 bucket):
 * - `kill -9` of the instance running a multi-chunk compaction: another instance rescues the job
 *   once its lease expires and finishes it (attempt 2); exactly one attempt's output is in state,
 *   every snapshot is what it was, and after GC the bucket holds exactly what state references;
 * - a shard left with merge work and no appends is compacted by the idle sweep, once.
 *
 * GC grace is 1 s here so GC can collect the killed attempt's parts during the test; GC runs only
 * when the test asks, after the compactions settled (a short grace would otherwise let one instance
 * collect another's outputs in flight: see docs/operations.md).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { appendRows, bigShard, createShard, eventually, referencedKeys, snapshotsOf, startCluster, type Cluster, type Instance, type Json } from '../support/cluster.js'

const LEASE_MS = 3_000

interface CompactionJson extends Json {
  id: string
  status: string
  source: string
  kind: string
  attempt: number
  instance: string | null
  result?: string
  output?: { len: number; parts: Array<{ key?: string }> }
  inputs: { updates: number }
  progress: { updatesRead: number; partsWritten: number; chunksDone: number; chunksTotal: number; chunksApplied: number }
}

interface ShardJson {
  stats: { spineBatches: number; updates: number; backlogBatches: number }
  trace: { merges: unknown[] }
}

describe('crashes and idle shards in a cluster', () => {
  let cluster: Cluster
  let a: Instance
  let b: Instance
  let c: Instance
  before(async () => {
    cluster = await startCluster({
      env: { COMPACTD_GC_GRACE: '1s' },
      configs: {
        // Writer maintenance always skipped: the only jobs are the tests' and the idle sweep's.
        persist_compaction_heuristic_min_inputs: 1_000_000,
        persist_compaction_heuristic_min_parts: 1_000_000,
        persist_compaction_heuristic_min_updates: 1_000_000_000,
        // Tiny parts in many chunks: the compaction runs for seconds and its progress moves all along.
        persist_blob_target_size: 1024,
        persist_compaction_memory_bound_bytes: 4096,
        persist_inline_writes_single_max_bytes: 0,
        compaction_lease_timeout: `${LEASE_MS / 1000}s`,
        // Reader leases renewed every second and given back a second after the last read, so GC
        // can collect replaced inputs within the test.
        persist_reader_lease_duration: '4s',
        // The idle sweep only while the test of it runs: elsewhere its maintenance would race the tests' compactions.
        compaction_idle_sweep_interval: '0s',
      },
    })
    ;[a, b, c] = cluster.instances as [Instance, Instance, Instance]
  })
  after(() => cluster?.close())

  const get = async (inst: Instance, id: string): Promise<CompactionJson> => (await cluster.call(inst, 'GET', `/v1/compactions/${id}`, 200)) as CompactionJson
  const shard = async (inst: Instance, id: string): Promise<ShardJson> => (await cluster.call(inst, 'GET', `/v1/shards/${id}`, 200)) as unknown as ShardJson

  it('kill -9 of the owner mid-compaction: another instance finishes what is left; the chunks applied stay; no orphan blob after GC', async () => {
    const shardId = await bigShard(cluster, [a, b, c], 16, 500)
    await cluster.call(a, 'POST', `/v1/shards/${shardId}/since`, 200, { since: [6] })
    const asOfs = [6, 9, 12, 15]
    const before = await snapshotsOf(cluster, b, shardId, asOfs)
    const plan = (await cluster.call(a, 'POST', `/v1/shards/${shardId}/compactions`, 200, { major: true, dryRun: true })) as { plan: { chunks: unknown[] } }
    assert.ok(plan.plan.chunks.length >= 4, `several chunks: ${plan.plan.chunks.length}`)

    const submitted = (await cluster.call(a, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true })) as CompactionJson
    // Killed while running, once a chunk has applied (incremental compaction is on by default) and
    // chunks are left to do.
    const running = await eventually('the compaction runs and applies a chunk', async () => {
      const seen = await get(a, submitted.id)
      assert.ok(seen.status === 'queued' || seen.status === 'running', `it ended before the kill: ${JSON.stringify(seen)}`)
      if (seen.instance === null) return undefined
      const live = await get(cluster.get(seen.instance), submitted.id)
      return live.status === 'running' && live.progress.chunksApplied > 0 ? live : undefined
    })
    assert.equal(running.attempt, 1)
    const owner = cluster.get(running.instance ?? '')
    const survivors = cluster.instances.filter((i) => i !== owner)
    await cluster.kill9(owner)
    // What the killed attempt applied is in the trace (parts under the job's writer key) whatever
    // happens next.
    const jobWriter = `w${submitted.id.slice(1)}`
    const keptAfterKill = (await referencedKeys(cluster, survivors[0] as Instance, shardId)).filter((k) => k.split('/')[1] === jobWriter)
    assert.ok(keptAfterKill.length > 0, 'the chunks applied before the kill are in the trace')
    for (const inst of survivors) assert.deepEqual(await snapshotsOf(cluster, inst, shardId, asOfs), before, `snapshots on ${inst.id} after the kill`)

    // Rescued once the lease expired (the survivors sweep twice a second), then run to its end.
    const rescued = await eventually(
      'another instance takes the job over',
      async () => {
        const seen = await get(survivors[0] as Instance, submitted.id)
        return seen.attempt === 2 ? seen : undefined
      },
      2 * LEASE_MS + 30_000,
    )
    assert.notEqual(rescued.instance, owner.id)
    // What a watcher sees of the rescued attempt, to its end.
    const events = cluster.follow(survivors[0] as Instance, submitted.id)
    const final = await eventually('the rescued attempt finishes', async () => {
      const seen = await get(survivors[1] as Instance, submitted.id)
      return seen.status === 'running' || seen.status === 'queued' ? undefined : seen
    })
    assert.deepEqual([final.status, final.attempt], ['succeeded', 2], JSON.stringify(final))
    assert.ok(survivors.some((s) => s.id === final.instance), `finished by ${final.instance}`)
    const seen = (await events).map((e) => (e.data as CompactionJson).progress)
    assert.ok(seen.length > 0)
    for (const p of seen) assert.ok(p.chunksApplied <= p.chunksTotal && p.chunksDone <= p.chunksTotal, `an event's chunks: ${JSON.stringify(p)}`)
    assert.ok(final.progress.chunksApplied <= final.progress.chunksTotal && final.progress.chunksDone <= final.progress.chunksTotal, `chunks: ${JSON.stringify(final.progress)}`)
    assert.ok(final.progress.chunksApplied > running.progress.chunksApplied, 'it counts on from the chunks applied before the kill')
    assert.ok(final.progress.updatesRead < running.inputs.updates, `the rescued attempt reads only what is left: ${final.progress.updatesRead} of ${running.inputs.updates}`)

    // Every part the trace references was written by this job (no input is left), each once: the
    // snapshots are unchanged everywhere.
    const referenced = await referencedKeys(cluster, survivors[1] as Instance, shardId)
    assert.equal(new Set(referenced).size, referenced.length)
    assert.ok(keptAfterKill.every((k) => referenced.includes(k)), 'the chunks applied before the kill stay')
    assert.ok(referenced.length > 0 && referenced.every((k) => k.split('/')[1] === jobWriter), `the job's outputs only: ${referenced.join(', ')}`)
    for (const inst of survivors) assert.deepEqual(await snapshotsOf(cluster, inst, shardId, asOfs), before, `snapshots on ${inst.id}`)

    // GC (grace 1 s, once the reads' leases are given back) leaves exactly what the trace references:
    // the replaced inputs and the killed attempt's unapplied parts go.
    await eventually('GC leaves exactly the referenced parts', async () => {
      await cluster.call(survivors[0] as Instance, 'POST', `/v1/shards/${shardId}/gc`, 200)
      const left = await cluster.bucketKeys(`${shardId}/`)
      return JSON.stringify(left) === JSON.stringify(referenced) ? left : undefined
    })
    assert.deepEqual(await snapshotsOf(cluster, survivors[1] as Instance, shardId, asOfs), before)

    await cluster.restart(owner)
    assert.deepEqual(await snapshotsOf(cluster, owner, shardId, asOfs), before)
  })

  it('an idle shard with merge work is compacted by the idle sweep without any append, by exactly one job', async () => {
    const shardId = await createShard(cluster, a)
    for (let i = 0; i < 3; i++) await appendRows(cluster, [a, b, c][i] as Instance, shardId, i, i + 1, [{ key: `k${i}`, val: 'v', time: i, diff: 1 }])
    const idle = await shard(a, shardId)
    assert.ok(idle.trace.merges.length > 0 || idle.stats.backlogBatches > 0, `the spine has merge work: ${JSON.stringify(idle)}`)
    const before = await snapshotsOf(cluster, b, shardId, [0, 1, 2])
    const jobs = async (inst: Instance): Promise<CompactionJson[]> =>
      ((await cluster.call(inst, 'GET', `/v1/compactions?shardId=${shardId}&limit=1000`, 200)) as { compactions: CompactionJson[] }).compactions.filter((j) => j.status !== 'skipped')
    assert.deepEqual(await jobs(a), [], 'writer maintenance was skipped')

    await cluster.setConfigs({ compaction_idle_sweep_interval: '1s' })
    try {
      await eventually('the idle sweep compacts the shard', async () => {
        const s = await shard(c, shardId)
        return s.trace.merges.length === 0 && s.stats.backlogBatches === 0 ? s : undefined
      })
      // Two more sweeps of every instance after that: still one job, since the shard has nothing left to merge.
      const sweeps = async (): Promise<number> => {
        let total = 0
        for (const inst of [a, b, c]) total += metric(String((await cluster.request(inst, 'GET', '/metrics')).body.text), 'persist_compaction_idle_sweeps_total')
        return total
      }
      const seen = await sweeps()
      await eventually('two more idle sweeps', async () => ((await sweeps()) >= seen + 2 ? true : undefined))
      for (const inst of [a, b, c]) {
        const found = await jobs(inst)
        assert.deepEqual(
          found.map((j) => [j.source, j.kind, j.status]),
          [['maintenance', 'merges', 'succeeded']],
          `jobs of the idle shard listed on ${inst.id}`,
        )
      }
      assert.deepEqual(await snapshotsOf(cluster, a, shardId, [0, 1, 2]), before)
    } finally {
      await cluster.setConfigs({ compaction_idle_sweep_interval: '0s' })
    }
  })
})

/** A sample of a Prometheus text exposition (0 when absent). */
function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}
