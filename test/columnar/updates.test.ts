import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { binary, field, float64, int64, struct, uint64, utf8 } from '../../src/columnar/data-type.js'
import {
  diffWords,
  emptyUpdates,
  I64Sum,
  sliceUpdates,
  sumDiffs,
  timeOrderWords,
  updatesByteLength,
  updatesFromJson,
  updatesToJson,
  UpdatesBuilder,
  withTimes,
  type Updates,
  type UpdatesShape,
} from '../../src/columnar/updates.js'
import { INT64_MAX, INT64_MIN } from '../../src/columnar/values.js'
import { announceSeed, arbRows, arbShape, seed, type Row, type Shape } from './arbitraries.js'

announceSeed('updates.test.ts')

function build(shape: Shape, rows: readonly Row[]): Updates {
  const b = new UpdatesBuilder(shape)
  for (const r of rows) b.append(r.key, r.val, r.time, r.diff)
  return b.finish()
}

const json = (u: Updates): string => JSON.stringify(updatesToJson(u))

/**
 * `rows` (row `r` of source `s`, past its base) appended by `appendGathered` in two calls cut at
 * `cut`, each row's (time0, time1, diffLo, diffHi) from `cols`; the result as JSON.
 */
function gatheredInTwo<P extends { readonly s: number; readonly r: number }>(
  shape: UpdatesShape,
  sources: readonly Updates[],
  bases: readonly number[],
  rows: readonly P[],
  cut: number,
  cols: (p: P) => readonly [number, number, number, number],
): string {
  const many = new UpdatesBuilder(shape, { capacity: 1 })
  const copiers = sources.map((u) => many.bind(u))
  const gather = (part: readonly P[]): void =>
    many.appendGathered(
      copiers.map((c) => c.keys),
      copiers.map((c) => c.vals),
      bases,
      {
        rows: part.length,
        src: Uint32Array.from(part, (p) => p.s),
        row: Uint32Array.from(part, (p) => p.r),
        time0: Uint32Array.from(part, (p) => cols(p)[0]),
        time1: Uint32Array.from(part, (p) => cols(p)[1]),
        diffLo: Uint32Array.from(part, (p) => cols(p)[2]),
        diffHi: Int32Array.from(part, (p) => cols(p)[3]),
      },
    )
  const at = Math.min(cut, rows.length)
  gather(rows.slice(0, at))
  gather(rows.slice(at))
  return json(many.finish())
}

const priced: UpdatesShape = { keyType: utf8, valType: struct([field('price', int64), field('note', utf8, true)]), timeKind: 'u64' }

