/**
 * The Blob contract: one suite every adapter must pass (mem, file, S3). `makeBlob` makes a fresh,
 * empty store per test; `open` may be called more than once for independent clients of it.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import type { Blob, BlobMeta, GetOptions } from '../../src/location/blob.js'
import { InvalidUsageError } from '../../src/location/errors.js'

export interface BlobFixture {
  /** A client of this fixture's store; the suite closes what it opens. */
  open(): Promise<Blob>
  /** Removes whatever the store holds; called once, after the test's clients are closed. */
  destroy(): Promise<void>
}

export type MakeBlob = () => Promise<BlobFixture>

export const BAD_KEYS: readonly string[] = [
  '',
  '/abs',
  'a//b',
  'a/',
  '..',
  '.',
  '../escape',
  'a/../../escape',
  'a/./b',
  'a\\b',
  'a\0b',
  'a b',
  'é',
  'a:b',
  'x'.repeat(1025),
  `a/${'x'.repeat(256)}`,
]

export const BAD_PREFIXES: readonly string[] = ['/abs', 'a//b', '../x', 'a/../', './', 'a\\b', 'a\0', 'a b', '%2e%2e/']

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

export async function collect(list: AsyncIterable<BlobMeta>): Promise<BlobMeta[]> {
  const out: BlobMeta[] = []
  for await (const meta of list) out.push(meta)
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
}

const keysOf = async (blob: Blob, prefix: string): Promise<string[]> => (await collect(blob.list(prefix))).map((m) => m.key)

/** `actual` holds exactly `expected`'s bytes (compared as buffers: deepEqual of MiBs is slow). */
export function sameBytes(actual: Uint8Array | null, expected: Uint8Array, what = ''): void {
  assert.ok(actual instanceof Uint8Array, `${what}: expected bytes, got null`)
  assert.equal(actual.byteLength, expected.byteLength, `${what}: length`)
  const want = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(want), `${what}: bytes differ`)
}

/** Malformed `GetOptions.range` values: negative, fractional, not finite, unsafe, mistyped, incomplete. */
export const BAD_RANGES: readonly unknown[] = [
  { offset: -1, length: 1 },
  { offset: 0, length: -1 },
  { offset: 1.5, length: 1 },
  { offset: 0, length: 0.5 },
  { offset: Number.NaN, length: 1 },
  { offset: 0, length: Number.NaN },
  { offset: Number.POSITIVE_INFINITY, length: 1 },
  { offset: 0, length: Number.POSITIVE_INFINITY },
  { offset: 2 ** 53, length: 1 },
  { offset: -0.5, length: 0 },
  { offset: '0', length: 1 },
  { offset: 0 },
  null,
  5,
]

