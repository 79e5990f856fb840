/**
 * A trace that grew long while compaction was paused, on the real stack: once maintenance is back
 * on, appends ask for the oldest merge work the pause left (its requests were dropped then), so
 * the trace gets short again within a few appends, not after as many appends again as the pause
 * took. Snapshots read the same throughout.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { appendOneRowBatches, createShard, e2eApp, getShard, patchConfigs, snapshots, writeBatch } from './support.js'

interface StatsJson {
  stats: { batches: number; backlogBatches: number }
}

describe('a long trace after a pause', () => {
  it('is compacted from its oldest batches by the appends that follow the pause', async (t) => {
    const { app, services } = await e2eApp(t)
    await patchConfigs(app, { compaction_maintenance_enabled: false })
    const id = await createShard(app)
    const paused = 300
    await appendOneRowBatches(app, id, paused)
    const before = (await getShard(app, id)) as unknown as StatsJson
    assert.equal(before.stats.batches, paused)
    const asOfs = [0, 150, paused - 1]
    const snaps = await snapshots(app, id, asOfs)

    await patchConfigs(app, { compaction_maintenance_enabled: true })
    for (let i = paused; i < paused + 8; i++) await writeBatch(app, id, i, i + 1, [{ key: `k${i}`, val: 'v', time: i, diff: 1 }])
    // Every job the appends queued, to its end (bounded: each wait ends with its job).
    for (let round = 0; round < 10; round++) {
      const open = (await services.compactor.list({ shardId: id as never })).compactions.filter((c) => c.status === 'queued' || c.status === 'running')
      if (open.length === 0) break
      for (const c of open) await services.compactor.wait(c.id)
    }
    const jobs = (await services.compactor.list({ shardId: id as never })).compactions
    assert.equal(jobs.filter((c) => c.status === 'failed').length, 0)
    const after = (await getShard(app, id)) as unknown as StatsJson
    // Without the backlog requests the pause's 256-batch spine batch stayed as it was.
    assert.ok(after.stats.batches < 64, `${after.stats.batches} batches left of ${paused + 8}: ${JSON.stringify(jobs.map((c) => [c.status, c.inputs?.batches]))}`)
    assert.deepEqual(await snapshots(app, id, asOfs), snaps)
    // One job per spine batch: the appends asked for the backlog, not once each.
    const backlogJobs = jobs.filter((c) => (c.inputs?.batches ?? 0) >= 64)
    assert.ok(backlogJobs.length <= 2, `${backlogJobs.length} jobs of the backlog`)
  })
})
