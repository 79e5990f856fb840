/**
 * Listing shards: pages by time-ordered id and by name, cursors, validation, and the bound on what
 * a page reads, counted (not timed) over 2,000 shards on the file store.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { isShardId, type ShardId } from '../../src/core/ids.js'
import { int64, utf8 } from '../../src/columnar/data-type.js'
import { AppError } from '../../src/errors.js'
import { FileConsensus } from '../../src/location/file-consensus.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { runLimited } from '../../src/shard/batch-writer.js'
import { continueWith } from '../../src/shard/machine.js'
import { NAME_KEY_PREFIX } from '../../src/shard/name-index.js'
import type { ListShardsQuery } from '../../src/shard/shard-listing.js'
import { newShardState } from '../../src/shard/state.js'
import { watched } from '../support/watched-consensus.js'
import { makeHarness, type Harness } from './harness.js'

const U64 = { timestamp: 'u64' as const, keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }

const ids = (page: { shards: readonly { state: { shardId: ShardId } }[] }): ShardId[] => page.shards.map((v) => v.state.shardId)

/** Every page of a listing, following nextCursor (at most `maxPages`). */
async function walk(h: Harness, query: ListShardsQuery, maxPages = 100): Promise<{ pages: ShardId[][]; all: ShardId[] }> {
  const pages: ShardId[][] = []
  let cursor: string | undefined
  for (let i = 0; i < maxPages; i++) {
    const page = await h.shards.list({ ...query, ...(cursor === undefined ? {} : { cursor }) })
    pages.push(ids(page))
    if (page.nextCursor === undefined) return { pages, all: pages.flat() }
    cursor = page.nextCursor
  }
  assert.fail(`more than ${maxPages} pages`)
}

async function badRequest(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof AppError && err.code === 'BAD_REQUEST' && message.test(err.message))
}

