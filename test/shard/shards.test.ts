import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { batchToJson, runs, type HollowBatchJson } from '../../src/core/batch.js'
import { newShardId, type ShardId, type WriterKey, type PartId } from '../../src/core/ids.js'
import { blobKey, parseBlobKey, shardPrefix } from '../../src/core/paths.js'
import { encodePart, encodeUpdatesStream } from '../../src/columnar/part-format.js'
import { updatesFromJson, updatesToJson, type UpdateJson } from '../../src/columnar/updates.js'
import type { DataTypeJson } from '../../src/columnar/data-type.js'
import { AppError, type ErrorCode } from '../../src/errors.js'
import type { FueledMergeReq } from '../../src/trace/fueled-merge-req.js'
import { allHollowBatches } from '../../src/trace/trace.js'
import { stateInlineBytes, upperOf } from '../../src/shard/state.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { collect, makeHarness, snapshotDocument, type Harness } from './harness.js'

const U64 = { timestamp: 'u64' as const, keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<AppError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (message !== undefined) assert.match(err.message, message)
    return err
  }
  assert.fail(`expected ${code}`)
}

async function snapshotRows(h: Harness, shardId: ShardId, asOf: unknown): Promise<UpdateJson[]> {
  const read = await h.shards.snapshot(shardId, asOf, { format: 'json' })
  return (await snapshotDocument(read.body)).updates as UpdateJson[]
}

async function blobKeys(h: Harness, shardId: ShardId): Promise<string[]> {
  const out: string[] = []
  for await (const m of h.blob.list(shardPrefix(shardId))) out.push(m.key)
  return out.sort()
}

