/**
 * Agreement checks, run by the orchestrator after each contender's process has exited (untimed,
 * memory-bounded: one part or one DuckDB chunk at a time).
 *
 * The reference is the generator's own expectation (row count and fingerprint of the fully
 * consolidated input, fingerprint.ts). Every output must have the same fingerprint; every run of
 * it must be strictly sorted with no zero diff and no time below the since; a single-run output
 * must have exactly the expected rows (compactd's several chunks may leave equal rows in different
 * runs, which the fingerprint sums like the consolidated form). The floor's outputs must equal its
 * inputs byte for byte (else, row for row). DuckDB's first output is streamed back and checked like
 * a run; its later outputs are compared with that one in SQL (EXCEPT ALL both ways).
 */
import { stat } from 'node:fs/promises'
import { parseBatch, runs, type HollowBatchJson } from '../src/core/batch.js'
import { blobKey } from '../src/core/paths.js'
import { u64 } from '../src/core/timestamp.js'
import { onlyData } from '../src/columnar/column.js'
import { decodePart } from '../src/columnar/part-format.js'
import type { Updates } from '../src/columnar/updates.js'
import type { FileBlob } from '../src/location/file-blob.js'
import type { DatasetManifest } from './dataset.js'
import { Fingerprint, RunChecker, sameUpdates } from './fingerprint.js'

export interface CheckResult {
  readonly ok: boolean
  /** One line: what was checked, or what failed. */
  readonly detail: string
  readonly outputRows: number
  readonly outputBytes: number
  readonly outputRuns: number
}

interface RowSink {
  add(kb: Uint8Array, kOff: number, kLen: number, vb: Uint8Array, vOff: number, vLen: number, tLo: number, tHi: number, dLo: number, dHi: number): void
}

/** Feeds every row of `u` (binary key and value, u64 times) to the sinks. */
function scan(u: Updates, sinks: readonly RowSink[]): void {
  if (u.timeKind !== 'u64') throw new Error('expected u64 times')
  const k = onlyData(u.keys)
  const v = onlyData(u.vals)
  const ko = k.valueOffsets as Int32Array
  const kb = k.values as Uint8Array
  const vo = v.valueOffsets as Int32Array
  const vb = v.values as Uint8Array
  const t = new Uint32Array(u.times.buffer, u.times.byteOffset, 2 * u.length)
  const d = new Uint32Array(u.diffs.buffer, u.diffs.byteOffset, 2 * u.length)
  for (let i = 0; i < u.length; i++) {
    const k0 = ko[i]!
    const v0 = vo[i]!
    for (const s of sinks) s.add(kb, k0, ko[i + 1]! - k0, vb, v0, vo[i + 1]! - v0, t[2 * i]!, t[2 * i + 1]!, d[2 * i]!, d[2 * i + 1]!)
  }
}

function verdict(m: DatasetManifest, fp: Fingerprint, problems: string[], runCount: number, bytes: number, what: string): CheckResult {
  const got = fp.toJson()
  const want = m.expected.fingerprint
  if (!sameUpdates(got, want)) problems.push(`fingerprint ${got.hash}/${got.diffSum} ≠ expected ${want.hash}/${want.diffSum}`)
  if (runCount <= 1 && got.rows !== m.expected.rows) problems.push(`${got.rows} rows ≠ expected ${m.expected.rows}`)
  if (got.rows < m.expected.rows) problems.push(`${got.rows} rows < expected ${m.expected.rows}`)
  const ok = problems.length === 0
  return {
    ok,
    detail: ok ? `${what}: ${got.rows} rows in ${runCount} run(s), fingerprint ${got.hash} = expected` : problems.join('; '),
    outputRows: got.rows,
    outputBytes: bytes,
    outputRuns: runCount,
  }
}

/** compactd's output batch. */
export async function checkBatch(blob: FileBlob, m: DatasetManifest, json: HollowBatchJson): Promise<CheckResult> {
  const parsed = parseBatch(u64, m.shardId, json, 'output')
  if (!parsed.ok) return { ok: false, detail: parsed.error, outputRows: 0, outputBytes: 0, outputRuns: 0 }
  const batch = parsed.value
  const fp = new Fingerprint()
  const problems: string[] = []
  let bytes = 0
  const batchRuns = runs(batch)
  for (const [r, run] of batchRuns.entries()) {
    const checker = new RunChecker(m.since)
    for (const part of run.parts) {
      if (part.kind !== 'hollow') {
        problems.push('an inline output part')
        continue
      }
      const data = await blob.get(blobKey(m.shardId, part.key))
      if (data === null) {
        problems.push(`output part ${part.key} is missing`)
        continue
      }
      bytes += data.byteLength
      if (data.byteLength !== part.encodedSizeBytes) problems.push(`part ${part.key} is ${data.byteLength} bytes, its metadata says ${part.encodedSizeBytes}`)
      const { updates } = decodePart(data)
      if (updates.length !== part.stats.updates) problems.push(`part ${part.key} has ${updates.length} rows, its stats say ${part.stats.updates}`)
      scan(updates, [checker, fp])
    }
    if (checker.problem !== null) problems.push(`run ${r}: ${checker.problem}`)
  }
  if (batch.len !== fp.rows) problems.push(`batch len ${batch.len} ≠ ${fp.rows} rows in its parts`)
  return verdict(m, fp, problems, batchRuns.length, bytes, 'compactd')
}

