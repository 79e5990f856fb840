/**
 * Generates one benchmark dataset, untimed: K sorted runs of about N updates with binary keys of
 * 16 bytes and binary values of 32 bytes, u64 times and i64 diffs, written as part files of at most
 * `targetBytes` to a `file://` blob, plus (optionally) the same rows in a DuckDB table.
 *
 * Shape of the data (seeded, so every contender of a session sees the same rows):
 * - distinct (key, val) items in ascending key order: an 8-byte big-endian counter with random
 *   gaps, then 8 random bytes; the value is 32 random bytes;
 * - each item goes to one random run; a fraction p of them also to a second run, chosen so that
 *   2p / (1 + p) = 30% of all updates have a (key, val) that is also in another run;
 * - run r is a batch with description [r·T, (r+1)·T) and times uniform in it (T = 1000); the
 *   compaction's since is ⌈3K/4⌉·T, so the first three quarters of the runs all advance to it;
 * - diffs are 1..3; when both copies of an item advance to the same time, half of them cancel
 *   (the second copy's diff is the negation of the first).
 * The expected consolidated row count and fingerprint come from the generator itself.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as arrow from 'apache-arrow'
import * as ac from '../src/core/antichain.js'
import { batchToJson, type BatchPart, type HollowBatch, type HollowBatchJson } from '../src/core/batch.js'
import { description } from '../src/core/description.js'
import { newPartId, newShardId, newWriterKey, type ShardId } from '../src/core/ids.js'
import { blobKey, partialBatchKey } from '../src/core/paths.js'
import { u64 } from '../src/core/timestamp.js'
import { binary } from '../src/columnar/data-type.js'
import { encodePart } from '../src/columnar/part-format.js'
import type { U64Updates } from '../src/columnar/updates.js'
import { FileBlob } from '../src/location/file-blob.js'
import { Fingerprint, type FingerprintJson } from './fingerprint.js'
import { mulberry32 as prng } from '../src/core/prng.js'

export const KEY_BYTES = 16
export const VAL_BYTES = 32
/** Encoded bytes per row in a part: key and value bytes, their i32 offsets, u64 time, i64 diff. */
export const ROW_BYTES = KEY_BYTES + VAL_BYTES + 4 + 4 + 8 + 8
/** Time span of one run's batch description. */
export const RUN_SPAN = 1000
/** Fraction of all updates whose (key, val) is also in another run. */
export const COLLIDE = 0.3
/** Of the colliding pairs that advance to the same time, the fraction whose diffs cancel. */
export const CANCEL = 0.5
/** Room left in a part for the Arrow framing and metadata. */
const PART_SLACK_BYTES = 64 * 1024

export interface DatasetOptions {
  readonly name: string
  /** The dataset's directory (DuckDB file); parts go to `blob`. */
  readonly dir: string
  readonly blob: FileBlob
  readonly runs: number
  readonly updates: number
  readonly seed: number
  readonly targetBytes: number
  /** Also load the rows into a DuckDB table `input(key BLOB, val BLOB, time UBIGINT, diff BIGINT)`. */
  readonly duckdb: boolean
}

export interface DatasetManifest {
  readonly name: string
  readonly runs: number
  /** Updates actually generated (about the requested N). */
  readonly updates: number
  readonly since: number
  readonly upper: number
  readonly shardId: ShardId
  readonly blobRoot: string
  readonly duckdbPath: string | null
  /** One input batch per run, as compactd's HollowBatch JSON. */
  readonly inputs: readonly HollowBatchJson[]
  readonly inputBytes: number
  readonly inputParts: number
  readonly expected: {
    /** Rows of the fully consolidated output. */
    readonly rows: number
    readonly fingerprint: FingerprintJson
    readonly collidingUpdates: number
    readonly cancelledPairs: number
  }
}


/** Seeded random u32 words (xorshift128). */
function words(seed: number): () => number {
  let x = seed | 1
  let y = 362436069
  let z = 521288629
  let w = 88675123
  return () => {
    const t = x ^ (x << 11)
    x = y
    y = z
    z = w
    w = w ^ (w >>> 19) ^ (t ^ (t >>> 8))
    return w >>> 0
  }
}

/** One run's rows, in ascending (key, val) order. */
export interface RunColumns {
  readonly rows: number
  readonly keys: Uint8Array
  readonly vals: Uint8Array
  /** u64 times as (lo, hi) words. */
  readonly times: Uint32Array
  /** i64 diffs as (lo, hi) words. */
  readonly diffs: Uint32Array
}

/** The rows of a dataset (see the file comment), in memory, and what their consolidation must give. */
export interface GeneratedRuns {
  readonly runs: readonly RunColumns[]
  readonly since: number
  readonly upper: number
  readonly updates: number
  readonly expected: DatasetManifest['expected']
}

