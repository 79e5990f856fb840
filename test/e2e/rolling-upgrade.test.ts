/**
 * State deltas across builds (docs/operations.md#upgrading), over HTTP on file stores under a data
 * dir: a build from before deltas reads whole versions only and its heartbeat has no
 * `stateFormats`.
 * - while such an instance is live (its record in the job store, as an older build writes it),
 *   this one writes whole versions; once it left, deltas again;
 * - `persist_state_deltas_enabled: false` writes whole versions, and a GC of a shard whose latest
 *   version is a delta writes it again whole, once (the next truncates the deltas below it): a
 *   reader of whole versions only (the codec without deltas, as an older build reads) then reads
 *   the shard, and every version after.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, it } from 'node:test'
import { openJobStore } from '../../src/location/open.js'
import type { Consensus } from '../../src/location/consensus.js'
import { Machine } from '../../src/shard/machine.js'
import { shardStateCodec, type ShardState } from '../../src/shard/state.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { createShard, inject, patchConfigs, scrape, writeBatch } from './support.js'

async function fileStoresApp(t: { after(fn: () => Promise<void>): void }): Promise<{ test: TestApp; consensusUrl: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'compactd-rolling-'))
  t.after(() => rm(dataDir, { recursive: true, force: true }))
  const consensusUrl = pathToFileURL(join(dataDir, 'consensus')).href
  const settings = { dataDir, blobUrl: pathToFileURL(join(dataDir, 'blob')).href, consensusUrl, workers: 1 }
  const test = await buildTestApp({ settings, services: { gcIntervalMs: null } })
  t.after(() => test.close())
  return { test, consensusUrl }
}

/** The envelope version (`v`) of each stored version of `key`, oldest first. */
async function formats(consensus: Consensus, key: string): Promise<number[]> {
  return (await consensus.scan(key, 0, 1000)).map((v) => (JSON.parse(Buffer.from(v.data).toString('utf8')) as { v: number }).v)
}

let time = 0
const append = async (test: TestApp, shardId: string): Promise<void> => {
  await writeBatch(test.app, shardId, time, time + 1, [{ key: `k${time}`, val: 'v', time, diff: 1 }])
  time++
}
/**
 * Appends enough batches (compaction off, so they stay) that the state outweighs a delta and its
 * read several times over: from then on a whole version is always followed by a delta
 * (machine.ts `#envelopeBytes`; a small shard is written whole), and the head is a delta.
 */
async function grow(test: TestApp, shardId: string): Promise<void> {
  await patchConfigs(test.app, { compaction_maintenance_enabled: false })
  for (let i = 0; i < 30; i++) await append(test, shardId)
  const v = await formats(test.services.consensus, shardId)
  if (v[v.length - 1] === 1) await append(test, shardId)
}

/** The live instances, as this instance reads them (which is when it decides whether to write deltas). */
const instances = async (test: TestApp): Promise<Array<{ id: string; stateFormats?: number[] }>> =>
  (JSON.parse((await inject(test.app, { method: 'GET', url: '/v1/instances' }, 200)).body) as { instances: Array<{ id: string; stateFormats?: number[] }> }).instances

describe('state deltas across builds', () => {
  it('a live instance whose heartbeat lacks stateFormats makes this one write whole versions; once it left, deltas again', async (t) => {
    const { test, consensusUrl } = await fileStoresApp(t)
    const consensus = test.services.consensus
    const shardId = await createShard(test.app)
    time = 0
    const self = await instances(test)
    assert.deepEqual(self.map((i) => i.stateFormats), [[1, 2]])
    await grow(test, shardId)
    assert.deepEqual((await formats(consensus, shardId)).slice(-1), [2])

    // An older build on the same stores: its heartbeat record, as it writes it (no stateFormats).
    const jobs = await openJobStore(consensusUrl)
    t.after(() => jobs.close())
    await jobs.heartbeat({ id: 'old', startedAt: Date.now(), heartbeatAt: Date.now(), version: '0.0.1', running: 0 })
    assert.deepEqual((await instances(test)).find((i) => i.id === 'old')?.stateFormats, undefined)
    await append(test, shardId)
    await append(test, shardId)
    assert.deepEqual((await formats(consensus, shardId)).slice(-3), [2, 1, 1])

    await jobs.leave('old')
    assert.equal((await instances(test)).length, 1)
    await append(test, shardId)
    assert.deepEqual((await formats(consensus, shardId)).slice(-3), [1, 1, 2])
  })

  it('persist_state_deltas_enabled false: versions are whole, and GC writes a delta head again whole, once; a reader of whole versions only then reads the shard', async (t) => {
    const { test } = await fileStoresApp(t)
    const consensus = test.services.consensus
    const shardId = await createShard(test.app)
    time = 0
    await instances(test)
    await grow(test, shardId)
    assert.deepEqual((await formats(consensus, shardId)).slice(-1), [2])
    // As a build from before deltas reads: whole versions only.
    const wholeOnly = new Machine<ShardState>(consensus, { encode: shardStateCodec.encode, decode: shardStateCodec.decode })
    await assert.rejects(wholeOnly.head(shardId), /is a delta/)

    await patchConfigs(test.app, { persist_state_deltas_enabled: false })
    const before = await scrape(test.app)
    const grown = (await consensus.head(shardId))?.seqno as number
    await inject(test.app, { method: 'POST', url: `/v1/shards/${shardId}/gc` }, 200)
    assert.deepEqual((await formats(consensus, shardId)).slice(-2), [2, 1])
    const head = await wholeOnly.head(shardId)
    assert.deepEqual(head?.state, (await test.services.machine.head(shardId))?.state)
    // The next collection leaves the whole head alone, and truncates the deltas below it.
    await inject(test.app, { method: 'POST', url: `/v1/shards/${shardId}/gc` }, 200)
    assert.deepEqual(await formats(consensus, shardId), [1])
    assert.equal((await consensus.head(shardId))?.seqno, grown + 1)
    const after = await scrape(test.app)
    assert.equal((after.get('persist_gc_state_rewrites_total') ?? 0) - (before.get('persist_gc_state_rewrites_total') ?? 0), 1)

    await append(test, shardId)
    await append(test, shardId)
    assert.deepEqual(await formats(consensus, shardId), [1, 1, 1])
    const states = await wholeOnly.states(shardId, grown + 1, grown + 4)
    assert.deepEqual(states.map((v) => v.seqno), [grown + 1, grown + 2, grown + 3])
    const snapshot = JSON.parse((await inject(test.app, { method: 'GET', url: `/v1/shards/${shardId}/snapshot?asOf=${time - 1}` }, 200)).body) as { updates: unknown[] }
    assert.equal(snapshot.updates.length, time)

    // Back on: deltas again.
    await patchConfigs(test.app, { persist_state_deltas_enabled: true })
    await append(test, shardId)
    assert.deepEqual((await formats(consensus, shardId)).slice(-1), [2])
  })
})
