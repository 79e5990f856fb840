/**
 * Compactions are the cluster's, seen from three real instances on one PostgreSQL and one S3
 * bucket, all through HTTP: a compaction submitted on one is listed, shown and followed the same
 * on the others; its idempotency key is known everywhere; any instance cancels one another runs;
 * the queue limit holds for the whole cluster; the kill switch set on one instance holds back all.
 *
 * Writer maintenance is kept out of the way (heuristics no merge of these shards meets), so the
 * only jobs on a shard are the ones a test submits. Each test has its own shards.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { bigShard, eventually, referencedKeys, snapshotsOf, startCluster, type Cluster, type Instance, type Json } from '../support/cluster.js'

/** No merge of these shards meets these, so writer maintenance is always `skipped`. */
const NO_MAINTENANCE = {
  persist_compaction_heuristic_min_inputs: 1_000_000,
  persist_compaction_heuristic_min_parts: 1_000_000,
  persist_compaction_heuristic_min_updates: 1_000_000_000,
}

/**
 * Tiny parts: a compaction of a few thousand updates writes a part per few dozen of them to s3rver,
 * in several chunks, so it runs for seconds and its progress moves all along.
 */
const SLOW_COMPACTION = { persist_blob_target_size: 1024, persist_compaction_memory_bound_bytes: 4096 }

interface CompactionJson extends Json {
  id: string
  status: string
  attempt: number
  instance: string | null
  error?: { code: string; message: string }
  progress: { updatesRead: number; fraction: number }
}

