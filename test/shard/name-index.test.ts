/**
 * Unique shard names: the claim index, its races (two creates, two instances, a creator that dies
 * or stalls after claiming, the takeover of a deleted shard's name), on mem, file and PostgreSQL
 * consensus.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isShardId, newShardId, type ShardId } from '../../src/core/ids.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { AppError } from '../../src/errors.js'
import type { Blob } from '../../src/location/blob.js'
import type { Consensus } from '../../src/location/consensus.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { openConsensus } from '../../src/location/open.js'
import { checkShardName, NameIndex, nameKey, nameOfKey } from '../../src/shard/name-index.js'
import { newShardState } from '../../src/shard/state.js'
import { startPostgres, type PostgresServer } from '../support/postgres.js'
import { watched } from '../support/watched-consensus.js'
import { makeHarness, type Harness } from './harness.js'

const U64 = { timestamp: 'u64' as const, keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

/** The error code a promise rejects with (and its extras), or 'ok' with the value. */
async function outcome<T>(p: Promise<T>): Promise<{ ok: T } | { code: string; extra: Readonly<Record<string, unknown>>; message: string }> {
  try {
    return { ok: await p }
  } catch (err) {
    assert.ok(err instanceof AppError, `expected an AppError, got ${String(err)}`)
    return { code: err.code, extra: err.extra, message: err.message }
  }
}

async function createdId(h: Harness, name: string): Promise<ShardId> {
  return (await h.shards.create({ ...U64, name })).state.shardId
}

/** Two services on one pair of stores, as two instances would be. */
async function twoInstances(open: () => Promise<Consensus>, blob: Blob = new MemBlob()): Promise<[Harness, Harness]> {
  const a = await makeHarness({ consensus: await open(), blob })
  const b = await makeHarness({ consensus: await open(), blob })
  return [a, b]
}

/** Creates each name from both instances at once: exactly one create wins, the other is told who. */
async function raceCreates([a, b]: readonly [Harness, Harness], names: readonly string[]): Promise<void> {
  for (const name of names) {
    const [x, y] = await Promise.all([outcome(createdId(a, name)), outcome(createdId(b, name))])
    const won = [x, y].filter((r) => 'ok' in r)
    assert.equal(won.length, 1, `exactly one create of "${name}" wins: ${JSON.stringify([x, y])}`)
    const winner = (won[0] as { ok: ShardId }).ok
    const lost = [x, y].find((r) => !('ok' in r)) as { code: string; extra: Record<string, unknown> }
    assert.deepEqual({ code: lost.code, holder: lost.extra.shardId }, { code: 'SHARD_NAME_TAKEN', holder: winner })
    for (const h of [a, b]) assert.deepEqual((await h.shards.list({ name })).shards.map((v) => v.state.shardId), [winner])
  }
}

