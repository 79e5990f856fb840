/**
 * The SSE parser the console and compactctl share: the format's line ends, comments, multi-line
 * data and unnamed events; and, for any way a stream is cut into chunks, the same events as the
 * whole text (property test, seed printed by fast-check).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { parseSseText, readSse, SseParser } from '../../src/client/sse.js'

describe('SseParser', () => {
  it('reads events, multi-line data, comments, unnamed events and every line end', () => {
    const text = ': hello\r\nevent: progress\r\ndata: {"a":1}\r\n\r\nevent: done\rdata:x\rdata: y\r\rdata: plain\n\nevent: ignored-without-data\n\n'
    assert.deepEqual(parseSseText(text), [
      { event: 'progress', data: '{"a":1}' },
      { event: 'done', data: 'x\ny' },
      { event: 'message', data: 'plain' },
    ])
  })

  it('drops an event the stream did not finish', () => {
    const p = new SseParser()
    assert.deepEqual(p.push('event: progress\ndata: 1\n\nevent: done\ndata: 2\n'), [{ event: 'progress', data: '1' }])
    p.end()
    assert.deepEqual(p.push('\n'), [])
  })

  it('gives the same events however the text is cut into chunks', () => {
    const event = fc.record({ event: fc.constantFrom('progress', 'done'), data: fc.string({ maxLength: 20 }).map((s) => s.replace(/[\r\n]/g, '')) })
    const lineEnd = fc.constantFrom('\n', '\r\n', '\r')
    fc.assert(
      fc.property(fc.array(fc.tuple(event, lineEnd), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (events, cuts) => {
        const text = events.map(([e, nl]) => `event: ${e.event}${nl}data: ${e.data}${nl}${nl}`).join('')
        const points = [...new Set(cuts.map((c) => (text.length === 0 ? 0 : c % text.length)))].sort((a, b) => a - b)
        const chunks: string[] = []
        let at = 0
        for (const p of points) {
          chunks.push(text.slice(at, p))
          at = p
        }
        chunks.push(text.slice(at))
        const parser = new SseParser()
        const got = chunks.flatMap((c) => parser.push(c))
        assert.deepEqual(got, events.map(([e]) => ({ event: e.event, data: e.data })))
      }),
    )
  })
})

describe('readSse', () => {
  it('reads a byte stream split inside a multi-byte character', async () => {
    const bytes = new TextEncoder().encode('event: progress\ndata: «é»\n\n')
    const cut = bytes.indexOf(0xc3) + 1
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, cut))
        controller.enqueue(bytes.slice(cut))
        controller.close()
      },
    })
    const got = []
    for await (const m of readSse(body)) got.push(m)
    assert.deepEqual(got, [{ event: 'progress', data: '«é»' }])
  })
})
