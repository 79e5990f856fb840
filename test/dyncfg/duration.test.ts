import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { DURATION_UNITS, formatDuration, parseDuration } from '../../src/dyncfg/duration.js'

const seed = process.env.FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.FC_SEED)
console.log(`duration.test.ts: FC_SEED=${seed}`)

describe('parseDuration', () => {
  const good: [unknown, number][] = [
    ['90s', 90_000],
    ['1500ms', 1500],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0s', 0],
    ['0ms', 0],
    ['007s', 7000],
    ['24h', 86_400_000],
    [0, 0],
    [1500, 1500],
    [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ]
  for (const [input, ms] of good) {
    it(`parses ${JSON.stringify(input)} as ${ms} ms`, () => {
      assert.deepEqual(parseDuration(input), { ok: true, value: ms })
    })
  }

  const bad: [unknown, RegExp][] = [
    [-1, /negative/],
    [1.5, /integer/],
    [Number.NaN, /finite/],
    [Number.POSITIVE_INFINITY, /finite/],
    [2 ** 53, /at most/],
    ['-5s', /negative/],
    ['1.5s', /whole number.*"1500ms"/],
    ['.5s', /whole number/],
    ['90', /needs a unit/],
    ['90 s', /followed by d, h, m, s or ms/],
    ['90S', /followed by d, h, m, s or ms/],
    ['1m30s', /followed by d, h, m, s or ms/],
    ['s', /followed by d, h, m, s or ms/],
    ['', /followed by d, h, m, s or ms/],
    ['ninety seconds', /followed by d, h, m, s or ms/],
    ['3000000000h', /at most/],
    [null, /string like "90s" or an integer/],
    [true, /string like "90s" or an integer/],
    [{ s: 90 }, /string like "90s" or an integer/],
  ]
  for (const [input, error] of bad) {
    it(`rejects ${JSON.stringify(input) ?? String(input)} with a sentence`, () => {
      const r = parseDuration(input)
      assert.equal(r.ok, false)
      assert.match(r.ok ? '' : r.error, error)
    })
  }

  it('quotes and shortens a long bad string', () => {
    const r = parseDuration('x'.repeat(100))
    assert.equal(r.ok, false)
    assert.ok(!r.ok && r.error.length < 150 && r.error.includes('…'))
  })
})

describe('formatDuration', () => {
  const table: [number, string][] = [
    [90_000, '90s'],
    [120_000, '2m'],
    [1500, '1500ms'],
    [3_600_000, '1h'],
    [5_400_000, '90m'],
    [7_200_000, '2h'],
    [61_000, '61s'],
    [1, '1ms'],
    [0, '0s'],
  ]
  for (const [ms, text] of table) {
    it(`formats ${ms} ms as "${text}"`, () => assert.equal(formatDuration(ms), text))
  }

  it('throws on a value that is not a duration', () => {
    for (const ms of [-1, 1.5, Number.NaN, 2 ** 53]) assert.throws(() => formatDuration(ms), RangeError)
  })

  it('round-trips: parse(format(ms)) = ms, and format is canonical for every spelling', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (ms) => {
        assert.deepEqual(parseDuration(formatDuration(ms)), { ok: true, value: ms })
      }),
      { seed, numRuns: 500 },
    )
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom(...DURATION_UNITS), (n, unit) => {
        const parsed = parseDuration(`${n}${unit}`)
        assert.ok(parsed.ok)
        const canonical = formatDuration(parsed.value)
        assert.deepEqual(parseDuration(canonical), parsed)
        assert.equal(formatDuration((parseDuration(canonical) as { value: number }).value), canonical)
        // No larger unit divides the canonical number exactly.
        const m = /^([0-9]+)(d|h|m|s|ms)$/.exec(canonical)
        assert.ok(m !== null)
        if (parsed.value !== 0 && m[2] !== 'd') {
          const larger = { h: 24, m: 60, s: 60, ms: 1000 }[m[2] as 'h' | 'm' | 's' | 'ms']
          assert.notEqual(Number(m[1]) % larger, 0)
        }
      }),
      { seed, numRuns: 500 },
    )
  })
})