describe('Shards', () => {
  let h: Harness
  before(async () => {
    h = await makeHarness()
  })
  after(() => h.close())

  let named = 0
  async function shard(spec: { timestamp: 'u64' | 'product'; keySchema: unknown; valSchema: unknown } = U64): Promise<ShardId> {
    return (await h.shards.create({ name: `test-${named++}`, ...spec })).state.shardId
  }

  describe('create, get, list', () => {
    it('creates a shard at seqno 0 with schema 0, since [minimum] and upper [minimum]', async () => {
      const v = await h.shards.create({ name: 'orders', ...U64 })
      assert.equal(v.seqno, 0)
      assert.equal(v.state.name, 'orders')
      assert.deepEqual(v.state.schemas.map((s) => s.id), [0])
      const got = await h.shards.get(v.state.shardId)
      assert.equal(got.seqno, 0)
      assert.ok((await h.shards.list()).shards.some((s) => s.state.shardId === v.state.shardId))
    })

    it('refuses a malformed type naming the field, and an unknown shard', async () => {
      await rejectsWith(h.shards.create({ timestamp: 'u64', keySchema: { type: 'varchar' }, valSchema: { type: 'unit' } }), 'BAD_REQUEST', /^body\.keySchema\.type: unknown type/)
      const dup = { type: 'struct', fields: [{ name: 'a', type: { type: 'utf8' } }, { name: 'a', type: { type: 'utf8' } }] }
      await rejectsWith(h.shards.create({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: dup }), 'BAD_REQUEST', /body\.valSchema\.fields\[1\]\.name: duplicate/)
      await rejectsWith(h.shards.get(newShardId()), 'SHARD_NOT_FOUND')
    })
  })

  describe('schemas and since', () => {
    const v0: DataTypeJson = { type: 'struct', fields: [{ name: 'a', type: { type: 'int64' }, nullable: false }] }
    const v1: DataTypeJson = { type: 'struct', fields: [{ name: 'a', type: { type: 'int64' }, nullable: false }, { name: 'b', type: { type: 'utf8' }, nullable: true }] }

    it('registers evolutions with increasing ids, the latest again as itself, and refuses the rest', async () => {
      const id = await shard({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: v0 })
      assert.deepEqual(await h.shards.registerSchema(id, { type: 'utf8' }, v0), { id: 0 })
      assert.deepEqual(await h.shards.registerSchema(id, { type: 'utf8' }, v1), { id: 1 })
      assert.deepEqual(await h.shards.registerSchema(id, { type: 'utf8' }, v1), { id: 1 })
      await rejectsWith(h.shards.registerSchema(id, { type: 'utf8' }, v0), 'SCHEMA_INCOMPATIBLE', /b was removed/)
      await rejectsWith(h.shards.registerSchema(id, { type: 'binary' }, v1), 'SCHEMA_INCOMPATIBLE', /changed type/)
      await rejectsWith(h.shards.registerSchema(newShardId(), { type: 'utf8' }, v1), 'SHARD_NOT_FOUND')
      assert.equal((await h.shards.get(id)).state.schemas.length, 2)
    })

    it('writes with the latest schema and migrates older parts on read', async () => {
      const id = await shard({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: v0 })
      await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [1], updates: [{ key: 'old', val: { a: 1 }, time: 0, diff: 1 }] })
      await h.shards.registerSchema(id, { type: 'utf8' }, v1)
      await rejectsWith(
        h.shards.writeBatch(id, { kind: 'json', lower: [1], upper: [2], updates: [{ key: 'new', val: { a: 2, c: 1 }, time: 1, diff: 1 }] }),
        'INVALID_BATCH',
        /body\.updates\[0\]\.val\.c: unknown field/,
      )
      const w = await h.shards.writeBatch(id, { kind: 'json', lower: [1], upper: [2], updates: [{ key: 'new', val: { a: 2, b: 'x' }, time: 1, diff: 1 }] })
      assert.deepEqual(w.batch.runMeta, [{ order: 'structured', schemaId: 1 }])
      assert.deepEqual(await snapshotRows(h, id, 1), [
        { key: 'new', val: { a: 2, b: 'x' }, time: 1, diff: 1 },
        { key: 'old', val: { a: 1, b: null }, time: 1, diff: 1 },
      ])
    })

    it('downgrades the since monotonically; a regression is SINCE_REGRESSION with the current since', async () => {
      const id = await shard()
      assert.deepEqual((await h.shards.downgradeSince(id, [5])).state.trace.since, [5n])
      const same = await h.shards.downgradeSince(id, [5])
      assert.equal(same.seqno, 1, 'an unchanged since writes no version')
      const err = await rejectsWith(h.shards.downgradeSince(id, [3]), 'SINCE_REGRESSION')
      assert.deepEqual(err.extra, { since: [5] })
      await rejectsWith(h.shards.downgradeSince(id, [[1, 2]]), 'BAD_REQUEST', /^body\.since: element 0/)
      assert.deepEqual((await h.shards.downgradeSince(id, [])).state.trace.since, [])
    })
  })

  describe('writes', () => {
    it('appends at the lower by default and reads back the consolidated sum', async () => {
      const id = await shard()
      const a = await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [3], updates: [{ key: 'a', val: 1, time: 0, diff: 1 }, { key: 'b', val: 1, time: 2, diff: 4 }] })
      assert.equal(a.appended, true)
      assert.equal(a.seqno, 1)
      assert.deepEqual(a.upper, [3n])
      const b = await h.shards.writeBatch(id, { kind: 'json', lower: [3], upper: [5], updates: [{ key: 'a', val: 1, time: 4, diff: 2 }, { key: 'b', val: 1, time: 3, diff: -4 }] })
      assert.equal(b.seqno, 2)
      assert.deepEqual(await snapshotRows(h, id, 4), [{ key: 'a', val: 1, time: 4, diff: 3 }])
      assert.deepEqual(await snapshotRows(h, id, 2), [
        { key: 'a', val: 1, time: 2, diff: 1 },
        { key: 'b', val: 1, time: 2, diff: 4 },
      ])
    })

    it('takes a decoded Arrow stream as rows, naming bad rows by index', async () => {
      const id = await shard()
      const shape = { keyType: { type: 'utf8' } as const, valType: { type: 'int64' } as const, timeKind: 'u64' as const }
      const rows = updatesFromJson([{ key: 'z', val: 1, time: 1, diff: 1 }, { key: 'y', val: 2, time: 9, diff: 1 }], shape)
      assert.ok(rows.ok)
      const bytes = encodeUpdatesStream(rows.value)
      const err = await rejectsWith(h.shards.writeBatch(id, { kind: 'arrow', bytes, lower: [0], upper: [5] }), 'INVALID_BATCH', /^body: row 1: time 9 is not in \[lower \[0\], upper \[5\]\)/)
      assert.deepEqual(err.extra, { row: 1 })
      const ok = await h.shards.writeBatch(id, { kind: 'arrow', bytes, lower: [0], upper: [10] })
      assert.equal(ok.batch.len, 2)
      await rejectsWith(h.shards.writeBatch(id, { kind: 'arrow', bytes: new Uint8Array([1, 2, 3]), lower: [10], upper: [11] }), 'INVALID_BATCH', /^body: invalid Arrow stream/)
    })

    it('returns an unappended batch with append false, appendable later with append', async () => {
      const id = await shard()
      const w = await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [{ key: 'k', val: 7, time: 1, diff: 2 }], append: false })
      assert.equal(w.appended, false)
      assert.equal(w.seqno, undefined)
      assert.equal((await h.shards.get(id)).seqno, 0)
      const json = batchToJson(w.tk, w.batch)
      const r = await h.shards.append(id, json)
      assert.equal(r.seqno, 1)
      assert.deepEqual(r.upper, [2n])
      assert.deepEqual(await snapshotRows(h, id, 1), [{ key: 'k', val: 7, time: 1, diff: 2 }])
      // The same batch again: its lower is no longer the upper.
      await rejectsWith(h.shards.append(id, json), 'UPPER_MISMATCH')
    })

    it('refuses an expectedUpper other than the lower before writing anything', async () => {
      const id = await shard()
      await rejectsWith(h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [], expectedUpper: [1] }), 'INVALID_BATCH', /^body\.expectedUpper/)
      assert.deepEqual(await blobKeys(h, id), [])
    })

    it('on an upper mismatch answers UPPER_MISMATCH with the current upper and deletes the parts it wrote', async () => {
      await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
      try {
        const id = await shard()
        await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [4], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] })
        const before = await blobKeys(h, id)
        assert.equal(before.length, 1)
        const err = await rejectsWith(h.shards.writeBatch(id, { kind: 'json', lower: [2], upper: [6], updates: [{ key: 'b', val: 1, time: 3, diff: 1 }] }), 'UPPER_MISMATCH')
        assert.deepEqual(err.extra, { currentUpper: [4] })
        assert.deepEqual(await blobKeys(h, id), before)
        assert.equal((await h.shards.get(id)).seqno, 1)
      } finally {
        await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 4096 })
      }
    })

    it('moves inline parts to blob under inline backpressure, then appends', async () => {
      await h.dyncfg.update({ persist_inline_writes_total_max_bytes: 1 })
      try {
        const id = await shard()
        const w = await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [{ key: 'a', val: 1, time: 1, diff: 1 }] })
        assert.equal(w.appended, true)
        assert.deepEqual(w.batch.parts.map((p) => p.kind), ['hollow'])
        const v = await h.shards.get(id)
        assert.equal(stateInlineBytes(v.state), 0)
        assert.equal((await blobKeys(h, id)).length, 1)
        assert.deepEqual(await snapshotRows(h, id, 1), [{ key: 'a', val: 1, time: 1, diff: 1 }])
      } finally {
        await h.dyncfg.update({ persist_inline_writes_total_max_bytes: 1024 * 1024 })
      }
    })

    it('names the first row outside [lower, upper) or not of the schema', async () => {
      const id = await shard()
      const write = (updates: unknown[], lower: unknown = [0], upper: unknown = [5]) => h.shards.writeBatch(id, { kind: 'json', lower, upper, updates })
      await rejectsWith(write([{ key: 'a', val: 1, time: 1, diff: 1 }, { key: 'a', val: 1, time: 5, diff: 1 }]), 'INVALID_BATCH', /^body\.updates\[1\]\.time 5 is not in/)
      await rejectsWith(write([{ key: 'a', val: 'x', time: 1, diff: 1 }]), 'INVALID_BATCH', /^body\.updates\[0\]\.val: expected int64/)
      await rejectsWith(write([], [[0, 0]]), 'INVALID_BATCH', /^body\.lower: element 0/)
      await rejectsWith(write([], [5], [2]), 'INVALID_BATCH', /^body\.upper: \[2\] is before lower \[5\]/)
      assert.equal((await h.shards.get(id)).seqno, 0)
    })

    it('accepts an empty-interval batch as a no-op append', async () => {
      const id = await shard()
      const w = await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [0], updates: [] })
      assert.equal(w.appended, true)
      assert.equal(w.seqno, 0)
    })

    it('hands merge requests of committed appends to listeners', async () => {
      const id = await shard()
      const seen: FueledMergeReq[] = []
      let appends = 0
      const off = h.shards.onMergeRequests((shardId, reqs) => {
        if (shardId === id) seen.push(...reqs)
        if (shardId === id) appends++
      })
      try {
        for (let i = 0; i < 6; i++) {
          await h.shards.writeBatch(id, { kind: 'json', lower: [i], upper: [i + 1], updates: [{ key: `k${i}`, val: i, time: i, diff: 1 }] })
        }
      } finally {
        off()
      }
      assert.ok(seen.length > 0)
      assert.equal(appends, 6, 'told of every append, with its requests or none')
      for (const req of seen) {
        assert.deepEqual(req.inputs[0]?.batch.desc.lower, req.desc.lower)
        assert.deepEqual(req.inputs.at(-1)?.batch.desc.upper, req.desc.upper)
      }
    })
  })

  describe('append of a client batch', () => {
    async function unappended(id: ShardId, lower: number, upper: number, rows: UpdateJson[]): Promise<HollowBatchJson> {
      const w = await h.shards.writeBatch(id, { kind: 'json', lower: [lower], upper: [upper], updates: rows, append: false })
      return batchToJson(w.tk, w.batch)
    }

    it('checks parts against blob storage and replaces what the client claims by the facts', async () => {
      await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
      try {
        const id = await shard()
        const json = await unappended(id, 0, 3, [{ key: 'a', val: 1, time: 1, diff: 3 }, { key: 'b', val: 1, time: 2, diff: 1 }])
        const part = json.parts[0] as { key: string; encodedSizeBytes: number; diffsSum: number | string | null }
        const lying = { ...json, len: 99, parts: [{ ...part, encodedSizeBytes: 1, diffsSum: 12345, keyLower: '' }] }
        await h.shards.append(id, lying)
        const [batch] = allHollowBatches((await h.shards.get(id)).state.trace)
        const p = batch?.parts[0]
        assert.ok(p?.kind === 'hollow')
        assert.equal(batch?.len, 2)
        assert.equal(p.diffsSum, 4n)
        assert.ok(p.encodedSizeBytes > 1)
        assert.equal(Buffer.from(p.keyLower, 'base64').toString(), 'a')
      } finally {
        await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 4096 })
      }
    })

    it('refuses missing parts, foreign keys, parts of another description, and ordered runs out of order', async () => {
      await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0, persist_blob_target_size: 1 })
      try {
        const id = await shard()
        const other = await shard()
        const json = await unappended(id, 0, 3, [{ key: 'a', val: 1, time: 1, diff: 1 }, { key: 'b', val: 1, time: 2, diff: 1 }])
        assert.equal(json.parts.length, 2)
        const [p0, p1] = json.parts as unknown as [{ key: string }, { key: string }]
        const missing = { ...json, parts: [{ ...p0, key: p0.key.replace(/p[0-9a-f]{8}/, 'p00000000') }, p1] }
        await rejectsWith(h.shards.append(id, missing), 'INVALID_BATCH', /^body\.batch\.parts\[0\]\.key: part .* does not exist/)
        await rejectsWith(h.shards.append(id, { ...json, parts: [{ ...p0, key: `${other}/${p0.key}` }, p1] }), 'INVALID_BATCH', /belongs to another shard/)
        await rejectsWith(h.shards.append(id, { ...json, desc: { ...json.desc, upper: [4] } }), 'INVALID_BATCH', /was written with desc/)
        await rejectsWith(h.shards.append(id, { ...json, parts: [p1, p0] }), 'INVALID_BATCH', /sorts before the last row/)
        // As two single-part runs, the same parts are fine.
        const r = await h.shards.append(id, { ...json, parts: [p1, p0], runSplits: [1], runMeta: [json.runMeta[0]!, json.runMeta[0]!] })
        assert.equal(r.seqno, 1)
        const [batch] = allHollowBatches((await h.shards.get(id)).state.trace)
        assert.equal(runs(batch!).length, 2)
        assert.deepEqual(await snapshotRows(h, id, 2), [
          { key: 'a', val: 1, time: 2, diff: 1 },
          { key: 'b', val: 1, time: 2, diff: 1 },
        ])
      } finally {
        await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 4096, persist_blob_target_size: 128 * 1024 * 1024 })
      }
    })

    it('refuses inline parts whose rows are out of order or outside the description', async () => {
      const id = await shard()
      const shape = { keyType: { type: 'utf8' } as const, valType: { type: 'int64' } as const, timeKind: 'u64' as const }
      const desc = { lower: [0n], upper: [5n], since: [0n] }
      const inline = (rows: UpdateJson[]) => {
        const u = updatesFromJson(rows, shape)
        assert.ok(u.ok)
        const bytes = encodePart(u.value, { desc, order: 'structured', schemaId: 0 })
        return {
          desc: { lower: [0], upper: [5], since: [0] },
          len: rows.length,
          parts: [{ inline: { encodedSizeBytes: bytes.byteLength, updates: Buffer.from(bytes).toString('base64') } }],
          runSplits: [],
          runMeta: [{ order: 'structured', schemaId: 0 }],
        }
      }
      await rejectsWith(h.shards.append(id, inline([{ key: 'b', val: 1, time: 1, diff: 1 }, { key: 'a', val: 1, time: 1, diff: 1 }])), 'INVALID_BATCH', /rows are not in structured order/)
      await rejectsWith(h.shards.append(id, inline([{ key: 'a', val: 1, time: 7, diff: 1 }])), 'INVALID_BATCH', /row 0 has time 7, outside/)
      assert.equal((await h.shards.append(id, inline([{ key: 'a', val: 1, time: 1, diff: 1 }, { key: 'b', val: 1, time: 1, diff: 1 }]))).seqno, 1)
      assert.deepEqual(await snapshotRows(h, id, 1), [
        { key: 'a', val: 1, time: 1, diff: 1 },
        { key: 'b', val: 1, time: 1, diff: 1 },
      ])
    })

    it('on an upper mismatch deletes the parts of a client batch, unless the shard references them', async () => {
      await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
      try {
        const id = await shard()
        const stray = await unappended(id, 0, 3, [{ key: 'a', val: 1, time: 1, diff: 1 }])
        await rejectsWith(h.shards.append(id, stray, [1]), 'UPPER_MISMATCH')
        assert.equal((await blobKeys(h, id)).length, 0, 'a refused batch loses its parts (docs/api.md#write-now-append-later)')
        const json = await unappended(id, 0, 3, [{ key: 'a', val: 1, time: 1, diff: 1 }])
        await h.shards.append(id, json)
        await rejectsWith(h.shards.append(id, json), 'UPPER_MISMATCH')
        assert.equal((await blobKeys(h, id)).length, 1, 'the parts of a batch appended before stay')
      } finally {
        await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 4096 })
      }
    })
  })

  describe('reads', () => {
    it('answers AS_OF_NOT_AVAILABLE outside [since, upper) with both frontiers', async () => {
      const id = await shard()
      await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [10], updates: [] })
      await h.shards.downgradeSince(id, [4])
      const at = (asOf: unknown) => rejectsWith(h.shards.snapshot(id, asOf, { format: 'json' }), 'AS_OF_NOT_AVAILABLE')
      const err = await at('3')
      assert.deepEqual(err.extra, { since: [4], upper: [10] })
      await at(10)
      await rejectsWith(h.shards.snapshot(id, 'x', { format: 'json' }), 'BAD_REQUEST', /^query\.asOf/)
      assert.deepEqual(await snapshotRows(h, id, '4'), [])
      assert.deepEqual(await snapshotRows(h, id, 9), [])
    })

    it('holds a lease on the state it reads until the read ends or is released', async () => {
      const id = await shard()
      await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [2], updates: [{ key: 'a', val: 1, time: 0, diff: 1 }] })
      // The first read commits this instance's reader lease (version 2) and reads that version;
      // the second shares the lease.
      const read = await h.shards.snapshot(id, 1, { format: 'arrow' })
      assert.equal(h.leases.minSeqno(id), 2)
      await collect(read.body)
      assert.equal(h.leases.minSeqno(id), null)
      const unread = await h.shards.snapshot(id, 1, { format: 'json' })
      assert.equal(h.leases.minSeqno(id), 2)
      unread.release()
      unread.release()
      assert.equal(h.leases.minSeqno(id), null)
    })

    it('reads product timestamps, advancing times to asOf', async () => {
      const id = await shard({ timestamp: 'product', keySchema: { type: 'utf8' }, valSchema: { type: 'unit' } })
      await h.shards.writeBatch(id, {
        kind: 'json',
        lower: [[0, 0]],
        upper: [[5, 5]],
        updates: [
          { key: 'a', val: null, time: [1, 2], diff: 1 },
          { key: 'a', val: null, time: [2, 1], diff: 1 },
          { key: 'b', val: null, time: [3, 0], diff: 1 },
        ],
      })
      assert.deepEqual(await snapshotRows(h, id, '[2,2]'), [{ key: 'a', val: null, time: [2, 2], diff: 2 }])
      await rejectsWith(
        h.shards.writeBatch(id, { kind: 'json', lower: [[5, 5]], upper: [[6, 6]], updates: [{ key: 'c', val: null, time: [4, 9], diff: 1 }] }),
        'INVALID_BATCH',
        /^body\.updates\[0\]\.time \(4,9\) is not in/,
      )
    })

    it('shows a part as stored, or PART_NOT_FOUND', async () => {
      await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 0 })
      try {
        const id = await shard()
        const w = await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [3], updates: [{ key: 'b', val: 1, time: 2, diff: 1 }, { key: 'a', val: 1, time: 1, diff: 1 }] })
        const p = w.batch.parts[0]
        assert.ok(p?.kind === 'hollow')
        const parsed = parseBlobKey(blobKey(id, p.key))
        assert.ok(parsed.ok)
        const part = await h.shards.readPart(id, parsed.value.writerKey, parsed.value.partId)
        assert.equal(part.key, p.key)
        assert.equal(part.meta.order, 'structured')
        assert.deepEqual(updatesToJson(part.updates), [
          { key: 'a', val: 1, time: 1, diff: 1 },
          { key: 'b', val: 1, time: 2, diff: 1 },
        ])
        await rejectsWith(h.shards.readPart(id, parsed.value.writerKey, 'p00000000-0000-4000-8000-000000000000' as PartId), 'PART_NOT_FOUND')
        await rejectsWith(h.shards.readPart(newShardId(), parsed.value.writerKey as WriterKey, parsed.value.partId), 'SHARD_NOT_FOUND')
      } finally {
        await h.dyncfg.update({ persist_inline_writes_single_max_bytes: 4096 })
      }
    })

    it('lists upper after appends', async () => {
      const id = await shard()
      await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [7], updates: [] })
      const listed = (await h.shards.list({ limit: 1000 })).shards.find((v) => v.state.shardId === id)
      assert.deepEqual(listed && upperOf(listed.state), [7n])
    })
  })
})