/** Generates and stores the dataset; returns its manifest. */
export async function generateDataset(opts: DatasetOptions): Promise<DatasetManifest> {
  const { runs, since, expected, updates } = generateRuns(opts)
  const K = opts.runs
  await mkdir(opts.dir, { recursive: true })
  const shardId = newShardId()
  const writer = newWriterKey()
  const rowsPerPart = Math.max(1, Math.floor((opts.targetBytes - PART_SLACK_BYTES) / ROW_BYTES))
  const inputs: HollowBatch[] = []
  let inputBytes = 0
  let inputParts = 0
  for (let r = 0; r < K; r++) {
    const run = runs[r]!
    const desc = description([BigInt(r * RUN_SPAN)], [BigInt((r + 1) * RUN_SPAN)], [u64.minimum])
    const parts: BatchPart[] = []
    for (let start = 0; start < run.rows; start += rowsPerPart) {
      const end = Math.min(run.rows, start + rowsPerPart)
      const encoded = encodePart(partUpdates(run, start, end), { desc, order: 'structured', schemaId: 0 })
      if (encoded.byteLength > opts.targetBytes) throw new Error(`part of ${encoded.byteLength} bytes exceeds the target ${opts.targetBytes}`)
      const key = partialBatchKey(writer, newPartId())
      await opts.blob.set(blobKey(shardId, key), encoded)
      let sum = 0n
      for (let i = start; i < end; i++) sum += BigInt((run.diffs[2 * i + 1]! | 0) * 2 ** 32 + run.diffs[2 * i]!)
      parts.push({
        kind: 'hollow',
        key,
        encodedSizeBytes: encoded.byteLength,
        keyLower: Buffer.from(run.keys.subarray(start * KEY_BYTES, (start + 1) * KEY_BYTES)).toString('base64'),
        diffsSum: sum,
        schemaId: 0,
        stats: { updates: end - start },
      })
      inputBytes += encoded.byteLength
      inputParts++
    }
    inputs.push({ desc, len: run.rows, parts, runSplits: [], runMeta: parts.length > 0 ? [{ order: 'structured', schemaId: 0 }] : [] })
  }

  let duckdbPath: string | null = null
  if (opts.duckdb) {
    duckdbPath = join(opts.dir, 'input.duckdb')
    await loadDuckDb(duckdbPath, runs)
  }
  return {
    name: opts.name,
    runs: K,
    updates,
    since,
    upper: K * RUN_SPAN,
    shardId,
    blobRoot: opts.blob.root,
    duckdbPath,
    inputs: inputs.map((b) => batchToJson(u64, b)),
    inputBytes,
    inputParts,
    expected,
  }
}

/** The dataset's rows (untimed, deterministic in the seed), without storing them. */
export function generateRuns(opts: { readonly runs: number; readonly updates: number; readonly seed: number }): GeneratedRuns {
  const K = opts.runs
  if (K < 2 || K > 250) throw new Error('runs must be in 2..250')
  const random = prng(opts.seed)
  const bytes = words(opts.seed ^ 0x5bd1e995)
  const since = Math.ceil((3 * K) / 4) * RUN_SPAN
  const p = COLLIDE / (2 - COLLIDE)
  const items = Math.round(opts.updates / (1 + p))

  // Pass 1: which run(s) each item goes to.
  const first = new Uint8Array(items)
  const second = new Uint8Array(items).fill(255)
  const counts = new Array<number>(K).fill(0)
  for (let u = 0; u < items; u++) {
    const r = Math.floor(random() * K)
    first[u] = r
    counts[r]!++
    if (random() < p) {
      const s = (r + 1 + Math.floor(random() * (K - 1))) % K
      second[u] = s
      counts[s]!++
    }
  }
  const runs: RunColumns[] = counts.map((n) => ({
    rows: n,
    keys: new Uint8Array(n * KEY_BYTES),
    vals: new Uint8Array(n * VAL_BYTES),
    times: new Uint32Array(2 * n),
    diffs: new Uint32Array(2 * n),
  }))

  // Pass 2: rows, in ascending key order within every run; the expected result on the way.
  const expected = new Fingerprint(since)
  let expectedRows = 0
  let colliding = 0
  let cancelled = 0
  const fill = new Array<number>(K).fill(0)
  const gap = Math.max(1, Math.floor(2 ** 32 / (items / 2 ** 20 + 1)))
  let hi = 0
  let lo = 0
  const put = (run: RunColumns, i: number, time: number, diff: number): void => {
    run.times[2 * i] = time
    run.diffs[2 * i] = diff >>> 0
    run.diffs[2 * i + 1] = diff < 0 ? 0xffff_ffff : 0
    expected.add(run.keys, i * KEY_BYTES, KEY_BYTES, run.vals, i * VAL_BYTES, VAL_BYTES, time, 0, diff >>> 0, diff < 0 ? -1 : 0)
  }
  for (let u = 0; u < items; u++) {
    lo += 1 + Math.floor(random() * gap)
    if (lo > 0xffff_ffff) {
      hi += Math.floor(lo / 2 ** 32)
      lo %= 2 ** 32
    }
    const r = first[u]!
    const a = runs[r]!
    const i = fill[r]!++
    const k = i * KEY_BYTES
    a.keys[k] = hi >>> 24
    a.keys[k + 1] = hi >>> 16
    a.keys[k + 2] = hi >>> 8
    a.keys[k + 3] = hi
    a.keys[k + 4] = lo >>> 24
    a.keys[k + 5] = lo >>> 16
    a.keys[k + 6] = lo >>> 8
    a.keys[k + 7] = lo
    for (let j = 8; j < KEY_BYTES; j += 4) writeWord(a.keys, k + j, bytes())
    for (let j = 0; j < VAL_BYTES; j += 4) writeWord(a.vals, i * VAL_BYTES + j, bytes())
    const t1 = r * RUN_SPAN + Math.floor(random() * RUN_SPAN)
    const d1 = 1 + Math.floor(random() * 3)
    put(a, i, t1, d1)
    const s = second[u]!
    if (s === 255) {
      expectedRows += 1
      continue
    }
    colliding += 2
    const b = runs[s]!
    const j = fill[s]!++
    b.keys.set(a.keys.subarray(k, k + KEY_BYTES), j * KEY_BYTES)
    b.vals.set(a.vals.subarray(i * VAL_BYTES, (i + 1) * VAL_BYTES), j * VAL_BYTES)
    const t2 = s * RUN_SPAN + Math.floor(random() * RUN_SPAN)
    const merges = Math.max(t1, since) === Math.max(t2, since)
    const cancel = merges && random() < CANCEL
    put(b, j, t2, cancel ? -d1 : 1 + Math.floor(random() * 3))
    if (cancel) cancelled++
    expectedRows += merges ? (cancel ? 0 : 1) : 2
  }

  return {
    runs,
    since,
    upper: K * RUN_SPAN,
    updates: counts.reduce((n, c) => n + c, 0),
    expected: { rows: expectedRows, fingerprint: expected.toJson(), collidingUpdates: colliding, cancelledPairs: cancelled },
  }
}