describe('Updates from and to JSON', () => {
  it('round-trips rows of both timestamp kinds, with u64 times and diffs beyond 2^53 as strings', () => {
    const rows = [
      { key: 'a', val: { price: '9223372036854775807', note: null }, time: '18446744073709551615', diff: '-9223372036854775808' },
      { key: 'b', val: { price: -3, note: 'x' }, time: 5, diff: 2 },
    ]
    const u = updatesFromJson(rows, priced)
    assert.ok(u.ok)
    assert.equal(u.value.length, 2)
    assert.equal(JSON.stringify(updatesToJson(u.value)), JSON.stringify(rows))
    const p = updatesFromJson([{ key: 'k', val: 1.5, time: [4294967295, 0], diff: 1 }], { keyType: utf8, valType: float64, timeKind: 'product' })
    assert.ok(p.ok)
    assert.deepEqual(JSON.parse(json(p.value)), [{ key: 'k', val: 1.5, time: [4294967295, 0], diff: 1 }])
  })

  it('names the first bad row and field', () => {
    const error = (rows: unknown, shape: UpdatesShape = priced): string => {
      const r = updatesFromJson(rows, shape)
      assert.equal(r.ok, false)
      return r.ok ? '' : r.error
    }
    const good = { key: 'a', val: { price: 1 }, time: 1, diff: 1 }
    assert.equal(error({}), 'updates: must be an array of {key, val, time, diff}')
    assert.equal(error([good, 5]), 'updates[1]: must be an object {key, val, time, diff}')
    assert.equal(error([good, { ...good, val: { price: 'x' } }]), 'updates[1].val.price: expected int64 (an integer or a decimal string)')
    assert.equal(error([{ ...good, key: 3 }]), 'updates[0].key: expected utf8 (a string)')
    assert.equal(error([{ val: good.val, time: 1, diff: 1 }]), 'updates[0].key: missing')
    assert.equal(error([{ ...good, time: -1 }]), 'updates[0].time: a u64 timestamp must be a non-negative integer (use a decimal string above 2^53-1)')
    assert.equal(error([{ ...good, time: [1, 2] }]), 'updates[0].time: a u64 timestamp must be a number or a decimal string')
    assert.equal(error([{ ...good, time: 1 }], { ...priced, timeKind: 'product' }), 'updates[0].time: a product timestamp must be a pair [a, b]')
    assert.equal(error([{ ...good, diff: 1.5 }]), 'updates[0].diff: must be an integer (use a decimal string beyond 2^53)')
    assert.equal(error([{ key: 'a', val: good.val, time: 1 }]), 'updates[0].diff: missing')
    assert.equal(error([{ ...good, extra: 1 }]), 'updates[0].extra: unknown property')
  })

  it('accepts a missing unit val', () => {
    const r = updatesFromJson([{ key: 'a', time: 0, diff: 1 }], { keyType: utf8, valType: { type: 'unit' }, timeKind: 'u64' })
    assert.ok(r.ok)
    assert.deepEqual(JSON.parse(json(r.value)), [{ key: 'a', val: null, time: 0, diff: 1 }])
  })
})

describe('I64Sum and diffs', () => {
  it('adds with wrapping i64 semantics', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), { maxLength: 20 }), (ds) => {
        const acc = new I64Sum()
        for (const d of ds) acc.add(Number(d & 0xffffffffn), Number((d >> 32n) & 0xffffffffn))
        const want = ds.reduce((s, d) => BigInt.asIntN(64, s + d), 0n)
        assert.equal(acc.toBigInt(), want)
        assert.equal(acc.isZero(), want === 0n)
      }),
      { seed, numRuns: 300 },
    )
    const acc = new I64Sum()
    acc.reset(0xffffffff, 0x7fffffff)
    acc.add(1, 0)
    assert.equal(acc.toBigInt(), INT64_MIN)
  })

  it('sumDiffs wraps and diffWords views the diffs as (lo, hi)', () => {
    const b = new UpdatesBuilder(priced)
    b.append('a', { price: 1n, note: null }, 0n, INT64_MAX)
    b.append('a', { price: 1n, note: null }, 0n, 2n)
    b.append('a', { price: 1n, note: null }, 0n, -1n)
    const u = b.finish()
    assert.equal(sumDiffs(u), INT64_MIN)
    assert.deepEqual([...diffWords(u)], [0xffffffff, 0x7fffffff, 2, 0, 0xffffffff, 0xffffffff])
  })

  it('sumDiffs wraps exactly across its blocks of 2^20 rows, with extreme diffs', () => {
    const n = (1 << 21) + 7
    const diffs = new BigInt64Array(n)
    let want = 0n
    for (let i = 0; i < n; i++) {
      const d = i % 3 === 0 ? INT64_MAX : i % 3 === 1 ? INT64_MIN : BigInt(i) * 0x1_0000_0001n
      diffs[i] = d
      want = BigInt.asIntN(64, want + d)
    }
    const u: Updates = { ...new UpdatesBuilder({ keyType: utf8, valType: utf8, timeKind: 'u64' }).finish(), length: n, diffs }
    assert.equal(sumDiffs(u), want)
  })
})

