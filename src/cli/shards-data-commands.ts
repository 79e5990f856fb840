/**
 * `compactctl shards create|write|read|since|gc`: a shard's data from the command line, as the
 * HTTP API takes and gives it (docs/cli.md#data).
 *
 * - `write` streams its input (a file or stdin) as the request body: Arrow IPC streams as they
 *   are, JSON bodies as they are, arrays and NDJSON inside a body made of the frontier flags.
 * - `read` streams the snapshot to stdout or a file (written under a temporary name, renamed when
 *   complete), as JSON, NDJSON (converted as it comes) or Arrow.
 */
import { Option, type Command } from 'commander'
import { ApiError, isApiError } from '../client/api-client.js'
import { formatBytes, formatCount, formatFrontier, formatTimestamp } from '../client/format.js'
import type { AntichainJson, HollowBatchJson, ShardSummaryJson, TimestampJson, TypeJson, WriteBatchResultJson } from '../client/wire.js'
import { ARROW_CONTINUATION, batchOf, INPUT_FORMATS, openBatchInput, type BatchFormat, type InputFormat } from './batch-input.js'
import { parseFrontier, parseTimestamp, parseType, typeText } from './data-args.js'
import { run } from './context.js'
import { EXIT, UsageError } from './exit-codes.js'
import { SourceError, writeFileAtomically, writeStdout } from './file-output.js'
import { isWs, SnapshotLines } from './ndjson.js'
import { resolveShard } from './shards-commands.js'

const U64_MAX = '18446744073709551615'

export const READ_FORMATS = ['json', 'ndjson', 'arrow'] as const
type ReadFormat = (typeof READ_FORMATS)[number]

interface WriteOptions {
  format?: InputFormat
  lower?: AntichainJson
  upper?: AntichainJson
  expectedUpper?: AntichainJson
  append: boolean
}

interface ReadOptions {
  asOf?: TimestampJson
  format: ReadFormat
  output?: string
}

