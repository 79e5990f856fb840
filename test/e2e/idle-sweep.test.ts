/**
 * The idle sweep on the real stack: a shard whose spine was left with merge work (a merge in
 * progress that no append will fuel) is compacted without any new append, once its state has not
 * changed for a whole sweep interval; a busy shard is left to writer maintenance.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toCompactionJson } from '../../src/compact/compaction.js'
import { IdleSweep } from '../../src/compact/idle-sweep.js'
import type { ShardId } from '../../src/core/ids.js'
import { GATED, appendOneRowBatches, compactAndWait, createShard, e2eApp, getShard, patchConfigs, scrape, snapshots, writeBatch } from './support.js'

interface MergesJson {
  trace: { merges: unknown[]; batches: { batches: unknown[] }[] }
  stats: { backlogBatches: number }
}

describe('idle sweep', () => {
  it('compacts an idle shard with merge work, without an append; once per state', async (t) => {
    const { app, services } = await e2eApp(t)
    const idle = await createShard(app)
    await appendOneRowBatches(app, idle, 3)
    const before = (await getShard(app, idle)) as unknown as MergesJson
    assert.ok(before.trace.merges.length > 0 || before.stats.backlogBatches > 0, `the spine has merge work: ${JSON.stringify(before.trace)}`)
    const snaps = await snapshots(app, idle, [0, 1, 2])
    await services.compactor.heartbeat()

    // The first pass only learns the shard's state; the second finds it unchanged and submits.
    assert.deepEqual(await services.idleSweep.sweep(), [])
    // Releasing the reads' lease writes a state version but changes no trace: the shard stays idle.
    const seqno = (await services.shards.get(idle as ShardId)).seqno
    await services.shards.readerLeases.stop()
    assert.ok((await services.shards.get(idle as ShardId)).seqno > seqno, 'the lease release is a new state version')
    const busy = await createShard(app)
    await appendOneRowBatches(app, busy, 3)
    const submitted = await services.idleSweep.sweep()
    assert.deepEqual(submitted, [idle], 'the shard created since the first pass is not idle yet')
    const [job] = (await services.compactor.list({ shardId: idle })).compactions
    assert.ok(job !== undefined)
    assert.deepEqual([job.source, job.kind], ['maintenance', 'merges'])
    const done = await services.compactor.wait(job.id)
    assert.equal(done.status, 'succeeded', JSON.stringify(toCompactionJson(done), (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))

    const after = (await getShard(app, idle)) as unknown as MergesJson
    assert.deepEqual(after.trace.merges, [])
    assert.equal(after.stats.backlogBatches, 0)
    assert.deepEqual(await snapshots(app, idle, [0, 1, 2]), snaps)

    // The compacted shard has no merge work left; the other one has now been idle a whole interval.
    assert.deepEqual(await services.idleSweep.sweep(), [busy])
    const metrics = await scrape(app)
    assert.equal(metrics.get('persist_compaction_idle_sweeps_total'), 3)
    assert.equal(metrics.get('persist_compaction_idle_sweep_submitted_total'), 2)
  })

  it('reads the state only of the shards whose head moved since the pass before', async (t) => {
    const { app, services } = await e2eApp(t)
    const ids = [await createShard(app), await createShard(app), await createShard(app)]
    for (const id of ids) await appendOneRowBatches(app, id, 3)
    await services.compactor.heartbeat()
    const read: string[] = []
    const shards = { heads: services.shards.heads.bind(services.shards), get: (id: ShardId) => (read.push(id), services.shards.get(id)) }
    const sweep = new IdleSweep({ shards, compactor: services.compactor, dyncfg: services.dyncfg, metrics: services.metrics, onError: (err) => assert.fail(String(err)) })
    await services.idleSweep.sweep()
    await services.idleSweep.sweep()
    // The service's own sweep submitted what there was (waited for, so that no shard moves on its
    // own from here); this one starts knowing nothing.
    for (const id of ids) for (const job of (await services.compactor.list({ shardId: id })).compactions) await services.compactor.wait(job.id)
    await sweep.sweep()
    assert.deepEqual(read.sort(), [...ids].sort(), 'the first pass reads every shard')
    read.length = 0
    await sweep.sweep()
    assert.deepEqual(read, [], 'no head moved: nothing read')
    await writeBatch(app, ids[1] as string, 3, 4, [{ key: 'k', val: 'v', time: 3, diff: 1 }])
    await sweep.sweep()
    assert.deepEqual(read, [ids[1]], 'only the shard written since')
  })

  it('a shard a job is compacting is left to it; a paused cluster is not swept', GATED, async (t) => {
    const { app, services, blob } = await e2eApp(t)
    await patchConfigs(app, { persist_inline_writes_single_max_bytes: 0 })
    const idle = await createShard(app)
    await appendOneRowBatches(app, idle, 3)
    await services.compactor.heartbeat()
    const hold = blob.hold((key) => key.startsWith(`${idle}/`))
    await services.idleSweep.sweep()
    assert.deepEqual(await services.idleSweep.sweep(), [idle])
    await hold.reached
    // The job holds at its first read, its claim in the shard's state: passes leave the shard to it.
    assert.deepEqual(await services.idleSweep.sweep(), [])
    assert.deepEqual(await services.idleSweep.sweep(), [])
    // (Writer maintenance of the appends was skipped by the heuristics; the sweep's job is the one running.)
    const jobs = (await services.compactor.list({ shardId: idle })).compactions.filter((j) => j.status !== 'skipped')
    assert.deepEqual(jobs.map((j) => j.status), ['running'])
    hold.release()
    assert.equal((await services.compactor.wait(jobs[0]?.id ?? '')).status, 'succeeded')

    await patchConfigs(app, { compaction_process_requests: false })
    const paused = await createShard(app)
    await appendOneRowBatches(app, paused, 3)
    await services.idleSweep.sweep()
    assert.deepEqual(await services.idleSweep.sweep(), [])
    assert.deepEqual((await services.compactor.list({ shardId: paused })).compactions.filter((j) => j.status !== 'skipped'), [])
  })

  it('compaction_maintenance_enabled false: appends and the sweep make no job, an operator request still compacts', GATED, async (t) => {
    const { app, services } = await e2eApp(t)
    // Heuristics at zero: every merge request of an append would become a maintenance job.
    await patchConfigs(app, { compaction_maintenance_enabled: false, persist_compaction_heuristic_min_inputs: 0, persist_compaction_heuristic_min_parts: 0, persist_compaction_heuristic_min_updates: 0 })
    const shard = await createShard(app)
    await appendOneRowBatches(app, shard, 4)
    await services.compactor.heartbeat()
    await services.idleSweep.sweep()
    assert.deepEqual(await services.idleSweep.sweep(), [], 'no sweep while maintenance is off')
    assert.deepEqual((await services.compactor.list({ shardId: shard })).compactions, [], 'no maintenance job')
    const before = (await getShard(app, shard)) as unknown as MergesJson
    assert.ok(before.trace.merges.length > 0 || before.stats.backlogBatches > 0, 'the work stays in the spine')

    const done = await compactAndWait(app, shard, { major: true })
    assert.deepEqual([done.source, done.status], ['request', 'succeeded'])
    const after = (await getShard(app, shard)) as unknown as MergesJson
    assert.deepEqual([after.trace.merges.length, after.stats.backlogBatches], [0, 0])

    // On again: the next appends' merge requests are maintenance jobs again.
    await patchConfigs(app, { compaction_maintenance_enabled: true })
    // NB: maintenance is submitted after the append answers: wait for its first event.
    const maintained = new Promise<void>((resolve) => services.compactor.on('change', (c) => c.shardId === shard && c.source === 'maintenance' && resolve()))
    for (const i of [4, 5, 6]) await writeBatch(app, shard, i, i + 1, [{ key: `k${i}`, val: 'v', time: i, diff: 1 }])
    await maintained
  })
})
