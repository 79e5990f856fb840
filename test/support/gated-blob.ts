/** A blob whose reads tests hold back at a chosen key, to stop work at a known point without timers. */
import type { Blob, BlobMeta, GetOptions } from '../../src/location/blob.js'
import type { Abortable } from '../../src/location/errors.js'
import { MemBlob } from '../../src/location/mem-blob.js'

/** A blob read held back until `release()`. */
export interface Hold {
  /** Resolves with the key of the first `get` this hold stopped. */
  readonly reached: Promise<string>
  /** Lets every held and later matching `get` through. Idempotent. */
  release(): void
}

/**
 * A blob (a new MemBlob unless given one) whose reads can be held, to stop a compaction or a read
 * at a known point without timers. With `closeInner: false`, `close` leaves a shared store open.
 */
export class GatedBlob implements Blob {
  readonly #inner: Blob
  readonly #closeInner: boolean
  readonly #holds = new Set<{ readonly match: (key: string) => boolean; readonly gate: Promise<void>; hit(key: string): void; open(): void }>()

  constructor(inner: Blob = new MemBlob(), opts: { readonly closeInner?: boolean } = {}) {
    this.#inner = inner
    this.#closeInner = opts.closeInner ?? true
  }

  /** Holds every later `get` whose key satisfies `match`, until `release()`. */
  hold(match: (key: string) => boolean): Hold {
    let open!: () => void
    let hit!: (key: string) => void
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    const reached = new Promise<string>((resolve) => {
      hit = resolve
    })
    const entry = { match, gate, hit, open }
    this.#holds.add(entry)
    return {
      reached,
      release: () => {
        this.#holds.delete(entry)
        open()
      },
    }
  }

  /** Releases every hold (for `t.after`, before the app closes). */
  releaseAll(): void {
    for (const h of [...this.#holds]) {
      this.#holds.delete(h)
      h.open()
    }
  }

  async get(key: string, opts?: GetOptions): Promise<Uint8Array | null> {
    for (const h of this.#holds) {
      if (!h.match(key)) continue
      h.hit(key)
      await h.gate
      break
    }
    return this.#inner.get(key, opts)
  }

  set(key: string, value: Uint8Array, opts?: Abortable): Promise<void> {
    return this.#inner.set(key, value, opts)
  }

  delete(key: string, opts?: Abortable): Promise<number | null> {
    return this.#inner.delete(key, opts)
  }

  list(prefix: string, opts?: Abortable): AsyncIterable<BlobMeta> {
    return this.#inner.list(prefix, opts)
  }

  removeInterrupted(prefix: string, olderThanMs: number, opts?: Abortable): Promise<number> {
    return this.#inner.removeInterrupted(prefix, olderThanMs, opts)
  }

  async close(): Promise<void> {
    if (this.#closeInner) await this.#inner.close()
  }
}
