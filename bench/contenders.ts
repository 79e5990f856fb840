/**
 * The contenders of the benchmark and the messages between the orchestrator (run.ts) and a
 * contender's child process (child.ts): one job in, one result out, over the fork IPC channel.
 */
import type { HollowBatchJson } from '../src/core/batch.js'
import type { LatencyStats } from './healthz-probe.js'

export const CONTENDERS = ['compactd', 'floor-codec', 'floor-raw', 'duckdb-2t', 'duckdb-1t'] as const
export type Contender = (typeof CONTENDERS)[number]

export const CONTENDER_LABELS: Readonly<Record<Contender, string>> = {
  compactd: 'compactd (Stage D, 2 worker threads)',
  'floor-codec': 'I/O floor: get, decodePart, encodePart, set',
  'floor-raw': 'I/O floor: get, set (raw bytes)',
  'duckdb-2t': 'DuckDB, 2 threads',
  'duckdb-1t': 'DuckDB, 1 thread',
}

export interface ChildJob {
  readonly contender: Contender
  /** Path of the dataset's manifest.json. */
  readonly manifest: string
  /** Path of a small dataset's manifest to run once, untimed, before the timed run (JIT warm-up). */
  readonly warmup: string | null
  /** compactd and floor: worker threads / concurrent lanes; DuckDB: its `threads` setting. */
  readonly threads: number
  /** DuckDB: the database file the output table `out` goes to. */
  readonly duckdbOut: string | null
  readonly targetBytes: number
  readonly memoryBoundBytes: number
  /** compactd: GET /healthz pacing while the compaction runs. */
  readonly healthzIntervalMs: number
}

/** Where a contender's output went. */
export type ChildOutput =
  | { readonly kind: 'batch'; readonly batch: HollowBatchJson }
  | { readonly kind: 'parts'; readonly keys: readonly string[]; readonly inputKeys: readonly string[] }
  | { readonly kind: 'duckdb'; readonly path: string }

export interface ChildResult {
  /** Wall-clock seconds of the timed section only. */
  readonly seconds: number
  readonly output: ChildOutput
  readonly healthz: LatencyStats | null
  /** Free-form facts worth reporting (chunks, parts...). */
  readonly notes: Readonly<Record<string, number | string>>
}

export type ChildMessage =
  | { readonly ok: true; readonly result: ChildResult; readonly maxRssBytes: number; readonly cpuSeconds: number }
  | { readonly ok: false; readonly error: string }