describe('compactions across the cluster', () => {
  let cluster: Cluster
  let a: Instance
  let b: Instance
  let c: Instance
  before(async () => {
    cluster = await startCluster({
      // No idle sweep either: it would add maintenance jobs to these shards between two listings.
      // Incremental compaction off: these tests are about jobs across instances, and check a
      // compaction's one output (and a cancel that changes nothing); rescue.test.ts has it on.
      configs: {
        ...NO_MAINTENANCE,
        ...SLOW_COMPACTION,
        persist_inline_writes_single_max_bytes: 0,
        compaction_lease_timeout: '10s',
        compaction_idle_sweep_interval: '0s',
        persist_enable_incremental_compaction: false,
      },
    })
    ;[a, b, c] = cluster.instances as [Instance, Instance, Instance]
  })
  after(() => cluster?.close())

  const get = async (inst: Instance, id: string): Promise<CompactionJson> => (await cluster.call(inst, 'GET', `/v1/compactions/${id}`, 200)) as CompactionJson
  const listed = async (inst: Instance, query: string): Promise<CompactionJson[]> =>
    ((await cluster.call(inst, 'GET', `/v1/compactions?${query}`, 200)) as { compactions: CompactionJson[] }).compactions
  /** Waits until the compaction runs and has read something; its record as the owner shows it. */
  const runningWithProgress = (id: string): Promise<CompactionJson> =>
    eventually(`compaction ${id} runs and reads`, async () => {
      const seen = await get(a, id)
      assert.ok(seen.status === 'queued' || seen.status === 'running', `it ended too early: ${JSON.stringify(seen)}`)
      if (seen.instance === null) return undefined
      const owned = await get(cluster.get(seen.instance), id)
      return owned.status === 'running' && owned.progress.updatesRead > 0 ? owned : undefined
    })

  it('a compaction submitted on A is listed, shown and followed the same on B and C; its idempotency key is the cluster’s', async () => {
    const shardId = await bigShard(cluster, [a, b, c], 12, 250)
    const before = await snapshotsOf(cluster, b, shardId, [0, 5, 11])
    const submitted = (await cluster.call(a, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true }, { 'idempotency-key': 'cluster-k1' })) as CompactionJson
    assert.equal(submitted.status, 'queued')
    const again = (await cluster.call(b, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true }, { 'idempotency-key': 'cluster-k1' })) as CompactionJson
    assert.equal(again.id, submitted.id, 'the same key on B returns the job A accepted')

    const [onB, onC] = await Promise.all([cluster.follow(b, submitted.id), cluster.follow(c, submitted.id)])
    for (const events of [onB, onC]) {
      assert.deepEqual(events.slice(0, -1).map((e) => e.event), events.slice(0, -1).map(() => 'progress'))
      assert.equal(events.at(-1)?.event, 'done')
      // Within an attempt (a rescued job starts over: a loaded machine may stall an owner past its lease).
      for (const attempt of new Set(events.map((e) => (e.data as CompactionJson).attempt))) {
        const fractions = events.filter((e) => (e.data as CompactionJson).attempt === attempt).map((e) => (e.data as CompactionJson).progress.fraction)
        assert.deepEqual(fractions, [...fractions].sort((x, y) => x - y), `progress of attempt ${attempt} never falls`)
      }
    }
    const final = await get(a, submitted.id)
    assert.equal(final.status, 'succeeded', JSON.stringify(final))
    assert.equal(final.result, 'applied_exact')
    assert.equal(final.attempt, 1)
    assert.ok(['a', 'b', 'c'].includes(final.instance ?? ''), `owner ${final.instance}`)
    assert.deepEqual(onB.at(-1)?.data, final)
    assert.deepEqual(onC.at(-1)?.data, final)
    for (const inst of [b, c]) assert.deepEqual(await get(inst, submitted.id), final, `GET on ${inst.id}`)
    for (const inst of [a, b, c]) {
      const requests = await listed(inst, `shardId=${shardId}&source=request`)
      assert.deepEqual(requests, [final], `listed on ${inst.id}`)
      assert.deepEqual(await listed(inst, `shardId=${shardId}`), await listed(a, `shardId=${shardId}`), `every job of the shard listed on ${inst.id}`)
    }
    // After it ended the key still answers with it, on any instance.
    const later = (await cluster.call(c, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true }, { 'idempotency-key': 'cluster-k1' })) as CompactionJson
    assert.deepEqual(later, final)
    assert.deepEqual(await snapshotsOf(cluster, c, shardId, [0, 5, 11]), before)
  })

  it('DELETE on one instance cancels the compaction another runs: it stops, deletes its outputs and changes nothing', async () => {
    // Large enough to run for several lease renewals (the owner hears of the cancel at its next one).
    const shardId = await bigShard(cluster, [a, b, c], 16, 2000)
    const before = await snapshotsOf(cluster, a, shardId, [0, 8, 15])
    const keysBefore = await referencedKeys(cluster, a, shardId)
    const submitted = (await cluster.call(a, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true })) as CompactionJson
    const running = await runningWithProgress(submitted.id)
    const owner = cluster.get(running.instance ?? '')
    const canceller = owner === c ? b : c
    const cancelled = (await cluster.call(canceller, 'DELETE', `/v1/compactions/${submitted.id}`, 200)) as CompactionJson
    assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled))
    assert.equal(cancelled.error?.code, 'CANCELLED')
    assert.equal(cancelled.instance, owner.id)
    for (const inst of [a, b, c]) assert.deepEqual(await get(inst, submitted.id), cancelled, `GET on ${inst.id}`)
    await cluster.call(b, 'DELETE', `/v1/compactions/${submitted.id}`, 409)

    // Nothing applied; every part it wrote is deleted: the bucket holds exactly what state references.
    assert.deepEqual(await referencedKeys(cluster, b, shardId), keysBefore)
    assert.deepEqual(await cluster.bucketKeys(`${shardId}/`), keysBefore)
    assert.deepEqual(await snapshotsOf(cluster, b, shardId, [0, 8, 15]), before)
  })

  it('the kill switch set on one instance holds back every instance; switched back on, compactions run again', async () => {
    const shardId = await bigShard(cluster, [a, b, c], 4, 20)
    await cluster.setConfigs({ compaction_process_requests: false })
    for (const inst of [a, b, c]) {
      assert.deepEqual(await cluster.call(inst, 'GET', '/readyz', 200), { status: 'ready', checks: { blob: 'ok', consensus: 'ok', scheduler: 'paused' } }, `readyz on ${inst.id}`)
      const metrics = await cluster.request(inst, 'GET', '/metrics')
      assert.match(String(metrics.body.text), /^persist_compaction_paused 1$/m, `paused gauge on ${inst.id}`)
    }
    // Submitted on each instance: whichever instance takes it fails it, none runs it.
    const ids: string[] = []
    for (const inst of [a, b, c]) ids.push(((await cluster.call(inst, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true })) as CompactionJson).id)
    for (const id of ids) {
      const events = await cluster.follow(b, id)
      const done = events.at(-1)?.data as CompactionJson
      assert.deepEqual([done.status, done.error?.code, done.attempt], ['failed', 'COMPACTION_DISABLED', 1], JSON.stringify(done))
      assert.equal(done.startedAt, undefined, 'it never started')
    }
    const spine = ((await cluster.call(a, 'GET', `/v1/shards/${shardId}`, 200)) as { stats: { spineBatches: number; batches: number } }).stats
    assert.equal(spine.batches, 4, 'nothing was compacted')

    await cluster.setConfigs({ compaction_process_requests: true })
    for (const inst of [a, b, c]) assert.equal(((await cluster.call(inst, 'GET', '/readyz', 200)) as { checks: { scheduler: string } }).checks.scheduler, 'running')
    const resumed = (await cluster.call(c, 'POST', `/v1/shards/${shardId}/compactions`, 200, { major: true, wait: true })) as CompactionJson
    assert.deepEqual([resumed.status, resumed.result], ['succeeded', 'applied_exact'])
  })

  it('compaction_queue_size bounds the queue of the whole cluster: 429 on every instance once it is full', async () => {
    await cluster.setConfigs({ compaction_concurrency_limit: 1, compaction_queue_size: 2 })
    try {
      const shardId = await bigShard(cluster, [a, b, c], 16, 500)
      const submit = (inst: Instance): Promise<CompactionJson> => cluster.call(inst, 'POST', `/v1/shards/${shardId}/compactions`, 202, { major: true }) as Promise<CompactionJson>
      // One running on each instance (one permit each): what comes next waits in the cluster's queue.
      const busy = [await submit(a), await submit(b), await submit(c)]
      await eventually('each instance runs one', async () => {
        const running = await listed(a, `shardId=${shardId}&status=running`)
        return running.length === 3 ? running : undefined
      })
      const queued = [await submit(b), await submit(c)]
      for (const q of queued) assert.equal((await get(a, q.id)).status, 'queued')
      for (const inst of [a, b, c]) {
        const full = await cluster.request(inst, 'POST', `/v1/shards/${shardId}/compactions`, { major: true })
        assert.equal(full.status, 429, `on ${inst.id}: ${JSON.stringify(full.body)}`)
        assert.deepEqual([full.body.code, full.body.queueDepth], ['QUEUE_FULL', 2])
        assert.match(full.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/)
      }
      assert.equal((await listed(c, `shardId=${shardId}&source=request`)).length, 5, "nothing more was recorded")
      // Cancelled from anywhere: the queued at once, the running by their owners.
      for (const q of queued) assert.equal(((await cluster.call(a, 'DELETE', `/v1/compactions/${q.id}`, 200)) as CompactionJson).status, 'cancelled')
      for (const r of busy) {
        const res = await cluster.request(b, 'DELETE', `/v1/compactions/${r.id}`)
        assert.ok(res.status === 200 || (res.status === 409 && res.body.code === 'ALREADY_FINISHED'), JSON.stringify(res.body))
      }
    } finally {
      await cluster.setConfigs({ compaction_concurrency_limit: 5, compaction_queue_size: 20 })
    }
  })
})
