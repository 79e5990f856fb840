/**
 * How a write's body reaches its worker (write-task.ts `BodyPump`), against a channel that records
 * what is posted instead of a worker, so that when the worker "consumes" is up to the test. Socket
 * reads are simulated by pushing one piece and letting the pump read it before the next.
 */
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import type { AppError } from '../../src/errors.js'
import { releaseSlot } from '../../src/engine/shared-slots.js'
import { BODY_CHUNK_BYTES, BODY_WINDOW_BYTES, BodyPump, writeBodySlots } from '../../src/engine/write-task.js'
import type { TaskChannel } from '../../src/engine/worker-pool.js'

const PIECE = 64 << 10

interface Posted {
  readonly bytes: Uint8Array
  readonly end: boolean
}

function recorder(): { readonly channel: TaskChannel; readonly posted: Posted[] } {
  const posted: Posted[] = []
  const channel: TaskChannel = {
    post(msg) {
      if (msg.type !== 'body') throw new Error(`unexpected ${msg.type}`)
      posted.push({ bytes: msg.bytes, end: msg.end })
    },
    park: () => true,
    unpark: () => undefined,
  }
  return { channel, posted }
}

/** A body the test feeds piece by piece. */
function socket(): Readable {
  return new Readable({ read() {} })
}

/** A body of `n` pieces that come as fast as they are read, as a socket's do when the client is ahead. */
function fastSocket(n: number): Readable {
  let i = 0
  return new Readable({
    read() {
      this.push(i < n ? piece(i++) : null)
    },
  })
}

/** Lets the pump handle what was pushed (its `readable` event comes on a later tick). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Piece `i` of a body: its bytes say which piece they are. */
const piece = (i: number, size = PIECE): Buffer => Buffer.alloc(size, i % 251)

/**
 * The worker's side: reads every chunk posted from `from` on and gives its slot back, then says
 * so. Returns where the chunks it read end (what the pump posts in answer comes after).
 */
function consume(pump: BodyPump, posted: Posted[], from: number): number {
  const upto = posted.length
  let bytes = 0
  for (const p of posted.slice(from, upto)) {
    bytes += p.bytes.byteLength
    if (p.bytes.byteLength > 0) releaseSlot(p.bytes)
  }
  pump.taken(bytes)
  return upto
}

