/**
 * A JSON batch body (`{"lower":…,"upper":…,"updates":[…],…}`) read as its bytes arrive: the
 * small fields come out parsed as soon as each is complete, and the rows of the updates array
 * go into an `UpdatesBuilder` as they arrive (json-rows-reader.ts), so the body is never held
 * whole, as text or as objects.
 *
 * The fields may come in any order; the caller decides what to do with rows that arrive before
 * the fields it needs (e.g. keep them). Only the listed field names are accepted, each once.
 *
 * Memory: the bytes of one incomplete field or row, the rows not yet taken (`takeRows`), and a
 * field's value up to `maxFieldBytes`.
 */
import { isWs, JsonBodyError, NEED_MORE, parseJsonText, scanString, scanValue, skipWs } from './json-scan.js'
import { JsonRowsReader } from './json-rows-reader.js'
import { UpdatesBuilder, type Updates, type UpdatesShape } from './updates.js'

export interface JsonBatchBodyOptions {
  /** The field holding the rows (an array). */
  readonly rowsField: string
  /** Every other field accepted. */
  readonly fields: readonly string[]
  /** Largest value of a field other than the rows, in bytes. */
  readonly maxFieldBytes: number
}

/** A field other than the rows, parsed. */
export interface BodyField {
  readonly name: string
  readonly value: unknown
}

/** Rows read since the last take. */
export interface BodyRows {
  readonly updates: Updates
  /** The index in the array of its first row. */
  readonly firstRow: number
}

type State = 'start' | 'name' | 'first-name' | 'colon' | 'value' | 'rows' | 'after' | 'done'

export class JsonBatchBody {
  readonly #opts: JsonBatchBodyOptions
  readonly #builder: UpdatesBuilder
  readonly #rows: JsonRowsReader
  readonly #seen = new Set<string>()
  readonly #fields: BodyField[] = []
  /** Unconsumed bytes are `#buf[#pos, #end)`. */
  #buf: Uint8Array = new Uint8Array(0)
  /** Whether `#buf` is this reader's own (`#own`; else it is a chunk as pushed, never written to). */
  #owned = false
  #own: Uint8Array = new Uint8Array(0)
  #pos = 0
  #end = 0
  #state: State = 'start'
  #name = ''
  #taken = 0

  constructor(shape: UpdatesShape, opts: JsonBatchBodyOptions) {
    this.#opts = opts
    this.#builder = new UpdatesBuilder(shape, { reuseBuffers: true })
    this.#rows = new JsonRowsReader(this.#builder, `body.${opts.rowsField}`)
  }

  /** Whether the rows field was read (its closing `]`). */
  get sawRows(): boolean {
    return this.#rows.closed
  }

  /** Bytes of rows read and not yet taken. */
  get bufferedRowBytes(): number {
    return this.#builder.byteLength()
  }

