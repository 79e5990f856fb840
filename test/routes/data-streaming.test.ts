/**
 * The data path's streaming behaviour through the HTTP routes: bodies over the limit refused
 * without being buffered, a worker that dies mid-task, runs of unsorted writes, snapshots of one
 * chunk and of many.
 */
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import type { ShardId } from '../../src/core/ids.js'
import { GatedBlob } from '../support/gated-blob.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { ARROW, arrowRowBatches, arrowRows, rowsOfArrow } from './data-support.js'

const LIMIT = 256 * 1024

/** A body that counts what is read of it: `total` bytes in pieces of `piece`, one per turn. */
function countingBody(total: number, piece: number): { body: Readable; read: () => number; started: Promise<void> } {
  let read = 0
  let started!: () => void
  const first = new Promise<void>((resolve) => (started = resolve))
  const text = Buffer.from(`{"lower":[0],"upper":[10],"updates":[${'{"key":"k","val":1,"time":1,"diff":1},'.repeat(Math.ceil(total / 38))}`).subarray(0, total)
  const body = Readable.from(
    (async function* () {
      for (let at = 0; at < text.byteLength; at += piece) {
        started()
        await new Promise((resolve) => setImmediate(resolve))
        read += Math.min(piece, text.byteLength - at)
        yield text.subarray(at, at + piece)
      }
    })(),
    { objectMode: false },
  )
  return { body, read: () => read, started: first }
}

