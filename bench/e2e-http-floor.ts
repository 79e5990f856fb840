/**
 * The HTTP floor of the end-to-end scenario, a child process of its own: a bare `node:http`
 * server that moves the same bytes as compactd's large writes and reads with no parsing, no
 * framework and no worker threads, so that the scenario can tell what this machine allows from
 * what compactd costs. In the same run, from the same load generator:
 *
 * - `POST /bytes/<name>`: the body is stored durably in `<dir>/<name>` as compactd's file blob
 *   stores a part: with O_DIRECT through two aligned 4 MiB staging buffers (one filling while the
 *   other is written), then fsync; where the file system refuses O_DIRECT, through the page cache
 *   and fsync. Answers `{"bytes": n, "direct": true|false}`.
 * - `GET /bytes/<name>`: the file read (from the page cache, where the write left nothing for
 *   O_DIRECT: a first read fills it) into a buffer reused between requests, sent as one body.
 * - `GET /healthz`: 200, so that the prober measures this process's loop as it does compactd's.
 *
 *   fork('bench/e2e-http-floor.ts', [dir]); receive {url}; …; kill
 */
import { constants } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { DIRECT_ALIGN, DIRECT_STAGE_BYTES, StagingBuffers, writeFully } from '../src/location/direct-io.js'
import { hasCode } from '../src/location/fs-util.js'

if (process.send === undefined) throw new Error('bench/e2e-http-floor.ts must be forked with an IPC channel')
const [dir = ''] = process.argv.slice(2)
if (dir === '') throw new Error('usage: e2e-http-floor.ts <dir>')

/** The floor's answer to the orchestrator once it listens. */
export interface HttpFloorReady {
  readonly url: string
}

const staging = new StagingBuffers({ keep: 2 })
let readBuffer = Buffer.alloc(0)

/** `name` as a file of `dir` (a plain name: letters, digits, `-`, `_`). */
function fileOf(name: string): string | null {
  return /^[\w-]+$/.test(name) ? join(dir, name) : null
}

async function openForWrite(path: string): Promise<{ handle: FileHandle; direct: boolean }> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC
  if (constants.O_DIRECT !== undefined) {
    try {
      return { handle: await open(path, flags | constants.O_DIRECT), direct: true }
    } catch (err) {
      if (!hasCode(err, 'EINVAL')) throw err
    }
  }
  return { handle: await open(path, flags), direct: false }
}

/** Stores the request body in `path` durably; its length and whether O_DIRECT was used. */
async function store(req: IncomingMessage, path: string): Promise<{ bytes: number; direct: boolean }> {
  const { handle, direct } = await openForWrite(path)
  try {
    let bytes = 0
    if (!direct) {
      for await (const chunk of req as AsyncIterable<Buffer>) {
        await handle.write(chunk, 0, chunk.byteLength, bytes)
        bytes += chunk.byteLength
      }
    } else {
      const stages = [staging.acquire(), staging.acquire()] as const
      let filling = 0
      let fill = 0
      // The write of the other stage, in flight while this one fills.
      let inFlight: Promise<unknown> = Promise.resolve()
      const flush = async (length: number): Promise<void> => {
        await inFlight
        inFlight = writeFully(handle, stages[filling]!, length, bytes - fill)
        filling ^= 1
        fill = 0
      }
      try {
        for await (const chunk of req as AsyncIterable<Buffer>) {
          for (let at = 0; at < chunk.byteLength; ) {
            const take = Math.min(chunk.byteLength - at, DIRECT_STAGE_BYTES - fill)
            stages[filling]!.set(chunk.subarray(at, at + take), fill)
            fill += take
            bytes += take
            at += take
            if (fill === DIRECT_STAGE_BYTES) await flush(fill)
          }
        }
        if (fill > 0) {
          const padded = Math.ceil(fill / DIRECT_ALIGN) * DIRECT_ALIGN
          stages[filling]!.fill(0, fill, padded)
          await flush(padded)
        }
        await inFlight
      } finally {
        await inFlight.catch(() => undefined)
        for (const s of stages) staging.release(s)
      }
      if (bytes % DIRECT_ALIGN !== 0) await handle.truncate(bytes)
    }
    await handle.sync()
    return { bytes, direct }
  } finally {
    await handle.close()
  }
}

async function send(path: string, res: ServerResponse): Promise<void> {
  const handle = await open(path, 'r')
  try {
    const { size } = await handle.stat()
    if (readBuffer.byteLength < size) readBuffer = Buffer.allocUnsafe(size)
    for (let done = 0; done < size; ) {
      const { bytesRead } = await handle.read(readBuffer, done, size - done, done)
      if (bytesRead === 0) throw new Error(`${path} ended early`)
      done += bytesRead
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
    res.end(readBuffer.subarray(0, size))
  } finally {
    await handle.close()
  }
}

const server = createServer((req, res) => {
  const answer = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const url = new URL(req.url ?? '/', 'http://floor')
  if (url.pathname === '/healthz') return answer(200, { status: 'ok' })
  const m = /^\/bytes\/([^/]+)$/.exec(url.pathname)
  const path = m === null ? null : fileOf(m[1]!)
  if (path === null) return answer(404, { error: 'not found' })
  const done = req.method === 'POST' ? store(req, path).then((r) => answer(200, r)) : req.method === 'GET' ? send(path, res) : Promise.resolve(answer(405, { error: 'method' }))
  done.catch((err: unknown) => {
    if (!res.headersSent) answer(500, { error: String(err) })
    else res.destroy()
  })
})
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  const ready: HttpFloorReady = { url: `http://127.0.0.1:${port}` }
  process.send?.(ready)
})
process.on('disconnect', () => server.close())