export function shardsDataCommands(shards: Command): void {
  shards
    .command('create')
    .description('create a shard; prints it, its id first')
    .argument('<name>', 'its name, unique among shards ("" for none)')
    .addOption(new Option('--timestamp <kind>', 'u64 (totally ordered times) or product (pairs [a,b])').choices(['u64', 'product']).default('u64'))
    .requiredOption('--key <type>', 'the key type: utf8, binary, int64, uint64, float64, bool, unit, or a Type as JSON', parseType)
    .requiredOption('--val <type>', 'the value type, as --key', parseType)
    .addHelpText('after', '\nExamples:\n  compactctl shards create orders --key utf8 --val int64\n  compactctl shards create grid --timestamp product --key int64 --val \'{"type":"struct","fields":[{"name":"qty","type":{"type":"int64"},"nullable":false}]}\'')
    .action((name: string, opts: { timestamp: 'u64' | 'product'; key: TypeJson; val: TypeJson }, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const shard = await client.createShard({ ...(name === '' ? {} : { name }), timestamp: opts.timestamp, keySchema: opts.key, valSchema: opts.val })
        const schema = shard.schemas?.at(-1)
        out.result(shard, () => `${shard.shardId} ${shard.name === '' ? '(unnamed)' : shard.name} (${shard.timestamp}, key ${typeText(schema?.keySchema ?? opts.key)}, val ${typeText(schema?.valSchema ?? opts.val)})`)
        return EXIT.OK
      }),
    )

  shards
    .command('write')
    .description('write one batch from a file or stdin (streamed): an Arrow IPC stream, a JSON batch body, a JSON array of updates, or NDJSON')
    .argument('<shard>', 'shard id or name')
    .argument('<file>', 'the batch; - reads stdin')
    .addOption(new Option('--format <format>', 'the input format; default told from its first bytes').choices(INPUT_FORMATS))
    .option('--lower <frontier>', "the batch's lower frontier, JSON like [0]; default the shard's upper", parseFrontier)
    .option('--upper <frontier>', "the batch's upper frontier, JSON like [10] (required but for a JSON batch body): rows have times in [lower, upper)", parseFrontier)
    .option('--expected-upper <frontier>', "compare-and-append only if the shard's upper is this; default --lower", parseFrontier)
    .option('--no-append', 'write the batch without appending it (the API answers it, to append later)')
    .addHelpText(
      'after',
      [
        '',
        'A JSON batch body carries its frontiers ({"lower","upper","updates","append"?,"expectedUpper"?}): give no frontier flags with it.',
        'An Arrow stream (columns k, v, t, d, as `shards read --format arrow` writes), a JSON array of updates',
        '[{"key","val","time","diff"}] or NDJSON (one update a line) takes them from the flags.',
        '',
        'Examples:',
        '  compactctl shards write orders batch.arrows --upper [100]',
        '  compactctl shards read orders --format ndjson | grep paid | compactctl shards write paid - --lower [0] --upper [100]',
      ].join('\n'),
    )
    .action((ref: string, file: string, opts: WriteOptions, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const input = await openBatchInput(file, opts.format)
        const flags = opts.lower !== undefined || opts.upper !== undefined || opts.expectedUpper !== undefined || !opts.append
        if (input.format === 'body' && flags) {
          throw new UsageError(`${file === '-' ? 'stdin' : file} is a JSON batch body, which carries its own lower, upper, append and expectedUpper: give no frontier flags with it (or send its updates array alone)`)
        }
        if (input.format !== 'body' && opts.upper === undefined) {
          throw new UsageError(`--upper is required for ${FORMAT_NAMES[input.format]}: the batch's upper frontier, e.g. --upper [10] (rows have times in [lower, upper))`)
        }
        const shardId = await resolveShard(client, ref)
        let frontiers = null
        if (input.format !== 'body' && opts.upper !== undefined) {
          const lower = opts.lower ?? (await client.shardSpine(shardId)).upper
          if (opts.lower === undefined) out.note(`lower: ${formatFrontier(lower)} (the shard's upper)`)
          frontiers = { lower, upper: opts.upper, ...(opts.append ? {} : { append: false }), ...(opts.expectedUpper === undefined ? {} : { expectedUpper: opts.expectedUpper }) }
        }
        let r: WriteBatchResultJson
        try {
          r = await client.writeBatch(shardId, batchOf(input, frontiers))
        } catch (err) {
          if (isApiError(err) && err.status === 413) {
            throw new ApiError(413, err.code, `${err.message}: split the input into batches of consecutive [lower, upper) ranges, or raise the server's COMPACTD_BODY_LIMIT`, err.body)
          }
          throw err
        }
        out.result(r, () => writeText(shardId, file, input.format, input.read(), r))
        return EXIT.OK
      }),
    )

  shards
    .command('read')
    .description('the snapshot at a time, streamed to stdout or a file: JSON, NDJSON (one update a line) or Arrow')
    .argument('<shard>', 'shard id or name')
    .option('--as-of <time>', "the time to read at: 5 (u64) or [3,7] (product); default for u64 the latest, the shard's upper minus one", parseTimestamp)
    .addOption(new Option('--format <format>', 'json: the API document; ndjson: one update a line; arrow: an Arrow IPC stream (k, v, t, d)').choices(READ_FORMATS).default('json'))
    .option('-o, --output <file>', 'write to this file, complete or not at all (a temporary name renamed at the end); - is stdout, even a terminal')
    .addHelpText('after', '\nExamples:\n  compactctl shards read orders --format ndjson | jq -c \'select(.diff < 0)\'\n  compactctl shards read orders --as-of 99 --format arrow -o orders.arrows')
    .action((ref: string, opts: ReadOptions, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const toStdout = opts.output === undefined || opts.output === '-'
        if (toStdout && out.json) throw new UsageError('--json describes what was written to a file: give -o FILE (the snapshot itself is JSON with --format json)')
        if (opts.format === 'arrow' && opts.output === undefined && process.stdout.isTTY === true) {
          throw new UsageError('refusing to write binary Arrow to a terminal: give -o FILE, pipe it, or -o - to write it here anyway')
        }
        const shardId = await resolveShard(client, ref)
        const asOf = opts.asOf ?? latestAsOf(await client.shardSpine(shardId))
        const abort = new AbortController()
        const interrupt = (): void => abort.abort(new Error('interrupted'))
        process.once('SIGINT', interrupt)
        try {
          const body = await client.snapshot(shardId, asOf, opts.format === 'arrow' ? 'arrow' : 'json', abort.signal)
          const lines = opts.format === 'ndjson' ? new SnapshotLines() : null
          const bytes = snapshotBytes(body, opts.format, lines, abort.signal)
          if (toStdout) {
            await writeStdout(bytes)
            return EXIT.OK
          }
          const file = opts.output ?? ''
          const written = await writeFileAtomically(file, bytes, abort.signal)
          const what = lines === null ? formatBytes(written) : `${formatCount(lines.lines)} updates (${formatBytes(written)})`
          out.result({ shardId, asOf, format: opts.format, file, bytes: written, ...(lines === null ? {} : { updates: lines.lines }) }, () => `wrote ${what} to ${file}: ${shardId} as of ${formatTimestamp(asOf)}`)
          return EXIT.OK
        } catch (err) {
          if (abort.signal.aborted) throw new Error(`interrupted${opts.output === undefined || opts.output === '-' ? '' : `: ${opts.output} left as it was`}`)
          throw err
        } finally {
          process.off('SIGINT', interrupt)
        }
      }),
    )

  shards
    .command('since')
    .description('move the since forward: reads before it are no longer possible, and compactions may advance times to it')
    .argument('<shard>', 'shard id or name')
    .argument('<frontier>', 'the new since: JSON like [8] or [[3,7]], or a bare u64 time (8 is [8])', parseFrontier)
    .action((ref: string, since: AntichainJson, _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const shard = await client.downgradeSince(await resolveShard(client, ref), since)
        out.result(shard, () => `${shard.shardId} since ${formatFrontier(shard.since)} (upper ${formatFrontier(shard.upper)}, seqno ${shard.seqno})`)
        return EXIT.OK
      }),
    )

  shards
    .command('gc')
    .description('run garbage collection of a shard now: unreferenced parts older than the grace, old state versions')
    .argument('<shard>', 'shard id or name')
    .action((ref: string, _opts, cmd: Command) =>
      run(cmd, async ({ client, out }) => {
        const shardId = await resolveShard(client, ref)
        const r = await client.gc(shardId)
        out.result(r, () => `${shardId}: deleted ${formatCount(r.deletedParts)} parts (${formatBytes(r.deletedBytes)}); state versions below seqno ${r.truncatedBelowSeqno} truncated`)
        return EXIT.OK
      }),
    )
}

