/**
 * Reusable plain buffers of one thread, for memory a task needs for a moment and gives back (the
 * bodies of a write's record batches while their rows are read). Reused memory is already mapped:
 * on the virtual machines compactd is measured on, first touches of fresh pages cost more than
 * the copying itself (a fresh 45 MB buffer takes ~40× longer to fill than a warm one).
 *
 * NB: a buffer given back may be handed out again at once: the giver must not read it afterwards.
 * Free buffers are dropped after the pool has not been used for the thread's reuse hold
 * (reuse-idle.ts), and at most `MAX_FREE` are kept.
 */
import { reuseIdleMs } from './reuse-idle.js'

const MAX_FREE = 8

export class BufferPool {
  #free: ArrayBuffer[] = []
  #idle: ReturnType<typeof setTimeout> | null = null

  /** A view of exactly `size` bytes at offset 0 of a free buffer that fits (the smallest), or of a new one. */
  take(size: number): Uint8Array {
    this.#touch()
    let best = -1
    for (let i = 0; i < this.#free.length; i++) {
      const b = this.#free[i] as ArrayBuffer
      if (b.byteLength >= size && (best < 0 || b.byteLength < (this.#free[best] as ArrayBuffer).byteLength)) best = i
    }
    if (best >= 0) {
      const [buffer] = this.#free.splice(best, 1)
      return new Uint8Array(buffer as ArrayBuffer, 0, size)
    }
    // Some headroom: sizes vary a little from one batch to the next.
    return new Uint8Array(new ArrayBuffer(Math.ceil(size * 1.0625) + 64), 0, size)
  }

  /** Gives the buffer under `bytes` back (see the NB above). */
  give(bytes: Uint8Array): void {
    if (!(bytes.buffer instanceof ArrayBuffer) || this.#free.includes(bytes.buffer)) return
    this.#free.push(bytes.buffer)
    if (this.#free.length > MAX_FREE) {
      // The smallest goes: the large ones are the expensive ones to map again.
      let smallest = 0
      for (let i = 1; i < this.#free.length; i++) if ((this.#free[i] as ArrayBuffer).byteLength < (this.#free[smallest] as ArrayBuffer).byteLength) smallest = i
      this.#free.splice(smallest, 1)
    }
  }

  #touch(): void {
    if (this.#idle !== null) clearTimeout(this.#idle)
    this.#idle = setTimeout(() => {
        this.#idle = null
      this.#free = []
    }, reuseIdleMs())
    this.#idle.unref()
  }
}
