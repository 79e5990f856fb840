import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { diffToJson } from '../../src/core/batch.js'
import { timestampKind } from '../../src/core/timestamp.js'
import { JsonBatchBody, type BodyField } from '../../src/columnar/json-batch-body.js'
import { JsonBodyError, NEED_MORE, scanValue, ValueEnd } from '../../src/columnar/json-scan.js'
import { updatesFromJson, updatesToJson, type Updates, type UpdatesShape } from '../../src/columnar/updates.js'
import { valueToJson } from '../../src/columnar/values.js'
import { announceSeed, arbRows, arbShape, seed, type Row, type Shape } from './arbitraries.js'

announceSeed('json-batch-body.test.ts')

const OPTS = { rowsField: 'updates', fields: ['lower', 'upper', 'append', 'expectedUpper'], maxFieldBytes: 1 << 16 }

/** A row as a client might write it: sometimes with strings for numbers, fields in another order, extra spaces. */
function rowText(shape: Shape, r: Row, style: number): string {
  const tk = timestampKind(shape.timeKind)
  const time = tk.toJson(r.time)
  const diff = diffToJson(r.diff)
  const fields: [string, unknown][] = [
    ['key', valueToJson(shape.keyType, r.key)],
    ['val', valueToJson(shape.valType, r.val)],
    ['time', style % 5 === 1 && typeof time === 'number' ? String(time) : time],
    ['diff', style % 7 === 2 ? String(diff) : diff],
  ]
  if (style % 3 === 1) fields.reverse()
  const sp = style % 4 === 3 ? ' \n\t' : ''
  return `{${sp}${fields
    .filter(([name]) => !(style % 11 === 4 && ((name === 'key' && shape.keyType.type === 'unit') || (name === 'val' && shape.valType.type === 'unit'))))
    .map(([k, v]) => `${sp}"${k}"${sp}:${sp}${JSON.stringify(v)}${sp}`)
    .join(',')}}`
}

function bodyText(shape: Shape, rows: readonly Row[], styles: readonly number[], extraFirst: boolean): string {
  const elems = rows.map((r, i) => rowText(shape, r, styles[i % styles.length] ?? 0))
  const updates = `"updates" : [ ${elems.join(' ,\n')} ]`
  const frontiers = '"lower": [0], "upper" : [10], "append": false'
  return extraFirst ? `{ ${frontiers}, ${updates} }` : `{${updates},${frontiers}}`
}

function cut(bytes: Uint8Array, fractions: readonly number[]): Uint8Array[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.byteLength)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let at = 0
  for (const p of points) {
    out.push(bytes.slice(at, p))
    at = p
  }
  out.push(bytes.slice(at))
  return out
}

/** Reads `text` pushed in pieces; the rows (in order, as JSON: they are reused), the fields, or the error. */
function read(shape: UpdatesShape, text: string, fractions: readonly number[]): { rows: unknown[]; fields: BodyField[] } | JsonBodyError {
  const body = new JsonBatchBody(shape, OPTS)
  const rows: unknown[] = []
  const fields: BodyField[] = []
  let next = 0
  try {
    for (const piece of cut(new TextEncoder().encode(text), fractions)) {
      body.push(piece)
      fields.push(...body.takeFields())
      const r = body.takeRows()
      if (r !== null) {
        assert.equal(r.firstRow, next)
        next += r.updates.length
        rows.push(...updatesToJson(r.updates))
      }
    }
    body.end()
    fields.push(...body.takeFields())
    const r = body.takeRows()
    if (r !== null) rows.push(...updatesToJson(r.updates))
    return { rows, fields }
  } catch (e) {
    if (e instanceof JsonBodyError) return e
    throw e
  }
}

const rowsJson = (rows: readonly unknown[]): string => JSON.stringify(rows)
const updatesJson = (us: readonly Updates[]): string => rowsJson(us.flatMap((u) => updatesToJson(u)))

