/**
 * A compare-and-append the shard's upper is already past can never succeed (an upper only
 * advances), so it is refused with 409 UPPER_MISMATCH before its rows are written: an Arrow body
 * before a byte of it is read, a JSON body once its header is in. An append whose expected upper
 * the shard may still reach is written as before and decided when it commits.
 */
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import type { Abortable } from '../../src/location/errors.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { timestampKind } from '../../src/core/timestamp.js'
import { refuseUnreachableAppend } from '../../src/engine/write-header.js'
import { buildTestApp, type TestApp } from '../helper.js'
import { ARROW, arrowRows } from './data-support.js'

/** Counts the blobs written. */
class CountingBlob extends MemBlob {
  sets = 0
  override async set(key: string, value: Uint8Array, opts?: Abortable): Promise<void> {
    this.sets++
    return super.set(key, value, opts)
  }
}

/** A body of `pieces` that counts the pieces read; each waits for `gate` (if any) after the first. */
function body(pieces: readonly Uint8Array[], gate: Promise<void> = Promise.resolve()): { body: Readable; read: () => number } {
  let read = 0
  const stream = Readable.from(
    (async function* () {
      for (const [i, p] of pieces.entries()) {
        if (i > 0) await gate
        read++
        yield p
      }
    })(),
    { objectMode: false },
  )
  return { body: stream, read: () => read }
}

const row = '{"key":"k","val":1,"time":1,"diff":1}'

describe('an append the shard is already past', () => {
  let t: TestApp
  const blob = new CountingBlob()
  before(async () => {
    t = await buildTestApp({ settings: { workers: 1, gcGraceMs: 0 }, services: { rawBlob: blob } })
    // Every part is uploaded, so that a write's work shows as blobs written.
    await t.services.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
  })
  after(() => t.close())

  /** A shard whose upper is [5]. */
  async function shardAtFive(): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    const id = res.json().shardId as string
    const w = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [0], upper: [5], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] } })
    assert.equal(w.statusCode, 201)
    return id
  }

  it('an Arrow write is refused before a byte of its body is read', async () => {
    const id = await shardAtFive()
    const sets = blob.sets
    const b = body([arrowRows([{ key: 'x', val: 1n, time: 1n, diff: 1n }])])
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches?lower=[0]&upper=[3]`, headers: { 'content-type': ARROW }, payload: b.body })
    assert.equal(res.statusCode, 409)
    assert.deepEqual({ code: res.json().code, currentUpper: res.json().currentUpper }, { code: 'UPPER_MISMATCH', currentUpper: [5] })
    assert.equal(b.read(), 0)
    assert.equal(blob.sets, sets, 'nothing written')
    b.body.destroy()
  })

  it('a JSON write whose append fields come first is refused before its rows are read', async () => {
    const id = await shardAtFive()
    const sets = blob.sets
    // The second piece would be a bad row (400) if it were read.
    const b = body([Buffer.from(`{"lower":[2],"upper":[4],"append":true,"expectedUpper":[2],"updates":[${row}`), Buffer.from(',{"key":7}]}')], new Promise(() => {}))
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, headers: { 'content-type': 'application/json' }, payload: b.body })
    assert.equal(res.statusCode, 409)
    assert.deepEqual({ code: res.json().code, currentUpper: res.json().currentUpper }, { code: 'UPPER_MISMATCH', currentUpper: [5] })
    assert.equal(b.read(), 1)
    assert.equal(blob.sets, sets, 'nothing written')
    b.body.destroy()
  })

  it('a JSON write that leaves the append fields to their defaults is refused before its part is written', async () => {
    const id = await shardAtFive()
    const sets = blob.sets
    const res = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { updates: [{ key: 'b', val: 2, time: 3, diff: 1 }], lower: [3], upper: [4] } })
    assert.equal(res.statusCode, 409)
    assert.deepEqual({ code: res.json().code, currentUpper: res.json().currentUpper }, { code: 'UPPER_MISMATCH', currentUpper: [5] })
    assert.equal(blob.sets, sets, 'nothing written')
    // A write that does not append is not refused.
    const kept = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { updates: [{ key: 'b', val: 2, time: 3, diff: 1 }], lower: [3], upper: [4], append: false } })
    assert.equal(kept.statusCode, 201)
  })

  it('an append at an upper the shard may still reach is written and succeeds once the shard gets there', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/shards', payload: { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } } })
    const id = res.json().shardId as string
    // The second batch's write starts while the shard's upper is [0], and ends after the first committed.
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const second = body([Buffer.from(`{"lower":[2],"upper":[4],"expectedUpper":[2],"append":true,"updates":[${row.replace('"time":1', '"time":2')}`), Buffer.from(']}')], gate)
    const pending = t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, headers: { 'content-type': 'application/json' }, payload: second.body })
    for (let i = 0; i < 1000 && second.read() === 0; i++) await new Promise((r) => setImmediate(r))
    assert.equal(second.read(), 1, 'the second write started')
    const first = await t.app.inject({ method: 'POST', url: `/v1/shards/${id}/batches`, payload: { lower: [0], upper: [2], updates: [JSON.parse(row)] } })
    assert.equal(first.statusCode, 201)
    release()
    const done = await pending
    assert.equal(done.statusCode, 201, done.body)
    assert.deepEqual(done.json().upper, [4])
  })

  it('product timestamps: refused when the upper is past or beside the expected upper, not when it is behind', () => {
    const tk = timestampKind('product')
    const header = (e: [number, number]) => ({ lower: [e], upper: [], append: true, expectedUpper: [e] })
    assert.throws(() => refuseUnreachableAppend(tk, header([2, 2]), [[3, 3]]), { code: 'UPPER_MISMATCH' })
    assert.throws(() => refuseUnreachableAppend(tk, header([2, 2]), [[1, 5]]), { code: 'UPPER_MISMATCH' })
    assert.doesNotThrow(() => refuseUnreachableAppend(tk, header([2, 2]), [[1, 1]]))
    assert.doesNotThrow(() => refuseUnreachableAppend(tk, header([2, 2]), [[2, 2]]))
    assert.doesNotThrow(() => refuseUnreachableAppend(tk, { ...header([2, 2]), append: false }, [[3, 3]]))
  })
})
