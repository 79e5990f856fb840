/**
 * A real compactd for the operator clients' tests: the app listening on 127.0.0.1 at a random
 * port, with a bearer token, on a `GatedBlob` (test/support/gated-blob.ts: a blob whose reads a test can
 * hold, to stop a compaction at a known point without timers), no background GC. Closed (holds
 * released first) after the test. Set-up helpers speak plain HTTP with the token, like any client.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { ApiClient } from '../../src/client/api-client.js'
import type { ShardJson } from '../../src/client/wire.js'
import { GatedBlob } from './gated-blob.js'
import type { Settings } from '../../src/settings.js'
import { buildTestApp, type TestApp } from '../helper.js'

export const TOKEN = 'operator-test-token-0123456789'

export interface OperatorServer extends TestApp {
  readonly url: string
  readonly blob: GatedBlob
  /** An ApiClient with the token. */
  readonly client: ApiClient
  /** A request with the token; asserts the status. */
  call(method: string, path: string, body: unknown, status: number): Promise<unknown>
}

/** `settings` overrides the test settings (a body limit, say). */
export async function startOperatorServer(t: { after(fn: () => Promise<void>): void }, settings: Partial<Settings> = {}): Promise<OperatorServer> {
  const blob = new GatedBlob()
  const test = await buildTestApp({ settings: { authTokens: [TOKEN], workers: 1, ...settings }, services: { rawBlob: blob, gcIntervalMs: null } })
  t.after(async () => {
    blob.releaseAll()
    await test.close()
  })
  await test.app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = test.app.server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}`
  const call = async (method: string, path: string, body: unknown, status: number): Promise<unknown> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? null : JSON.stringify(body),
    })
    const text = await res.text()
    assert.equal(res.status, status, `${method} ${path}: ${text}`)
    return text === '' ? null : (JSON.parse(text) as unknown)
  }
  return { ...test, url, blob, client: new ApiClient({ baseUrl: url, token: TOKEN }), call }
}

/**
 * A shard named `name` with `n` appended batches of `rows` rows each, written to blob (never
 * inline). NB: writer maintenance would compact full spine batches as the writes make them, so
 * the heuristics skip everything while writing; afterwards a request of one input passes them.
 */
export async function seedShard(s: OperatorServer, name: string, n: number, rows = 20): Promise<ShardJson> {
  const never = { persist_compaction_heuristic_min_inputs: 1_000_000, persist_compaction_heuristic_min_parts: 1_000_000, persist_compaction_heuristic_min_updates: 1_000_000_000 }
  await s.call('PATCH', '/v1/configs', { persist_inline_writes_single_max_bytes: 0, ...never }, 200)
  const shard = (await s.call('POST', '/v1/shards', { name, timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'int64' } }, 201)) as ShardJson
  for (let i = 0; i < n; i++) {
    const updates = Array.from({ length: rows }, (_, r) => ({ key: `k${String(r).padStart(4, '0')}-${i}`, val: r, time: i * 10 + 1, diff: 1 }))
    await s.call('POST', `/v1/shards/${shard.shardId}/batches`, { lower: [i * 10], upper: [i * 10 + 10], updates }, 201)
  }
  await s.call('PATCH', '/v1/configs', { persist_compaction_heuristic_min_inputs: 1 }, 200)
  return (await s.call('GET', `/v1/shards/${shard.shardId}`, undefined, 200)) as ShardJson
}

/** The part keys (`<writerKey>/<partId>`) of a spine batch's hollow batches, by input index. */
export function inputPartKeys(shard: ShardJson, spineIndex: number): string[][] {
  const sb = shard.trace.batches[spineIndex]
  assert.ok(sb !== undefined, `no spine batch ${spineIndex}`)
  return sb.batches.map((b) => b.parts.flatMap((p) => (p.key === undefined ? [] : [p.key])))
}

/** Memory configs so that a compaction of these inputs plans about three runs per chunk. */
export async function smallChunks(s: OperatorServer, shard: ShardJson, spineIndex: number): Promise<void> {
  const sizes = (shard.trace.batches[spineIndex]?.batches ?? []).flatMap((b) => b.parts.map((p) => p.encodedSizeBytes ?? 0))
  const target = Math.ceil((3 * Math.max(...sizes)) / 2)
  await s.call('PATCH', '/v1/configs', { persist_blob_target_size: target, persist_compaction_memory_bound_bytes: 4 * target }, 200)
}