function writeWord(b: Uint8Array, at: number, w: number): void {
  b[at] = w
  b[at + 1] = w >>> 8
  b[at + 2] = w >>> 16
  b[at + 3] = w >>> 24
}

/** Rows [start, end) of a run as `Updates` (copies of the fixed-width bytes, fresh offsets). */
export function partUpdates(run: RunColumns, start: number, end: number): U64Updates {
  const n = end - start
  const column = (src: Uint8Array, width: number): arrow.Vector => {
    const offsets = new Int32Array(n + 1)
    for (let i = 0; i <= n; i++) offsets[i] = i * width
    const data = arrow.makeData({ type: new arrow.Binary(), length: n, nullCount: 0, valueOffsets: offsets, data: src.slice(start * width, end * width) })
    return new arrow.Vector([data])
  }
  return {
    length: n,
    keyType: binary,
    valType: binary,
    timeKind: 'u64',
    keys: column(run.keys, KEY_BYTES),
    vals: column(run.vals, VAL_BYTES),
    times: new BigUint64Array(run.times.slice(2 * start, 2 * end).buffer),
    diffs: new BigInt64Array(run.diffs.slice(2 * start, 2 * end).buffer),
  }
}

/** Loads every run's rows into `input` of a new DuckDB database file (through the appender). */
export async function loadDuckDb(path: string, runs: readonly RunColumns[]): Promise<void> {
  await rm(path, { force: true })
  await rm(`${path}.wal`, { force: true })
  const { DuckDBInstance } = await import('@duckdb/node-api')
  const instance = await DuckDBInstance.create(path, { threads: '2' })
  const conn = await instance.connect()
  try {
    await conn.run('CREATE TABLE input (key BLOB NOT NULL, val BLOB NOT NULL, time UBIGINT NOT NULL, diff BIGINT NOT NULL)')
    const appender = await conn.createAppender('input')
    for (const run of runs) {
      for (let i = 0; i < run.rows; i++) {
        appender.appendBlob(run.keys.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES))
        appender.appendBlob(run.vals.subarray(i * VAL_BYTES, (i + 1) * VAL_BYTES))
        appender.appendUBigInt(BigInt(run.times[2 * i]!))
        appender.appendBigInt(BigInt((run.diffs[2 * i + 1]! | 0) * 2 ** 32 + run.diffs[2 * i]!))
        appender.endRow()
      }
    }
    appender.closeSync()
    await conn.run('CHECKPOINT')
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}

/** The compaction's description: [0, K·T) with the dataset's since. */
export function compactionDesc(m: DatasetManifest): ReturnType<typeof description> {
  return description([0n], [BigInt(m.upper)], [BigInt(m.since)] as ac.Antichain)
}

export async function saveManifest(path: string, m: DatasetManifest): Promise<void> {
  await writeFile(path, JSON.stringify(m, null, 1))
}

export async function loadManifest(path: string): Promise<DatasetManifest> {
  return JSON.parse(await readFile(path, 'utf8')) as DatasetManifest
}