describe('data routes, streaming', () => {
  let t: TestApp
  const blob = new GatedBlob()
  before(async () => {
    t = await buildTestApp({ settings: { workers: 1, gcGraceMs: 0, bodyLimitBytes: LIMIT }, services: { rawBlob: blob } })
    await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
  })
  after(() => t.close())

  async function shard(): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    assert.equal(res.statusCode, 201)
    return res.json().shardId
  }

  it('refuses a body whose declared length is over the limit with 413, reading none of it', async () => {
    const id = await shard()
    const { body, read } = countingBody(4 * LIMIT, 16 * 1024)
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, headers: { 'content-type': 'application/json', 'content-length': String(4 * LIMIT) }, payload: body })
    assert.equal(res.statusCode, 413)
    assert.equal(res.json().code, 'PAYLOAD_TOO_LARGE')
    assert.equal(read(), 0, 'no byte of the body was read')
    body.destroy()
  })

  it('refuses a chunked body when it passes the limit with 413, having read about the limit', async () => {
    const id = await shard()
    const { body, read } = countingBody(16 * LIMIT, 16 * 1024)
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, headers: { 'content-type': 'application/json' }, payload: body })
    assert.equal(res.statusCode, 413)
    assert.match(res.json().message, /larger than the body limit of 262144 bytes/)
    assert.ok(read() < 2 * LIMIT, `read ${read()} bytes of a ${16 * LIMIT}-byte body`)
    body.destroy()
    assert.deepEqual((await t.app.inject({ method: 'GET', url: `/v1/shards/${id}` })).json().seqno, 0)
  })

  it('refuses a chunked body over a real socket with 413 before the client has sent it all', async () => {
    const id = await shard()
    await t.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = t.app.server.address() as AddressInfo
    let sent = 0
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: `/v1/shards/${id}/batches`, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
        req.destroy()
      })
      req.on('error', (err) => (sent > 0 ? undefined : reject(err)))
      const piece = Buffer.from(`{"lower":[0],"upper":[10],"updates":[${'{"key":"k","val":1,"time":1,"diff":1},'.repeat(400)}`)
      const pump = (): void => {
        // Bounded: a server that buffered everything would see 64 limits' worth and then an end.
        while (sent < 64 * LIMIT && !req.destroyed) {
          sent += piece.byteLength
          if (!req.write(piece)) return void req.once('drain', pump)
        }
        if (!req.destroyed) req.end()
      }
      pump()
    })
    assert.equal(status, 413)
    assert.ok(sent < 64 * LIMIT, `the client sent ${sent} bytes`)
  })

  it('a write refused part-way through its body has the rest of it discarded, so the next request on its keep-alive connection is answered', async () => {
    const id = await shard()
    if (!t.app.server.listening) await t.app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = t.app.server.address() as AddressInfo
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const body = Buffer.from(`{"lower":[0],"upper":[10],"updates":[${'{"key":"k","val":1,"time":1,"diff":1},'.repeat((8 * LIMIT) / 38)}`)
    try {
      // Chunked, so the server reads the body until it passes the limit; and the client sends all of
      // it, as a client that does not watch for an early answer does.
      const refused = await new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const req = request({ agent, host: '127.0.0.1', port, method: 'POST', path: `/v1/shards/${id}/batches`, headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
          res.resume()
          res.once('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }))
        })
        req.on('error', reject)
        req.write(body)
        req.end(']}')
      })
      assert.deepEqual(refused, { status: 413, connection: 'keep-alive' })
      const next = await new Promise<number>((resolve, reject) => {
        const bound = setTimeout(() => reject(new Error('the next request on the agent was not answered within 15 s')), 15_000)
        const req = request({ agent, host: '127.0.0.1', port, method: 'GET', path: `/v1/shards/${id}` }, (res) => {
          res.resume()
          clearTimeout(bound)
          resolve(res.statusCode ?? 0)
        })
        req.on('error', (err) => (clearTimeout(bound), reject(err)))
        req.end()
      })
      assert.equal(next, 200)
    } finally {
      agent.destroy()
    }
  })

  it('an Arrow body without lower or upper is told they go in the query string', async () => {
    const id = await shard()
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches?upper=[5]`, headers: { 'content-type': ARROW }, payload: arrowRows([]) })
    assert.equal(res.statusCode, 400)
    assert.match(res.json().message, /^query\.lower: missing; with an Arrow body, lower and upper go in the query string as JSON/)
  })

  it('a worker that dies while it reads a write body fails that write with a 500 that says so; the next write succeeds', async () => {
    const id = await shard()
    const { body, started } = countingBody(LIMIT / 2, 4096)
    const pending = t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, headers: { 'content-type': 'application/json' }, payload: body })
    await started
    assert.equal(t.services.workerPool().crashBusyWorker(), true)
    const res = await pending
    assert.equal(res.statusCode, 500)
    assert.match(res.json().message, /worker thread serving this write stopped/)
    const ok = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] } })
    assert.equal(ok.statusCode, 201)
    assert.equal(ok.json().seqno, 1)
  })

  it('a worker that dies during a snapshot fails that read with a 500 that says so, and releases its lease', async () => {
    const id = await shard()
    assert.equal((await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] } })).statusCode, 201)
    // Part reads (keys under a writer key) wait until the worker has been crashed.
    const hold = blob.hold((key) => key.includes('/w'))
    const pending = t.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=4` })
    await hold.reached
    assert.equal(t.services.workerPool().crashBusyWorker(), true)
    hold.release()
    const res = await pending
    assert.equal(res.statusCode, 500)
    assert.match(res.json().message, /worker thread serving this read stopped/)
    assert.equal(t.services.shards.leases.minSeqno(id as ShardId), null)
    const again = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=4` })
    assert.deepEqual(again.json(), { asOf: 4, updates: [{ key: 'a', val: 1, time: 4, diff: 1 }] })
  })

  it('sends a small snapshot as one buffer with its length', async () => {
    const id = await shard()
    await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] } })
    const res = await t.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=2` })
    assert.equal(res.headers['content-length'], String(res.rawPayload.byteLength))
    assert.deepEqual(res.json(), { asOf: 2, updates: [{ key: 'a', val: 1, time: 2, diff: 1 }] })
  })

  it('writes unsorted rows as one run per target size of them, and reads them back merged, in many chunks', async (ctx) => {
    // The default body limit: this body is about 1.7 MB.
    const big = await buildTestApp({ t: ctx, settings: { workers: 1, gcGraceMs: 0 } })
    await big.services.dyncfg.update({ persist_blob_target_size: 16 * 1024 })
    const id = (await big.app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })).json().shardId as string
    {
      const n = 40_000
      const rows = Array.from({ length: n }, (_, i) => ({ key: `key-${String((i * 7919) % n).padStart(5, '0')}`, val: BigInt(i % 3), time: BigInt(i % 4), diff: 1n }))
      const res = await big.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches?lower=[0]&upper=[10]`, headers: { 'content-type': ARROW }, payload: arrowRowBatches(rows, 4000) })
      assert.equal(res.statusCode, 201)
      const batch = res.json().batch as { runMeta: unknown[]; parts: unknown[]; len: number }
      assert.ok(batch.runMeta.length > 1, `${batch.runMeta.length} runs`)
      assert.equal(batch.len, n)
      const snap = await big.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=9`, headers: { accept: ARROW } })
      assert.equal(snap.statusCode, 200)
      assert.equal(snap.headers['content-length'], undefined, 'streamed, not one buffer')
      const back = rowsOfArrow(snap.rawPayload)
      const expected = new Map<string, bigint>()
      for (const r of rows) expected.set(`${r.key}|${r.val}`, (expected.get(`${r.key}|${r.val}`) ?? 0n) + 1n)
      assert.equal(back.length, expected.size)
      const keys = back.map((r) => `${String(r.k)}|${String(r.v)}`)
      assert.deepEqual(keys, [...keys].sort())
      for (const r of back) assert.equal(r.d, expected.get(`${String(r.k)}|${String(r.v)}`))
      const json = await big.app.inject({ method: 'GET', url: `/v1/shards/${id}/snapshot?asOf=9` })
      assert.equal(json.json().updates.length, expected.size)
    }
  })
})