describe('shard names', () => {
  it('are unique among live shards; the empty name is no name; a deleted shard frees its name', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    const first = await createdId(h, 'orders')
    const again = await outcome(createdId(h, 'orders'))
    assert.ok(!('ok' in again))
    assert.equal(again.code, 'SHARD_NAME_TAKEN')
    assert.deepEqual(again.extra, { shardId: first })
    assert.match(again.message, new RegExp(`^body\\.name: "orders" is the name of shard ${first}; choose another name, or delete that shard first$`))
    const unnamed = await Promise.all([createdId(h, ''), createdId(h, ''), h.shards.create(U64).then((v) => v.state.shardId)])
    assert.equal(new Set(unnamed).size, 3)
    assert.ok(!(await h.consensus.list()).some((k) => k === 'compactd/names/'), 'the empty name has no claim')

    await h.shards.delete(first)
    const second = await createdId(h, 'orders')
    assert.notEqual(second, first)
    assert.deepEqual((await h.shards.list({ name: 'orders' })).shards.map((v) => v.state.shardId), [second])
    const third = await outcome(createdId(h, 'orders'))
    assert.ok(!('ok' in third))
    assert.deepEqual({ code: third.code, holder: third.extra.shardId }, { code: 'SHARD_NAME_TAKEN', holder: second })
  })

  it('are at most 100 bytes of well-formed UTF-8 without control characters (400 naming body.name)', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    const cases: Array<[string, RegExp]> = [
      ['é'.repeat(51), /^body\.name: must be at most 100 bytes of UTF-8; this one is 102$/],
      ['a\u0000b', /^body\.name: must not contain control characters \(U\+0000 at 1\)$/],
      ['tab\there', /^body\.name: must not contain control characters \(U\+0009 at 3\)$/],
      ['lone \ud800', /^body\.name: must be well-formed Unicode/],
    ]
    for (const [name, message] of cases) {
      const r = await outcome(createdId(h, name))
      assert.ok(!('ok' in r) && r.code === 'BAD_REQUEST', JSON.stringify(name))
      assert.match(r.message, message)
    }
    const longest = `${'é'.repeat(49)}ab`
    assert.equal(Buffer.byteLength(longest), 100)
    assert.ok(isShardId(await createdId(h, longest)))
    assert.ok(isShardId(await createdId(h, 'emoji 🦀 and spaces / slashes')))
    assert.equal(nameOfKey(nameKey(longest)), longest)
    assert.equal(checkShardName('', 'x'), null)
  })

  it('a create that died after claiming is rolled forward by the next create of the name', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    const initial = newShardState(newShardId(), 'ghost', 'u64', utf8, int64, '2026-12-01T00:00:00.000Z')
    // The claim commits; the creator dies before writing the shard.
    const claimed = await new NameIndex(h.consensus).claim(initial, {
      state: async () => null,
      createIfAbsent: async () => assert.fail('nothing to roll forward'),
    })
    assert.deepEqual(claimed, { kind: 'claimed' })
    assert.deepEqual((await h.shards.list({ name: 'ghost' })).shards, [], 'a read does not roll a create forward')
    const r = await outcome(createdId(h, 'ghost'))
    assert.ok(!('ok' in r))
    assert.deepEqual({ code: r.code, holder: r.extra.shardId }, { code: 'SHARD_NAME_TAKEN', holder: initial.shardId })
    const rolled = await h.shards.get(initial.shardId)
    assert.deepEqual({ seqno: rolled.seqno, name: rolled.state.name, createdAt: rolled.state.createdAt }, { seqno: 0, name: 'ghost', createdAt: initial.createdAt })
  })

  it('a create stalled between its claim and its shard is rolled forward by a racing create on another instance, and still answers with its shard', async (t) => {
    const consensus = watched(new MemConsensus())
    const [h, other] = await twoInstances(async () => consensus)
    t.after(async () => Promise.all([h.close(), other.close()]))
    const gate = consensus.hold(isShardId, 'create')
    const stalled = h.shards.create({ ...U64, name: 'race' })
    const stalledId = await gate.reached
    const racing = await outcome(createdId(other, 'race'))
    assert.ok(!('ok' in racing))
    assert.deepEqual({ code: racing.code, holder: racing.extra.shardId }, { code: 'SHARD_NAME_TAKEN', holder: stalledId })
    gate.release()
    const created = await stalled
    assert.equal(created.state.shardId, stalledId)
    assert.equal(created.seqno, 0)
    assert.deepEqual((await h.shards.list({ name: 'race' })).shards.map((v) => v.state.shardId), [stalledId])
  })

  it('a name claimed again while a create judged it is judged again (compare-and-set from the version judged)', async (t) => {
    const consensus = watched(new MemConsensus())
    const [h, other] = await twoInstances(async () => consensus)
    t.after(async () => Promise.all([h.close(), other.close()]))
    const first = await createdId(h, 'taken-over')
    await h.shards.delete(first)
    // Two creates (on two instances) find the deleted holder; the first to compare-and-set takes the name.
    const gate = consensus.hold(nameKey('taken-over'), 'claim_name')
    const slow = outcome(createdId(h, 'taken-over'))
    await gate.reached
    const fast = await createdId(other, 'taken-over')
    gate.release()
    const r = await slow
    assert.ok(!('ok' in r))
    assert.deepEqual({ code: r.code, holder: r.extra.shardId }, { code: 'SHARD_NAME_TAKEN', holder: fast })
  })

  it('two creates of one name from two instances at once: exactly one wins (mem)', async (t) => {
    const shared = new MemConsensus()
    const pair = await twoInstances(async () => shared)
    t.after(async () => Promise.all(pair.map((h) => h.close())))
    await raceCreates(pair, ['m1', 'm2', 'm3', 'm4', 'm5'])
  })

  it('two creates of one name from two instances at once: exactly one wins, also taking over a deleted name (file consensus)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-names-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const pair = await twoInstances(() => openConsensus(`file://${dir}/consensus`))
    t.after(async () => Promise.all(pair.map((h) => h.close())))
    await raceCreates(pair, ['f1', 'f2', 'f3', 'f4', 'f5'])
    const [a] = pair
    for (const name of ['f1', 'f2']) await a.shards.delete((await a.shards.list({ name })).shards[0]!.state.shardId)
    await raceCreates(pair, ['f1', 'f2'])
  })

  describe('on PostgreSQL', () => {
    let pg: PostgresServer
    before(async () => {
      pg = await startPostgres()
    })
    after(() => pg.stop())

    it('two creates of one name from two instances at once: exactly one wins, also taking over a deleted name', async (t) => {
      const url = await pg.schemaUrl()
      const pair = await twoInstances(() => openConsensus(url))
      t.after(async () => Promise.all(pair.map((h) => h.close())))
      await raceCreates(pair, ['p1', 'p2', 'p3', 'p4', 'p5'])
      const [, b] = pair
      for (const name of ['p1', 'p2']) await b.shards.delete((await b.shards.list({ name })).shards[0]!.state.shardId)
      await raceCreates(pair, ['p1', 'p2'])
    })
  })
})