describe('JsonBatchBody', () => {
  it('reads rows and fields pushed in arbitrary pieces as JSON.parse and updatesFromJson read the whole body', () => {
    fc.assert(
      fc.property(
        arbShape(2).chain((s) =>
          fc.tuple(fc.constant(s), arbRows(s, 30), fc.array(fc.nat(100), { minLength: 1, maxLength: 5 }), fc.boolean(), fc.array(fc.integer({ min: 1, max: 999 }).map((n) => n / 1000), { maxLength: 10 })),
        ),
        ([shape, rows, styles, extraFirst, fractions]) => {
          const text = bodyText(shape, rows, styles, extraFirst)
          const parsed = JSON.parse(text) as { updates: unknown; lower: unknown }
          const want = updatesFromJson(parsed.updates, shape, 'body.updates')
          assert.ok(want.ok, want.ok ? '' : want.error)
          const got = read(shape, text, fractions)
          assert.ok(!(got instanceof JsonBodyError), got instanceof JsonBodyError ? got.message : '')
          assert.equal(rowsJson(got.rows), updatesJson([want.value]))
          assert.deepEqual(
            got.fields.map((f) => [f.name, f.value]),
            (extraFirst ? [] : []).concat([['lower', [0]], ['upper', [10]], ['append', false]] as never[]),
          )
        },
      ),
      { seed, numRuns: 300 },
    )
  })

  it('reads bodies pushed a few bytes at a time (rows completed in the reused buffer again and again) as whole', () => {
    fc.assert(
      fc.property(
        arbShape(2).chain((s) => fc.tuple(fc.constant(s), arbRows(s, 20), fc.array(fc.nat(100), { minLength: 1, maxLength: 5 }), fc.boolean(), fc.integer({ min: 1, max: 64 }))),
        ([shape, rows, styles, extraFirst, step]) => {
          const text = bodyText(shape, rows, styles, extraFirst)
          const parsed = JSON.parse(text) as { updates: unknown }
          const want = updatesFromJson(parsed.updates, shape, 'body.updates')
          assert.ok(want.ok, want.ok ? '' : want.error)
          const n = new TextEncoder().encode(text).byteLength
          // Pieces of `step` bytes, then one of the rest: a row spans many pieces, the next fits in one.
          const fractions = Array.from({ length: Math.min(400, Math.floor(n / step)) }, (_, i) => ((i + 1) * step) / n).filter((f) => f < 1)
          const got = read(shape, text, fractions)
          assert.ok(!(got instanceof JsonBodyError), got instanceof JsonBodyError ? got.message : '')
          assert.equal(rowsJson(got.rows), updatesJson([want.value]))
        },
      ),
      { seed, numRuns: 150 },
    )
  })

  it('reads rows larger than its buffer, spanning many pieces, between small ones', () => {
    const shape: UpdatesShape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    fc.assert(
      fc.property(fc.array(fc.nat(40_000), { minLength: 1, maxLength: 6 }), fc.integer({ min: 100, max: 9000 }), (sizes, step) => {
        const rows = sizes.map((n, i) => ({ key: `${'é'.repeat(n % 7)}${String.fromCharCode(97 + (i % 26)).repeat(n)}`, val: i - 3, time: i, diff: 1 }))
        const text = JSON.stringify({ lower: [0], upper: [10], updates: rows })
        const n = new TextEncoder().encode(text).byteLength
        const fractions = Array.from({ length: Math.floor(n / step) }, (_, i) => ((i + 1) * step) / n).filter((f) => f < 1)
        const got = read(shape, text, fractions)
        assert.ok(!(got instanceof JsonBodyError), got instanceof JsonBodyError ? got.message : '')
        const want = updatesFromJson(rows, shape, 'body.updates')
        assert.ok(want.ok)
        assert.equal(rowsJson(got.rows), updatesJson([want.value]))
      }),
      { seed, numRuns: 40 },
    )
  })

  it('reads a row of many MiB pushed in small pieces once, not once per piece', { timeout: 30_000 }, async () => {
    // NB: read again from its start at every piece, these rows took 90 s here (~3·10^10 byte
    // reads); once, about a second. The pieces go in between turns of the event loop, so that the
    // timeout can end the test.
    const shape: UpdatesShape = { keyType: { type: 'utf8' }, valType: { type: 'utf8' }, timeKind: 'u64' }
    const plain = 'é'.repeat(4 << 20)
    const escaped = 'a"\\\n'.repeat(1 << 20)
    const rows = [
      { key: plain, val: 'v', time: 1, diff: 1 },
      { key: 'k', val: escaped, time: 2, diff: 2 },
    ]
    const bytes = new TextEncoder().encode(JSON.stringify({ lower: [0], upper: [10], updates: rows }))
    const body = new JsonBatchBody(shape, OPTS)
    const got: unknown[] = []
    for (let at = 0; at < bytes.byteLength; at += 1024) {
      body.push(bytes.subarray(at, at + 1024))
      const r = body.takeRows()
      if (r !== null) got.push(...updatesToJson(r.updates))
      await new Promise((resolve) => setImmediate(resolve))
    }
    body.end()
    const r = body.takeRows()
    if (r !== null) got.push(...updatesToJson(r.updates))
    const [first, second] = got as { key: string; val: string }[]
    assert.equal(got.length, 2)
    assert.ok(first!.key === plain && second!.val === escaped)
  })

  it('names the first bad row as updatesFromJson does', () => {
    const bad = ['{"key":5,"val":1,"time":1,"diff":1}', '{"val":1,"time":1,"diff":1}', '{"key":"a","val":1,"time":1,"diff":1,"x":2}', '7', '{"key":"a","val":1.5,"time":1,"diff":1}', '{"key":"a","val":1,"time":-1,"diff":1}', '{"key":"a","val":"1x","time":1,"diff":1}', '{"key":"a","key":"b","val":1,"time":1,"diff":1}', '{"key":"\\ud800","val":1,"time":1,"diff":1}', '{"key":"a","val":99999999999999999999,"time":1,"diff":1}']
    const shape: UpdatesShape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    fc.assert(
      fc.property(fc.constantFrom(...bad), fc.nat(6), fc.array(fc.integer({ min: 1, max: 999 }).map((n) => n / 1000), { maxLength: 6 }), (row, at, fractions) => {
        const rows = Array.from({ length: 6 }, (_, i) => `{"key":"k${i}","val":${i},"time":1,"diff":1}`)
        rows.splice(at, 0, row)
        const text = `{"lower":[0],"upper":[5],"updates":[${rows.join(',')}]}`
        const want = updatesFromJson((JSON.parse(text) as { updates: unknown }).updates, shape, 'body.updates')
        const got = read(shape, text, fractions)
        if (want.ok) {
          // Duplicate fields: JSON.parse keeps the last one, and so does the body reader.
          assert.ok(!(got instanceof JsonBodyError))
          assert.equal(rowsJson(got.rows), updatesJson([want.value]))
          return
        }
        assert.ok(got instanceof JsonBodyError, 'expected an error')
        assert.equal(got.kind, 'invalid')
        assert.equal(got.message, want.error)
      }),
      { seed, numRuns: 200 },
    )
  })

  it('refuses malformed bodies and misplaced fields as malformed', () => {
    const shape: UpdatesShape = { keyType: { type: 'utf8' }, valType: { type: 'int64' }, timeKind: 'u64' }
    const cases: [string, RegExp][] = [
      ['', /ends before/],
      ['[1]', /must be a JSON object/],
      ['{"lower": [10', /ends before|not valid JSON/],
      ['{"updates": {}}', /^body\.updates: expected array, received object/],
      ['{"lower": [0]}', /^body\.updates: expected array, received undefined/],
      ['{"apend": false, "updates": []}', /^body\.apend: unknown property/],
      ['{"updates": [], "updates": []}', /^body\.updates: appears twice/],
      ['{"updates": [{"key":"a","val":1,"time":1,"diff":1},]}', /^body\.updates\[1\]: not valid JSON/],
      ['{"updates": [{"key":"a","val":01,"time":1,"diff":1}]}', /^body\.updates\[0\]: not valid JSON/],
      ['{"updates": []} x', /bytes follow/],
      ['{"updates": [{"key":"a\nb","val":1,"time":1,"diff":1}]}', /^body\.updates\[0\]: not valid JSON/],
      ['{"updates": [{"key":"a","val":1,"time":1,"diff":1}', /ends inside/],
    ]
    for (const [text, message] of cases) {
      for (const fractions of [[], [0.5], [0.1, 0.2, 0.7]]) {
        const got = read(shape, text, fractions)
        assert.ok(got instanceof JsonBodyError, `${text}: expected an error`)
        assert.equal(got.kind, 'malformed', text)
        assert.match(got.message, message, text)
      }
    }
  })
})

describe('ValueEnd', () => {
  it('finds where a value ends, in pieces, as scanValue finds it in the whole', () => {
    fc.assert(
      fc.property(fc.json(), fc.constantFrom('', ' ', ',', ']', '}'), fc.array(fc.nat(), { maxLength: 6 }), (json, after, cuts) => {
        const bytes = new TextEncoder().encode(json + after)
        const want = scanValue(bytes, 0, bytes.byteLength, after === '')
        const ends = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)
        const scan = new ValueEnd()
        let got = NEED_MORE
        for (const end of [...ends, bytes.byteLength]) {
          got = scan.find(bytes, 0, end, end === bytes.byteLength && after === '')
          if (got !== NEED_MORE) break
        }
        assert.equal(got, want)
      }),
      { seed, numRuns: 1000 },
    )
  })
})
