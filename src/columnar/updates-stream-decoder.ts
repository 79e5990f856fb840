/**
 * An Arrow IPC stream of updates (a request body) decoded as its bytes arrive: the schema is
 * checked against the shard's shape as soon as its message is complete, and each record batch is
 * loaded and checked (types, nulls, UTF-8) as soon as its last byte arrives, with rows numbered
 * across batches. The same checks and messages as `decodeUpdatesStream` (part-format.ts), which
 * decodes a whole stream at once.
 *
 * Memory: what ipc-stream-reader.ts keeps (the message being received), plus the batches handed
 * out, which view their own body buffers.
 */
import type * as arrow from 'apache-arrow'
import { IpcError, IpcTooLargeError, loadBatch, type ColumnPlan } from './ipc-reader.js'
import { IpcStreamReader } from './ipc-stream-reader.js'
import { batchUpdates, planColumns } from './part-format.js'
import { err, ok, type Result } from './result.js'
import type { Updates, UpdatesShape } from './updates.js'

/** One record batch of the stream. */
export interface DecodedBatch {
  readonly updates: Updates
  /** The stream row of its first row (rows are numbered from 0 across batches). */
  readonly firstRow: number
  /** The message body its columns view (from `alloc`): reusable once the rows are consumed. */
  readonly body: Uint8Array
}

export class UpdatesStreamDecoder {
  readonly #shape: UpdatesShape
  readonly #reader: IpcStreamReader
  #plans: ColumnPlan[] | null = null
  #rows = 0

  /**
   * `maxMessageBytes`: the largest message accepted (a body cannot be larger than the request);
   * `alloc`: where record batch bodies go (see ipc-stream-reader.ts).
   */
  constructor(shape: UpdatesShape, opts: { readonly maxMessageBytes: number; readonly alloc?: (size: number) => Uint8Array }) {
    this.#shape = shape
    this.#reader = new IpcStreamReader({ maxMessageBytes: opts.maxMessageBytes, ...(opts.alloc === undefined ? {} : { alloc: opts.alloc }) })
  }

  /** Rows decoded so far. */
  get rows(): number {
    return this.#rows
  }

  /**
   * The record batches `chunk` completes, or an error naming the column (and row). `chunk` may be
   * reused once this returns. Throws IpcTooLargeError for a message over `maxMessageBytes`: the
   * stream is too large, not malformed.
   */
  push(chunk: Uint8Array): Result<DecodedBatch[]> {
    try {
      const out: DecodedBatch[] = []
      for (const m of this.#reader.push(chunk)) {
        if (m.kind === 'schema') {
          this.#plans = planColumns(m.schema.fields, this.#shape, true)
          continue
        }
        const plans = this.#plans as ColumnPlan[]
        const data = loadBatch(m.batch, plans, this.#rows)
        const cols: Record<string, arrow.Data> = {}
        plans.forEach((p, i) => (cols[p.name] = data[i]!))
        const updates = batchUpdates(cols, m.batch.length, this.#shape, this.#rows)
        out.push({ updates, firstRow: this.#rows, body: m.batch.body })
        this.#rows += updates.length
      }
      return ok(out)
    } catch (e) {
      if (e instanceof IpcError && !(e instanceof IpcTooLargeError)) return err(`invalid Arrow stream: ${e.message}`)
      throw e
    }
  }

  /** Checks that the stream was complete; the number of rows. */
  end(): Result<number> {
    try {
      this.#reader.end()
      return ok(this.#rows)
    } catch (e) {
      if (e instanceof IpcError) return err(`invalid Arrow stream: ${e.message}`)
      throw e
    }
  }
}