describe('UpdatesBuilder', () => {
  it('copies rows of a source in any order, with new times and diffs, and whole ranges', () => {
    fc.assert(
      fc.property(
        arbShape(2).chain((s) => fc.tuple(fc.constant(s), arbRows(s, 25))),
        fc.infiniteStream(fc.nat()),
        ([shape, rows], picks) => {
          const u = build(shape, rows)
          const all = updatesToJson(u)
          const it = picks[Symbol.iterator]()
          const order = rows.map((_, i) => i).sort((a, b) => ((it.next().value as number) % 3) - 1 || a - b)
          const b = new UpdatesBuilder(shape, { capacity: 2 })
          const src = b.bind(u)
          const tw = timeOrderWords(u)
          for (const i of order) b.appendFrom(src, i, tw.major[i]!, tw.minor[i]!, 7, 0)
          const start = rows.length === 0 ? 0 : (it.next().value as number) % rows.length
          b.appendRange(src, start, rows.length)
          const out = updatesToJson(b.finish())
          const want = [...order.map((i) => ({ ...all[i]!, diff: 7 })), ...all.slice(start)]
          assert.equal(JSON.stringify(out), JSON.stringify(want))
        },
      ),
      { seed, numRuns: 200 },
    )
  })

  it('appendGathered copies the same rows as appendFrom, from several sources at once', () => {
    fc.assert(
      fc.property(
        arbShape(2).chain((s) => fc.tuple(fc.constant(s), fc.array(arbRows(s, 12), { minLength: 1, maxLength: 4 }))),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat({ max: 0xffff_ffff }), fc.nat({ max: 0xffff_ffff }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })), { maxLength: 40 }),
        fc.nat({ max: 40 }),
        ([shape, sourceRows], picks, cut) => {
          const sources = sourceRows.map((rows) => build(shape, rows))
          // Each source is handed over from its row `base` on, as the merge hands a key range's rows.
          const bases = sources.map((u, i) => (u.length === 0 ? 0 : i % u.length))
          const rows = picks
            .map(([s, r, t, lo, hi]) => ({ s: s % sources.length, r, t, lo, hi }))
            .filter((p) => (sources[p.s] as Updates).length - (bases[p.s] as number) > 0)
            .map((p) => ({ ...p, r: p.r % ((sources[p.s] as Updates).length - (bases[p.s] as number)) }))
          const major = (t: number): number => (shape.timeKind === 'u64' ? t >>> 16 : t)
          const minor = (t: number): number => (shape.timeKind === 'u64' ? t : t >>> 1)

          const one = new UpdatesBuilder(shape)
          const bound = sources.map((u) => one.bind(u))
          for (const p of rows) one.appendFrom(bound[p.s]!, p.r + bases[p.s]!, major(p.t), minor(p.t), p.lo, p.hi >>> 0)
          const want = json(one.finish())

          assert.equal(gatheredInTwo(shape, sources, bases, rows, cut, (p) => [major(p.t), minor(p.t), p.lo, p.hi]), want)
        },
      ),
      { seed, numRuns: 300 },
    )
  })

  it('appendGathered copies stretches of consecutive rows of one source (bulk copies) as appendFrom does', () => {
    fc.assert(
      fc.property(
        arbShape(2).chain((s) => fc.tuple(fc.constant(s), fc.array(arbRows(s, 40), { minLength: 1, maxLength: 3 }))),
        // Stretches: (source, first row, length), lengths around the bulk copy's threshold and past it.
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 30 })), { maxLength: 8 }),
        fc.nat({ max: 120 }),
        ([shape, sourceRows], stretches, cut) => {
          const sources = sourceRows.map((rows) => build(shape, rows))
          const bases = sources.map((u, i) => (u.length === 0 ? 0 : i % u.length))
          const rows = stretches.flatMap(([s0, r0, len]) => {
            const s = s0 % sources.length
            const avail = sources[s]!.length - bases[s]!
            if (avail <= 0) return []
            const first = r0 % avail
            return Array.from({ length: Math.min(len, avail - first) }, (_, j) => ({ s, r: first + j }))
          })
          const one = new UpdatesBuilder(shape)
          const bound = sources.map((u) => one.bind(u))
          for (const p of rows) one.appendFrom(bound[p.s]!, p.r + bases[p.s]!, 0, p.r, p.r + 1, 0)
          const want = json(one.finish())
          assert.equal(gatheredInTwo(shape, sources, bases, rows, cut, (p) => [0, p.r, p.r + 1, 0]), want)
        },
      ),
      { seed, numRuns: 300 },
    )
  })

  it('appendPermuted (reading the source in order) appends what appendFrom does, in two calls, for any shape; and refuses a row taken twice', () => {
    fc.assert(
      fc.property(
        arbShape(2).chain((s) => fc.tuple(fc.constant(s), arbRows(s, 60))),
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.nat({ max: 60 }),
        ([shape, rows], keys, cut) => {
          const u = build(shape, rows)
          // A subset of the rows in a random order, each at most once (as a sort's output is).
          const picked = [...new Set(keys.map((k) => (u.length === 0 ? -1 : k % u.length)))].filter((r) => r >= 0)
          const one = new UpdatesBuilder(shape)
          const b1 = one.bind(u)
          for (const r of picked) one.appendFrom(b1, r, 0, r, r + 1, 0)
          const many = new UpdatesBuilder(shape, { capacity: 1 })
          const b2 = many.bind(u)
          const at = Math.min(cut, picked.length)
          for (const part of [picked.slice(0, at), picked.slice(at)]) {
            many.appendPermuted(b2.keys, b2.vals, {
              rows: part.length,
              src: new Uint32Array(part.length),
              row: Uint32Array.from(part),
              time0: new Uint32Array(part.length),
              time1: Uint32Array.from(part),
              diffLo: Uint32Array.from(part, (r) => r + 1),
              diffHi: new Int32Array(part.length),
            })
          }
          assert.equal(json(many.finish()), json(one.finish()))
        },
      ),
      { seed, numRuns: 300 },
    )
    const shape: UpdatesShape = { keyType: binary, valType: utf8, timeKind: 'u64' }
    const b = new UpdatesBuilder(shape)
    const bound = b.bind(build(shape, [0, 1, 2].map((i) => ({ key: Uint8Array.of(i), val: 'v', time: 1n, diff: 1n }))))
    const twice = { rows: 3, src: new Uint32Array(3), row: Uint32Array.of(2, 0, 2), time0: new Uint32Array(3), time1: new Uint32Array(3), diffLo: new Uint32Array(3), diffHi: new Int32Array(3) }
    assert.throws(() => b.appendPermuted(bound.keys, bound.vals, twice), /row 2 is taken twice/)
  })

  it('appendPermuted copies values of every length and alignment, fixed-width ones included', () => {
    const shape: UpdatesShape = { keyType: binary, valType: utf8, timeKind: 'u64' }
    for (const lengths of [[0, 1, 3, 4, 5, 16, 17, 32, 255, 256, 257, 1000], new Array<number>(12).fill(16), new Array<number>(12).fill(5)]) {
      const src = new UpdatesBuilder(shape)
      lengths.forEach((n, i) => src.append(Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 0xff), String.fromCharCode(97 + i).repeat(n), 1n, 1n))
      const u = src.finish()
      const b = new UpdatesBuilder(shape)
      const bound = b.bind(u)
      // A prefix first, so that the rest start at other alignments; then every row, reversed.
      b.append(Uint8Array.of(1, 2, 3), 'xyz', 1n, 1n)
      const order = lengths.map((_, i) => lengths.length - 1 - i)
      const n = order.length
      b.appendPermuted(bound.keys, bound.vals, { rows: n, src: new Uint32Array(n), row: Uint32Array.from(order), time0: new Uint32Array(n), time1: new Uint32Array(n).fill(1), diffLo: new Uint32Array(n).fill(1), diffHi: new Int32Array(n) })
      const all = updatesToJson(u)
      assert.equal(json(b.finish()), JSON.stringify([{ key: Buffer.of(1, 2, 3).toString('base64'), val: 'xyz', time: 1, diff: 1 }, ...order.map((i) => all[i])]))
    }
  })

  it('appendGathered copies values of every length and alignment, long ones included', () => {
    const shape: UpdatesShape = { keyType: binary, valType: utf8, timeKind: 'u64' }
    const lengths = [0, 1, 3, 4, 5, 16, 17, 32, 255, 256, 257, 1000]
    const src = new UpdatesBuilder(shape)
    lengths.forEach((n, i) => src.append(Uint8Array.from({ length: n }, (_, j) => (i * 31 + j) & 0xff), 'v'.repeat(n), 1n, 1n))
    const u = src.finish()
    const b = new UpdatesBuilder(shape)
    const bound = b.bind(u)
    // Every row after every other, so that each starts at a different alignment.
    const order = lengths.flatMap((_, i) => lengths.map((__, j) => (i + j) % lengths.length))
    const n = order.length
    b.appendGathered([bound.keys], [bound.vals], [0], {
      rows: n,
      src: new Uint32Array(n),
      row: Uint32Array.from(order),
      time0: new Uint32Array(n),
      time1: new Uint32Array(n).fill(1),
      diffLo: new Uint32Array(n).fill(1),
      diffHi: new Int32Array(n),
    })
    const all = updatesToJson(u)
    assert.equal(json(b.finish()), JSON.stringify(order.map((i) => all[i])))
  })

  it('a source bound for range copies gathers right too: value widths are measured over all of it, when first gathered', () => {
    // Mostly one width, sometimes another (so a width taken from the first rows, or from the rows
    // copied by range, would be wrong for later ones).
    const widths = fc.array(fc.constantFrom(16, 16, 16, 16, 16, 3, 0), { minLength: 1, maxLength: 40 })
    fc.assert(
      fc.property(widths, widths, fc.nat(), fc.nat(), fc.array(fc.nat(), { maxLength: 60 }), (kw, vw, a, b, picks) => {
        const shape: UpdatesShape = { keyType: binary, valType: utf8, timeKind: 'u64' }
        const n = Math.min(kw.length, vw.length)
        const src = new UpdatesBuilder(shape)
        for (let i = 0; i < n; i++) src.append(Uint8Array.from({ length: kw[i]! }, (_, j) => (i * 7 + j) & 0xff), String.fromCharCode(97 + (i % 26)).repeat(vw[i]!), BigInt(i), 1n)
        const u = src.finish()
        const start = a % (n + 1)
        const end = start + (b % (n - start + 1))
        const rows = picks.map((p) => p % n)
        const out = new UpdatesBuilder(shape)
        const bound = out.bind(u)
        out.appendRange(bound, start, end)
        out.appendGathered([bound.keys], [bound.vals], [0], {
          rows: rows.length,
          src: new Uint32Array(rows.length),
          row: Uint32Array.from(rows),
          time0: new Uint32Array(rows.length),
          time1: Uint32Array.from(rows, (r) => r),
          diffLo: new Uint32Array(rows.length).fill(1),
          diffHi: new Int32Array(rows.length),
        })
        const all = updatesToJson(u)
        assert.equal(json(out.finish()), JSON.stringify([...all.slice(start, end), ...rows.map((r) => all[r])]))
      }),
      { seed, numRuns: 300 },
    )
  })

  it('truncate drops rows, nulls included, and later appends are correct', () => {
    const shape: UpdatesShape = { keyType: utf8, valType: struct([field('s', struct([field('x', int64, true)]), true), field('f', float64, true)]), timeKind: 'product' }
    const b = new UpdatesBuilder(shape)
    b.append('a', { s: null, f: 1.5 }, [0, 0], 1n)
    b.append('b', { s: { x: null }, f: null }, [0, 1], 2n)
    b.append('c', { s: { x: 3n }, f: null }, [1, 0], 3n)
    b.truncate(1)
    b.append('d', { s: { x: 4n }, f: 2 }, [2, 2], 4n)
    const u = b.finish()
    assert.deepEqual(JSON.parse(json(u)), [
      { key: 'a', val: { s: null, f: 1.5 }, time: [0, 0], diff: 1 },
      { key: 'd', val: { s: { x: 4 }, f: 2 }, time: [2, 2], diff: 4 },
    ])
    assert.equal(u.vals.data[0]!.children[0]!.nullCount, 1)
    assert.equal(u.vals.data[0]!.children[1]!.nullCount, 0)
  })

  it('with reuseBuffers, each finish holds just its own rows', () => {
    const b = new UpdatesBuilder(priced, { reuseBuffers: true })
    b.append('first', { price: 1n, note: 'n' }, 1n, 1n)
    b.append('second', { price: 2n, note: null }, 2n, 1n)
    const one = json(b.finish())
    assert.equal(one, '[{"key":"first","val":{"price":1,"note":"n"},"time":1,"diff":1},{"key":"second","val":{"price":2,"note":null},"time":2,"diff":1}]')
    b.append('third', { price: 3n, note: 'x' }, 3n, -1n)
    const two = b.finish()
    assert.equal(json(two), '[{"key":"third","val":{"price":3,"note":"x"},"time":3,"diff":-1}]')
    assert.equal(two.vals.data[0]!.children[1]!.nullCount, 0)
  })

  it('reads struct values by own properties only', () => {
    const s: UpdatesShape = { keyType: utf8, valType: struct([field('constructor', utf8, true), field('toString', int64, true)]), timeKind: 'u64' }
    const b = new UpdatesBuilder(s)
    b.append('a', {}, 1n, 1n)
    assert.equal(json(b.finish()), '[{"key":"a","val":{"constructor":null,"toString":null},"time":1,"diff":1}]')
  })

  it('refuses to bind a source of another shape', () => {
    const b = new UpdatesBuilder(priced)
    assert.throws(() => b.bind(emptyUpdates({ ...priced, keyType: uint64 })), /cannot copy rows of \(key uint64/)
    assert.throws(() => b.bind(emptyUpdates({ ...priced, timeKind: 'product' })), /time product/)
  })

  it('byteLength grows with the rows appended', () => {
    const b = new UpdatesBuilder(priced)
    assert.equal(b.byteLength(), 0)
    b.append('abcd', { price: 1n, note: null }, 1n, 1n)
    const one = b.byteLength()
    b.append('abcd', { price: 1n, note: null }, 1n, 1n)
    assert.ok(one > 16 && b.byteLength() > one)
    assert.ok(updatesByteLength(b.finish()) >= one)
  })
})