export function blobContract(name: string, makeBlob: MakeBlob): void {
  /** Runs `fn` on a fresh store with one client, closing and destroying both after. */
  const withBlob = (fn: (blob: Blob, fixture: BlobFixture) => Promise<void>) => async () => {
    const fixture = await makeBlob()
    const blob = await fixture.open()
    try {
      await fn(blob, fixture)
    } finally {
      await blob.close()
      await fixture.destroy()
    }
  }

  describe(`Blob contract: ${name}`, () => {
    it(
      'a missing key reads as null, deletes as null, and lists as nothing',
      withBlob(async (blob) => {
        assert.equal(await blob.get('s1/w1/p1'), null)
        assert.equal(await blob.delete('s1/w1/p1'), null)
        assert.deepEqual(await keysOf(blob, ''), [])
        assert.deepEqual(await keysOf(blob, 's1/'), [])
      }),
    )

    it(
      'set then get returns the same bytes; rewriting the same bytes is allowed',
      withBlob(async (blob) => {
        const value = randomBytes(4096)
        const copy = Uint8Array.from(value)
        await blob.set('s1/w1/p1', value)
        sameBytes(await blob.get('s1/w1/p1'), copy)
        await blob.set('s1/w1/p1', copy)
        sameBytes(await blob.get('s1/w1/p1'), copy)
        // Neither the caller's buffer nor a returned one is the store's.
        value.fill(0)
        const got = await blob.get('s1/w1/p1')
        got?.fill(0)
        sameBytes(await blob.get('s1/w1/p1'), copy)
      }),
    )

    it(
      'values of every size round-trip: empty, around a 4 KiB block, and larger than a 4 MiB staging buffer',
      withBlob(async (blob) => {
        const sizes = [0, 1, 511, 4095, 4096, 4097, 65536 + 3, (4 << 20) + 13]
        const values = sizes.map((n) => randomBytes(n))
        await Promise.all(values.map((v, i) => blob.set(`s1/w1/size-${i}`, v)))
        for (const [i, v] of values.entries()) sameBytes(await blob.get(`s1/w1/size-${i}`), v)
        const listed = await collect(blob.list('s1/w1/size-'))
        assert.deepEqual(
          listed.map((m) => m.sizeBytes).sort((a, b) => a - b),
          [...sizes].sort((a, b) => a - b),
        )
        // A view into a larger buffer is stored as the view's bytes only.
        const outer = randomBytes(10_000)
        await blob.set('s1/w1/view', outer.subarray(3, 5003))
        sameBytes(await blob.get('s1/w1/view'), outer.subarray(3, 5003))
      }),
    )

    it(
      'a get with alloc reads into the buffer alloc gives for the size, and returns it',
      withBlob(async (blob) => {
        const value = randomBytes(3 * 65536 + 17)
        await blob.set('s1/w1/into', value)
        const sizes: number[] = []
        const shared = new SharedArrayBuffer(value.byteLength + 64)
        const got = await blob.get('s1/w1/into', { alloc: (n) => (sizes.push(n), new Uint8Array(shared, 8, n)) })
        assert.deepEqual(sizes, [value.byteLength])
        assert.ok(got !== null && got.buffer === shared && got.byteOffset === 8, 'the view alloc gave')
        sameBytes(got, value)
        await blob.set('s1/w1/empty', new Uint8Array(0))
        const empty = await blob.get('s1/w1/empty', { alloc: (n) => new Uint8Array(new SharedArrayBuffer(n)) })
        assert.ok(empty !== null && empty.buffer instanceof SharedArrayBuffer && empty.byteLength === 0)
        assert.equal(await blob.get('s1/w1/none', { alloc: () => assert.fail('alloc for a missing key') }), null)
        await assert.rejects(blob.get('s1/w1/into', { alloc: (n) => new Uint8Array(n - 1) }))
      }),
    )

    it(
      'a get with a range reads just those bytes, cut at the end, with and without alloc',
      withBlob(async (blob) => {
        const size = 200 * 1024
        const value = randomBytes(size)
        await blob.set('r/v', value)
        const MAX = Number.MAX_SAFE_INTEGER
        const cases: ReadonlyArray<readonly [number, number]> = [
          [0, 1], // the first byte
          [0, 4096], // a start
          [1, 1],
          [65536 - 3, 70_001], // a middle, across 64 KiB boundaries
          [size / 2, 1],
          [size - 100, 100], // the end, exactly
          [size - 1, 1],
          [size - 100, 1000], // across the end: cut
          [size - 1, MAX],
          [size, 1], // at the end: empty
          [size + 5, 10], // past it: empty
          [MAX, MAX],
          [0, 0], // zero length: empty
          [12_345, 0],
          [0, size], // the whole value
          [0, size + 1],
          [0, MAX],
        ]
        for (const [offset, length] of cases) {
          const what = `range ${offset}+${length}`
          const expected = value.subarray(Math.min(offset, size), Math.min(size, offset + length))
          sameBytes(await blob.get('r/v', { range: { offset, length } }), expected, what)
          const sizes: number[] = []
          const shared = new SharedArrayBuffer(expected.byteLength + 16)
          const got = await blob.get('r/v', { range: { offset, length }, alloc: (n) => (sizes.push(n), new Uint8Array(shared, 16, n)) })
          assert.deepEqual(sizes, [expected.byteLength], `${what}: alloc called once with the range's size`)
          assert.ok(got !== null && got.buffer === shared && got.byteOffset === 16, `${what}: the view alloc gave`)
          sameBytes(got, expected, `${what} into alloc`)
        }
        // The returned bytes are the caller's.
        ;(await blob.get('r/v', { range: { offset: 10, length: 10 } }))?.fill(0)
        sameBytes(await blob.get('r/v'), value, 'after filling a ranged read')
        // An empty value has only empty ranges.
        await blob.set('r/empty', new Uint8Array(0))
        for (const [offset, length] of [[0, 0], [0, 10], [5, 1]] as const) {
          sameBytes(await blob.get('r/empty', { range: { offset, length } }), new Uint8Array(0), `empty value, range ${offset}+${length}`)
        }
        // A missing key is null whatever the range, and alloc is not called.
        for (const [offset, length] of [[0, 10], [0, 0], [size, 1], [size * 10, 5]] as const) {
          const range = { offset, length }
          assert.equal(await blob.get('r/none', { range, alloc: () => assert.fail('alloc for a missing key') }), null, `missing, ${offset}+${length}`)
        }
        // An alloc of the wrong size fails the read.
        await assert.rejects(blob.get('r/v', { range: { offset: 5, length: 100 }, alloc: (n) => new Uint8Array(n + 1) }))
        await assert.rejects(blob.get('r/v', { range: { offset: 5, length: 100 }, signal: AbortSignal.abort() }), { name: 'AbortError' })
      }),
    )

    it(
      'refuses a malformed range with InvalidUsageError, before any I/O',
      withBlob(async (blob) => {
        await blob.set('r/v', bytes('some bytes'))
        for (const range of BAD_RANGES) {
          const opts = { range: range as GetOptions['range'], alloc: () => assert.fail('alloc for a bad range') }
          // A missing key would read as null after any I/O: rejecting it shows the check comes first.
          await assert.rejects(blob.get('r/none', opts), InvalidUsageError, `missing key, range ${String(JSON.stringify(range))}`)
          await assert.rejects(blob.get('r/v', opts), InvalidUsageError, `range ${String(JSON.stringify(range))}`)
        }
      }),
    )

    it(
      'stores an empty value and binary values byte for byte',
      withBlob(async (blob) => {
        await blob.set('e/empty', new Uint8Array(0))
        sameBytes(await blob.get('e/empty'), new Uint8Array(0))
        const all = Uint8Array.from({ length: 256 }, (_, i) => i)
        await blob.set('e/all-bytes', all)
        sameBytes(await blob.get('e/all-bytes'), all)
        // A view into a larger buffer stores just the view.
        const big = randomBytes(100)
        const view = new Uint8Array(big.buffer, big.byteOffset + 10, 20)
        await blob.set('e/view', view)
        sameBytes(await blob.get('e/view'), Uint8Array.from(big.subarray(10, 30)))
      }),
    )

    it(
      'delete returns the size, then null: it is idempotent',
      withBlob(async (blob) => {
        await blob.set('d/one', bytes('hello'))
        assert.equal(await blob.delete('d/one'), 5)
        assert.equal(await blob.get('d/one'), null)
        assert.equal(await blob.delete('d/one'), null)
        await blob.set('d/zero', new Uint8Array(0))
        assert.equal(await blob.delete('d/zero'), 0)
        assert.deepEqual(await keysOf(blob, ''), [])
        // A deleted key can be written again.
        await blob.set('d/one', bytes('again'))
        sameBytes(await blob.get('d/one'), bytes('again'))
      }),
    )

    it(
      'lists every key under a prefix, recursively, with size and time',
      withBlob(async (blob) => {
        const before = Date.now()
        const keys = ['a/b/1', 'a/b/2', 'a/c/3', 'ab/4', 'b/5', 'a/b/22/6']
        for (const [i, key] of keys.entries()) await blob.set(key, new Uint8Array(i + 1))
        assert.deepEqual(await keysOf(blob, ''), [...keys].sort())
        assert.deepEqual(await keysOf(blob, 'a/'), ['a/b/1', 'a/b/2', 'a/b/22/6', 'a/c/3'])
        assert.deepEqual(await keysOf(blob, 'a'), ['a/b/1', 'a/b/2', 'a/b/22/6', 'a/c/3', 'ab/4'])
        assert.deepEqual(await keysOf(blob, 'a/b/2'), ['a/b/2', 'a/b/22/6'])
        assert.deepEqual(await keysOf(blob, 'a/b/1'), ['a/b/1'])
        assert.deepEqual(await keysOf(blob, 'a/b/'), ['a/b/1', 'a/b/2', 'a/b/22/6'])
        assert.deepEqual(await keysOf(blob, 'zz'), [])
        assert.deepEqual(await keysOf(blob, 'a/zz/'), [])
        const metas = await collect(blob.list(''))
        for (const meta of metas) {
          assert.equal(meta.sizeBytes, keys.indexOf(meta.key) + 1, meta.key)
          assert.ok(meta.lastModified instanceof Date)
          // Stores keep whole seconds at worst; allow for that and for clock skew with a server.
          assert.ok(meta.lastModified.getTime() >= before - 5000, `${meta.key} modified too early`)
          assert.ok(meta.lastModified.getTime() <= Date.now() + 5000, `${meta.key} modified in the future`)
        }
        await blob.delete('a/b/2')
        assert.deepEqual(await keysOf(blob, 'a/b/'), ['a/b/1', 'a/b/22/6'])
      }),
    )

    it(
      'lists many keys completely (across pages)',
      withBlob(async (blob) => {
        const keys = Array.from({ length: 25 }, (_, i) => `many/k${String(i).padStart(3, '0')}`)
        await Promise.all(keys.map((k) => blob.set(k, bytes(k))))
        assert.deepEqual(await keysOf(blob, 'many/'), keys)
      }),
    )

    it(
      'round-trips a 64 MiB value',
      withBlob(async (blob) => {
        const size = 64 * 1024 * 1024
        const value = new Uint8Array(size)
        // Cheap but position-dependent content: a shifted or truncated copy would not compare equal.
        const words = new Uint32Array(value.buffer)
        for (let i = 0; i < words.length; i++) words[i] = Math.imul(i, 2654435761)
        await blob.set('big/p', value)
        sameBytes(await blob.get('big/p'), value)
        assert.deepEqual(
          (await collect(blob.list('big/'))).map((m) => [m.key, m.sizeBytes]),
          [['big/p', size]],
        )
        assert.equal(await blob.delete('big/p'), size)
      }),
    )

    it(
      'refuses malformed keys and prefixes with InvalidUsageError, before any I/O',
      withBlob(async (blob) => {
        for (const key of BAD_KEYS) {
          await assert.rejects(blob.get(key), InvalidUsageError, `get ${JSON.stringify(key)}`)
          await assert.rejects(blob.set(key, bytes('x')), InvalidUsageError, `set ${JSON.stringify(key)}`)
          await assert.rejects(blob.delete(key), InvalidUsageError, `delete ${JSON.stringify(key)}`)
        }
        for (const prefix of BAD_PREFIXES) {
          await assert.rejects(collect(blob.list(prefix)), InvalidUsageError, `list ${JSON.stringify(prefix)}`)
        }
        await assert.rejects(blob.set('ok/key', 'text' as unknown as Uint8Array), InvalidUsageError)
        assert.deepEqual(await keysOf(blob, ''), [])
        // Valid edge cases are accepted.
        for (const key of ['a', 'a.b/..c/c..', '-_', `${'x'.repeat(255)}/y`, 'A-Z_0.9']) {
          await blob.set(key, bytes(key))
          sameBytes(await blob.get(key), bytes(key))
        }
      }),
    )

    it(
      'concurrent writers of distinct keys, and of the same key with the same bytes, all land',
      withBlob(async (blob, fixture) => {
        const other = await fixture.open()
        try {
          const value = randomBytes(1000)
          await Promise.all([
            ...Array.from({ length: 8 }, () => blob.set('same/key', value)),
            ...Array.from({ length: 8 }, () => other.set('same/key', value)),
            ...Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? blob : other).set(`distinct/${i}`, bytes(String(i)))),
          ])
          sameBytes(await other.get('same/key'), value)
          assert.equal((await keysOf(other, 'distinct/')).length, 16)
          assert.deepEqual(await keysOf(blob, 'same/'), ['same/key'])
        } finally {
          await other.close()
        }
      }),
    )

    it(
      'honours an aborted signal',
      withBlob(async (blob) => {
        const signal = AbortSignal.abort()
        await assert.rejects(blob.get('a/b', { signal }), { name: 'AbortError' })
        await assert.rejects(blob.set('a/b', bytes('x'), { signal }), { name: 'AbortError' })
        await assert.rejects(blob.delete('a/b', { signal }), { name: 'AbortError' })
        await assert.rejects(collect(blob.list('', { signal })), { name: 'AbortError' })
        assert.equal(await blob.get('a/b'), null)
      }),
    )

    it(
      'removeInterrupted leaves every key alone (nothing was cut short here)',
      withBlob(async (blob) => {
        await blob.set('s1/w1/p1', bytes('x'))
        await blob.set('s1/w2/p1', bytes('yy'))
        assert.equal(await blob.removeInterrupted('s1/', 0), 0)
        assert.equal(await blob.removeInterrupted('', 0), 0)
        assert.deepEqual((await collect(blob.list('s1/'))).map((m) => m.key).sort(), ['s1/w1/p1', 's1/w2/p1'])
        await assert.rejects(blob.removeInterrupted('s1/', 0, { signal: AbortSignal.abort() }), { name: 'AbortError' })
      }),
    )

    it('close is idempotent and later calls fail', async () => {
      const fixture = await makeBlob()
      const blob = await fixture.open()
      try {
        await blob.set('c/k', bytes('v'))
        await blob.close()
        await blob.close()
        await assert.rejects(blob.get('c/k'), InvalidUsageError)
        await assert.rejects(blob.set('c/k', bytes('v')), InvalidUsageError)
        await assert.rejects(blob.delete('c/k'), InvalidUsageError)
        await assert.rejects(collect(blob.list('')), InvalidUsageError)
      } finally {
        await fixture.destroy()
      }
    })
  })
}
