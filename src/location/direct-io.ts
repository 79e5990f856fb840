/**
 * Writing a file with O_DIRECT: the bytes go from an aligned staging buffer to the device, not
 * through the page cache (RocksDB's `use_direct_io_for_flush_and_compaction`, for the same reason).
 *
 * Why: a compaction writes every output once and reads none of it back, and buffered writes of
 * hundreds of MiB fill the page cache with pages that must be allocated, copied into, flushed by
 * the fsync and later evicted. On a VM whose host takes back free guest memory (balloon free-page
 * reporting, e.g. Firecracker), allocating those pages is the dominant cost: 630 MiB of buffered
 * writes plus fsync took 1.2–1.5 s of kernel CPU there, against ~0.1 s direct (see
 * bench/RESULTS.md). A snapshot that later reads an output reads it from the device.
 *
 * O_DIRECT needs the memory address, the file offset and the length aligned to the device's
 * logical block size. Staging buffers are `WebAssembly.Memory` pages (V8 maps them page-aligned),
 * every write is a whole number of `DIRECT_ALIGN` blocks (the last one zero-padded), and the file
 * is then truncated to its exact length. A value that itself lies in memory known to start on a
 * page boundary (`markPageAligned`: the engine's shared slots, where workers encode parts) is
 * written from where it lies, block by block, and only its last partial block is staged: no copy
 * of the whole value on the event loop. Where the file system or the buffer does not allow it
 * (tmpfs before Linux 6.6, ZFS, a platform without O_DIRECT), the write fails with EINVAL before
 * any byte lands: `DirectIoRefused`, and the caller writes through the page cache instead.
 */
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { hasCode } from './fs-util.js'

/** Alignment of staging buffers, offsets and lengths: a page, a multiple of any logical block size in use. */
export const DIRECT_ALIGN = 4096

/** Bytes staged per write (a whole number of `DIRECT_ALIGN` blocks and of wasm pages). */
export const DIRECT_STAGE_BYTES = 4 << 20

const WASM_PAGE = 65536

/** Open flags for a new file written directly; undefined where the platform has no O_DIRECT. */
const CREATE_DIRECT = constants.O_DIRECT === undefined ? undefined : constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT

/** Memory known to start on a page boundary (see `markPageAligned`). */
const pageAligned = new WeakSet<ArrayBufferLike>()

/**
 * Records that `buffer`'s memory starts on a page boundary, as WebAssembly memory does (V8 maps it
 * page by page). JavaScript cannot see addresses, so whoever holds such memory says so; a view of
 * it at an offset that is a multiple of `DIRECT_ALIGN` is then written without staging. NB: a
 * buffer that arrived from another thread is a new object here and must be marked again.
 */
export function markPageAligned(buffer: ArrayBufferLike): void {
  pageAligned.add(buffer)
}

/** Whether `view` starts on a page boundary of memory marked page-aligned on this thread. */
export function isPageAlignedView(view: Uint8Array): boolean {
  return pageAligned.has(view.buffer) && view.byteOffset % DIRECT_ALIGN === 0
}

/** The bytes of `value` that can go to the device from where they lie: its whole blocks, or none. */
function inPlaceBytes(value: Uint8Array): number {
  return isPageAlignedView(value) ? value.byteLength - (value.byteLength % DIRECT_ALIGN) : 0
}

/** The file system, platform or buffer does not allow direct I/O; nothing was written. */
export class DirectIoRefused extends Error {
  constructor(why: string, options?: ErrorOptions) {
    super(`direct I/O refused: ${why}`, options)
    this.name = 'DirectIoRefused'
  }
}

/** A pool of aligned staging buffers of `DIRECT_STAGE_BYTES`, at most `keep` of them kept free. */
export class StagingBuffers {
  readonly #free: Uint8Array[] = []
  readonly #keep: number
  readonly #make: () => Uint8Array

  /** `make`: allocates one buffer (default: wasm memory); tests give misaligned ones. */
  constructor(opts: { readonly keep?: number; readonly make?: () => Uint8Array } = {}) {
    this.#keep = opts.keep ?? 4
    this.#make = opts.make ?? wasmPages
  }

  acquire(): Uint8Array {
    return this.#free.pop() ?? this.#make()
  }