  /** Reads `chunk`. Throws `JsonBodyError`. Nothing of `chunk` is referred to once this returns. */
  push(chunk: Uint8Array): void {
    this.#append(chunk)
    this.#run(false)
    if (!this.#owned && this.#pos < this.#end) {
      // The start of a row or field the next chunk completes: kept as a copy of its own.
      const left = this.#end - this.#pos
      const own = this.#storage(left)
      own.set(this.#buf.subarray(this.#pos, this.#end))
      this.#buf = own
      this.#owned = true
      this.#pos = 0
      this.#end = left
    }
  }

  /** The body ended: checks it was complete. Throws `JsonBodyError`. */
  end(): void {
    this.#run(true)
    if (this.#state !== 'done') throw new JsonBodyError('malformed', 'body: not valid JSON (it ends before its closing })')
    if (!this.#rows.closed) throw new JsonBodyError('malformed', `body.${this.#opts.rowsField}: expected array, received undefined`)
  }

  /** The fields completed since the last take, in body order. */
  takeFields(): BodyField[] {
    return this.#fields.splice(0)
  }

  /**
   * The rows read since the last take, or null when there are none. NB: they view buffers the
   * next `push` reuses: consume (or copy) them first.
   */
  takeRows(): BodyRows | null {
    if (this.#builder.length === 0) return null
    const firstRow = this.#taken
    const updates = this.#builder.finish()
    this.#taken += updates.length
    return { updates, firstRow }
  }

  #append(chunk: Uint8Array): void {
    if (this.#pos === this.#end) {
      this.#buf = chunk
      this.#owned = false
      this.#pos = 0
      this.#end = chunk.byteLength
      return
    }
    // NB: a field or row spanning chunks: the unconsumed bytes move to the front of a buffer of
    // their own that grows by doubling, so a huge element is copied O(1) times per byte.
    const left = this.#end - this.#pos
    const need = left + chunk.byteLength
    let buf = this.#buf
    if (need > buf.byteLength || !this.#owned) {
      buf = this.#storage(need)
      if (buf !== this.#buf) buf.set(this.#buf.subarray(this.#pos, this.#end))
      else if (this.#pos > 0) buf.copyWithin(0, this.#pos, this.#end)
      this.#owned = true
    } else if (this.#pos > 0) {
      buf.copyWithin(0, this.#pos, this.#end)
    }
    buf.set(chunk, left)
    this.#buf = buf
    this.#pos = 0
    this.#end = need
  }

  /**
   * The reader's own buffer with room for `n` bytes: kept from one push to the next and grown by
   * doubling, since a body's rows span its chunks at every chunk boundary and a fresh buffer of a
   * chunk's size each time costs its page faults. NB: a new buffer does not keep the old contents.
   */
  #storage(n: number): Uint8Array {
    if (this.#own.byteLength < n) this.#own = new Uint8Array(Math.max(n, 2 * this.#own.byteLength, 1 << 12))
    return this.#own
  }

  #run(final: boolean): void {
    const b = this.#buf
    const end = this.#end
    let p = this.#pos
    for (;;) {
      if (this.#state === 'rows') {
        p = this.#rows.read(b, p, end, final)
        if (!this.#rows.closed) break
        this.#state = 'after'
        continue
      }
      p = skipWs(b, p, end)
      if (p >= end) break
      const c = b[p]!
      if (this.#state === 'start') {
        if (c !== 0x7b) throw new JsonBodyError('malformed', 'body: must be a JSON object')
        this.#state = 'first-name'
        p++
        continue
      }
      if (this.#state === 'first-name' && c === 0x7d) {
        this.#state = 'done'
        p++
        continue
      }
      if (this.#state === 'name' || this.#state === 'first-name') {
        if (c !== 0x22) throw new JsonBodyError('malformed', 'body: not valid JSON (expected a field name)')
        const e = scanString(b, p, end)
        if (e === NEED_MORE) {
          if (end - p > this.#opts.maxFieldBytes) throw new JsonBodyError('malformed', 'body: a field name is too long')
          break
        }
        const name = parseJsonText(b, p, e, 'body')
        this.#name = String(name)
        if (this.#name !== this.#opts.rowsField && !this.#opts.fields.includes(this.#name)) throw new JsonBodyError('malformed', `body.${this.#name}: unknown property`)
        if (this.#seen.has(this.#name)) throw new JsonBodyError('malformed', `body.${this.#name}: appears twice`)
        this.#seen.add(this.#name)
        this.#state = 'colon'
        p = e
        continue
      }
      if (this.#state === 'colon') {
        if (c !== 0x3a) throw new JsonBodyError('malformed', `body.${this.#name}: not valid JSON (expected :)`)
        this.#state = 'value'
        p++
        continue
      }
      if (this.#state === 'value') {
        if (this.#name === this.#opts.rowsField && c === 0x5b) {
          this.#state = 'rows'
          p++
          continue
        }
        const e = scanValue(b, p, end, final)
        if (e === NEED_MORE) {
          if (end - p > this.#opts.maxFieldBytes) throw new JsonBodyError('malformed', `body.${this.#name}: larger than ${this.#opts.maxFieldBytes} bytes`)
          break
        }
        const value = parseJsonText(b, p, e, `body.${this.#name}`)
        if (this.#name === this.#opts.rowsField) throw new JsonBodyError('malformed', `body.${this.#name}: expected array, received ${jsonTypeOf(value)}`)
        this.#fields.push({ name: this.#name, value })
        this.#state = 'after'
        p = e
        continue
      }
      if (this.#state === 'after') {
        if (c === 0x2c) this.#state = 'name'
        else if (c === 0x7d) this.#state = 'done'
        else throw new JsonBodyError('malformed', `body: not valid JSON (expected , or } after ${this.#name})`)
        p++
        continue
      }
      // done
      if (!isWs(c)) throw new JsonBodyError('malformed', 'body: not valid JSON (bytes follow the closing })')
      p++
    }
    this.#pos = p
  }
}

function jsonTypeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v
}
