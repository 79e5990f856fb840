/**
 * A batch write, the worker's half: the request body goes in chunk by chunk as it arrives, sorted,
 * consolidated parts of about the target size come out (persist's `BatchBuilder` for user writes).
 *
 * Per chunk: decode (an Arrow IPC stream record batch by record batch, or a JSON body row by row:
 * columnar/updates-stream-decoder.ts, columnar/json-batch-body.ts), check every row against the
 * schema and `[lower, upper)`, and hand the rows to the run writer (run-writer.ts), which keeps
 * sorted input one run without sorting it and sorts unsorted input a buffer at a time.
 *
 * Errors are AppErrors naming the first bad row (`body.updates[3].time …`, `body: row 3: time …`),
 * with `row` as a detail when it is about a row's time.
 *
 * NB: a JSON body may put `lower` and `upper` after `updates`: its rows then wait (decoded, as
 * columns) until both are known, so such a body is held whole. Clients that stream large bodies
 * put the frontiers first (Arrow bodies carry them in the query string).
 *
 * I/O is one callback, so the same code runs in a worker (worker.ts) or on the caller's thread (tests).
 */
import * as ac from '../core/antichain.js'
import { description, type Description } from '../core/description.js'
import { timestampKind, type TimestampKind } from '../core/timestamp.js'
import { JsonBatchBody } from '../columnar/json-batch-body.js'
import { JsonBodyError } from '../columnar/json-scan.js'
import { sortKeyLowerAt } from '../columnar/sort-key.js'
import { IpcTooLargeError } from '../columnar/ipc-reader.js'
import { UpdatesStreamDecoder } from '../columnar/updates-stream-decoder.js'
import { sumDiffs, timeAt, UpdatesBuilder, type Updates, type UpdatesShape } from '../columnar/updates.js'
import { AppError } from '../errors.js'
import type { WriteHeader, WriteStats, WriteTaskPayload } from './protocol.js'
import type { BufferPool } from './buffer-pool.js'
import { RunWriter, type RunWriterBuilders } from './run-writer.js'
import { firstRowOutside, parseWriteBounds, parseWriteHeader, refuseUnreachableAppend, WRITE_HEADER_FIELDS, type WriteHeaderFields } from './write-header.js'

/** One part of the batch, built. NB: `updates` lives in buffers the next part reuses: consume it before `emit` resolves. */
export interface WrittenPart {
  readonly updates: Updates
  readonly run: number
  /** Sort key of the first key, cut to a key lower's length. */
  readonly keyLower: Uint8Array
  readonly diffsSum: bigint
  readonly statsSeconds: number
}

export interface BatchWriteIo {
  /** Takes one part (e.g. encodes and posts it); resolves when the next may be built. */
  emit(part: WrittenPart): Promise<void>
  /** Builders lent for the write (see `RunWriterBuilders`); default: new ones. */
  readonly builders?: RunWriterBuilders
  /** Where record batch bodies go while their rows are read; default: new buffers each. */
  readonly buffers?: BufferPool
}

export interface BatchWritten {
  readonly header: WriteHeader
  readonly stats: WriteStats
}

/** Largest JSON field other than the rows (a frontier of a product shard can be long). */
const MAX_FIELD_BYTES = 1 << 20

/**
 * Arrow record batches of fewer rows than this are gathered (copied) until they hold this many
 * before the run writer sees them: its cost per call (the sortedness scan's setup, the carried
 * last row, the part's bookkeeping) would otherwise be paid per batch. A client that streams a row
 * or ten per record batch wrote 70k rows/s, against millions in large batches.
 */
export const GATHER_ROWS = 4096

type Rows = { readonly updates: Updates; readonly firstRow: number }

export class BatchWrite {
  readonly #payload: WriteTaskPayload
  readonly #tk: TimestampKind
  readonly #runs: RunWriter
  readonly #arrow: UpdatesStreamDecoder | null
  readonly #json: JsonBatchBody | null
  readonly #fields: Record<string, unknown> = {}
  /** `[lower, upper)` once known (Arrow: from the start; JSON: once both fields arrived). */
  #desc: Description | null = null
  /** JSON rows that arrived before the frontiers. */
  readonly #waiting: Rows[] = []
  #bodyRows = 0
  readonly #buffers: BufferPool | null
  readonly #shape: UpdatesShape
  /** Small Arrow record batches gathered (`GATHER_ROWS`), and the body row of the first. */
  #gathered: UpdatesBuilder | null = null
  #gatheredFrom = 0