describe('BodyPump', () => {
  it('fails at once on a body whose client went away before the task started (its close came before the pump listened)', async () => {
    // A write waits in the queue while every worker is busy; a client that disconnects meanwhile
    // closed its body before any listener was on it. The pump waited for bytes that could not come
    // and parked its task until the body idle timeout (60 s): 8 such clients filled both workers'
    // park room and stalled every write, read and compaction for that long.
    const body = socket()
    body.push(piece(0))
    body.destroy()
    await turn()
    assert.equal(body.destroyed, true)
    let parks = 0
    const { channel, posted } = recorder()
    const failures: unknown[] = []
    const pump = new BodyPump(body, { ...channel, park: () => (parks++, true) }, 1 << 30, (err) => failures.push(err))
    await turn()
    assert.equal(failures.length, 1)
    assert.equal((failures[0] as AppError).code, 'BAD_REQUEST')
    assert.match((failures[0] as AppError).message, /client closed the request/)
    assert.equal(posted.length, 0, 'nothing of a body cut short goes to the worker')
    assert.equal(parks, 0)
    pump.stop()
  })

  it('posts the first bytes at once, then fills chunks of about a MiB while the worker has some to read', async () => {
    const body = socket()
    const { channel, posted } = recorder()
    const failures: unknown[] = []
    const base = writeBodySlots().lent
    const pump = new BodyPump(body, channel, 1 << 30, (err) => failures.push(err))
    const pieces = 2 * (BODY_CHUNK_BYTES / PIECE) + 3
    for (let i = 0; i < pieces; i++) {
      body.push(piece(i))
      await turn()
    }
    // The worker had read nothing, so the first piece went alone; the rest waited to fill chunks.
    assert.deepEqual(
      posted.map((p) => p.bytes.byteLength),
      [PIECE, BODY_CHUNK_BYTES, BODY_CHUNK_BYTES],
    )
    // Once the worker has read everything posted, the partial chunk goes without waiting to fill.
    const taken = consume(pump, posted, 0)
    assert.deepEqual(
      posted.slice(taken).map((p) => p.bytes.byteLength),
      [2 * PIECE],
    )
    body.push(null)
    await turn()
    consume(pump, posted, taken)
    assert.deepEqual(posted.at(-1), { bytes: new Uint8Array(0), end: true })
    assert.equal(posted.filter((p) => p.end).length, 1)
    // Every byte arrived once, in order.
    const all = Buffer.concat(posted.filter((p) => p.bytes.byteLength > 0).map((p) => Buffer.from(p.bytes)))
    assert.equal(all.byteLength, pieces * PIECE)
    for (let i = 0; i < pieces; i++) assert.equal(all[i * PIECE], i % 251, `piece ${i}`)
    assert.equal(pump.received, pieces * PIECE)
    assert.deepEqual(failures, [])
    pump.stop()
    assert.equal(writeBodySlots().lent, base)
  })

  it('reads no further than the window while the worker consumes nothing', async () => {
    const pieces = BODY_WINDOW_BYTES / PIECE + 40
    const body = fastSocket(pieces)
    const { channel, posted } = recorder()
    const base = writeBodySlots().lent
    const pump = new BodyPump(body, channel, 1 << 30, () => undefined)
    for (let i = 0; i < 10; i++) await turn()
    const inFlight = posted.reduce((n, p) => n + p.bytes.byteLength, 0)
    assert.ok(inFlight <= BODY_WINDOW_BYTES, `${inFlight} bytes posted`)
    assert.ok(pump.received <= BODY_WINDOW_BYTES + PIECE, `${pump.received} bytes read: the rest waits in the socket`)
    assert.ok(posted.length <= 1 + BODY_WINDOW_BYTES / BODY_CHUNK_BYTES, `${posted.length} messages`)
    // Stopped (the task ended): the slot being filled goes back; the worker gives back what it was sent.
    pump.stop()
    for (const p of posted) releaseSlot(p.bytes)
    assert.equal(writeBodySlots().lent, base)
  })

  it('fails the write with REQUEST_TIMEOUT when no byte comes for the idle timeout, and not while the window is full', async () => {
    // A client that sent a piece, then nothing.
    const body = socket()
    const { channel, posted } = recorder()
    const base = writeBodySlots().lent
    let failed: (err: unknown) => void = () => undefined
    const failure = new Promise<unknown>((resolve) => (failed = resolve))
    const pump = new BodyPump(body, channel, 1 << 30, (err) => failed(err), 50)
    body.push(piece(0))
    await turn()
    consume(pump, posted, 0)
    // NB: the pump's timer is unref'd (a server keeps the loop alive): this one, ref'd, bounds the wait.
    let bound: ReturnType<typeof setTimeout> | undefined
    const err = (await Promise.race([failure, new Promise((_, reject) => (bound = setTimeout(() => reject(new Error('no failure within 5 s')), 5_000)))])) as AppError
    clearTimeout(bound)
    assert.equal(err.code, 'REQUEST_TIMEOUT')
    assert.match(err.message, /^body: no byte of it came for 0.05 s/)
    assert.equal(writeBodySlots().lent, base, 'stopped: it holds no slot')
    // A client that is ahead while the worker reads nothing: the window is full, nobody is idle.
    const fast = fastSocket(BODY_WINDOW_BYTES / PIECE + 40)
    const other = recorder()
    const failures: unknown[] = []
    const busy = new BodyPump(fast, other.channel, 1 << 30, (e) => failures.push(e), 50)
    // NB: a bounded wait, four idle timeouts long: what is asserted is that nothing happens.
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.deepEqual(failures, [])
    busy.stop()
    for (const p of other.posted) releaseSlot(p.bytes)
  })

  it('gives back the slot it was filling when the body goes over the limit', async () => {
    const body = socket()
    const { channel, posted } = recorder()
    const failures: unknown[] = []
    const base = writeBodySlots().lent
    const pump = new BodyPump(body, channel, 3 * PIECE, (err) => failures.push(err))
    assert.equal(pump.received, 0)
    body.push(piece(0))
    await turn()
    body.push(piece(1))
    await turn()
    body.push(piece(2))
    await turn()
    // The first piece was posted; the next two wait in the slot being filled.
    assert.equal(posted.length, 1)
    assert.equal(writeBodySlots().lent, base + 2)
    body.push(piece(3))
    await turn()
    assert.equal(failures.length, 1)
    assert.equal((failures[0] as { code?: string }).code, 'PAYLOAD_TOO_LARGE')
    assert.equal(posted.length, 1, 'nothing more is posted')
    assert.equal(pump.received, 4 * PIECE)
    assert.equal(writeBodySlots().lent, base + 1, 'only the posted chunk is still lent')
    releaseSlot(posted[0]!.bytes)
    assert.equal(writeBodySlots().lent, base)
  })
})
