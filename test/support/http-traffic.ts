/**
 * Real HTTP traffic against a listening compactd (fetch, no inject): a shard whose appends leave
 * merge work, and a compaction of that work, so every compaction, shard, store and HTTP family has
 * moved. Asserts each status.
 */
import assert from 'node:assert/strict'

export interface Traffic {
  readonly shardId: string
  /** The compaction's final JSON (`status`, `result`...). */
  readonly compaction: { readonly status: string; readonly result?: string }
}

interface SpineBatch {
  readonly desc: { readonly lower: unknown[]; readonly upper: unknown[] }
  readonly compact: boolean
}

export async function call(baseUrl: string, method: string, path: string, body?: unknown, status = 200): Promise<unknown> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  assert.equal(res.status, status, `${method} ${path}: ${text}`)
  return text === '' ? null : JSON.parse(text)
}

/** A shard's non-compact spine batches (its backlog), from GET /v1/shards/{id}. */
export async function backlogOf(baseUrl: string, shardId: string): Promise<{ batches: SpineBatch[]; stats: { backlogBatches: number; backlogBytes: number } }> {
  const shard = (await call(baseUrl, 'GET', `/v1/shards/${shardId}`)) as { trace: { batches: SpineBatch[] }; stats: { backlogBatches: number; backlogBytes: number } }
  return { batches: shard.trace.batches.filter((b) => !b.compact), stats: shard.stats }
}

/**
 * Creates a shard, appends `appends` one-row batches (enough for the spine to merge some, below the
 * default heuristics so no maintenance compaction runs), lowers `min_inputs` and compacts the first
 * non-compact spine batch, waiting for the result.
 */
export async function compactOnce(baseUrl: string, appends = 6): Promise<Traffic> {
  const created = (await call(baseUrl, 'POST', '/v1/shards', { name: 'traffic', timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }, 201)) as { shardId: string }
  const shardId = created.shardId
  for (let i = 0; i < appends; i++) {
    await call(baseUrl, 'POST', `/v1/shards/${shardId}/batches`, { lower: [i], upper: [i + 1], updates: [{ key: `k${i}`, val: i, time: i, diff: 1 }] }, 201)
  }
  const { batches } = await backlogOf(baseUrl, shardId)
  const target = batches[0]
  assert.ok(target !== undefined, `${appends} appends left no merge work in the spine`)
  await call(baseUrl, 'PATCH', '/v1/configs', { persist_compaction_heuristic_min_inputs: 1 })
  const compaction = (await call(baseUrl, 'POST', `/v1/shards/${shardId}/compactions`, { desc: { lower: target.desc.lower, upper: target.desc.upper }, wait: true })) as Traffic['compaction']
  return { shardId, compaction }
}
