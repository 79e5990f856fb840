/**
 * Clients that stop reading a snapshot, over real sockets: their reads park (engine/worker-pool.ts),
 * so writes, other snapshots and compactions still run on the workers they held; a client that
 * hangs up mid-body, or has taken nothing for the send timeout (its connection is then closed),
 * has its read let go: the version it held from GC, its worker.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'
import { describe, it } from 'node:test'
import type { ShardId } from '../../src/core/ids.js'
import { liveApp, type LiveApp } from '../support/live-app.js'

/** Rows of `bigShard` (at asOf 1). */
const ROWS = 160_000

/** A shard whose JSON snapshot is ~20 MB: many chunks, more than a loopback socket's buffers hold. */
async function bigShard(live: LiveApp): Promise<string> {
  const { app } = live
  const created = await app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
  const shardId = (created.json() as { shardId: string }).shardId
  for (let b = 0; b < 2; b++) {
    const updates = Array.from({ length: ROWS / 2 }, (_, i) => ({ key: `key-${b}-${String(i).padStart(6, '0')}-${'x'.repeat(40)}`, val: i, time: b, diff: 1 }))
    const res = await app.inject({ method: 'POST', url: `/v1/shards/${shardId}/batches`, payload: { lower: [b], upper: [b + 1], updates } })
    assert.equal(res.statusCode, 201, res.body)
  }
  return shardId
}

/** A snapshot request whose body is not read: resolves with the paused response once its head is in. */
function stalledRead(baseUrl: string, shardId: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}/v1/shards/${shardId}/snapshot?asOf=1`, (res) => {
      res.pause()
      resolve(res)
    })
    req.on('error', reject)
    req.end()
  })
}

describe('snapshot clients that stop reading', () => {
  it('do not stall writes, snapshots and compactions, however many there are beyond the workers', { timeout: 120_000 }, async (t) => {
    const live = await liveApp(t, { workers: 2 })
    const shardId = await bigShard(live)
    const stalled = await Promise.all(Array.from({ length: 5 }, () => stalledRead(live.baseUrl, shardId)))
    try {
      assert.ok(stalled.every((r) => r.statusCode === 200))
      // NB: bounded: a request stuck behind the stalled reads fails here, not at the runner's timeout.
      const post = (url: string, body: unknown): Promise<Response> =>
        fetch(`${live.baseUrl}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
      const write = await post(`/v1/shards/${shardId}/batches`, { lower: [2], upper: [3], updates: [{ key: 'late', val: 1, time: 2, diff: 1 }] })
      assert.equal(write.status, 201, await write.text())
      const read = await fetch(`${live.baseUrl}/v1/shards/${shardId}/snapshot?asOf=2`, { signal: AbortSignal.timeout(30_000) })
      assert.equal(read.status, 200)
      assert.equal(((await read.json()) as { updates: unknown[] }).updates.length, ROWS + 1)
      const compaction = await post(`/v1/shards/${shardId}/compactions`, { major: true, wait: true })
      assert.equal(compaction.status, 200)
      assert.equal(((await compaction.json()) as { status: string }).status, 'succeeded')
      // The stalled clients, reading again, get their whole snapshot.
      for (const res of stalled) {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.resume()
        await once(res, 'end')
        assert.equal((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { updates: unknown[] }).updates.length, ROWS)
      }
    } finally {
      // NB: so that a failure above does not leave the app's close waiting on these connections.
      stalled.forEach((r) => r.destroy())
    }
  })

  it('let go of their read when they hang up mid-body', { timeout: 120_000 }, async (t) => {
    const live = await liveApp(t, { workers: 1 })
    const shardId = await bigShard(live)
    const held = (): number => [...live.services.shards.leases.states(shardId as ShardId)].length
    const res = await stalledRead(live.baseUrl, shardId)
    assert.equal(held(), 1, 'the read holds its version')
    res.destroy()
    for (let i = 0; i < 200 && held() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(held(), 0, 'the read let go within 10 s')
    // Its worker is free again.
    const read = await fetch(`${live.baseUrl}/v1/shards/${shardId}/snapshot?asOf=1`, { signal: AbortSignal.timeout(30_000) })
    assert.equal(((await read.json()) as { updates: unknown[] }).updates.length, ROWS)
  })

  it('are disconnected once they take nothing for the send timeout, and their reads let go', { timeout: 120_000 }, async (t) => {
    // NB: a paused client does not read its socket, so it learns of the close only when it reads again.
    const live = await liveApp(t, { workers: 1, sendTimeoutMs: 300 })
    const shardId = await bigShard(live)
    const res = await stalledRead(live.baseUrl, shardId)
    try {
      // The server lets go of the read: the version it read is no longer held from GC in this process.
      const held = (): number => [...live.services.shards.leases.states(shardId as ShardId)].length
      assert.equal(held(), 1, 'the stalled read holds its version')
      for (let i = 0; i < 200 && held() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(held(), 0, 'the read let go within 10 s')
      // The client, reading again, finds its body cut short: the server closed the connection.
      const closed = new Promise((resolve) => res.once('close', resolve))
      res.on('error', () => undefined)
      res.resume()
      await closed
      assert.equal(res.complete, false, 'the body was cut short')
    } finally {
      // NB: so that a failure above does not leave the app's close waiting on this connection.
      res.destroy()
    }
    // A client that reads at once is not cut off.
    const read = await fetch(`${live.baseUrl}/v1/shards/${shardId}/snapshot?asOf=1`)
    assert.equal(((await read.json()) as { updates: unknown[] }).updates.length, ROWS)
  })
})