/** The floor's copies: byte-identical to their inputs, or else the same rows. */
export async function checkCopies(blob: FileBlob, m: DatasetManifest, inputKeys: readonly string[], outputKeys: readonly string[]): Promise<CheckResult> {
  const problems: string[] = []
  let bytes = 0
  let identical = 0
  const fp = new Fingerprint(m.since)
  if (inputKeys.length !== outputKeys.length || inputKeys.length !== m.inputParts) problems.push(`${outputKeys.length} copies of ${m.inputParts} parts`)
  for (let i = 0; i < outputKeys.length; i++) {
    const [a, b] = await Promise.all([blob.get(inputKeys[i] as string), blob.get(outputKeys[i] as string)])
    if (a === null || b === null) {
      problems.push(`part ${a === null ? inputKeys[i] : outputKeys[i]} is missing`)
      continue
    }
    bytes += b.byteLength
    if (Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))) {
      identical++
      continue
    }
    const x = new Fingerprint()
    const y = new Fingerprint()
    scan(decodePart(a).updates, [x])
    scan(decodePart(b).updates, [y, fp])
    if (!sameUpdates(x.toJson(), y.toJson()) || x.rows !== y.rows) problems.push(`copy of ${inputKeys[i]} has other rows`)
  }
  const ok = problems.length === 0
  return {
    ok,
    detail: ok ? `floor: ${identical} of ${outputKeys.length} copies byte-identical, the rest row-identical` : problems.join('; '),
    outputRows: m.updates,
    outputBytes: bytes,
    outputRuns: m.runs,
  }
}

/** Streams DuckDB's `out` table back and checks it like one run. */
export async function checkDuckDbOutput(m: DatasetManifest, path: string): Promise<CheckResult> {
  const { DuckDBInstance } = await import('@duckdb/node-api')
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' })
  const conn = await instance.connect()
  try {
    await conn.run(`ATTACH '${path}' AS r (READ_ONLY)`)
    const result = await conn.stream('SELECT key, val, time, diff FROM r.out')
    const fp = new Fingerprint()
    const checker = new RunChecker(m.since)
    for (let guard = 0; guard < 1e9; guard++) {
      const chunk = await result.fetchChunk()
      if (chunk === null || chunk.rowCount === 0) break
      const [keys, vals, times, diffs] = [0, 1, 2, 3].map((c) => chunk.getColumnValues(c)) as [
        { bytes: Uint8Array }[],
        { bytes: Uint8Array }[],
        bigint[],
        bigint[],
      ]
      for (let i = 0; i < chunk.rowCount; i++) {
        const k = keys[i]!.bytes
        const v = vals[i]!.bytes
        const t = times[i]!
        const d = BigInt.asUintN(64, diffs[i]!)
        const tLo = Number(t & 0xffff_ffffn)
        const tHi = Number(t >> 32n)
        const dLo = Number(d & 0xffff_ffffn)
        const dHi = Number(d >> 32n) | 0
        checker.add(k, 0, k.length, v, 0, v.length, tLo, tHi, dLo, dHi)
        fp.add(k, 0, k.length, v, 0, v.length, tLo, tHi, dLo, dHi)
      }
    }
    const problems = checker.problem === null ? [] : [checker.problem]
    return verdict(m, fp, problems, 1, (await stat(path)).size, 'DuckDB')
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}

/** Another DuckDB output against the checked one: the same rows (as a multiset). */
export async function compareDuckDbOutputs(m: DatasetManifest, reference: string, path: string): Promise<CheckResult> {
  const { DuckDBInstance } = await import('@duckdb/node-api')
  const instance = await DuckDBInstance.create(':memory:', { threads: '2' })
  const conn = await instance.connect()
  try {
    await conn.run(`ATTACH '${reference}' AS a (READ_ONLY)`)
    await conn.run(`ATTACH '${path}' AS b (READ_ONLY)`)
    const res = await conn.runAndReadAll(
      'SELECT (SELECT count(*) FROM b.out), (SELECT count(*) FROM (SELECT * FROM a.out EXCEPT ALL SELECT * FROM b.out)), (SELECT count(*) FROM (SELECT * FROM b.out EXCEPT ALL SELECT * FROM a.out))',
    )
    const [rows, missing, extra] = (res.getRows()[0] ?? []).map((x) => Number(x)) as [number, number, number]
    const ok = rows === m.expected.rows && missing === 0 && extra === 0
    return {
      ok,
      detail: ok ? `DuckDB: ${rows} rows, the same as the checked output` : `${rows} rows; ${missing} missing and ${extra} extra against the checked output`,
      outputRows: rows,
      outputBytes: (await stat(path)).size,
      outputRuns: 1,
    }
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}
