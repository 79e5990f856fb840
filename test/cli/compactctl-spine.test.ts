/**
 * compactctl on a shard whose trace compaction fell behind reads the shard's spine counted, not the
 * whole shard: `shards show` (unless --json), and `shards read` / `shards write` when they need
 * only the shard's upper. The whole shard lists every hollow batch with its parts (5.7 MB for
 * `shards show` of a shard of 8,000 batches, to print 20 lines). A recording proxy in front of the
 * server sees every request the CLI makes.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ctl } from '../support/compactctl.js'
import { seedShard, startOperatorServer, type OperatorServer } from '../support/operator-server.js'

/** A proxy to `s` that records `METHOD /path` of every request; closed after the test. */
async function recordingProxy(t: { after(fn: () => Promise<void>): void }, s: OperatorServer): Promise<{ server: OperatorServer; seen: string[] }> {
  const seen: string[] = []
  const target = new URL(s.url)
  const proxy = createServer((req, res) => {
    seen.push(`${req.method} ${new URL(req.url ?? '/', s.url).pathname}${new URL(req.url ?? '/', s.url).search}`)
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => proxy.close(() => resolve())))
  const { port } = proxy.address() as AddressInfo
  return { server: { ...s, url: `http://127.0.0.1:${port}` }, seen }
}

describe('compactctl on a long trace', { timeout: 120_000 }, () => {
  it('shards show, read and write ask for the spine counted, not the whole shard', async (t) => {
    const s = await startOperatorServer(t)
    const shard = await seedShard(s, 'behind', 40, 1)
    const { server, seen } = await recordingProxy(t, s)

    const show = await ctl(server, ['shards', 'show', 'behind'])
    assert.equal(show.code, 0, show.stderr)
    assert.match(show.stdout, /^spine: [0-9]+ batches on [0-9]+ levels/m)
    const read = await ctl(server, ['shards', 'read', 'behind', '--format', 'ndjson'])
    assert.equal(read.code, 0, read.stderr)
    assert.equal(read.stdout.trim().split('\n').length, 40)
    const dir = await mkdtemp(join(tmpdir(), 'compactctl-spine-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'one.ndjson')
    await writeFile(file, '{"key":"z","val":1,"time":999,"diff":1}\n')
    const write = await ctl(server, ['shards', 'write', 'behind', file, '--upper', '[1000]'])
    assert.equal(write.code, 0, write.stderr)
    const whole = `GET /v1/shards/${shard.shardId}`
    assert.deepEqual(seen.filter((r) => r === whole), [], `requests: ${JSON.stringify(seen)}`)
    assert.equal(seen.filter((r) => r === `${whole}/spine`).length, 3)

    // --json prints the API's Shard, as documented: every batch.
    const json = await ctl(server, ['shards', 'show', 'behind', '--json'])
    assert.ok((JSON.parse(json.stdout) as { trace: { batches: { batches?: unknown[] }[] } }).trace.batches.every((b) => Array.isArray(b.batches)))
    assert.equal(seen.at(-1), whole)
  })

  it('shards since asks for the summary, not the whole shard', async (t) => {
    const s = await startOperatorServer(t)
    const shard = await seedShard(s, 'moving', 40, 1)
    const { server, seen } = await recordingProxy(t, s)
    seen.length = 0
    const since = await ctl(server, ['shards', 'since', 'moving', '5'])
    assert.equal(since.code, 0, since.stderr)
    assert.match(since.stdout, new RegExp(`^${shard.shardId} since \\[5\\] \\(upper \\[[0-9]+\\], seqno [0-9]+\\)$`, 'm'))
    const json = await ctl(server, ['shards', 'since', 'moving', '6', '--json'])
    const summary = JSON.parse(json.stdout) as Record<string, unknown>
    assert.deepEqual([summary.since, 'trace' in summary, typeof summary.stats], [[6], false, 'object'])
    assert.deepEqual(seen.filter((r) => r.includes('/since')), [`POST /v1/shards/${shard.shardId}/since?view=summary`, `POST /v1/shards/${shard.shardId}/since?view=summary`])
  })
})
