/**
 * The Consensus contract: one suite every adapter must pass (mem, file, Postgres). `makeConsensus`
 * makes a fresh, empty store per test; `open` may be called many times for independent clients of
 * that store (separate pools, separate instances over one directory) to race each other.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Consensus, SeqNo, VersionedData } from '../../src/location/consensus.js'
import { InvalidUsageError } from '../../src/location/errors.js'

export interface ConsensusFixture {
  /** A client of this fixture's store; the suite closes what it opens. */
  open(): Promise<Consensus>
  /** Removes whatever the store holds; called once, after the test's clients are closed. */
  destroy(): Promise<void>
}

export type MakeConsensus = () => Promise<ConsensusFixture>

const enc = new TextEncoder()
const dec = new TextDecoder()
export const v = (seqno: SeqNo, text = `v${seqno}`): VersionedData => ({ seqno, data: enc.encode(text) })
export const text = (data: VersionedData | null | undefined): string | null => (data == null ? null : `${data.seqno}:${dec.decode(data.data)}`)

/** Writes versions 0..n-1 of `key` (data `v<seqno>`). */
export async function fill(c: Consensus, key: string, n: number): Promise<void> {
  for (let s = 0; s < n; s++) assert.deepEqual(await c.compareAndSet(key, s === 0 ? null : s - 1, v(s)), { kind: 'committed' })
}