describe('Shards snapshot reads of parts written in several record batches', () => {
  it('reads large parts a batch at a time and gives the same snapshot', async () => {
    let rangedReads = 0
    const blob = new (class extends MemBlob {
      override get(key: string, opts?: Parameters<MemBlob['get']>[1]): ReturnType<MemBlob['get']> {
        if (opts?.range !== undefined) rangedReads++
        return super.get(key, opts)
      }
    })()
    // Every part with several batches is read in windows.
    const h = await makeHarness({ blob, service: { snapshotTuning: { windowMinBytes: 0 } } })
    try {
      const id = (await h.shards.create({ name: 'big', ...U64 })).state.shardId
      // ~1.5 MB a batch write: each part holds two record batches or more (PART_BATCH_BYTES).
      const rows = (t: number, sign: number) => Array.from({ length: 25_000 }, (_, i) => ({ key: `key-${String(i).padStart(8, '0')}-${'x'.repeat(i % 24)}`, val: i % 5, time: t, diff: sign * (1 + (i % 3)) }))
      await h.shards.writeBatch(id, { kind: 'json', lower: [0], upper: [1], updates: rows(0, 1) })
      // The second write cancels every third row of the first at time 1.
      await h.shards.writeBatch(id, { kind: 'json', lower: [1], upper: [2], updates: rows(1, -1).filter((_, i) => i % 3 === 0) })
      const got = await snapshotRows(h, id, 1)
      const want = rows(1, 1)
        .filter((_, i) => i % 3 !== 0)
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      assert.deepEqual(got, want)
      assert.ok(rangedReads > 2, `windows were read with ranged reads: ${rangedReads}`)
    } finally {
      await h.close()
    }
  })
})
