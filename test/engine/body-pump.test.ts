import { strict as assert } from 'node:assert'
import { once } from 'node:events'
import { PassThrough } from 'node:stream'
import { describe, it } from 'node:test'
import { BODY_CHUNK_BYTES, BODY_WINDOW_BYTES, BodyPump, bodySlotsLent } from '../../src/engine/body-pump.js'
import { releaseSlot } from '../../src/engine/shared-slots.js'
import type { TaskChannel } from '../../src/engine/worker-pool.js'

/**
 * The pump's side of the conversation, recorded: what a worker would receive (each body message
 * copied, its slot kept lent until `consume`, as a worker holds it until read). The pump against
 * a real worker is tested by write-read-tasks.test.ts and the routes' tests.
 */
class Receiver implements TaskChannel {
  readonly chunks: Uint8Array[] = []
  readonly #held: Uint8Array[] = []
  ended = false

  post(msg: Parameters<TaskChannel['post']>[0]): void {
    if (msg.type !== 'body') throw new Error(`unexpected ${msg.type}`)
    if (msg.end) {
      this.ended = true
      return
    }
    this.chunks.push(msg.bytes.slice())
    this.#held.push(msg.bytes)
  }

  /** Releases every chunk received so far, as a worker does once it read them; their bytes. */
  consume(): number {
    let n = 0
    for (const b of this.#held.splice(0)) {
      n += b.byteLength
      releaseSlot(b)
    }
    return n
  }
}

/** `n` pieces of `size` bytes, numbered so that a lost, repeated or reordered byte shows. */
function pieces(n: number, size: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(Uint8Array.from({ length: size }, (_, j) => (i * 31 + j) & 0xff)))
}

/** Lets the stream deliver what was written to it. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

describe('body pump', () => {
  it('posts the first socket chunk at once, then coalesces chunks into full slots while the worker is busy', async () => {
    const body = new PassThrough()
    const rx = new Receiver()
    const failures: unknown[] = []
    const pump = new BodyPump(body, rx, 1 << 30, (e) => failures.push(e))
    const input = pieces(40, 64 << 10)
    for (const p of input) body.write(p)
    await settle()
    // Nothing consumed yet: the first piece went alone (the worker had nothing), the rest in full slots.
    assert.deepEqual(
      rx.chunks.map((c) => c.byteLength),
      [64 << 10, BODY_CHUNK_BYTES, BODY_CHUNK_BYTES],
    )
    // The worker takes what it has: what waits is posted at once, whatever its size.
    pump.taken(rx.consume())
    assert.equal(rx.chunks.at(-1)!.byteLength, 40 * (64 << 10) - (64 << 10) - 2 * BODY_CHUNK_BYTES)
    body.end()
    await once(body, 'end')
    assert.ok(rx.ended)
    assert.deepEqual(Buffer.concat(rx.chunks), Buffer.concat(input))
    assert.equal(pump.received, 40 * (64 << 10))
    assert.deepEqual(failures, [])
    rx.consume()
    pump.stop()
    assert.equal(bodySlotsLent(), 0)
  })

  it('stops reading at the window and goes on when the worker takes bytes', async () => {
    const body = new PassThrough({ highWaterMark: 64 << 10 })
    const rx = new Receiver()
    const pump = new BodyPump(body, rx, 1 << 30, (e) => assert.fail(String(e)))
    const input = pieces(160, 64 << 10) // 10 MiB
    let written = 0
    let consumedSoFar = 0
    const writer = (async () => {
      for (const p of input) {
        written++
        if (!body.write(p)) await once(body, 'drain')
      }
      body.end()
    })()
    // Bounded: the body is 10 MiB, each round frees at least one slot.
    for (let round = 0; round < 100 && !rx.ended; round++) {
      await settle()
      const inFlight = rx.chunks.reduce((n, c) => n + c.byteLength, 0) - consumedSoFar
      assert.ok(inFlight <= BODY_WINDOW_BYTES, `${inFlight} bytes in flight`)
      if (body.isPaused()) assert.ok(written < input.length, 'paused only while bytes wait')
      const n = rx.consume()
      consumedSoFar += n
      pump.taken(n)
    }
    await writer
    assert.ok(rx.ended)
    assert.deepEqual(Buffer.concat(rx.chunks), Buffer.concat(input))
    rx.consume()
    assert.equal(bodySlotsLent(), 0)
  })

  it('a body over the limit fails 413 and gives back the slot it was filling', async () => {
    const body = new PassThrough()
    const rx = new Receiver()
    const failures: { code?: string; message: string }[] = []
    const pump = new BodyPump(body, rx, 300 << 10, (e) => failures.push(e as { code?: string; message: string }))
    for (const p of pieces(8, 64 << 10)) body.write(p)
    await settle()
    assert.equal(failures.length, 1)
    assert.equal(failures[0]!.code, 'PAYLOAD_TOO_LARGE')
    assert.match(failures[0]!.message, /larger than the body limit of 307200 bytes/)
    assert.ok(body.isPaused(), 'the rest of the body is left unread')
    assert.equal(rx.ended, false)
    rx.consume()
    pump.stop()
    assert.equal(bodySlotsLent(), 0)
  })

  it('a client that goes away mid-body fails the task and gives back the slot it was filling', async () => {
    const body = new PassThrough()
    const rx = new Receiver()
    const failures: { code?: string; message: string }[] = []
    const pump = new BodyPump(body, rx, 1 << 30, (e) => failures.push(e as { code?: string; message: string }))
    for (const p of pieces(3, 64 << 10)) body.write(p)
    await settle()
    assert.ok(bodySlotsLent() >= 2, 'one posted slot and the one being filled')
    body.destroy()
    await once(body, 'close')
    assert.equal(failures.length, 1)
    assert.equal(failures[0]!.code, 'BAD_REQUEST')
    assert.match(failures[0]!.message, /closed the request before the body ended/)
    rx.consume()
    pump.stop()
    assert.equal(bodySlotsLent(), 0)
  })
})
