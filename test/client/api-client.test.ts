/**
 * ApiClient against a real compactd on loopback: bounded, filtered shard pages, compaction pages,
 * the event stream to its end, answers with the API's error codes, and an unreachable server.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ApiClient, ApiError } from '../../src/client/api-client.js'
import { spineLayout } from '../../src/client/spine.js'
import { seedShard, startOperatorServer, TOKEN } from '../support/operator-server.js'

const SHARD = { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

async function rejection(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof ApiError, String(err))
    return err
  }
  assert.fail('expected an ApiError')
}

describe('ApiClient', { timeout: 120_000 }, () => {
  it('lists bounded pages of shards, filtered by name', async (t) => {
    const s = await startOperatorServer(t)
    for (const name of ['alpha-1', 'Alpha-2', 'beta', 'gamma']) await s.call('POST', '/v1/shards', { name, ...SHARD }, 201)
    assert.equal((await s.client.listShards()).shards.length, 4)
    assert.deepEqual((await s.client.listShards({ namePrefix: 'alpha' })).shards.map((x) => x.name), ['alpha-1'])
    assert.deepEqual((await s.client.listShards({ name: 'Alpha-2' })).shards.map((x) => x.name), ['Alpha-2'])
    const page = await s.client.listShards({ limit: 2 })
    assert.equal(page.shards.length, 2)
    assert.deepEqual((await s.client.listShards({ namePrefix: 'zeta' })).shards, [])
    assert.ok(page.nextCursor !== undefined)
    assert.equal((await s.client.listShards({ limit: 2, cursor: page.nextCursor })).shards.length, 2)
  })

  it('follows a compaction’s events to done, and names errors by the API’s codes', async (t) => {
    const s = await startOperatorServer(t)
    await s.call('PATCH', '/v1/configs', { persist_compaction_heuristic_min_inputs: 1 }, 200)
    const shard = (await s.call('POST', '/v1/shards', { name: 'ev', ...SHARD }, 201)) as { shardId: string }
    await s.call('POST', `/v1/shards/${shard.shardId}/batches`, { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] }, 201)
    const submitted = await s.client.submit(shard.shardId, {})
    assert.ok(submitted.kind === 'compaction')
    const events = []
    for await (const e of s.client.events(submitted.compaction.id)) events.push(e)
    assert.equal(events.at(-1)?.event, 'done')
    assert.ok(events.slice(0, -1).every((e) => e.event === 'progress'))
    assert.equal(events.at(-1)?.data.id, submitted.compaction.id)
    assert.equal((await s.client.listCompactions({ shardId: shard.shardId, limit: 1 })).compactions.length, 1)
    assert.deepEqual((await s.client.listCompactions({ source: 'maintenance' })).compactions.filter((c) => c.source !== 'maintenance'), [])
    // The last page (null nextCursor on the wire) has no next page: compactctl status printed "queue depth: 0+".
    const last = await s.client.listCompactions({ status: 'queued' })
    assert.deepEqual(last, { compactions: [] })
    assert.equal('nextCursor' in (await s.client.listCompactions({ shardId: shard.shardId })), false)

    const missing = await rejection(s.client.shard('s00000000-0000-4000-8000-000000000000'))
    assert.deepEqual([missing.status, missing.code, missing.notFound], [404, 'SHARD_NOT_FOUND', true])
    const bad = await rejection(s.client.patchConfigs({ compaction_queue_size: 0 }))
    assert.deepEqual([bad.status, bad.code], [400, 'INVALID_CONFIG'])
    assert.match(bad.message, /compaction_queue_size/)
    const unauthorized = await rejection(new ApiClient({ baseUrl: s.url, token: null }).configs())
    assert.deepEqual([unauthorized.status, unauthorized.code], [401, 'UNAUTHORIZED'])
  })

  it('creates a shard, writes batches (an object, streamed bytes), reads snapshots, moves the since, runs GC', async (t) => {
    const s = await startOperatorServer(t)
    const shard = await s.client.createShard({ name: 'data', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } })
    assert.match(shard.shardId, /^s[0-9a-f-]{36}$/)
    const first = await s.client.writeBatch(shard.shardId, { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 2 }] })
    assert.deepEqual([first.appended, first.upper, first.batch.len], [true, [5], 1])
    // Streamed through the default sender (fetch), in three chunks.
    const chunks = ['{"lower":[5],"upper":[10],', '"updates":[{"key":"a","val":1,"time":6,"diff":-2},', '{"key":"b","val":2,"time":7,"diff":1}]}']
    const bytes = (async function* () {
      for (const c of chunks) yield new TextEncoder().encode(c)
    })()
    const second = await s.client.writeBatch(shard.shardId, { kind: 'json', bytes })
    assert.deepEqual([second.appended, second.upper], [true, [10]])
    const read = async (asOf: number, format: 'json' | 'arrow'): Promise<string> => new Response(await s.client.snapshot(shard.shardId, asOf, format)).text()
    assert.deepEqual(JSON.parse(await read(9, 'json')), { asOf: 9, updates: [{ key: 'b', val: 2, time: 9, diff: 1 }] })
    assert.ok((await read(4, 'arrow')).length > 0)
    // A failing body source is its own error, not UNREACHABLE.
    const failing = async function* (): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('{"lower":[10],')
      throw new Error('disk gone')
    }
    await assert.rejects(s.client.writeBatch(shard.shardId, { kind: 'json', bytes: failing() }), (err: unknown) => !(err instanceof ApiError) && err instanceof Error && err.message === 'disk gone')
    assert.deepEqual((await s.client.downgradeSince(shard.shardId, [4])).since, [4])
    const regression = await rejection(s.client.downgradeSince(shard.shardId, [2]))
    assert.deepEqual([regression.status, regression.code], [409, 'SINCE_REGRESSION'])
    assert.deepEqual(Object.keys(await s.client.gc(shard.shardId)).sort(), ['deletedBytes', 'deletedParts', 'truncatedBelowSeqno'])
  })

  it("reads a shard's spine counted; from a server without the spine route, from the whole shard, drawn the same", async (t) => {
    const s = await startOperatorServer(t)
    const shard = await seedShard(s, 'spine', 12, 2)
    const spine = await s.client.shardSpine(shard.shardId)
    assert.ok(spine.trace.batches.every((b) => 'stats' in b && !('batches' in b)))
    // A server that lacks the route answers 404 NOT_FOUND for it: the client asks for the whole shard.
    const asked: string[] = []
    const older = new ApiClient({
      baseUrl: s.url,
      token: TOKEN,
      fetch: async (input, init) => {
        const path = new URL(String(input)).pathname
        asked.push(path)
        if (path.endsWith('/spine')) return new Response(JSON.stringify({ code: 'NOT_FOUND', message: 'Route GET not found' }), { status: 404 })
        return fetch(input, init)
      },
    })
    const whole = await older.shardSpine(shard.shardId)
    assert.deepEqual(asked, [`/v1/shards/${shard.shardId}/spine`, `/v1/shards/${shard.shardId}`])
    assert.ok(whole.trace.batches.every((b) => 'batches' in b))
    assert.deepEqual(spineLayout(spine), spineLayout(whole))
    assert.equal(spineLayout(spine).levels.flatMap((l) => l.boxes).reduce((n, b) => n + b.hollow, 0), 12)
    // A missing shard is still an error, not a fallback.
    const missing = await rejection(s.client.shardSpine('s00000000-0000-4000-8000-000000000000'))
    assert.deepEqual([missing.status, missing.code], [404, 'SHARD_NOT_FOUND'])
  })

  it('says UNREACHABLE when nothing listens', async () => {
    const err = await rejection(new ApiClient({ baseUrl: 'http://127.0.0.1:9', token: null }).configs())
    assert.deepEqual([err.status, err.code], [0, 'UNREACHABLE'])
    assert.match(err.message, /cannot reach compactd at http:\/\/127\.0\.0\.1:9/)
  })
})
