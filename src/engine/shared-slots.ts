/**
 * Pools of reusable SharedArrayBuffers for part bytes that cross threads: input parts the main
 * thread reads for workers, and output parts workers encode for the main thread to upload. Reused
 * memory is already mapped (no page faults), makes no garbage, and is never copied or transferred.
 *
 * NB: why a pool and not fresh SharedArrayBuffers: V8 does not count shared backing stores as
 * memory pressure, so dropped ones wait for an unrelated GC; at 32 MiB a part, RSS grew to GiBs.
 *
 * A slot is one SharedArrayBuffer: a header whose first i32 counts the slot's holders, then the
 * data. A view of the data is lent with one hold; every holder, on any thread, drops its hold
 * with `releaseSlot(view)` when done with the bytes, and the slot is free again at zero. Releases
 * are atomic stores, not messages, so none is lost when a task ends first.
 *
 * A pool made with `pageAligned` (the workers' output parts) makes its slots of shared
 * WebAssembly memory, which V8 maps page-aligned, and pads the header to a page, so the data
 * starts on a page boundary: such a part is written to disk with O_DIRECT from where it lies
 * (location/direct-io.ts), without a copy into a staging buffer on the event loop. NB: only that
 * pool: V8 reserves address space for every WebAssembly memory, and a compaction's input windows
 * are many. `isPageAlignedView` (direct-io.ts) tells a view's alignment; without WebAssembly
 * (`--jitless`), or when V8 refuses the memory, a slot is a plain SharedArrayBuffer and its parts
 * are staged as before.
 */

import { DIRECT_ALIGN, pageAlignedSharedMemory } from '../location/direct-io.js'
import { reuseIdleMs } from './reuse-idle.js'

/**
 * Most slots a pool keeps. Finding a free slot looks at every slot (holders release them on other
 * threads, unseen), so a pool as large as the parts lent at once made a merge of thousands of runs
 * (a snapshot of a trace compaction fell behind on: every run's part is held until the merge passes
 * it) cost a scan of thousands of slots per part. Beyond this many, parts get slots of their own.
 */
export const MAX_POOLED_SLOTS = 256

/** Bytes before a slot's data: the holders count (8-byte aligned data), or a page in a page-aligned pool. */
const HEADER = 8

interface Slot {
  readonly buffer: SharedArrayBuffer
  readonly holds: Int32Array
  /** The owner of the current lending (see `dropLent`). */
  owner: object | null
}

/** Views lent by any pool of this thread, to tell them from other bytes. */
const lentViews = new WeakSet<Uint8Array>()

export class SharedSlots {
  readonly #pageAligned: boolean
  readonly #header: number
  #slots: Slot[] = []
  #idle: ReturnType<typeof setTimeout> | null = null
  /** Owners whose lending is over (`dropLent`): what they borrow after it is not pooled. */
  readonly #dropped = new WeakSet<object>()

  /** `pageAligned`: slots whose data starts on a page boundary where possible (see above). */
  constructor(opts: { readonly pageAligned?: boolean } = {}) {
    this.#pageAligned = opts.pageAligned ?? false
    this.#header = this.#pageAligned ? DIRECT_ALIGN : HEADER
  }

  /**
   * A view of exactly `size` bytes from the smallest free slot that fits, or a new slot, lent
   * with one hold. `owner`: see `dropLent`.
   */
  acquire(size: number, owner: object | null = null): Uint8Array {
    // NB: an owner's fetch that began before its lending ended may borrow after it (a read whose
    // task failed while a part was on its way): nobody will release that, so it is not pooled.
    if (owner !== null && this.#dropped.has(owner)) return this.#unpooled(size)
    this.#touch()
    let best: Slot | null = null
    let tooSmall = -1
    for (let i = 0; i < this.#slots.length; i++) {
      const slot = this.#slots[i] as Slot
      if (Atomics.load(slot.holds, 0) !== 0) continue
      if (slot.buffer.byteLength - this.#header < size) tooSmall = i
      else if (best === null || slot.buffer.byteLength < best.buffer.byteLength) best = slot
    }
    if (best === null) {
      // A free slot too small for this part is replaced (part sizes vary little around the target).
      if (tooSmall >= 0) this.#slots.splice(tooSmall, 1)
      else if (this.#slots.length >= MAX_POOLED_SLOTS) return this.#unpooled(size)
      const bytes = this.#header + Math.ceil(size * 1.03125)
      const buffer = (this.#pageAligned ? pageAlignedSharedMemory(bytes) : null) ?? new SharedArrayBuffer(bytes)
      best = { buffer, holds: new Int32Array(buffer, 0, 1), owner: null }
      this.#slots.push(best)
    }
    Atomics.store(best.holds, 0, 1)
    best.owner = owner
    const view = new Uint8Array(best.buffer, this.#header, size)
    lentViews.add(view)
    return view
  }

  /**
   * Forgets the slots still lent to `owner` (their holders failed to release them, e.g. a task
   * aborted mid-part), and returns how many. Their memory is freed once every thread has
   * dropped its views. Ends the owner's lending: what it acquires afterwards is not pooled.
   */
  dropLent(owner: object): number {
    this.#dropped.add(owner)
    const before = this.#slots.length
    this.#slots = this.#slots.filter((s) => s.owner !== owner || Atomics.load(s.holds, 0) === 0)
    return before - this.#slots.length
  }

  /** Slots in the pool, and how many are lent (for tests and metrics). */
  get size(): number {
    return this.#slots.length
  }

  get lent(): number {
    return this.#slots.filter((s) => Atomics.load(s.holds, 0) !== 0).length
  }

  /** A slot outside the pool, lent with one hold: freed with its last view, never reused. */
  #unpooled(size: number): Uint8Array {
    const buffer = new SharedArrayBuffer(this.#header + size)
    Atomics.store(new Int32Array(buffer, 0, 1), 0, 1)
    const view = new Uint8Array(buffer, this.#header, size)
    lentViews.add(view)
    return view
  }

  #touch(): void {
    if (this.#idle !== null) clearTimeout(this.#idle)
    this.#idle = setTimeout(() => {
      this.#idle = null
      // Lent slots stay referenced by their holders until they are done with them.
      this.#slots = this.#slots.filter((s) => Atomics.load(s.holds, 0) !== 0)
    }, reuseIdleMs())
    this.#idle.unref()
  }
}

/** True for a view some pool of this thread lent (not for a copy of it received from another thread). */
export function isLentHere(bytes: Uint8Array): boolean {
  return lentViews.has(bytes)
}

/** Adds a hold on the slot of a lent view (before handing it to another holder). */
export function retainSlot(bytes: Uint8Array): void {
  Atomics.add(new Int32Array(bytes.buffer as SharedArrayBuffer, 0, 1), 0, 1)
}

/** Drops one hold on the slot of a lent view. NB: the holder must not read `bytes` afterwards. */
export function releaseSlot(bytes: Uint8Array): void {
  Atomics.sub(new Int32Array(bytes.buffer as SharedArrayBuffer, 0, 1), 0, 1)
}
