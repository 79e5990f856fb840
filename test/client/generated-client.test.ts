/**
 * A client generated from the contract: openapi/compactd-api.d.ts is what openapi-typescript makes
 * of openapi/openapi.json (regenerated here and compared), and an openapi-fetch client typed by it
 * (this file is typechecked against it by `npm run typecheck`) drives a real server over HTTP with
 * a bearer token: create a shard, write batches, submit a compaction and wait, read it all back.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import createClient from 'openapi-fetch'
import type { components, paths } from '../../openapi/compactd-api.js'
import { clientTypes } from '../../scripts/client-types.js'
import { liveApp } from '../support/live-app.js'

const OPENAPI = fileURLToPath(new URL('../../openapi/openapi.json', import.meta.url))
const TYPES = fileURLToPath(new URL('../../openapi/compactd-api.d.ts', import.meta.url))
const TOKEN = 'client-test-token-0123456789'

type Update = components['schemas']['Update']

describe('a client generated from openapi/openapi.json', () => {
  it('has committed types equal to what openapi-typescript generates from the committed document', async () => {
    const generated = await clientTypes(await readFile(OPENAPI, 'utf8'))
    assert.ok(generated === (await readFile(TYPES, 'utf8')), 'openapi/compactd-api.d.ts is stale: run npm run openapi and commit the result')
  })

  it('drives a shard and a compaction through a real server', async (t) => {
    const { baseUrl } = await liveApp(t, { authTokens: [TOKEN] })
    const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${TOKEN}` } })

    const unauthorized = await createClient<paths>({ baseUrl }).GET('/v1/shards')
    assert.equal(unauthorized.response.status, 401)
    assert.equal(unauthorized.error?.code, 'UNAUTHORIZED')

    const created = await client.POST('/v1/shards', { body: { name: 'generated-client', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    assert.equal(created.response.status, 201, JSON.stringify(created.error))
    const shardId = created.data?.shardId ?? ''
    assert.match(shardId, /^s[0-9a-f-]{36}$/)
    const path = { shardId }

    const rows: Update[] = []
    for (let i = 0; i < 6; i++) {
      const updates: Update[] = [{ key: `k${i % 3}`, val: i, time: i, diff: 1 }]
      rows.push(...updates)
      const written = await client.POST('/v1/shards/{shardId}/batches', { params: { path }, body: { lower: [i], upper: [i + 1], updates } })
      assert.equal(written.response.status, 201, JSON.stringify(written.error))
      assert.equal(written.data?.appended, true)
    }

    const shard = await client.GET('/v1/shards/{shardId}', { params: { path } })
    assert.equal(shard.response.status, 200)
    const work = shard.data?.trace.batches.find((b) => !b.compact)
    assert.ok(work !== undefined, 'six appends leave merge work in the spine')
    assert.equal(shard.data?.stats.backlogBatches, shard.data?.trace.batches.filter((b) => !b.compact).length)

    const tuned = await client.PATCH('/v1/configs', { body: { persist_compaction_heuristic_min_inputs: 1 } })
    assert.equal(tuned.response.status, 200, JSON.stringify(tuned.error))

    const submitted = await client.POST('/v1/shards/{shardId}/compactions', { params: { path }, body: { desc: { lower: work.desc.lower, upper: work.desc.upper }, wait: true } })
    assert.equal(submitted.response.status, 200, JSON.stringify(submitted.error))
    const compaction = submitted.data
    assert.ok(compaction !== undefined && 'id' in compaction, 'a wait answers with the compaction')
    assert.equal(compaction.status, 'succeeded')
    assert.match(compaction.result ?? '', /^applied_/)

    const read = await client.GET('/v1/compactions/{id}', { params: { path: { id: compaction.id } } })
    assert.equal(read.data?.status, 'succeeded')
    assert.equal(read.data?.shardId, shardId)
    const listed = await client.GET('/v1/compactions', { params: { query: { shardId, status: 'succeeded' } } })
    assert.deepEqual(listed.data?.compactions.map((c) => c.id), [compaction.id])

    const after = await client.GET('/v1/shards/{shardId}', { params: { path } })
    assert.ok(after.data?.trace.batches.some((b) => b.desc.lower[0] === work.desc.lower[0] && b.compact), 'the compacted range is now one compact batch')

    const snapshot = await client.GET('/v1/shards/{shardId}/snapshot', { params: { path, query: { asOf: '5' } } })
    assert.equal(snapshot.response.status, 200, JSON.stringify(snapshot.error))
    const body = snapshot.data
    assert.ok(typeof body === 'object', 'a JSON snapshot (the Arrow form is a stream of bytes)')
    const sums = new Map<string, number>()
    for (const r of rows) sums.set(`${String(r.key)}/${String(r.val)}`, (sums.get(`${String(r.key)}/${String(r.val)}`) ?? 0) + Number(r.diff))
    const got = new Map<string, number>()
    for (const u of body.updates) got.set(`${String(u.key)}/${String(u.val)}`, (got.get(`${String(u.key)}/${String(u.val)}`) ?? 0) + Number(u.diff))
    assert.deepEqual(got, sums, 'the snapshot at 5 holds every update written, consolidated')

    const missing = await client.GET('/v1/shards/{shardId}', { params: { path: { shardId: 's00000000-0000-0000-0000-000000000000' } } })
    assert.equal(missing.response.status, 404)
    assert.equal(missing.error?.code, 'SHARD_NOT_FOUND')
  })
})
