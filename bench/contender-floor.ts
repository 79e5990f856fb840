/**
 * The I/O floor: every input part read from the `file://` blob and written back unmerged to a new
 * key, through the same FileBlob compactd uses (so with the same fsyncs). `codec` decodes each part
 * with `decodePart` and encodes it again with `encodePart` (the work any merge must at least do);
 * `raw` writes the bytes it read. `threads` parts are in flight at once, so reads, writes and the
 * codec's CPU work overlap as compactd's prefetch and pipelined uploads let them.
 *
 * Timed: from the first read to the last write. Not timed: process start, the warm-up pass.
 */
import { newPartId, newWriterKey, type ShardId } from '../src/core/ids.js'
import { blobKey, partialBatchKey } from '../src/core/paths.js'
import { decodePart, encodePart } from '../src/columnar/part-format.js'
import { FileBlob } from '../src/location/file-blob.js'
import type { ChildJob, ChildResult } from './contenders.js'
import { loadManifest, type DatasetManifest } from './dataset.js'
import { sampleMemory } from './memory-sampler.js'

export type FloorMode = 'codec' | 'raw'

/** Copies every part; returns [input key, output key] pairs in input order. */
async function copyParts(blob: FileBlob, m: DatasetManifest, mode: FloorMode, lanes: number): Promise<Array<[string, string]>> {
  const shardId = m.shardId as ShardId
  const writer = newWriterKey()
  const inputs = m.inputs.flatMap((b) => b.parts.map((p) => ('key' in p ? p.key : null))).filter((k): k is string => k !== null)
  const pairs: Array<[string, string]> = inputs.map((k) => [`${shardId}/${k}`, blobKey(shardId, partialBatchKey(writer, newPartId()))])
  let next = 0
  const lane = async (): Promise<void> => {
    for (let i = next++; i < pairs.length; i = next++) {
      const [from, to] = pairs[i] as [string, string]
      const bytes = await blob.get(from)
      if (bytes === null) throw new Error(`input part ${from} is missing`)
      if (mode === 'raw') {
        await blob.set(to, bytes)
      } else {
        const { meta, updates } = decodePart(bytes)
        await blob.set(to, encodePart(updates, { desc: meta.desc, order: meta.order, schemaId: meta.schemaId }))
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, lanes) }, lane))
  return pairs
}

export async function runFloor(job: ChildJob, mode: FloorMode): Promise<ChildResult> {
  const m = await loadManifest(job.manifest)
  const blob = new FileBlob(m.blobRoot)
  if (job.warmup !== null) {
    const w = await loadManifest(job.warmup)
    for (const [, out] of await copyParts(blob, w, mode, job.threads)) await blob.delete(out)
  }
  const rssBefore = process.memoryUsage().rss
  const memory = sampleMemory()
  const cpu0 = process.cpuUsage()
  const started = performance.now()
  const pairs = await copyParts(blob, m, mode, job.threads)
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpu0)
  const peaks = memory.stop()
  return {
    seconds,
    output: { kind: 'parts', inputKeys: pairs.map(([from]) => from), keys: pairs.map(([, to]) => to) },
    healthz: null,
    notes: {
      rssBeforeMiB: Math.round(rssBefore / 2 ** 20),
      ...peaks,
      cores: Math.round((100 * (cpu.user + cpu.system)) / 1e6 / seconds) / 100,
      parts: pairs.length,
      lanes: job.threads,
    },
  }
}
