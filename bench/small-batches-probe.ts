/**
 * Arrow writes of small record batches (a minute, not the whole e2e scenario): a real server child
 * process on file stores, one body of `--rows` sorted rows (16-byte binary keys, 32-byte values)
 * cut into record batches of `--per-batch` rows, posted `--writes` times to one shard; prints the
 * seconds and rows/s of each write. A client that streams a few rows per record batch pays the
 * decoding of each batch; how much, against the same rows in one batch, is what this shows.
 * `--cpu-prof DIR` profiles the server (one file per thread; summaries: cpu-profile.ts).
 *
 *   node --import tsx bench/small-batches-probe.ts [--rows 200000] [--per-batch 10] [--writes 3] [--cpu-prof DIR]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import * as arrow from 'apache-arrow'
import { api, postBody, startServer } from './e2e-server.js'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '200000' },
    'per-batch': { type: 'string', default: '10' },
    writes: { type: 'string', default: '3' },
    'cpu-prof': { type: 'string' },
  },
})
const ROOT = resolve(import.meta.dirname, '..')
const rows = Number(args.rows)
const per = Math.max(1, Number(args['per-batch']))
const writes = Number(args.writes)

const batches: arrow.RecordBatch[] = []
for (let i = 0; i < rows; i += per) {
  const keys = Array.from({ length: Math.min(per, rows - i) }, (_, j) => {
    const b = new Uint8Array(16)
    new DataView(b.buffer).setUint32(12, i + j)
    return b
  })
  const table = new arrow.Table({
    k: arrow.vectorFromArray(keys, new arrow.Binary()),
    v: arrow.vectorFromArray(keys.map(() => new Uint8Array(32)), new arrow.Binary()),
    t: arrow.vectorFromArray(keys.map(() => 0n), new arrow.Uint64()),
    d: arrow.vectorFromArray(keys.map(() => 1n), new arrow.Int64()),
  })
  batches.push(...table.batches)
}
const body = arrow.tableToIPC(new arrow.Table(batches), 'stream')
console.log(`body: ${(body.byteLength / 2 ** 20).toFixed(1)} MiB, ${rows} rows in ${batches.length} record batches`)

const dir = await mkdtemp(join(tmpdir(), 'small-batches-probe-'))
const server = await startServer({ root: ROOT, dataDir: join(dir, 'data'), workers: 2, logLevel: 'warn', cpuProfDir: args['cpu-prof'] ?? null })
try {
  const id = ((await api(server.url, 'POST', '/v1/shards', { name: 'small-batches', timestamp: 'u64', keySchema: { type: 'binary' }, valSchema: { type: 'binary' } })) as { shardId: string }).shardId
  for (let w = 0; w < writes; w++) {
    const r = await postBody(server.url, `/v1/shards/${id}/batches?lower=[0]&upper=[1]&append=false`, 'application/vnd.apache.arrow.stream', body)
    if (r.status !== 201) throw new Error(`write: ${r.status} ${r.text}`)
    console.log(`write ${w}: ${r.seconds.toFixed(2)} s, ${(rows / r.seconds / 1e6).toFixed(2)} M rows/s`)
  }
} finally {
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