export function consensusContract(name: string, makeConsensus: MakeConsensus): void {
  const withConsensus = (fn: (c: Consensus, fixture: ConsensusFixture) => Promise<void>) => async () => {
    const fixture = await makeConsensus()
    const c = await fixture.open()
    try {
      await fn(c, fixture)
    } finally {
      await c.close()
      await fixture.destroy()
    }
  }

  describe(`Consensus contract: ${name}`, () => {
    it(
      'a missing key has no head, scans empty, is not listed and cannot be truncated',
      withConsensus(async (c) => {
        assert.equal(await c.head('k'), null)
        assert.deepEqual(await c.scan('k', 0, 10), [])
        assert.deepEqual(await c.list(), [])
        await assert.rejects(c.truncate('k', 0), InvalidUsageError)
      }),
    )

    it(
      'compareAndSet commits iff the head is the expected seqno, else returns the current head',
      withConsensus(async (c) => {
        assert.deepEqual(await c.compareAndSet('k', null, v(0, 'first')), { kind: 'committed' })
        assert.equal(text(await c.head('k')), '0:first')
        const lost = await c.compareAndSet('k', null, v(0, 'second'))
        assert.equal(lost.kind, 'mismatch')
        assert.equal(lost.kind === 'mismatch' ? text(lost.current) : null, '0:first')
        assert.deepEqual(await c.compareAndSet('k', 0, v(1)), { kind: 'committed' })
        const stale = await c.compareAndSet('k', 0, v(1, 'stale'))
        assert.equal(stale.kind === 'mismatch' ? text(stale.current) : stale.kind, '1:v1')
        const ahead = await c.compareAndSet('k', 5, v(6))
        assert.equal(ahead.kind === 'mismatch' ? text(ahead.current) : ahead.kind, '1:v1')
        assert.equal(text(await c.head('k')), '1:v1')
        assert.deepEqual((await c.scan('k', 0, 10)).map(text), ['0:first', '1:v1'])
      }),
    )

    it(
      'a mismatch on a key with no versions reports null',
      withConsensus(async (c) => {
        assert.deepEqual(await c.compareAndSet('k', 3, v(4)), { kind: 'mismatch', current: null })
        assert.equal(await c.head('k'), null)
        assert.deepEqual(await c.list(), [])
      }),
    )

    it(
      'stores data byte for byte: empty, every byte value, 1 MiB',
      withConsensus(async (c) => {
        const empty = { seqno: 0, data: new Uint8Array(0) }
        const all = { seqno: 1, data: Uint8Array.from({ length: 256 }, (_, i) => i) }
        const big = { seqno: 2, data: Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7919) & 255) }
        await c.compareAndSet('k', null, empty)
        await c.compareAndSet('k', 0, all)
        await c.compareAndSet('k', 1, big)
        const got = await c.scan('k', 0, 3)
        assert.deepEqual(
          got.map((x) => x.seqno),
          [0, 1, 2],
        )
        assert.equal(got[0]?.data.byteLength, 0)
        assert.ok(Buffer.from(got[1]?.data ?? []).equals(Buffer.from(all.data)))
        assert.ok(Buffer.from(got[2]?.data ?? []).equals(Buffer.from(big.data)))
        // The returned bytes are the caller's to keep.
        got[1]?.data.fill(0)
        assert.equal((await c.scan('k', 1, 1))[0]?.data[255], 255)
      }),
    )

    it(
      'refuses bad arguments with InvalidUsageError and writes nothing',
      withConsensus(async (c) => {
        await fill(c, 'k', 2)
        const bad: Array<[SeqNo | null, VersionedData]> = [
          [null, v(1)],
          [1, v(1)],
          [1, v(3)],
          [1, v(0)],
          [-1, v(0)],
          [0.5, v(1.5)],
          [Number.NaN, v(0)],
        ]
        for (const [expected, data] of bad) {
          await assert.rejects(c.compareAndSet('k', expected, data), InvalidUsageError, `cas(${String(expected)}, ${data.seqno})`)
        }
        await assert.rejects(c.compareAndSet('k', 1, { seqno: 2, data: 'text' as unknown as Uint8Array }), InvalidUsageError)
        for (const key of ['', 'a\0b', 'x'.repeat(128), '\ud800']) {
          await assert.rejects(c.head(key), InvalidUsageError, `head ${JSON.stringify(key)}`)
          await assert.rejects(c.compareAndSet(key, null, v(0)), InvalidUsageError)
        }
        for (const limit of [0, -1, 1.5, Number.NaN]) await assert.rejects(c.scan('k', 0, limit), InvalidUsageError, `limit ${limit}`)
        for (const from of [-1, 0.5]) await assert.rejects(c.scan('k', from, 1), InvalidUsageError, `from ${from}`)
        await assert.rejects(c.truncate('k', 3), InvalidUsageError)
        await assert.rejects(c.truncate('k', -1), InvalidUsageError)
        await assert.rejects(c.truncate('k', 0.5), InvalidUsageError)
        assert.equal(text(await c.head('k')), '1:v1')
        assert.deepEqual((await c.scan('k', 0, 10)).map(text), ['0:v0', '1:v1'])
        assert.deepEqual(await c.list(), ['k'])
      }),
    )

    it(
      'scan returns up to limit versions from a seqno, ascending',
      withConsensus(async (c) => {
        await fill(c, 'k', 10)
        assert.deepEqual(
          (await c.scan('k', 0, 100)).map((x) => x.seqno),
          [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        )
        assert.deepEqual((await c.scan('k', 3, 2)).map(text), ['3:v3', '4:v4'])
        assert.deepEqual(
          (await c.scan('k', 9, 5)).map((x) => x.seqno),
          [9],
        )
        assert.deepEqual(await c.scan('k', 10, 5), [])
        assert.deepEqual(await c.scan('other', 0, 5), [])
      }),
    )

    it(
      'truncate deletes versions below a seqno, never the head',
      withConsensus(async (c) => {
        await fill(c, 'k', 10)
        assert.equal(await c.truncate('k', 4), 4)
        assert.deepEqual(
          (await c.scan('k', 0, 100)).map((x) => x.seqno),
          [4, 5, 6, 7, 8, 9],
        )
        assert.equal(await c.truncate('k', 4), 0)
        assert.equal(await c.truncate('k', 2), 0)
        assert.deepEqual(
          (await c.scan('k', 0, 100)).map((x) => x.seqno),
          [4, 5, 6, 7, 8, 9],
        )
        await assert.rejects(c.truncate('k', 10), InvalidUsageError)
        assert.equal(await c.truncate('k', 9), 5)
        assert.deepEqual((await c.scan('k', 0, 100)).map(text), ['9:v9'])
        assert.equal(text(await c.head('k')), '9:v9')
        assert.deepEqual(await c.compareAndSet('k', 9, v(10)), { kind: 'committed' })
        assert.deepEqual(await c.list(), ['k'])
      }),
    )

    it(
      'a stale compareAndSet after a truncation is a mismatch and does not resurrect the seqno',
      withConsensus(async (c, fixture) => {
        const other = await fixture.open()
        try {
          await fill(c, 'k', 6)
          assert.equal(await other.truncate('k', 4), 4)
          for (const [expected, seqno] of [
            [2, 3],
            [0, 1],
            [null, 0],
          ] as const) {
            const res = await c.compareAndSet('k', expected, v(seqno, 'stale'))
            assert.equal(res.kind === 'mismatch' ? text(res.current) : res.kind, '5:v5', `cas(${expected}, ${seqno})`)
          }
          assert.deepEqual((await other.scan('k', 0, 100)).map(text), ['4:v4', '5:v5'])
          assert.equal(text(await other.head('k')), '5:v5')
        } finally {
          await other.close()
        }
      }),
    )

    it(
      'keys are independent, listed, and may hold any well-formed text',
      withConsensus(async (c) => {
        const keys = ['a', 'b/c', '../../etc/passwd', 'ünï/cödé', ' spaced ', 'x'.repeat(127), '🙂'.repeat(31)]
        for (const [i, key] of keys.entries()) await fill(c, key, i + 1)
        assert.deepEqual([...(await c.list())].sort(), [...keys].sort())
        // Not exact: every key with a version still, maybe more (none here: every write completed).
        assert.deepEqual([...(await c.list({ exact: false }))].sort(), [...keys].sort())
        for (const [i, key] of keys.entries()) assert.equal((await c.head(key))?.seqno, i, key)
        await c.truncate(keys[3] ?? '', 2)
        assert.equal((await c.scan(keys[2] ?? '', 0, 10)).length, 3)
      }),
    )

    it(
      'lists a range of keys: the first `limit` after `after`, in order, exact or not',
      withConsensus(async (c) => {
        // Shard-id-like keys, which every store orders alike, and one that sorts before them all.
        const ids = ['s0000000a-0000-7000-8000-000000000001', 's0000000a-0000-7000-8000-000000000002', 's0000000b-0000-7000-8000-000000000000', 's1000000a-0000-7000-8000-000000000000', 'sf000000a-0000-7000-8000-000000000000']
        for (const key of ['compactd/names/x', ...ids].reverse()) await fill(c, key, 1)
        for (const exact of [true, false]) {
          assert.deepEqual(await c.list({ exact, limit: 2 }), ['compactd/names/x', ids[0]])
          assert.deepEqual(await c.list({ exact, after: 's', limit: 3 }), ids.slice(0, 3))
          assert.deepEqual(await c.list({ exact, after: ids[2], limit: 10 }), ids.slice(3))
          assert.deepEqual(await c.list({ exact, after: ids[1] }), ids.slice(2))
          assert.deepEqual(await c.list({ exact, after: ids[4], limit: 1 }), [])
        }
        await assert.rejects(c.list({ limit: 0 }), InvalidUsageError)
      }),
    )

    it(
      'many clients racing: exactly one commit per seqno, and the log is the winners',
      withConsensus(async (c, fixture) => {
        const clients = [c, ...(await Promise.all(Array.from({ length: 7 }, () => fixture.open())))]
        try {
          const winners: string[] = []
          for (let round = 0; round < 20; round++) {
            const expected = round === 0 ? null : round - 1
            const results = await Promise.all(clients.map((client, i) => client.compareAndSet('race', expected, v(round, `client${i}`))))
            const won = results.flatMap((r, i) => (r.kind === 'committed' ? [`${round}:client${i}`] : []))
            assert.equal(won.length, 1, `round ${round}: ${won.length} winners`)
            winners.push(won[0] ?? '')
            for (const r of results) if (r.kind === 'mismatch') assert.equal(text(r.current), won[0], `round ${round}: a loser saw another head`)
          }
          assert.deepEqual((await clients[3]?.scan('race', 0, 100))?.map(text), winners)
        } finally {
          await Promise.all(clients.slice(1).map((client) => client.close()))
        }
      }),
    )

    it(
      'writers racing a truncater: unique winners, and what is kept is exactly theirs',
      withConsensus(async (c, fixture) => {
        const clients = [c, ...(await Promise.all(Array.from({ length: 3 }, () => fixture.open())))]
        const truncater = await fixture.open()
        const target = 40
        try {
          const wins = new Map<SeqNo, string>()
          const writer = async (client: Consensus, id: number): Promise<void> => {
            for (let attempt = 0; attempt < 1000; attempt++) {
              const head = await client.head('k')
              const next = head === null ? 0 : head.seqno + 1
              if (next >= target) return
              const res = await client.compareAndSet('k', head?.seqno ?? null, v(next, `w${id}`))
              if (res.kind === 'committed') {
                assert.equal(wins.get(next), undefined, `seqno ${next} won twice`)
                wins.set(next, `${next}:w${id}`)
              }
            }
            assert.fail(`writer ${id} did not finish`)
          }
          let truncations = 0
          const truncate = async (): Promise<void> => {
            for (let i = 0; i < 1000 && (await truncater.head('k'))?.seqno !== target - 1; i++) {
              const head = await truncater.head('k')
              if (head !== null && head.seqno >= 2) {
                await truncater.truncate('k', head.seqno - 1)
                truncations++
              }
            }
          }
          await Promise.all([...clients.map(writer), truncate()])
          assert.equal(wins.size, target)
          assert.ok(truncations > 0)
          const kept = await truncater.scan('k', 0, 1000)
          assert.ok(kept.length >= 1)
          assert.deepEqual(
            kept.map(text),
            kept.map((x) => wins.get(x.seqno)),
          )
          assert.deepEqual(
            kept.map((x) => x.seqno),
            kept.map((_, i) => target - kept.length + i),
            'kept versions are a contiguous suffix',
          )
        } finally {
          await Promise.all([...clients.slice(1), truncater].map((client) => client.close()))
        }
      }),
    )

    it(
      'honours an aborted signal',
      withConsensus(async (c) => {
        const signal = AbortSignal.abort()
        await assert.rejects(c.head('k', { signal }), { name: 'AbortError' })
        await assert.rejects(c.compareAndSet('k', null, v(0), { signal }), { name: 'AbortError' })
        await assert.rejects(c.scan('k', 0, 1, { signal }), { name: 'AbortError' })
        await assert.rejects(c.list({ signal }), { name: 'AbortError' })
        assert.equal(await c.head('k'), null)
      }),
    )

    it('close is idempotent and later calls fail', async () => {
      const fixture = await makeConsensus()
      const c = await fixture.open()
      try {
        await fill(c, 'k', 1)
        await c.close()
        await c.close()
        await assert.rejects(c.head('k'), InvalidUsageError)
        await assert.rejects(c.compareAndSet('k', 0, v(1)), InvalidUsageError)
        await assert.rejects(c.scan('k', 0, 1), InvalidUsageError)
        await assert.rejects(c.truncate('k', 0), InvalidUsageError)
        await assert.rejects(c.list(), InvalidUsageError)
      } finally {
        await fixture.destroy()
      }
    })
  })
}