const FORMAT_NAMES: Readonly<Record<BatchFormat, string>> = {
  arrow: 'an Arrow stream',
  body: 'a JSON batch body',
  array: 'a JSON array of updates',
  ndjson: 'NDJSON updates',
}

/**
 * The default --as-of: the latest time a u64 shard can be read at, its upper minus one (every
 * update written so far); the largest u64 when the upper is empty (closed for good). A product
 * shard has no single latest time: --as-of is required.
 */
export function latestAsOf(shard: ShardSummaryJson): TimestampJson {
  if (shard.timestamp === 'product') {
    throw new UsageError(`${shard.shardId} has product times, which have no single latest one: give --as-of [a,b], at or after the since ${formatFrontier(shard.since)} and not at or after the upper ${formatFrontier(shard.upper)}`)
  }
  const upper = shard.upper[0]
  if (upper === undefined) return U64_MAX
  const u = BigInt(upper as number | string)
  if (u === 0n) throw new UsageError(`${shard.shardId} has no data to read yet (its upper is [0]): write a batch first`)
  const t = u - 1n
  return t <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(t) : t.toString()
}

/** The response's bytes (as NDJSON lines when `lines` is given); a broken response is a SourceError. */
async function* snapshotBytes(body: ReadableStream<Uint8Array>, format: ReadFormat, lines: SnapshotLines | null, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const tail = new SnapshotTail()
  try {
    for await (const chunk of body) {
      tail.push(chunk)
      if (lines === null) yield chunk
      else {
        const done = lines.push(chunk)
        if (done.length > 0) yield done
      }
    }
    lines?.end()
    tail.check(format)
  } catch (err) {
    if (signal.aborted) throw err
    const cause = err instanceof Error && err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err instanceof Error ? err.message : String(err)
    throw new SourceError(`the snapshot broke off before its end: ${cause}`)
  }
}

/** Arrow's end-of-stream marker: a continuation word and a zero length. Every stream compactd sends ends with it. */
const ARROW_EOS = [...ARROW_CONTINUATION, 0, 0, 0, 0]

/**
 * The last bytes of a snapshot body, to tell a whole one from one that ended early without an error
 * (a proxy that closes cleanly, a client library that drops a body): an Arrow stream ends with its
 * end-of-stream marker, the JSON document with its closing brace.
 */
class SnapshotTail {
  #last: number[] = []

  push(chunk: Uint8Array): void {
    const keep = Math.min(chunk.length, ARROW_EOS.length)
    this.#last = [...this.#last, ...chunk.subarray(chunk.length - keep)].slice(-ARROW_EOS.length)
  }

  check(format: ReadFormat): void {
    const whole = format === 'arrow' ? ARROW_EOS.every((b, i) => this.#last[i] === b) : this.#last.filter((b) => !isWs(b)).at(-1) === 0x7d
    if (!whole) throw new Error(`the body ended without the ${format === 'arrow' ? "Arrow stream's end-of-stream marker" : "JSON document's closing brace"} (${this.#last.length === 0 ? 'it was empty' : 'cut short'})`)
  }
}

function batchBytes(b: HollowBatchJson): number {
  return b.parts.reduce((sum, p) => sum + (p.encodedSizeBytes ?? p.inline?.encodedSizeBytes ?? 0), 0)
}

function writeText(shardId: string, file: string, format: BatchFormat, read: number, r: WriteBatchResultJson): string {
  const b = r.batch
  const parts = `${formatCount(b.parts.length)} part${b.parts.length === 1 ? '' : 's'}`
  const first = `wrote ${formatCount(b.len)} updates (${formatBytes(batchBytes(b))} in ${parts}) for ${formatFrontier(b.desc.lower)}..${formatFrontier(b.desc.upper)} from ${file === '-' ? 'stdin' : file} (${FORMAT_NAMES[format]}, ${formatBytes(read)})`
  const second = r.appended
    ? `appended to ${shardId}: upper ${formatFrontier(r.upper)}, seqno ${r.seqno ?? '—'}`
    : `not appended (--no-append): with --json this prints the batch, for POST /v1/shards/${shardId}/append`
  return `${first}\n${second}`
}
