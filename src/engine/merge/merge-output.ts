/**
 * The rows a merge emitted, as a growable struct of arrays the caller drains. Row i says: copy the
 * key and the value of row `row[i]` of the source pushed with id `src[i]`, with time
 * (`time0[i]`, `time1[i]`) and diff (`diffLo[i]`, `diffHi[i]`).
 *
 * NB: growing replaces the arrays; read them through the getters after each `step()`, never keep
 * one across a step.
 */
export class MergeOutput {
  #src: Uint32Array
  #row: Uint32Array
  #time0: Uint32Array
  #time1: Uint32Array
  #diffLo: Uint32Array
  #diffHi: Int32Array
  #rows = 0
  #bytes = 0

  constructor(initialCapacity = 4096) {
    const n = Math.max(1, Math.floor(initialCapacity))
    this.#src = new Uint32Array(n)
    this.#row = new Uint32Array(n)
    this.#time0 = new Uint32Array(n)
    this.#time1 = new Uint32Array(n)
    this.#diffLo = new Uint32Array(n)
    this.#diffHi = new Int32Array(n)
  }

  /** Rows appended since the last `reset()`. */
  get rows(): number {
    return this.#rows
  }
  /** Their budget cost: Σ (key length + value length + 16), as persist counts a chunk's bytes. */
  get bytes(): number {
    return this.#bytes
  }
  get capacity(): number {
    return this.#src.length
  }
  get src(): Uint32Array {
    return this.#src
  }
  get row(): Uint32Array {
    return this.#row
  }
  get time0(): Uint32Array {
    return this.#time0
  }
  get time1(): Uint32Array {
    return this.#time1
  }
  get diffLo(): Uint32Array {
    return this.#diffLo
  }
  get diffHi(): Int32Array {
    return this.#diffHi
  }

  /** Forgets the rows (keeps the buffers). */
  reset(): void {
    this.#rows = 0
    this.#bytes = 0
  }

  /** Appends one row; `cost` is its budget cost. */
  push(src: number, row: number, time0: number, time1: number, diffLo: number, diffHi: number, cost: number): void {
    const i = this.#rows
    if (i === this.#src.length) this.#grow()
    this.#src[i] = src
    this.#row[i] = row
    this.#time0[i] = time0
    this.#time1[i] = time1
    this.#diffLo[i] = diffLo
    this.#diffHi[i] = diffHi
    this.#rows = i + 1
    this.#bytes += cost
  }

  #grow(): void {
    const n = this.#src.length * 2
    const grow = <A extends Uint32Array | Int32Array>(a: A, make: (n: number) => A): A => {
      const b = make(n)
      b.set(a)
      return b
    }
    this.#src = grow(this.#src, (k) => new Uint32Array(k))
    this.#row = grow(this.#row, (k) => new Uint32Array(k))
    this.#time0 = grow(this.#time0, (k) => new Uint32Array(k))
    this.#time1 = grow(this.#time1, (k) => new Uint32Array(k))
    this.#diffLo = grow(this.#diffLo, (k) => new Uint32Array(k))
    this.#diffHi = grow(this.#diffHi, (k) => new Int32Array(k))
  }
}