  release(buf: Uint8Array): void {
    if (this.#free.length < this.#keep) this.#free.push(buf)
  }
}

/** The part of the WebAssembly global used here (the compiler's lib has no WebAssembly types). */
interface WasmGlobal {
  Memory: new (desc: { initial: number; maximum: number; shared?: boolean }) => { readonly buffer: ArrayBuffer | SharedArrayBuffer }
}

/** WebAssembly memory of `pages` pages (V8 maps it page-aligned), or null without WebAssembly (`--jitless`). */
function wasmMemory(pages: number, shared: boolean): ArrayBuffer | SharedArrayBuffer | null {
  const wasm = (globalThis as { WebAssembly?: WasmGlobal }).WebAssembly
  return wasm === undefined ? null : new wasm.Memory({ initial: pages, maximum: pages, shared }).buffer
}

/**
 * Shared memory of at least `bytes` whose start is a page boundary (WebAssembly memory, marked so
 * here), for buffers that will be written with O_DIRECT from where they lie; null where there is
 * none to be had: no WebAssembly, or V8 refused it (it reserves address space for every
 * WebAssembly memory, so callers use this for few, large buffers).
 */
export function pageAlignedSharedMemory(bytes: number): SharedArrayBuffer | null {
  let buffer: SharedArrayBuffer | null
  try {
    buffer = wasmMemory(Math.ceil(bytes / WASM_PAGE), true) as SharedArrayBuffer | null
  } catch {
    return null
  }
  if (buffer !== null) markPageAligned(buffer)
  return buffer
}

function wasmPages(): Uint8Array {
  const buffer = wasmMemory(DIRECT_STAGE_BYTES / WASM_PAGE, false)
  if (buffer === null) throw new DirectIoRefused('no WebAssembly memory to stage through')
  return new Uint8Array(buffer)
}

/**
 * Creates `path` (which must not exist) holding exactly `value`, written with O_DIRECT and
 * fsynced. Rejects with `DirectIoRefused` when direct I/O is not possible there (the caller then
 * removes `path` and writes it another way); any other error is the write's failure.
 */
export async function writeFileDirect(path: string, value: Uint8Array, staging: StagingBuffers, signal?: AbortSignal): Promise<void> {
  if (CREATE_DIRECT === undefined) throw new DirectIoRefused('this platform has no O_DIRECT')
  let handle
  try {
    handle = await open(path, CREATE_DIRECT)
  } catch (err) {
    throw hasCode(err, 'EINVAL') ? new DirectIoRefused(`the file system of ${path} does not support O_DIRECT`, { cause: err }) : err
  }
  try {
    let at = 0
    const inPlace = inPlaceBytes(value)
    try {
      while (at < inPlace) {
        signal?.throwIfAborted()
        const n = Math.min(DIRECT_STAGE_BYTES, inPlace - at)
        await writeFully(handle, value.subarray(at), n, at)
        at += n
      }
    } catch (err) {
      // The mark was wrong (nothing landed: the first block was refused): stage it all instead.
      if (!(err instanceof DirectIoRefused)) throw err
      pageAligned.delete(value.buffer)
      at = 0
    }
    if (at < value.byteLength) {
      const stage = staging.acquire()
      try {
        for (; at < value.byteLength; at += stage.byteLength) {
          signal?.throwIfAborted()
          const n = Math.min(stage.byteLength, value.byteLength - at)
          stage.set(value.subarray(at, at + n))
          const padded = Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN
          stage.fill(0, n, padded)
          await writeFully(handle, stage, padded, at)
        }
      } finally {
        staging.release(stage)
      }
    }
    // The last block was padded: cut the file back to the value's length.
    if (value.byteLength % DIRECT_ALIGN !== 0) await handle.truncate(value.byteLength)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Writes `stage[0, length)` at `position` with a handle opened for direct I/O. EINVAL on the first block means the buffer or the device refused the alignment: `DirectIoRefused`. */
export async function writeFully(handle: Awaited<ReturnType<typeof open>>, stage: Uint8Array, length: number, position: number): Promise<void> {
  let done = 0
  while (done < length) {
    let written: number
    try {
      ;({ bytesWritten: written } = await handle.write(stage, done, length - done, position + done))
    } catch (err) {
      if (hasCode(err, 'EINVAL') && position + done === 0) throw new DirectIoRefused('the device refused the alignment of the staging buffer', { cause: err })
      throw err
    }
    // NB: a short direct write stops at a block boundary in practice; one that does not would
    // leave the next write misaligned, which the device refuses (EINVAL), so it cannot go unseen.
    if (written <= 0) throw new Error(`direct write made no progress at byte ${position + done}`)
    done += written
  }
}
