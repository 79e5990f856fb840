/**
 * FileBlob: a Blob in a directory tree, one file per key (`<root>/<key>`), for one machine.
 *
 * - `set` is atomic and durable: write a temp file in the key's directory, fsync it, rename it over
 *   the key, fsync the directory (and the parents of any directory it created).
 * - The temp file is written with O_DIRECT (direct-io.ts: no page cache) unless `directWrites` is
 *   false; where the file system refuses direct I/O, the blob falls back to buffered writes for good.
 * - Keys pass `checkBlobKey` before any I/O, so no key reaches outside the root.
 * - Temp files are named `.tmp-<hex>~`; `~` is not a key character, so listings skip them and no key
 *   can collide with one. A crash can leave one behind; it is never listed or read, and
 *   `removeInterrupted` (which GC calls) deletes it once it has not been written to for a while.
 * - A delete (and `removeInterrupted`) removes the directories it leaves empty, up to the root:
 *   every compaction writes under a writer key of its own and every shard has its directory, so
 *   kept they would pile up for good (one per compaction and per deleted shard), slowing every
 *   listing. A `set` racing that removal finds its directory gone when it creates its temp file,
 *   and creates the directory again (`inDir`); once its temp file is in, the directory is not empty.
 */
import { randomBytes } from 'node:crypto'
import type { Dirent } from 'node:fs'
import { open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { checkBlobKey, checkBlobPrefix, checkBlobRange, checkBlobValue, rangeBounds } from './blob-args.js'
import { allocated, type Blob, type BlobMeta, type BlobRange, type GetOptions } from './blob.js'
import { closedError, determinate, errorMessage as message, indeterminate, InvalidUsageError, noSpace, type Abortable } from './errors.js'
import { DirectIoRefused, StagingBuffers, writeFileDirect } from './direct-io.js'
import { fsyncDir, hasCode, inDir, isNoSpace, removeEmptyDirs } from './fs-util.js'

const SEGMENT = /^[A-Za-z0-9._-]+$/

export interface FileBlobOptions {
  /**
   * Write values with O_DIRECT, bypassing the page cache (default true; falls back to buffered
   * writes where refused). False keeps written values in the page cache, e.g. for data that is
   * about to be read back.
   */
  readonly directWrites?: boolean
  /** Staging buffers for direct writes (tests give misaligned ones to see the fallback). */
  readonly staging?: StagingBuffers
}

export class FileBlob implements Blob {
  readonly #root: string
  #closed = false
  /** Temp files of this instance's `set`s in flight (paths): never taken for leftovers. */
  readonly #writing = new Set<string>()
  /** Whether the next `set` tries O_DIRECT: until the file system refuses it once. */
  #direct: boolean
  readonly #staging: StagingBuffers

  /** `root` is created on the first write; a missing root reads as empty. */
  constructor(root: string, opts: FileBlobOptions = {}) {
    this.#root = resolve(root)
    this.#direct = opts.directWrites ?? true
    this.#staging = opts.staging ?? new StagingBuffers()
  }

  get root(): string {
    return this.#root
  }

  /** Whether writes currently bypass the page cache (false once the file system refused it). */
  get directWrites(): boolean {
    return this.#direct
  }

  async get(key: string, opts?: GetOptions): Promise<Uint8Array | null> {
    this.#check(opts)
    checkBlobKey(key)
    checkBlobRange(opts?.range)
    try {
      if (opts?.range !== undefined) return await readRange(join(this.#root, key), opts.range, opts.alloc, opts.signal)
      if (opts?.alloc !== undefined) return await readInto(join(this.#root, key), opts.alloc, opts.signal)
      const buf = await readFile(join(this.#root, key), { signal: opts?.signal })
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    } catch (err) {
      if (isAbsent(err)) return null
      throw this.#wrap('get', key, err, opts)
    }
  }

  async set(key: string, value: Uint8Array, opts?: Abortable): Promise<void> {
    this.#check(opts)
    checkBlobKey(key)
    checkBlobValue(value)
    const path = join(this.#root, key)
    const dir = dirname(path)
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}~`) // NB: the name TEMP_NAME matches
    this.#writing.add(tmp)
    try {
      await inDir(dir, () => this.#writeTemp(tmp, value, opts?.signal))
      opts?.signal?.throwIfAborted()
      await rename(tmp, path)
    } catch (err) {
      // NB: a failed cleanup leaves a temp file behind, which listings and reads never see.
      await rm(tmp, { force: true }).catch(() => undefined)
      if (hasCode(err, 'ENOTDIR', 'EISDIR', 'EEXIST')) {
        throw new InvalidUsageError(`blob key "${key}" conflicts with an existing key used as a directory (or the reverse)`)
      }
      throw this.#wrap('set', key, err, opts)
    } finally {
      this.#writing.delete(tmp)
    }
    // The rename happened: from here a failure leaves the write in place but maybe not durable.
    try {
      await fsyncDir(dir)
    } catch (err) {
      throw indeterminate(`file blob set "${key}": the write may not be durable: ${message(err)}`, err)
    }
  }

  /** Creates the temp file `tmp` holding `value`, durably: directly when allowed, else buffered. */
  async #writeTemp(tmp: string, value: Uint8Array, signal: AbortSignal | undefined): Promise<void> {
    if (this.#direct) {
      try {
        return await writeFileDirect(tmp, value, this.#staging, signal)
      } catch (err) {
        if (!(err instanceof DirectIoRefused)) throw err
        this.#direct = false
        await rm(tmp, { force: true })
      }
    }
    const handle = await open(tmp, 'wx')
    try {
      let at = 0
      while (at < value.byteLength) {
        const { bytesWritten } = await handle.write(value, at, value.byteLength - at)
        at += bytesWritten
      }
      await handle.sync()
    } finally {
      await handle.close()
    }
  }

  async delete(key: string, opts?: Abortable): Promise<number | null> {
    this.#check(opts)
    checkBlobKey(key)
    const path = join(this.#root, key)
    try {
      const st = await stat(path)
      if (!st.isFile()) return null
      await unlink(path)
      await removeEmptyDirs(dirname(path), this.#root)
      return st.size
    } catch (err) {
      if (isAbsent(err)) return null
      throw this.#wrap('delete', key, err, opts)
    }
  }

  async *list(prefix: string, opts?: Abortable): AsyncIterable<BlobMeta> {
    this.#check(opts)
    checkBlobPrefix(prefix)
    for await (const file of this.#files(prefix, 'list', opts)) {
      if (!file.temp) yield { key: file.key, sizeBytes: file.sizeBytes, lastModified: file.lastModified }
    }
  }

  /**
   * Deletes temp files under `prefix` (left by a crash mid-`set`) not written to for `olderThanMs`,
   * except this instance's own writes in flight (another process's are told by their age alone).
   */
  async removeInterrupted(prefix: string, olderThanMs: number, opts?: Abortable): Promise<number> {
    this.#check(opts)
    checkBlobPrefix(prefix)
    const before = Date.now() - olderThanMs
    let freed = 0
    for await (const file of this.#files(prefix, 'remove_interrupted', opts)) {
      if (!file.temp || file.lastModified.getTime() > before || this.#writing.has(join(this.#root, file.key))) continue
      try {
        await unlink(join(this.#root, file.key))
        await removeEmptyDirs(dirname(join(this.#root, file.key)), this.#root)
        freed += file.sizeBytes
      } catch (err) {
        if (!isAbsent(err)) throw this.#wrap('remove_interrupted', file.key, err, opts)
      }
    }
    return freed
  }

  /**
   * The files under `prefix`, depth first: keys, and the temp files among them (`temp`, `key` then
   * being the temp file's path under the root).
   */
  async *#files(prefix: string, op: string, opts: Abortable | undefined): AsyncIterable<BlobMeta & { readonly temp: boolean }> {
    const slash = prefix.lastIndexOf('/')
    const top = prefix.slice(0, slash + 1)
    const namePrefix = prefix.slice(slash + 1)
    // Depth-first over directories, each `[relative key prefix ending in '/' or '', filter]`.
    const stack: Array<[string, string]> = [[top, namePrefix]]
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      const [relDir, filter] = next
      opts?.signal?.throwIfAborted()
      let entries: Dirent[]
      try {
        entries = await readdir(join(this.#root, relDir), { withFileTypes: true })
      } catch (err) {
        if (isAbsent(err)) continue
        throw this.#wrap(op, prefix, err, opts)
      }
      for (const entry of entries) {
        // NB: a temp file is named for no key, so only a directory's own listing (filter '') shows it.
        const temp = filter === '' && entry.isFile() && TEMP_NAME.test(entry.name)
        if (!temp && (!entry.name.startsWith(filter) || !SEGMENT.test(entry.name) || entry.name === '.' || entry.name === '..')) continue
        const key = relDir + entry.name
        if (entry.isDirectory()) {
          stack.push([`${key}/`, ''])
        } else if (entry.isFile()) {
          let st
          try {
            st = await stat(join(this.#root, key))
          } catch (err) {
            if (isAbsent(err)) continue // deleted (or renamed over its key) since the readdir
            throw this.#wrap(op, prefix, err, opts)
          }
          yield { key, sizeBytes: st.size, lastModified: st.mtime, temp }
        }
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  #check(opts: Abortable | undefined): void {
    if (this.#closed) throw closedError('file blob')
    opts?.signal?.throwIfAborted()
  }

  /**
   * Errors before a write takes effect are determinate (a full file system says so: `noSpace`); an
   * abort surfaces as the signal's reason.
   */
  #wrap(op: string, key: string, err: unknown, opts: Abortable | undefined): unknown {
    if (opts?.signal?.aborted) return opts.signal.reason
    if (err instanceof InvalidUsageError) return err
    if (isNoSpace(err)) return noSpace(`file blob ${op} "${key}": no space left under ${this.#root}`, err)
    return determinate(`file blob ${op} "${key}": ${message(err)}`, err)
  }
}

/** The name `set` gives its temp files. */
const TEMP_NAME = /^\.tmp-[0-9a-f]{16}~$/

function isAbsent(err: unknown): boolean {
  return hasCode(err, 'ENOENT', 'ENOTDIR', 'EISDIR')
}

/**
 * Reads a whole file into the buffer `alloc` gives for its size. NB: a blob is never rewritten
 * with other bytes (keys are unique), so a size that changes mid-read is a fault, not a race.
 */
async function readInto(path: string, alloc: (size: number) => Uint8Array, signal: AbortSignal | undefined): Promise<Uint8Array> {
  const handle = await open(path, 'r')
  try {
    const { size } = await handle.stat()
    return await readAt(handle, allocated(alloc, size), 0, signal)
  } finally {
    await handle.close()
  }
}

/**
 * Reads the bytes `range` selects (cut at the file's end) into a fresh buffer, or the one `alloc`
 * gives for their count; null if `path` is not a regular file (a key used as a directory).
 */
async function readRange(
  path: string,
  range: BlobRange,
  alloc: ((size: number) => Uint8Array) | undefined,
  signal: AbortSignal | undefined,
): Promise<Uint8Array | null> {
  const handle = await open(path, 'r')
  try {
    const st = await handle.stat()
    if (!st.isFile()) return null
    const { start, end } = rangeBounds(range, st.size)
    const out = alloc !== undefined ? allocated(alloc, end - start) : new Uint8Array(end - start)
    return await readAt(handle, out, start, signal)
  } finally {
    await handle.close()
  }
}

/** Fills `out` from the file at `position`, in chunks of at most 8 MiB, checking `signal` between them. */
async function readAt(handle: FileHandle, out: Uint8Array, position: number, signal: AbortSignal | undefined): Promise<Uint8Array> {
  let at = 0
  while (at < out.byteLength) {
    signal?.throwIfAborted()
    const { bytesRead } = await handle.read(out, at, Math.min(out.byteLength - at, 8 << 20), position + at)
    if (bytesRead === 0) throw new Error(`file shrank while being read (${at} of ${out.byteLength} bytes at ${position})`)
    at += bytesRead
  }
  return out
}
