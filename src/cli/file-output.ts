/**
 * Where `shards read` writes: a file, written whole or not at all, or stdout.
 *
 * A file is written under a temporary name beside it (`.NAME.<pid>-<random>.part`), flushed to
 * disk, and renamed to NAME only once every byte is there, so NAME never holds a cut-off snapshot
 * that looks complete; on any failure (the server hung up, the disk is full, Ctrl-C) the temporary
 * file is removed and NAME is left as it was. A target that is not a regular file (a device, a
 * FIFO: `/dev/null`, a process substitution) is written directly.
 */
import { randomBytes } from 'node:crypto'
import { constants } from 'node:fs'
import { open, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Transform, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** Copies `src` into `path` atomically (see above); the bytes written. */
export async function writeFileAtomically(path: string, src: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<number> {
  const existing = await stat(path).catch(() => null)
  const direct = existing !== null && !existing.isFile()
  const target = direct ? path : join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.part`)
  let fh
  try {
    fh = await open(target, direct ? constants.O_WRONLY : constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644)
  } catch (err) {
    const missingDir = (err as NodeJS.ErrnoException).code === 'ENOENT'
    throw new Error(`cannot write ${path}: ${missingDir ? `no directory ${dirname(path)}` : messageOf(err)}`)
  }
  let written = 0
  try {
    for await (const chunk of src) {
      signal?.throwIfAborted()
      // NB: one write at a time: the response is read only as fast as the disk takes it.
      for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
      written += chunk.length
    }
    if (!direct) await fh.sync()
    await fh.close()
    if (!direct) await rename(target, path)
    return written
  } catch (err) {
    await fh.close().catch(() => undefined)
    if (!direct) await rm(target, { force: true })
    throw err instanceof SourceError ? err : new Error(`cannot write ${path}: ${messageOf(err)}`)
  }
}

/**
 * Copies `src` to stdout; the bytes written. A reader that goes away (`| head`) ends the copy
 * without an error: it has what it wanted.
 */
export async function writeStdout(src: AsyncIterable<Uint8Array>, out: Writable = process.stdout): Promise<number> {
  let written = 0
  try {
    await pipeline(src, counter((n) => (written += n)), out, { end: false })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return written
    throw err
  }
  return written
}

/** A failure of what is copied (not of the destination): its message is the one to show. */
export class SourceError extends Error {}

function counter(add: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      add(chunk.length)
      done(null, chunk)
    },
  })
}

function messageOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (e.code === 'ENOSPC') return 'no space left on device'
  return err instanceof Error ? err.message : String(err)
}
