/**
 * compactd's contender: Stage D (`createExecutor(...).execute`) over the dataset's input batches in
 * a `file://` blob, with a WorkerPool of `threads` workers, the app's own metrics, and the real
 * HTTP app listening beside it and probed on /healthz while the compaction runs.
 *
 * Timed: `execute()` from call to return (every part read, merged, encoded and written, fsynced).
 * Not timed: process start, the app, the pool, the warm-up compaction on a small dataset.
 */
import type { Registry } from 'prom-client'
import { batchToJson, parseBatch, type HollowBatch } from '../src/core/batch.js'
import { newWriterKey, type ShardId } from '../src/core/ids.js'
import { blobKey } from '../src/core/paths.js'
import { u64 } from '../src/core/timestamp.js'
import { binary } from '../src/columnar/data-type.js'
import type { ResolvedRequest } from '../src/compact/compaction.js'
import { createExecutor } from '../src/compact/executor.js'
import { selectSchema } from '../src/compact/plan.js'
import { WorkerPool } from '../src/engine/worker-pool.js'
import { DEFAULT_CONFIG_VALUES, type ConfigValues } from '../src/dyncfg/registry.js'
import { FileBlob } from '../src/location/file-blob.js'
import type { ChildJob, ChildResult } from './contenders.js'
import { compactionDesc, loadManifest, type DatasetManifest } from './dataset.js'
import { startHealthzServer } from './healthz-probe.js'
import { sampleMemory } from './memory-sampler.js'

export function inputBatches(m: DatasetManifest): HollowBatch[] {
  return m.inputs.map((json, i) => {
    const parsed = parseBatch(u64, m.shardId, json, `inputs[${i}]`)
    if (!parsed.ok) throw new Error(parsed.error)
    return parsed.value
  })
}

export function request(m: DatasetManifest): ResolvedRequest {
  return {
    shardId: m.shardId,
    tk: u64,
    desc: compactionDesc(m),
    inputs: inputBatches(m),
    writerSchemaId: 0,
    knownSchemaIds: new Set([0]),
    apply: 'merge',
  }
}

/** Counters worth reporting, summed over their labels, by a short name. */
const COUNTERS = {
  memoryViolations: 'persist_compaction_memory_violations_total',
  partsWaited: 'persist_compaction_parts_waited_total',
  partsPrefetched: 'persist_compaction_parts_prefetched_total',
  writeStalls: 'persist_compaction_write_stall_total',
  fetchWaitSeconds: 'persist_compaction_step_seconds_total',
  uploadSeconds: 'persist_compaction_write_batch_part_seconds_total',
} as const

async function counters(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const [short, name] of Object.entries(COUNTERS)) {
    const values = (await registry.getSingleMetric(name)?.get())?.values ?? []
    out[short] = values.filter((v) => name !== COUNTERS.fetchWaitSeconds || v.labels.step === 'part_fetch').reduce((s, v) => s + v.value, 0)
  }
  return out
}

/** Deletes every part of `batch` (the warm-up's output). */
async function deleteParts(blob: FileBlob, shardId: ShardId, batch: HollowBatch): Promise<void> {
  for (const p of batch.parts) if (p.kind === 'hollow') await blob.delete(blobKey(shardId, p.key))
}

export async function runCompactd(job: ChildJob): Promise<ChildResult> {
  const m = await loadManifest(job.manifest)
  const cfg: ConfigValues = {
    ...DEFAULT_CONFIG_VALUES,
    persist_blob_target_size: job.targetBytes,
    persist_compaction_memory_bound_bytes: job.memoryBoundBytes,
  }
  const server = await startHealthzServer()
  const pool = new WorkerPool(job.threads)
  const blob = new FileBlob(m.blobRoot)
  try {
    const executor = createExecutor({
      pool: () => pool,
      blob,
      writerKey: newWriterKey(),
      metrics: server.services.metrics,
      lookupSchema: async () => ({ key: binary, val: binary }),
    })
    const run = async (req: ResolvedRequest): Promise<HollowBatch> => {
      const { output } = await executor.execute(req, cfg, {
        signal: new AbortController().signal,
        schema: selectSchema(req.inputs, req.knownSchemaIds, req.writerSchemaId, cfg.persist_compaction_use_most_recent_schema),
        onProgress: () => undefined,
      })
      return output
    }
    if (job.warmup !== null) {
      const w = await loadManifest(job.warmup)
      await deleteParts(blob, w.shardId, await run(request(w)))
    }
    const req = request(m)
    const before = await counters(server.services.registry)
    const rssBefore = process.memoryUsage().rss
    const probe = server.probe({ intervalMs: job.healthzIntervalMs, maxRequests: 1_000_000 })
    const memory = sampleMemory()
    const cpu0 = process.cpuUsage()
    const started = performance.now()
    const output = await run(req)
    const seconds = (performance.now() - started) / 1000
    const cpu = process.cpuUsage(cpu0)
    const peaks = memory.stop()
    const healthz = await probe.stop()
    const after = await counters(server.services.registry)
    const notes: Record<string, number> = {
      rssBeforeMiB: Math.round(rssBefore / 2 ** 20),
      ...peaks,
      cores: Math.round((100 * (cpu.user + cpu.system)) / 1e6 / seconds) / 100,
      userSeconds: Math.round(cpu.user / 1e4) / 100,
      systemSeconds: Math.round(cpu.system / 1e4) / 100,
      chunks: output.runMeta.length,
      outputParts: output.parts.length,
    }
    for (const [name, value] of Object.entries(after)) notes[name] = Math.round(1000 * (value - (before[name] ?? 0))) / 1000
    return { seconds, output: { kind: 'batch', batch: batchToJson(u64, output) }, healthz, notes }
  } finally {
    await pool.close()
    await server.close()
  }
}
