/**
 * DuckDB's side of the end-to-end scenario, a child process of its own: the same rows (seeded
 * generation, dataset.ts) written by DuckDB itself as one Parquet file per run (what a user would
 * hand it; untimed), then, timed, the consolidation read from those files into a database file:
 *
 *   CREATE TABLE o.out AS SELECT key, val, greatest(time, since) AS time, sum(diff) AS diff
 *   FROM read_parquet([...]) GROUP BY key, val, greatest(time, since) HAVING sum(diff) <> 0
 *   ORDER BY key, val, time;  CHECKPOINT o
 *
 * `threads` DuckDB threads. Replies with the seconds of each round and the output's row count.
 */
import { mkdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateRuns, KEY_BYTES, VAL_BYTES } from './dataset.js'

export interface DuckJob {
  readonly runs: number
  readonly updates: number
  readonly seed: number
  readonly dir: string
  readonly threads: number
  readonly rounds: number
}

export type DuckReply = { readonly ok: true; readonly seconds: readonly number[]; readonly rows: number; readonly parquetBytes: number; readonly version: string } | { readonly ok: false; readonly error: string }

async function run(job: DuckJob): Promise<DuckReply> {
  const data = generateRuns(job)
  await mkdir(job.dir, { recursive: true })
  const { DuckDBInstance } = await import('@duckdb/node-api')
  const files: string[] = []
  {
    const db = await DuckDBInstance.create(':memory:', { threads: String(job.threads) })
    const conn = await db.connect()
    for (const [r, run] of data.runs.entries()) {
      await conn.run('CREATE OR REPLACE TABLE run (key BLOB NOT NULL, val BLOB NOT NULL, time UBIGINT NOT NULL, diff BIGINT NOT NULL)')
      const appender = await conn.createAppender('run')
      for (let i = 0; i < run.rows; i++) {
        appender.appendBlob(run.keys.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES))
        appender.appendBlob(run.vals.subarray(i * VAL_BYTES, (i + 1) * VAL_BYTES))
        appender.appendUBigInt(BigInt(run.times[2 * i]!))
        appender.appendBigInt(BigInt((run.diffs[2 * i + 1]! | 0) * 2 ** 32 + run.diffs[2 * i]!))
        appender.endRow()
      }
      appender.closeSync()
      const file = join(job.dir, `run-${String(r).padStart(3, '0')}.parquet`)
      await conn.run(`COPY run TO '${file}' (FORMAT parquet)`)
      files.push(file)
    }
    conn.closeSync()
    db.closeSync()
  }
  let parquetBytes = 0
  for (const f of files) parquetBytes += (await stat(f)).size
  const seconds: number[] = []
  let rows = 0
  let version = '?'
  for (let round = 0; round < job.rounds; round++) {
    const out = join(job.dir, `out-${round}.duckdb`)
    await rm(out, { force: true })
    await rm(`${out}.wal`, { force: true })
    const db = await DuckDBInstance.create(':memory:', { threads: String(job.threads) })
    const conn = await db.connect()
    try {
      version = String((await conn.runAndReadAll('SELECT version()')).getRows()[0]?.[0] ?? '?')
      await conn.run(`ATTACH '${out}' AS o`)
      const t = `greatest(time, ${data.since}::UBIGINT)`
      const list = `[${files.map((f) => `'${f}'`).join(', ')}]`
      const t0 = performance.now()
      await conn.run(`CREATE TABLE o.out AS SELECT key, val, ${t} AS time, sum(diff)::BIGINT AS diff FROM read_parquet(${list}) GROUP BY key, val, ${t} HAVING sum(diff) <> 0 ORDER BY key, val, time`)
      await conn.run('CHECKPOINT o')
      seconds.push((performance.now() - t0) / 1000)
      rows = Number((await conn.runAndReadAll('SELECT count(*) FROM o.out')).getRows()[0]?.[0] ?? -1)
      await conn.run('DETACH o')
    } finally {
      conn.closeSync()
      db.closeSync()
    }
    await rm(out, { force: true })
    await rm(`${out}.wal`, { force: true })
  }
  if (rows !== data.expected.rows) throw new Error(`DuckDB's output has ${rows} rows, the generator expects ${data.expected.rows}`)
  return { ok: true, seconds, rows, parquetBytes, version }
}

if (process.send === undefined) throw new Error('bench/e2e-duckdb.ts must be forked with an IPC channel')
process.once('message', (job: DuckJob) => {
  run(job).then(
    (reply) => process.send?.(reply, () => process.disconnect()),
    (err: unknown) => process.send?.({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies DuckReply, () => process.disconnect()),
  )
})
