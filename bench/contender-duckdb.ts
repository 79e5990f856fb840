/**
 * DuckDB's contender: the same consolidation in SQL over the dataset's rows, which were loaded
 * (untimed, by the generator) into the native table `input` of a database file; DuckDB cannot read
 * compactd's Arrow IPC parts without its arrow extension, which is not available offline.
 *
 *   CREATE TABLE o.out AS SELECT key, val, greatest(time, since) AS time, sum(diff) AS diff
 *   FROM input GROUP BY key, val, greatest(time, since) HAVING sum(diff) <> 0 ORDER BY key, val, time
 *
 * into a freshly attached database file, then CHECKPOINT, so the output is on disk like compactd's.
 * Timed: that statement and the checkpoint. Not timed: process start, opening the database.
 * DuckDB's own settings are left alone (memory_limit is its default, 80% of RAM) but `threads`.
 */
import { rm } from 'node:fs/promises'
import type { ChildJob, ChildResult } from './contenders.js'
import { loadManifest } from './dataset.js'

/** The consolidation query, writing into `target`. */
export function consolidationSql(target: string, since: number): string {
  const t = `greatest(time, ${since}::UBIGINT)`
  return (
    `CREATE TABLE ${target} AS SELECT key, val, ${t} AS time, sum(diff)::BIGINT AS diff FROM input ` +
    `GROUP BY key, val, ${t} HAVING sum(diff) <> 0 ORDER BY key, val, time`
  )
}

export async function runDuckDb(job: ChildJob): Promise<ChildResult> {
  const m = await loadManifest(job.manifest)
  if (m.duckdbPath === null || job.duckdbOut === null) throw new Error('the dataset has no DuckDB copy')
  await rm(job.duckdbOut, { force: true })
  await rm(`${job.duckdbOut}.wal`, { force: true })
  const { DuckDBInstance } = await import('@duckdb/node-api')
  const instance = await DuckDBInstance.create(m.duckdbPath, { threads: String(job.threads) })
  const conn = await instance.connect()
  try {
    await conn.run(`ATTACH '${job.duckdbOut}' AS o`)
    const rssBefore = process.memoryUsage().rss
    const cpu0 = process.cpuUsage()
    const started = performance.now()
    await conn.run(consolidationSql('o.out', m.since))
    await conn.run('CHECKPOINT o')
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpu0)
    const settings = await conn.runAndReadAll("SELECT current_setting('threads')::INT, current_setting('memory_limit')")
    const [threads, memoryLimit] = (settings.getRows()[0] ?? []) as [number, string]
    await conn.run('DETACH o')
    const notes = {
      rssBeforeMiB: Math.round(rssBefore / 2 ** 20),
      cores: Math.round((100 * (cpu.user + cpu.system)) / 1e6 / seconds) / 100,
      threads,
      memoryLimit,
    }
    return { seconds, output: { kind: 'duckdb', path: job.duckdbOut }, healthz: null, notes }
  } finally {
    conn.closeSync()
    instance.closeSync()
  }
}
