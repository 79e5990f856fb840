/**
 * A real Shards service on given (default mem://) stores, with real dynamic configs, a fresh
 * metrics registry, a settable clock and a one-thread worker pool spawned on first snapshot.
 * `close()` stops the service and the pool and closes the stores.
 */
import { Registry } from 'prom-client'
import { WorkerPool } from '../../src/engine/worker-pool.js'
import { newWriterKey } from '../../src/core/ids.js'
import { createDynamicConfigs, type DynamicConfigs } from '../../src/dyncfg/dynamic-configs.js'
import type { Blob } from '../../src/location/blob.js'
import type { Consensus } from '../../src/location/consensus.js'
import { MemBlob } from '../../src/location/mem-blob.js'
import { MemConsensus } from '../../src/location/mem-consensus.js'
import { createMetrics, type Metrics } from '../../src/metrics/metrics.js'
import { Leases } from '../../src/shard/leases.js'
import { Machine } from '../../src/shard/machine.js'
import { Shards, type ShardsOptions } from '../../src/shard/shards.js'
import { shardStateCodec, type ShardState } from '../../src/shard/state.js'

export interface Harness {
  readonly shards: Shards
  readonly blob: Blob
  readonly consensus: Consensus
  readonly machine: Machine<ShardState>
  readonly dyncfg: DynamicConfigs
  readonly metrics: Metrics
  readonly registry: Registry
  readonly leases: Leases
  /** The service's clock; move it with `advance`. */
  now(): Date
  advance(ms: number): void
  close(): Promise<void>
}

export interface HarnessOptions {
  readonly blob?: Blob
  readonly consensus?: Consensus
  readonly gcGraceMs?: number
  readonly service?: Partial<ShardsOptions>
}

export async function makeHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const blob = opts.blob ?? new MemBlob()
  const consensus = opts.consensus ?? new MemConsensus()
  const registry = new Registry()
  const metrics = createMetrics(registry)
  const dyncfg = createDynamicConfigs({ consensus })
  await dyncfg.start()
  const machine = new Machine<ShardState>(consensus, shardStateCodec)
  const leases = new Leases()
  let pool: WorkerPool | null = null
  let offset = 0
  const now = (): Date => new Date(Date.now() + offset)
  const shards = new Shards({
    machine,
    consensus,
    blob,
    pool: () => (pool ??= new WorkerPool(1)),
    dyncfg,
    writerKey: newWriterKey(),
    metrics,
    now,
    gcGraceMs: opts.gcGraceMs ?? 0,
    leases,
    ...opts.service,
  })
  return {
    shards,
    blob,
    consensus,
    machine,
    dyncfg,
    metrics,
    registry,
    leases,
    now,
    advance: (ms) => void (offset += ms),
    close: async () => {
      await shards.stop()
      await dyncfg.stop()
      await pool?.close()
      await blob.close()
      await consensus.close()
    },
  }
}

/** The JSON document of a snapshot body (chunks of `{"asOf":…,"updates":[…]}`), parsed. */
export async function snapshotDocument(chunks: AsyncIterable<{ readonly bytes: Uint8Array }>): Promise<{ asOf: unknown; updates: unknown[] }> {
  const parts: Uint8Array[] = []
  for await (const c of chunks) parts.push(c.bytes)
  return JSON.parse(Buffer.concat(parts).toString('utf8')) as { asOf: unknown; updates: unknown[] }
}

/** Every item of an async iterable. */
export async function collect<T>(chunks: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const c of chunks) out.push(c)
  return out
}

/** Resolves once `done()` holds, checking after each turn of the event loop; fails after 10 s. */
export async function until(what: string, done: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within 10 s`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/** Whether a stored state version is whole (`v: 1`) rather than a delta against the one before. */
export function isWholeVersion(v: { readonly data: Uint8Array }): boolean {
  return Buffer.from(v.data).subarray(0, 6).toString() === '{"v":1'
}

/** The last whole version of `key` at or before `seqno` among those stored: the one a read of `seqno` needs, and truncation keeps. */
export async function wholeVersionAtOrBefore(consensus: Pick<Consensus, 'scan'>, key: string, seqno: number): Promise<number> {
  const whole = (await consensus.scan(key, 0, 100_000)).filter((v) => v.seqno <= seqno && isWholeVersion(v))
  const last = whole[whole.length - 1]
  if (last === undefined) throw new Error(`no whole version of ${key} at or before ${seqno}`)
  return last.seqno
}