  constructor(payload: WriteTaskPayload, io: BatchWriteIo) {
    this.#payload = payload
    this.#tk = timestampKind(payload.timeKind)
    const shape: UpdatesShape = { keyType: payload.keyType, valType: payload.valType, timeKind: payload.timeKind }
    this.#shape = shape
    this.#buffers = io.buffers ?? null
    this.#runs = new RunWriter(
      shape,
      payload.order,
      payload.targetSizeBytes,
      (updates, run) => {
        const t0 = performance.now()
        const keyLower = sortKeyLowerAt(updates, 0, payload.order)
        const diffsSum = sumDiffs(updates)
        return io.emit({ updates, run, keyLower, diffsSum, statsSeconds: (performance.now() - t0) / 1000 })
      },
      io.builders ?? null,
    )
    if (payload.format === 'arrow') {
      if (payload.header === null) throw new Error('an Arrow write needs its header from the query string')
      this.#desc = userDesc(this.#tk, payload.header)
      const pool = this.#buffers
      this.#arrow = new UpdatesStreamDecoder(shape, { maxMessageBytes: payload.maxBodyBytes, ...(pool === null ? {} : { alloc: (n: number) => pool.take(n) }) })
      this.#json = null
    } else {
      this.#arrow = null
      this.#json = new JsonBatchBody(shape, { rowsField: 'updates', fields: WRITE_HEADER_FIELDS, maxFieldBytes: MAX_FIELD_BYTES })
    }
  }

  /** The batch's description, once its frontiers are known (always before the first part is emitted). */
  desc(): Description {
    if (this.#desc === null) throw new Error('the batch frontiers are not known yet')
    return this.#desc
  }

  /** Reads one chunk of the body; resolves when its rows are consumed. Throws AppError. */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.#arrow !== null) {
      const r = tooLargeAsAppError(() => (this.#arrow as UpdatesStreamDecoder).push(chunk))
      if (!r.ok) throw new AppError('INVALID_BATCH', `body: ${r.error}`)
      for (const b of r.value) {
        if (b.updates.length < GATHER_ROWS) this.#gather(b.updates, b.firstRow)
        else {
          await this.#flushGathered()
          await this.#accept({ updates: b.updates, firstRow: b.firstRow })
        }
        if (this.#gathered !== null && this.#gathered.length >= GATHER_ROWS) await this.#flushGathered()
        // The rows are consumed (copied or buffered): their body may be reused.
        this.#buffers?.give(b.body)
      }
      return
    }
    const json = this.#json as JsonBatchBody
    bodyErrors(() => json.push(chunk))
    await this.#takeJson(json)
  }

  /** The body ended: writes what is left; the header and what was written. Throws AppError. */
  async end(): Promise<BatchWritten> {
    let header: WriteHeader
    if (this.#arrow !== null) {
      const r = this.#arrow.end()
      if (!r.ok) throw new AppError('INVALID_BATCH', `body: ${r.error}`)
      await this.#flushGathered()
      header = this.#payload.header as WriteHeader
    } else {
      const json = this.#json as JsonBatchBody
      bodyErrors(() => json.end())
      await this.#takeJson(json)
      header = parseWriteHeader(this.#tk, this.#fields, 'body')
      refuseUnreachableAppend(this.#tk, header, this.#payload.shardUpper)
      if (this.#desc === null) {
        this.#desc = userDesc(this.#tk, header)
        for (const rows of this.#waiting.splice(0)) await this.#accept(rows)
      }
    }
    const written = await this.#runs.end()
    return { header, stats: { rows: written.rows, bodyRows: this.#bodyRows, partsPerRun: written.partsPerRun } }
  }

  async #takeJson(json: JsonBatchBody): Promise<void> {
    for (const f of json.takeFields()) this.#fields[f.name] = f.value
    if (this.#desc === null && this.#fields.lower !== undefined && this.#fields.upper !== undefined) {
      const fields: WriteHeaderFields = this.#fields
      const bounds = parseWriteBounds(this.#tk, fields, 'body')
      this.#desc = description(bounds.lower, bounds.upper, ac.minimumFrontier(this.#tk))
      // The append fields, when both are in already, are checked now rather than after the upload,
      // and so is whether the append can still succeed.
      if (fields.append !== undefined && fields.expectedUpper !== undefined) refuseUnreachableAppend(this.#tk, parseWriteHeader(this.#tk, fields, 'body'), this.#payload.shardUpper)
      for (const rows of this.#waiting.splice(0)) await this.#accept(rows)
    }
    const rows = json.takeRows()
    if (rows === null) return
    // NB: the rows view buffers the next chunk reuses: rows that must wait are copied.
    if (this.#desc === null) this.#waiting.push({ updates: copyOf(this.#shape, rows.updates), firstRow: rows.firstRow })
    else await this.#accept(rows)
  }

  /** Copies a small record batch's rows behind those gathered before. */
  #gather(u: Updates, firstRow: number): void {
    let g = this.#gathered
    if (g === null) g = this.#gathered = new UpdatesBuilder(this.#shape, { reuseBuffers: true })
    if (g.length === 0) this.#gatheredFrom = firstRow
    g.appendRange(g.bind(u), 0, u.length)
  }

  /** Hands the gathered rows on (the builder's buffers are reused once they are consumed). */
  async #flushGathered(): Promise<void> {
    const g = this.#gathered
    if (g === null || g.length === 0) return
    await this.#accept({ updates: g.finish(), firstRow: this.#gatheredFrom })
  }

  /** Checks rows against `[lower, upper)` and hands them to the run writer. */
  async #accept(rows: Rows): Promise<void> {
    const desc = this.#desc as Description
    const u = rows.updates
    this.#bodyRows += u.length
    const outside = firstRowOutside(this.#tk, u, desc)
    if (outside !== -1) {
      const row = rows.firstRow + outside
      const at = this.#payload.format === 'json' ? `body.updates[${row}].time` : `body: row ${row}: time`
      throw new AppError('INVALID_BATCH', `${at} ${this.#tk.format(timeAt(u, outside))} is not in [lower ${ac.format(this.#tk, desc.lower)}, upper ${ac.format(this.#tk, desc.upper)})`, { row })
    }
    await this.#runs.push(u)
  }
}

function copyOf(shape: UpdatesShape, u: Updates): Updates {
  const b = new UpdatesBuilder(shape, { capacity: u.length })
  b.appendRange(b.bind(u), 0, u.length)
  return b.finish()
}

/** The description of a user-written batch: `[lower, upper)` at full fidelity. */
function userDesc(tk: TimestampKind, h: { readonly lower: ac.Antichain; readonly upper: ac.Antichain }): Description {
  return description(h.lower, h.upper, ac.minimumFrontier(tk))
}

function bodyErrors(read: () => void): void {
  try {
    read()
  } catch (e) {
    if (e instanceof JsonBodyError) throw new AppError(e.kind === 'malformed' ? 'BAD_REQUEST' : 'INVALID_BATCH', e.message)
    throw e
  }
}

/** The answer to a body over `COMPACTD_BODY_LIMIT` (413), however it is found out. */
export function tooLarge(max: number): AppError {
  return new AppError('PAYLOAD_TOO_LARGE', `body: larger than the body limit of ${max} bytes (COMPACTD_BODY_LIMIT)`)
}

/**
 * Runs `decode`, answering an Arrow message larger than the decoder allows (the body limit) as the
 * body being too large, 413, as the main thread does once it has counted that many bytes: which of
 * the two sees it first depends on the timing of the body's chunks.
 */
function tooLargeAsAppError<T>(decode: () => T): T {
  try {
    return decode()
  } catch (e) {
    if (e instanceof IpcTooLargeError) throw tooLarge(e.maxBytes)
    throw e
  }
}
