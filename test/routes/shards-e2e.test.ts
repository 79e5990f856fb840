/**
 * What a new user does with curl, through app.inject on the embedded file stores: create a u64
 * shard with utf8 keys and int64 values, append three JSON batches and one Arrow batch, read the
 * consolidated snapshot, restart the server on the same data dir and read it again, downgrade the
 * since and read at the new since.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, it } from 'node:test'
import { buildApp, type App } from '../../src/app.js'
import { createServices, type Services } from '../../src/services.js'
import { testSettings } from '../helper.js'
import { ARROW, arrowRows, rowsOfArrow } from './data-support.js'

async function start(dir: string): Promise<{ app: App; services: Services; stop(): Promise<void> }> {
  const settings = testSettings({
    dataDir: dir,
    blobUrl: pathToFileURL(join(dir, 'blob')).href,
    consensusUrl: pathToFileURL(join(dir, 'consensus')).href,
    workers: 1,
  })
  const services = await createServices(settings)
  const app = buildApp(services, { logger: false })
  await app.ready()
  return {
    app,
    services,
    stop: async () => {
      await app.close()
      await services.close()
    },
  }
}

describe('a new user, end to end on file stores', () => {
  it('writes, reads, restarts, reads the same, downgrades since, reads at the new since', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-e2e-'))
    t.after(() => rm(dir, { recursive: true, force: true }))

    let server = await start(dir)
    try {
      const created = await server.app.inject({
        method: 'POST',
        url: '/v1/shards',
        payload: { name: 'clicks', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } },
      })
      assert.equal(created.statusCode, 201)
      const id: string = created.json().shardId

      const batches = [
        { lower: [0], upper: [10], updates: [{ key: 'home', val: 1, time: 1, diff: 1 }, { key: 'about', val: 1, time: 4, diff: 1 }] },
        { lower: [10], upper: [20], updates: [{ key: 'home', val: 1, time: 12, diff: 2 }, { key: 'about', val: 1, time: 15, diff: -1 }] },
        { lower: [20], upper: [30], updates: [{ key: 'pricing', val: 7, time: 25, diff: 3 }, { key: 'home', val: 1, time: 29, diff: 1 }] },
      ]
      let upper: unknown
      for (const b of batches) {
        const res = await server.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: b })
        assert.equal(res.statusCode, 201, res.body)
        assert.equal(res.json().appended, true)
        upper = res.json().upper
      }
      assert.deepEqual(upper, [30])
      const arrow = await server.app.inject({
        method: 'POST',
        url: `/v1/shards/${id}/batches?lower=${encodeURIComponent('[30]')}&upper=${encodeURIComponent('[40]')}`,
        headers: { 'content-type': ARROW },
        payload: arrowRows([
          { key: 'pricing', val: 7n, time: 31n, diff: 1n },
          { key: 'docs', val: 2n, time: 35n, diff: 5n },
        ]),
      })
      assert.equal(arrow.statusCode, 201, arrow.body)
      assert.deepEqual(arrow.json().upper, [40])

      const expected = {
        asOf: 39,
        updates: [
          { key: 'docs', val: 2, time: 39, diff: 5 },
          { key: 'home', val: 1, time: 39, diff: 4 },
          { key: 'pricing', val: 7, time: 39, diff: 4 },
        ],
      }
      const read = async () => server.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=39` })
      const before = await read()
      assert.equal(before.statusCode, 200)
      assert.deepEqual(before.json(), expected)

      await server.stop()
      server = await start(dir)

      const after = await read()
      assert.equal(after.statusCode, 200)
      assert.deepEqual(after.json(), expected)
      const shard = await server.app.inject({ method: 'GET', url: `/v1/shards/${id}` })
      // 4, then each read's reader lease: held (5), released on stop (6), held again after the restart (7).
      assert.equal(shard.json().seqno, 7)
      assert.equal(shard.json().stats.updates, 8)

      const since = await server.app.inject({ method: 'POST', url: `/v1/shards/${id}/since`, payload: { since: [20] } })
      assert.equal(since.statusCode, 200)
      assert.deepEqual(since.json().since, [20])
      const early = await server.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=15` })
      assert.equal(early.statusCode, 400)
      assert.deepEqual({ code: early.json().code, since: early.json().since, upper: early.json().upper }, { code: 'AS_OF_NOT_AVAILABLE', since: [20], upper: [40] })
      const atSince = await server.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=20`, headers: { accept: ARROW } })
      assert.equal(atSince.statusCode, 200)
      assert.deepEqual(rowsOfArrow(atSince.rawPayload), [{ k: 'home', v: 1n, t: 20n, d: 3n }])
    } finally {
      await server.stop()
    }
  })
})
