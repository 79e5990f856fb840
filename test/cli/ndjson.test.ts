import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { ndjsonAsArray, SnapshotLines } from '../../src/cli/ndjson.js'
import { announceSeed, seed } from '../columnar/arbitraries.js'

announceSeed('ndjson.test.ts')

/** Pushes `bytes` in pieces ending at `cuts`; the lines produced, as text. */
function lines(bytes: Uint8Array, cuts: readonly number[]): string {
  const s = new SnapshotLines()
  const out: Uint8Array[] = []
  let at = 0
  for (const end of [...cuts, bytes.length]) {
    out.push(s.push(bytes.subarray(at, end)))
    at = end
  }
  s.end()
  return Buffer.concat(out).toString('utf8')
}

const arbUpdate = fc.record({ key: fc.string({ unit: 'binary' }), val: fc.oneof(fc.integer(), fc.string(), fc.constant(null)), time: fc.nat(), diff: fc.integer() })

describe('SnapshotLines', () => {
  it('turns a snapshot document cut anywhere into one update a line', () => {
    fc.assert(
      fc.property(fc.array(arbUpdate, { maxLength: 8 }), fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), (updates, indent, cuts) => {
        const bytes = new TextEncoder().encode(JSON.stringify({ asOf: 7, updates }, null, indent ? 2 : undefined))
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
        const want = updates.map((u) => `${JSON.stringify(u)}\n`).join('')
        assert.equal(lines(bytes, at), want)
      }),
      { seed, numRuns: 500 },
    )
  })

  it('copies an update spanning many chunks a bounded number of times, not once per chunk', { timeout: 20_000 }, async () => {
    // NB: copied whole at every chunk, this update cost ~10^11 bytes of copying (a minute and
    // more); the pieces go in between turns of the event loop, so that the timeout can end the test.
    const big = 'x'.repeat(16 << 20)
    const bytes = new TextEncoder().encode(JSON.stringify({ asOf: 1, updates: [{ key: big, val: 1, time: 1, diff: 1 }, { key: 'a', val: 2, time: 1, diff: 1 }] }))
    const s = new SnapshotLines()
    const out: Uint8Array[] = []
    for (let at = 0; at < bytes.length; at += 1024) {
      out.push(s.push(bytes.subarray(at, at + 1024)))
      await new Promise((resolve) => setImmediate(resolve))
    }
    s.end()
    const text = Buffer.concat(out).toString('utf8').split('\n')
    assert.deepEqual(text.slice(1), ['{"key":"a","val":2,"time":1,"diff":1}', ''])
    assert.equal(text[0], JSON.stringify({ key: big, val: 1, time: 1, diff: 1 }))
  })

  it('refuses a document that ends early or has bytes after its end', () => {
    assert.throws(() => lines(new TextEncoder().encode('{"asOf":1,"updates":[{"key":1}'), []), /ended before its last update/)
    assert.throws(() => lines(new TextEncoder().encode('{"asOf":1,"updates":[]} {'), []), /bytes after its end/)
  })
})

describe('ndjsonAsArray', () => {
  it('makes one JSON array of the lines, blank lines skipped', async () => {
    const src = async function* (): AsyncGenerator<Uint8Array> {
      yield Buffer.from('{"a":1}\n\n  {"b"')
      yield Buffer.from(':2}\n')
    }
    const parts: Uint8Array[] = []
    for await (const p of ndjsonAsArray(src())) parts.push(p)
    assert.deepEqual(JSON.parse(Buffer.concat(parts).toString('utf8')), [{ a: 1 }, { b: 2 }])
  })
})