describe('slicing and replacing times', () => {
  it('sliceUpdates shares buffers and reads the same rows', () => {
    fc.assert(
      fc.property(arbShape(2).chain((s) => fc.tuple(fc.constant(s), arbRows(s, 20))), fc.nat(), fc.nat(), ([shape, rows], a, c) => {
        const u = build(shape, rows)
        const start = rows.length === 0 ? 0 : a % rows.length
        const end = start + (c % (rows.length - start + 1))
        const s = sliceUpdates(u, start, end)
        assert.equal(s.length, end - start)
        assert.equal(json(s), JSON.stringify(updatesToJson(u).slice(start, end)))
        assert.equal(sumDiffs(s), rows.slice(start, end).reduce((x, r) => BigInt.asIntN(64, x + r.diff), 0n))
        const copy = new UpdatesBuilder(shape)
        copy.appendRange(copy.bind(s), 0, s.length)
        assert.equal(json(copy.finish()), json(s))
      }),
      { seed, numRuns: 150 },
    )
  })

  it('withTimes replaces times only, and checks kind and length', () => {
    const b = new UpdatesBuilder(priced)
    b.append('a', { price: 1n, note: null }, 1n, 1n)
    const u = b.finish()
    assert.deepEqual(JSON.parse(json(withTimes(u, BigUint64Array.of(9n))))[0].time, 9)
    assert.throws(() => withTimes(u, BigUint64Array.of(1n, 2n)), /same length/)
    assert.throws(() => withTimes(u, { a: Uint32Array.of(1), b: Uint32Array.of(1) }), /u64 times/)
  })
})
