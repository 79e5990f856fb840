/**
 * The input of `shards write`: a file or stdin, read as a stream (never whole), its format told
 * from its first bytes unless `--format` says it, and turned into the body of a batch write.
 *
 * Formats:
 * - `arrow`: an Arrow IPC stream (it starts with the continuation marker 0xFFFFFFFF), sent as it
 *   is, with the frontiers as query parameters;
 * - `body`: the API's JSON batch body `{"lower","upper","updates",…}`, sent as it is (it carries
 *   its own frontiers);
 * - `array`: a JSON array of updates, sent inside a body the frontier flags make;
 * - `ndjson`: one update a line (what `shards read --format ndjson` prints), sent as an array.
 *   An empty input (or blank lines only) is NDJSON of no update: an empty batch, which moves the
 *   shard's upper (a pipeline whose filter matched nothing still closes its range).
 *
 * Memory: the first 64 KiB (to tell the format), then one read chunk at a time.
 */
import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import type { StreamedBatch } from '../client/api-client.js'
import type { AntichainJson } from '../client/wire.js'
import { UsageError } from './exit-codes.js'
import { ndjsonAsArray } from './ndjson.js'

export const INPUT_FORMATS = ['arrow', 'json', 'ndjson'] as const
export type InputFormat = (typeof INPUT_FORMATS)[number]

export type BatchFormat = 'arrow' | 'body' | 'array' | 'ndjson'

export interface BatchInput {
  readonly format: BatchFormat
  /** Every byte of the input, the first ones included, as they are read. */
  readonly bytes: AsyncIterable<Uint8Array>
  /** Bytes read so far. */
  readonly read: () => number
}

const PEEK_BYTES = 64 * 1024
/** The word an Arrow IPC stream's messages (and so the stream) start with. */
export const ARROW_CONTINUATION = [0xff, 0xff, 0xff, 0xff] as const

/** Opens `path` (`-`: stdin) and tells its format; a usage error when it cannot be read or told. */
export async function openBatchInput(path: string, format: InputFormat | undefined, stdin: Readable = process.stdin): Promise<BatchInput> {
  const name = path === '-' ? 'stdin' : path
  const stream = path === '-' ? stdin : createReadStream(path, { highWaterMark: PEEK_BYTES })
  const it = (stream as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
  const head: Uint8Array[] = []
  let headBytes = 0
  let ended = false
  try {
    while (headBytes < PEEK_BYTES) {
      const r = await it.next()
      if (r.done === true) {
        ended = true
        break
      }
      head.push(r.value)
      headBytes += r.value.length
    }
  } catch (err) {
    throw new UsageError(`cannot read ${name}: ${err instanceof Error ? err.message : String(err)}`)
  }
  const first = Buffer.concat(head)
  let read = 0
  const all = async function* (): AsyncGenerator<Uint8Array> {
    for (const c of head) {
      read += c.length
      yield c
    }
    if (ended) return
    try {
      for (let r = await it.next(); r.done !== true; r = await it.next()) {
        read += r.value.length
        yield r.value
      }
    } catch (err) {
      throw new Error(`cannot read ${name}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  return { format: formatOf(first, format, name), bytes: all(), read: () => read }
}

/** The format `--format` names, or the one the first bytes show. */
export function formatOf(first: Uint8Array, given: InputFormat | undefined, name: string): BatchFormat {
  const isArrow = ARROW_CONTINUATION.every((b, i) => first[i] === b)
  const lead = first.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09)
  if (given === 'arrow') {
    if (first.length === 0) throw new UsageError(`${name} is empty: an Arrow IPC stream has at least its schema; for an empty batch give an empty NDJSON input`)
    return 'arrow'
  }
  if (given === 'ndjson') return 'ndjson'
  if (given === 'json') {
    if (lead === undefined) throw new UsageError(`${name} is empty: give [] (no updates) or a batch body; an empty input is an empty batch with --format ndjson`)
    if (lead === 0x5b) return 'array'
    if (lead === 0x7b) return 'body'
    throw new UsageError(`${name} is not JSON: a batch body {"lower","upper","updates"} or an array of updates [{"key","val","time","diff"}] was expected`)
  }
  if (isArrow) return 'arrow'
  if (Buffer.from(first.subarray(0, 6)).toString('latin1') === 'ARROW1') {
    throw new UsageError(`${name} is an Arrow IPC file; compactd takes an Arrow IPC stream (columns k, v, t, d): write it with a stream writer (pyarrow.ipc.new_stream, arrow-js RecordBatchStreamWriter)`)
  }
  if (lead === undefined) return 'ndjson'
  if (lead === 0x5b) return 'array'
  if (lead === 0x7b) return looksLikeNdjson(first) ? 'ndjson' : 'body'
  throw new UsageError(`cannot tell the format of ${name}: not an Arrow IPC stream, a JSON batch, a JSON array or NDJSON; give --format arrow|json|ndjson`)
}

/** Whether the first line is a whole update (NDJSON), not the start of a batch body. */
function looksLikeNdjson(first: Uint8Array): boolean {
  const nl = first.indexOf(0x0a)
  const line = Buffer.from(nl < 0 ? first : first.subarray(0, nl)).toString('utf8')
  try {
    const v = JSON.parse(line) as unknown
    return typeof v === 'object' && v !== null && !Array.isArray(v) && 'diff' in v && !('updates' in v)
  } catch {
    return false
  }
}

export interface Frontiers {
  readonly lower: AntichainJson
  readonly upper: AntichainJson
  readonly append?: boolean
  readonly expectedUpper?: AntichainJson
}

/** The batch to send: the input as it is (Arrow, a body), or wrapped in a body with `frontiers`. */
export function batchOf(input: BatchInput, frontiers: Frontiers | null): StreamedBatch {
  if (input.format === 'body') return { kind: 'json', bytes: input.bytes }
  if (frontiers === null) throw new Error(`a ${input.format} input needs its frontiers`)
  if (input.format === 'arrow') return { kind: 'arrow', bytes: input.bytes, ...frontiers }
  // NB: the frontiers come before the updates, so the server never has to hold rows for them.
  const head = JSON.stringify({
    lower: frontiers.lower,
    upper: frontiers.upper,
    ...(frontiers.append === undefined ? {} : { append: frontiers.append }),
    ...(frontiers.expectedUpper === undefined ? {} : { expectedUpper: frontiers.expectedUpper }),
  })
  const updates = input.format === 'ndjson' ? ndjsonAsArray(input.bytes) : input.bytes
  return { kind: 'json', bytes: wrapped(`${head.slice(0, -1)},"updates":`, updates, '}') }
}

async function* wrapped(before: string, middle: AsyncIterable<Uint8Array>, after: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(before)
  yield* middle
  yield Buffer.from(after)
}