describe('listing shards', () => {
  it('pages by id in creation order, skipping deleted shards, resuming at the cursor', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    const created: ShardId[] = []
    for (let i = 0; i < 25; i++) created.push((await h.shards.create({ ...U64, name: i % 2 === 0 ? `s-${i}` : '' })).state.shardId)
    assert.deepEqual([...created].sort(), created, 'ids sort in creation order')

    const full = await walk(h, { limit: 10 })
    assert.deepEqual(full.pages.map((p) => p.length), [10, 10, 5])
    assert.deepEqual(full.all, created)
    assert.deepEqual(ids(await h.shards.list()), created, 'the default page (100) holds them all')

    const gone = [created[0], created[3], created[10], created[11]] as ShardId[]
    for (const id of gone) await h.shards.delete(id)
    const live = created.filter((id) => !gone.includes(id))
    const after = await walk(h, { limit: 10 })
    assert.deepEqual(after.all, live)
    assert.deepEqual(after.pages.map((p) => p.length), [10, 10, 1])

    // A shard created while paging appears on a later page; none appears twice.
    const first = await h.shards.list({ limit: 5 })
    const late = (await h.shards.create(U64)).state.shardId
    const rest = await walk(h, { limit: 5, cursor: first.nextCursor as string })
    assert.deepEqual([...ids(first), ...rest.all], [...live, late])
  })

  it('skips at most 2 × limit deleted shards per page: a page may be short and still have a cursor', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    const created: ShardId[] = []
    for (let i = 0; i < 8; i++) created.push((await h.shards.create(U64)).state.shardId)
    for (const id of created.slice(0, 5)) await h.shards.delete(id)
    const first = await h.shards.list({ limit: 2 })
    assert.deepEqual(ids(first), [], 'four deleted shards examined, none live')
    assert.ok(first.nextCursor !== undefined)
    const { all } = await walk(h, { limit: 2, cursor: first.nextCursor })
    assert.deepEqual(all, created.slice(5))
  })

  it('searches names by prefix in name order, and looks one name up exactly', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    const byName = new Map<string, ShardId>()
    for (const name of ['beta', 'alpha-3', 'alpha-1', 'alphabet', 'gamma', 'alpha-2', 'Alpha-0']) byName.set(name, (await h.shards.create({ ...U64, name })).state.shardId)
    await h.shards.create(U64)
    const of = (...names: string[]) => names.map((n) => byName.get(n))

    assert.deepEqual((await walk(h, { namePrefix: 'alpha' })).all, of('alpha-1', 'alpha-2', 'alpha-3', 'alphabet'))
    const paged = await walk(h, { namePrefix: 'alpha-', limit: 2 })
    assert.deepEqual(paged.pages, [of('alpha-1', 'alpha-2'), of('alpha-3')])
    assert.deepEqual((await walk(h, { namePrefix: '' })).all, of('Alpha-0', 'alpha-1', 'alpha-2', 'alpha-3', 'alphabet', 'beta', 'gamma'), 'every named shard')
    assert.deepEqual((await walk(h, { namePrefix: 'zeta' })).all, [])

    await h.shards.delete(byName.get('alpha-2') as ShardId)
    assert.deepEqual((await walk(h, { namePrefix: 'alpha-', limit: 2 })).all, of('alpha-1', 'alpha-3'))
    assert.deepEqual(ids(await h.shards.list({ name: 'alpha-3' })), of('alpha-3'))
    assert.deepEqual(ids(await h.shards.list({ name: 'alpha-2' })), [], 'deleted')
    assert.deepEqual(ids(await h.shards.list({ name: 'alpha' })), [], 'exact, not a prefix')
    assert.equal((await h.shards.list({ name: 'beta' })).nextCursor, undefined)
  })

  it('lists shards made before time-ordered ids, sorted by id among the rest', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    const fresh = (await h.shards.create(U64)).state.shardId
    // A shard as an older version made it: a random (version 4) id.
    const legacy = `s${randomUUID()}` as ShardId
    const state = newShardState(legacy, 'old', 'u64', utf8, int64, '2025-01-01T00:00:00.000Z')
    await h.machine.apply(legacy, 'create', () => continueWith(state, true))
    assert.deepEqual(ids(await h.shards.list()), [fresh, legacy].sort())
  })

  it('refuses bad limits, cursors and filter combinations, naming the query field', async (t) => {
    const h = await makeHarness()
    t.after(() => h.close())
    for (let i = 0; i < 3; i++) await h.shards.create({ ...U64, name: `n${i}` })
    for (const limit of [0, 1001, 1.5]) await badRequest(h.shards.list({ limit }), /^query\.limit: must be an integer from 1 to 1000$/)
    const byId = (await h.shards.list({ limit: 1 })).nextCursor as string
    const byName = (await h.shards.list({ limit: 1, namePrefix: 'n' })).nextCursor as string
    assert.ok(byId !== undefined && byName !== undefined)
    await badRequest(h.shards.list({ cursor: byName }), /^query\.cursor: not a cursor of this listing/)
    await badRequest(h.shards.list({ cursor: byId, namePrefix: 'n' }), /^query\.cursor: not a cursor of this listing/)
    for (const cursor of ['', 'not base64!', Buffer.from('x:y').toString('base64url'), `${byId}=`]) {
      await badRequest(h.shards.list({ cursor }), /^query\.cursor: not a cursor of this listing/)
    }
    await badRequest(h.shards.list({ name: 'n1', namePrefix: 'n' }), /^query\.name: give name \(exact\) or namePrefix \(search\), not both$/)
    await badRequest(h.shards.list({ name: 'n1', cursor: byId }), /^query\.cursor: a lookup by name has one page/)
    await badRequest(h.shards.list({ name: '' }), /^query\.name: must not be empty/)
    await badRequest(h.shards.list({ name: 'x'.repeat(101) }), /^query\.name: must be at most 100 bytes/)
    await badRequest(h.shards.list({ namePrefix: 'x'.repeat(101) }), /^query\.namePrefix: must be at most 100 bytes/)
  })

  it('reads only the heads a page examines, over 2,000 shards on the file store', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-listing-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    // Keys whose versions the file store read (for a head, or to tell whether a listed key has one).
    let keyReads = 0
    const consensus = watched(new FileConsensus(join(dir, 'consensus'), { beforeRead: async (_key, step) => void (step === 'floor' && keyReads++) }))
    const h = await makeHarness({ consensus })
    t.after(() => h.close())
    const N = 2000
    const name = (i: number): string => `shard-${String(i).padStart(4, '0')}`
    // Every fourth shard is named; ids are made in call order, so they sort in index order.
    const created = await runLimited(
      Array.from({ length: N }, (_, i) => async () => (await h.shards.create({ ...U64, name: i % 4 === 0 ? name(i) : '' })).state.shardId),
      16,
    )
    const deleted = new Set<ShardId>()
    for (let i = 0; i < 200; i += 7) {
      await h.shards.delete(created[i] as ShardId)
      deleted.add(created[i] as ShardId)
    }
    const shardHeads = (): number => consensus.heads(isShardId)
    const claimHeads = (): number => consensus.heads((k) => k.startsWith(NAME_KEY_PREFIX))

    // By id: each page reads at most 2 × limit shard heads and no claim; the walk reads each shard once.
    const limit = 250
    consensus.resetCounts()
    let cursor: string | undefined
    const seen: ShardId[] = []
    for (let page = 0; page < 20; page++) {
      const before = shardHeads()
      const readBefore = keyReads
      const p = await h.shards.list({ limit, ...(cursor === undefined ? {} : { cursor }) })
      assert.ok(shardHeads() - before <= 2 * limit, `page ${page} read ${shardHeads() - before} heads`)
      // NB: not every key of the store to list them (2,500 here: 2,000 shards and 500 name claims).
      assert.ok(keyReads - readBefore <= 2 * limit, `page ${page} read the versions of ${keyReads - readBefore} keys`)
      if (p.nextCursor !== undefined) assert.equal(p.shards.length, limit, `page ${page} is full`)
      seen.push(...ids(p))
      cursor = p.nextCursor
      if (cursor === undefined) break
    }
    assert.equal(cursor, undefined)
    assert.deepEqual(seen, created.filter((id) => !deleted.has(id)))
    assert.equal(shardHeads(), N, 'every shard head was read exactly once over the whole walk')
    assert.equal(claimHeads(), 0)

    // By name prefix: a claim and a shard per name examined, never more than the page needs.
    consensus.resetCounts()
    const readBefore = keyReads
    const first = await h.shards.list({ namePrefix: 'shard-0', limit: 50 })
    assert.equal(first.shards.length, 50)
    assert.ok(keyReads - readBefore <= 4 * 50, `a search read the versions of ${keyReads - readBefore} keys`)
    assert.ok(claimHeads() <= 100 && shardHeads() === claimHeads(), `${claimHeads()} claims, ${shardHeads()} shards read`)
    const prefixed = await walk(h, { namePrefix: 'shard-0', limit: 50 })
    const expected = created.filter((id, i) => i % 4 === 0 && i < 1000 && !deleted.has(id))
    assert.deepEqual(prefixed.all, expected)

    // By name: one claim, one shard.
    consensus.resetCounts()
    assert.deepEqual(ids(await h.shards.list({ name: name(1996) })), [created[1996]])
    assert.deepEqual({ claims: claimHeads(), shards: shardHeads() }, { claims: 1, shards: 1 })
  })

  it('pages the same on mem consensus as on the file store', async (t) => {
    // The bound above is the listing's, not the store's: the same walk on mem reads the same heads.
    const consensus = watched(new MemConsensus())
    const h = await makeHarness({ consensus })
    t.after(() => h.close())
    const created = await runLimited(
      Array.from({ length: 300 }, () => async () => (await h.shards.create(U64)).state.shardId),
      8,
    )
    consensus.resetCounts()
    const { pages, all } = await walk(h, { limit: 100 })
    assert.deepEqual(pages.map((p) => p.length), [100, 100, 100])
    assert.deepEqual(all, created)
    assert.equal(consensus.heads(isShardId), 300)
  })

  it('a page asks consensus for the keys it may examine, not for every key (1,000 shards, half named)', async (t) => {
    const consensus = watched(new MemConsensus())
    const h = await makeHarness({ consensus })
    t.after(() => h.close())
    const created = await runLimited(
      Array.from({ length: 1000 }, (_, i) => async () => (await h.shards.create({ ...U64, name: i % 2 === 0 ? `n${i}` : '' })).state.shardId),
      8,
    )
    const limit = 50
    let cursor: string | undefined
    const seen: ShardId[] = []
    for (let page = 0; page < 30; page++) {
      consensus.resetCounts()
      const p = await h.shards.list({ limit, ...(cursor === undefined ? {} : { cursor }) })
      // NB: 1,500 keys in all (1,000 shards, 500 name claims) and more with every shard.
      assert.ok(consensus.listed() <= 2 * limit + 1, `page ${page} listed ${consensus.listed()} keys`)
      seen.push(...ids(p))
      cursor = p.nextCursor
      if (cursor === undefined) break
    }
    assert.equal(cursor, undefined)
    assert.deepEqual(seen, created)
    // A page that examined every id it got still has a cursor when its range came back full.
    const last = await h.shards.list({ limit: 500, cursor: (await h.shards.list({ limit: 250 })).nextCursor as string })
    assert.deepEqual(ids(last), created.slice(250, 750))
    assert.ok(last.nextCursor !== undefined)
  })
})
