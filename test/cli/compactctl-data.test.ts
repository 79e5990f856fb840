/**
 * compactctl's data commands end to end (shards create, write, read, since, gc): the real launcher
 * in a child process against a real compactd on loopback.
 *
 * - A round trip: batches written from an Arrow stream file (made with apache-arrow, not with
 *   compactd's codec), a JSON array file, NDJSON on stdin and an API body file read back in each
 *   format equal the snapshot semantics restated here (every update at or before asOf, its time
 *   advanced to asOf, consolidated, sorted).
 * - Streaming: a write and a read of a file of about 128 MiB raise the CLI's peak RSS by less than
 *   half the file over a write of a few bytes (buffering the file would add all of it); a read the
 *   server hangs up on mid-body leaves no file behind; each error with its exit code.
 */
import assert from 'node:assert/strict'
import { createWriteStream } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { finished } from 'node:stream/promises'
import { describe, it } from 'node:test'
import * as arrow from 'apache-arrow'
import type { ShardJson } from '../../src/client/wire.js'
import { mulberry32 } from '../../src/core/prng.js'
import { eventually } from '../support/cluster.js'
import { ctl, ctlOnTerminal, json, startCtl } from '../support/compactctl.js'
import { startOperatorServer } from '../support/operator-server.js'

interface Update {
  readonly key: string
  readonly val: number
  readonly time: number
  readonly diff: number
}

const MIB = 1024 * 1024

/** The snapshot at `asOf` of `rows` (ASCII keys, small ints), as the API defines it. */
function snapshotOf(rows: readonly Update[], asOf: number): Update[] {
  const sums = new Map<string, Update>()
  for (const r of rows) {
    if (r.time > asOf) continue
    const id = JSON.stringify([r.key, r.val])
    const prev = sums.get(id)
    sums.set(id, { key: r.key, val: r.val, time: asOf, diff: (prev?.diff ?? 0) + r.diff })
  }
  return [...sums.values()].filter((u) => u.diff !== 0).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.val - b.val))
}

/** `n` random updates with times in [lower, upper). */
function updates(rand: () => number, n: number, lower: number, upper: number): Update[] {
  const pick = (k: number): number => Math.floor(rand() * k)
  return Array.from({ length: n }, () => ({ key: `k${pick(12)}`, val: pick(4), time: lower + pick(upper - lower), diff: pick(7) - 3 || 1 }))
}

/** One record batch of columns k (utf8), v (int64), t (uint64), d (int64). */
function recordBatch(rows: readonly Update[]): arrow.RecordBatch {
  const table = new arrow.Table({
    k: arrow.vectorFromArray(rows.map((r) => r.key), new arrow.Utf8()),
    v: arrow.vectorFromArray(rows.map((r) => BigInt(r.val)), new arrow.Int64()),
    t: arrow.vectorFromArray(rows.map((r) => BigInt(r.time)), new arrow.Uint64()),
    d: arrow.vectorFromArray(rows.map((r) => BigInt(r.diff)), new arrow.Int64()),
  })
  const [batch] = table.batches
  assert.ok(batch !== undefined)
  return batch
}

/** Writes an Arrow IPC stream of the batches `next` yields (undefined: done) to `path`. */
async function writeArrowStream(path: string, next: (i: number) => Update[] | undefined): Promise<void> {
  const out = createWriteStream(path)
  const writer = new arrow.RecordBatchStreamWriter({ autoDestroy: false })
  writer.pipe(out)
  for (let i = 0, rows = next(0); rows !== undefined; rows = next(++i)) writer.write(recordBatch(rows))
  writer.close()
  await finished(out)
}

/** The rows of an Arrow stream `shards read --format arrow` wrote. */
function arrowRows(bytes: Uint8Array): Update[] {
  return [...arrow.tableFromIPC(bytes)].map((r) => {
    const row = r as unknown as { k: string; v: bigint; t: bigint; d: bigint }
    return { key: row.k, val: Number(row.v), time: Number(row.t), diff: Number(row.d) }
  })
}

const ndjsonRows = (text: string): Update[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Update)

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'compactctl-data-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('compactctl data commands against a real server', { timeout: 600_000 }, () => {
  it('create, write (Arrow file, JSON array, NDJSON on stdin, API body) and read back in every format', async (t) => {
    const s = await startOperatorServer(t)
    const dir = await tempDir(t)
    const seed = Number(process.env.SEED ?? Date.now() % 1_000_000)
    t.diagnostic(`seed ${seed} (SEED=${seed} reproduces it)`)
    const rand = mulberry32(seed)

    const created = await ctl(s, ['shards', 'create', 'trip', '--key', 'utf8', '--val', 'int64'])
    assert.equal(created.code, 0, created.stderr)
    const shardId = created.stdout.split(' ')[0] ?? ''
    assert.match(shardId, /^s[0-9a-f-]{36}$/, created.stdout)
    assert.match(created.stdout, / trip \(u64, key utf8, val int64\)\n$/)
    const again = await ctl(s, ['shards', 'create', 'trip', '--key', 'utf8', '--val', 'int64', '--json'])
    assert.equal(again.code, 6)
    assert.equal(json<{ error: { code: string } }>(again).error.code, 'SHARD_NAME_TAKEN')
    const struct = '{"type":"struct","fields":[{"name":"qty","type":{"type":"int64"},"nullable":false}]}'
    const other = json<ShardJson>(await ctl(s, ['shards', 'create', 'grid', '--timestamp', 'product', '--key', 'bytes', '--val', struct, '--json']))
    assert.deepEqual([other.timestamp, other.schemas?.[0]?.keySchema, other.schemas?.[0]?.valSchema], ['product', { type: 'binary' }, JSON.parse(struct)])

    const written: Update[] = []
    // [0, 10): an Arrow stream file, with its frontiers from the flags.
    const a = updates(rand, 300, 0, 10)
    await writeArrowStream(join(dir, 'a.arrows'), (i) => (i < 3 ? a.slice(i * 100, i * 100 + 100) : undefined))
    const wa = await ctl(s, ['shards', 'write', 'trip', join(dir, 'a.arrows'), '--lower', '[0]', '--upper', '[10]'])
    assert.equal(wa.code, 0, wa.stderr)
    assert.match(wa.stdout, /^wrote [0-9]+ updates \(.* in 1 part\) for \[0\]\.\.\[10\] from .*a\.arrows \(an Arrow stream, .*\)\nappended to s[0-9a-f-]+: upper \[10\], seqno [0-9]+\n$/)
    written.push(...a)
    // [10, 20): a JSON array; the lower defaults to the shard's upper.
    const b = updates(rand, 200, 10, 20)
    await writeFile(join(dir, 'b.json'), JSON.stringify(b, null, 1))
    const wb = await ctl(s, ['shards', 'write', 'trip', join(dir, 'b.json'), '--upper', '20', '--json'])
    assert.equal(wb.code, 0, wb.stderr)
    const wbJson = json<{ appended: boolean; upper: number[]; batch: { desc: { lower: number[] } } }>(wb)
    assert.deepEqual([wbJson.appended, wbJson.upper, wbJson.batch.desc.lower], [true, [20], [10]])
    written.push(...b)
    // [20, 30): NDJSON on stdin.
    const c = updates(rand, 200, 20, 30)
    await writeFile(join(dir, 'c.ndjson'), `${c.map((u) => JSON.stringify(u)).join('\n')}\n\n`)
    const wc = await startCtl(s, ['shards', 'write', shardId, '-', '--lower', '20', '--upper', '30'], { stdinFile: join(dir, 'c.ndjson') }).done
    assert.equal(wc.code, 0, wc.stderr)
    assert.match(wc.stdout, /from stdin \(NDJSON updates, /)
    written.push(...c)
    // [30, 40): the API's own body, frontiers inside (flags refused with it).
    const d = updates(rand, 100, 30, 40)
    await writeFile(join(dir, 'd.json'), JSON.stringify({ lower: [30], upper: [40], updates: d }))
    const mixed = await ctl(s, ['shards', 'write', 'trip', join(dir, 'd.json'), '--upper', '[40]'])
    assert.equal(mixed.code, 2)
    assert.match(mixed.stderr, /^compactctl: USAGE: .*d\.json is a JSON batch body, which carries its own lower, upper/)
    const wd = await ctl(s, ['shards', 'write', 'trip', join(dir, 'd.json')])
    assert.equal(wd.code, 0, wd.stderr)
    written.push(...d)

    // Read back: the default asOf is the upper minus one.
    const asJson = await ctl(s, ['shards', 'read', 'trip'])
    assert.equal(asJson.code, 0, asJson.stderr)
    const doc = JSON.parse(asJson.stdout) as { asOf: number; updates: Update[] }
    assert.equal(doc.asOf, 39)
    assert.deepEqual(doc.updates, snapshotOf(written, 39))
    const asNdjson = await ctl(s, ['shards', 'read', 'trip', '--as-of', '15', '--format', 'ndjson'])
    assert.equal(asNdjson.code, 0, asNdjson.stderr)
    assert.deepEqual(ndjsonRows(asNdjson.stdout), snapshotOf(written, 15))
    const file = join(dir, 'snap.arrows')
    const asArrow = await ctl(s, ['shards', 'read', 'trip', '--as-of', '27', '--format', 'arrow', '-o', file])
    assert.equal(asArrow.code, 0, asArrow.stderr)
    assert.match(asArrow.stdout, /^wrote .* to .*snap\.arrows: s[0-9a-f-]+ as of 27\n$/)
    assert.deepEqual(arrowRows(await readFile(file)), snapshotOf(written, 27))
    const toFile = await ctl(s, ['shards', 'read', 'trip', '--format', 'ndjson', '-o', join(dir, 'snap.ndjson'), '--json'])
    assert.equal(toFile.code, 0, toFile.stderr)
    const toFileJson = json<{ updates: number; asOf: number; format: string }>(toFile)
    assert.deepEqual([toFileJson.updates, toFileJson.asOf, toFileJson.format], [snapshotOf(written, 39).length, 39, 'ndjson'])
    assert.deepEqual(ndjsonRows(await readFile(join(dir, 'snap.ndjson'), 'utf8')), snapshotOf(written, 39))
    // What `read --format arrow` wrote is what `write` takes: a copy of the snapshot at 27.
    await ctl(s, ['shards', 'create', 'copy', '--key', 'utf8', '--val', 'int64'])
    const copied = await ctl(s, ['shards', 'write', 'copy', file, '--upper', '[28]'])
    assert.equal(copied.code, 0, copied.stderr)
    assert.deepEqual(ndjsonRows((await ctl(s, ['shards', 'read', 'copy', '--format', 'ndjson'])).stdout), snapshotOf(written, 27))
    // An empty input is an empty batch: a filter that matched nothing still moves the upper.
    const empty = await ctl(s, ['shards', 'write', 'copy', '-', '--upper', '[35]'])
    assert.equal(empty.code, 0, empty.stderr)
    assert.match(empty.stdout, /^wrote 0 updates .* for \[28\]\.\.\[35\] from stdin/)
    assert.equal((await ctl(s, ['shards', 'write', 'copy', '-', '--upper', '[36]', '--format', 'arrow'])).code, 2, 'an Arrow stream is never empty')
    assert.deepEqual(ndjsonRows((await ctl(s, ['shards', 'read', 'copy', '--format', 'ndjson'])).stdout), snapshotOf(written, 27).map((u) => ({ ...u, time: 34 })))
    assert.deepEqual(ndjsonRows((await ctl(s, ['shards', 'read', 'trip', '--format', 'ndjson', '-o', '-'])).stdout), snapshotOf(written, 39))
    assert.deepEqual(await readdir(dir), ['a.arrows', 'b.json', 'c.ndjson', 'd.json', 'snap.arrows', 'snap.ndjson'], 'no temporary files left')

    // since, then GC; reading below the since is refused by the server.
    const since = await ctl(s, ['shards', 'since', 'trip', '[20]'])
    assert.equal(since.code, 0, since.stderr)
    assert.match(since.stdout, /^s[0-9a-f-]+ since \[20\] \(upper \[40\], seqno [0-9]+\)\n$/)
    const gc = await ctl(s, ['shards', 'gc', 'trip', '--json'])
    assert.equal(gc.code, 0, gc.stderr)
    assert.deepEqual(Object.keys(json(gc)).sort(), ['deletedBytes', 'deletedParts', 'truncatedBelowSeqno'])
    assert.match((await ctl(s, ['shards', 'gc', shardId])).stdout, /^s[0-9a-f-]+: deleted [0-9]+ parts \(.*\); state versions below seqno [0-9]+ truncated\n$/)
    const below = await ctl(s, ['shards', 'read', 'trip', '--as-of', '15'])
    assert.equal(below.code, 6)
    assert.match(below.stderr, /^compactctl: AS_OF_NOT_AVAILABLE: query\.asOf: 15 is not in \[since \[20\], upper \[40\]\)\n$/)
    assert.deepEqual(ndjsonRows((await ctl(s, ['shards', 'read', 'trip', '--format', 'ndjson'])).stdout), snapshotOf(written, 39))
  })

  it('errors: unknown shard, bad frontiers, a body over the limit, a since regression, a terminal, a full disk', async (t) => {
    const s = await startOperatorServer(t, { bodyLimitBytes: 64 * 1024 })
    const dir = await tempDir(t)
    await ctl(s, ['shards', 'create', 'e', '--key', 'utf8', '--val', 'int64'])
    const small = join(dir, 'small.json')
    await writeFile(small, JSON.stringify([{ key: 'a', val: 1, time: 1, diff: 1 }]))

    const unknown = await ctl(s, ['shards', 'write', 'nope', small, '--upper', '[5]'])
    assert.deepEqual([unknown.code, unknown.stderr], [5, 'compactctl: SHARD_NOT_FOUND: no shard named "nope" (give a shard id s<uuid> or an exact name)\n'])
    const unknownId = await ctl(s, ['shards', 'write', 's00000000-0000-4000-8000-000000000000', small, '--lower', '[0]', '--upper', '[5]', '--json'])
    assert.equal(unknownId.code, 5)
    assert.deepEqual(json<{ error: unknown }>(unknownId).error, { code: 'SHARD_NOT_FOUND', message: json<{ error: { message: string } }>(unknownId).error.message, status: 404, exitCode: 5 })

    const malformed = await ctl(s, ['shards', 'write', 'e', small, '--upper', '[5'])
    assert.equal(malformed.code, 2)
    assert.match(malformed.stderr, /^compactctl: USAGE: option '--upper <frontier>' argument '\[5' is invalid\. must be a JSON frontier/)
    const wrongKind = await ctl(s, ['shards', 'write', 'e', small, '--lower', '[0]', '--upper', '[[1,2]]'])
    assert.equal(wrongKind.code, 6)
    assert.match(wrongKind.stderr, /^compactctl: INVALID_BATCH: .*upper.*\n$/)
    const outside = await ctl(s, ['shards', 'write', 'e', small, '--lower', '[2]', '--upper', '[5]', '--expected-upper', '[0]'])
    assert.equal(outside.code, 6)
    assert.match(outside.stderr, /^compactctl: INVALID_BATCH: body\.updates\[0\]\.time 1 is not in \[lower \[2\], upper \[5\]\)/)
    const noUpper = await ctl(s, ['shards', 'write', 'e', small])
    assert.deepEqual([noUpper.code, /--upper is required for a JSON array of updates/.test(noUpper.stderr)], [2, true])
    const missingFile = await ctl(s, ['shards', 'write', 'e', join(dir, 'absent.arrows'), '--upper', '[5]'])
    assert.equal(missingFile.code, 2)
    assert.match(missingFile.stderr, /^compactctl: USAGE: cannot read .*absent\.arrows: ENOENT/)

    // Over the body limit: the server's 413 as the error, and nothing written.
    const big = join(dir, 'big.arrows')
    await writeArrowStream(big, (i) => (i < 8 ? Array.from({ length: 1000 }, (_, r) => ({ key: `k${i}-${r}`.padEnd(100, '.'), val: r, time: 1, diff: 1 })) : undefined))
    assert.ok((await stat(big)).size > 8 * 64 * 1024)
    const tooLarge = await ctl(s, ['shards', 'write', 'e', big, '--upper', '[5]'])
    assert.equal(tooLarge.code, 6, tooLarge.stderr)
    assert.match(tooLarge.stderr, /^lower: \[0\] \(the shard's upper\)\ncompactctl: PAYLOAD_TOO_LARGE: body: larger than the body limit of 65536 bytes \(COMPACTD_BODY_LIMIT\): split the input/)
    const tooLargeJson = json<{ error: { code: string; status: number; exitCode: number } }>(await ctl(s, ['shards', 'write', 'e', big, '--upper', '[5]', '--json']))
    assert.deepEqual([tooLargeJson.error.code, tooLargeJson.error.status, tooLargeJson.error.exitCode], ['PAYLOAD_TOO_LARGE', 413, 6])
    assert.deepEqual(json<ShardJson>(await ctl(s, ['shards', 'show', 'e', '--json'])).upper, [0])

    assert.equal((await ctl(s, ['shards', 'write', 'e', small, '--upper', '[5]'])).code, 0)
    assert.equal((await ctl(s, ['shards', 'since', 'e', '3'])).code, 0)
    const regression = await ctl(s, ['shards', 'since', 'e', '[2]'])
    assert.equal(regression.code, 6)
    assert.equal(regression.stderr, "compactctl: SINCE_REGRESSION: body.since: [2] is behind the shard's since [3]; since only moves forward\n")
    assert.equal((await ctl(s, ['shards', 'since', 'e', 'soon'])).code, 2)

    // Arrow is not written to a terminal unless asked; JSON is.
    const tty = await ctlOnTerminal(s, ['shards', 'read', 'e', '--format', 'arrow'])
    assert.equal(tty.code, 2, tty.stdout)
    assert.match(tty.stdout, /USAGE: refusing to write binary Arrow to a terminal: give -o FILE/)
    assert.equal((await ctlOnTerminal(s, ['shards', 'read', 'e'])).code, 0)
    assert.equal((await ctl(s, ['shards', 'read', 'e', '--json'])).code, 2, '--json needs -o')
    // A product shard has no latest time to default to.
    await ctl(s, ['shards', 'create', 'p', '--timestamp', 'product', '--key', 'utf8', '--val', 'int64'])
    const product = await ctl(s, ['shards', 'read', 'p'])
    assert.equal(product.code, 2)
    assert.match(product.stderr, /has product times, which have no single latest one: give --as-of \[a,b\]/)

    const full = await ctl(s, ['shards', 'read', 'e', '-o', '/dev/full'])
    assert.deepEqual([full.code, full.stderr], [1, 'compactctl: ERROR: cannot write /dev/full: no space left on device\n'])
    const noDir = await ctl(s, ['shards', 'read', 'e', '-o', join(dir, 'absent', 'x.json')])
    assert.deepEqual([noDir.code, noDir.stderr], [1, `compactctl: ERROR: cannot write ${join(dir, 'absent', 'x.json')}: no directory ${join(dir, 'absent')}\n`])
  })

  it('streams a large Arrow file both ways in bounded memory, and leaves no file when the server hangs up mid-body', async (t) => {
    const s = await startOperatorServer(t, { bodyLimitBytes: 512 * MIB })
    const dir = await tempDir(t)
    // Parts of about 1 MiB, so the read below can be held at its last part.
    await s.call('PATCH', '/v1/configs', { persist_blob_target_size: MIB }, 200)
    await ctl(s, ['shards', 'create', 'big', '--key', 'utf8', '--val', 'int64'])
    const rowsPerBatch = 4096
    const batches = 36
    const pad = '.'.repeat(900)
    const file = join(dir, 'big.arrows')
    await writeArrowStream(file, (i) => (i < batches ? Array.from({ length: rowsPerBatch }, (_, r) => ({ key: `k${String(i * rowsPerBatch + r).padStart(9, '0')}${pad}`, val: r, time: 1, diff: 1 })) : undefined))
    const size = (await stat(file)).size
    assert.ok(size > 128 * MIB, `${size} bytes`)

    const tiny = join(dir, 'tiny.json')
    await writeFile(tiny, JSON.stringify([]))
    const base = await startCtl(s, ['shards', 'write', 'big', tiny, '--upper', '[0]', '--no-append'], { peakRss: true }).done
    assert.equal(base.code, 0, base.stderr)
    const write = await startCtl(s, ['shards', 'write', 'big', file, '--upper', '[2]'], { peakRss: true, timeoutMs: 300_000 }).done
    assert.equal(write.code, 0, write.stderr)
    assert.match(write.stdout, new RegExp(`^wrote ${(rowsPerBatch * batches).toLocaleString('en-US')} updates `))
    const read = await startCtl(s, ['shards', 'read', 'big', '--format', 'arrow', '-o', join(dir, 'out.arrows')], { peakRss: true, timeoutMs: 300_000 }).done
    assert.equal(read.code, 0, read.stderr)
    const baseRss = base.peakRssBytes ?? NaN
    const grew = (r: typeof write): number => (r.peakRssBytes ?? NaN) - baseRss
    t.diagnostic(`file ${(size / MIB).toFixed(1)} MiB; peak RSS: ${(baseRss / MIB).toFixed(1)} MiB writing nothing, +${(grew(write) / MIB).toFixed(1)} MiB writing it, +${(grew(read) / MIB).toFixed(1)} MiB reading it`)
    assert.ok(grew(write) < size / 2, `writing ${size} bytes raised the peak RSS by ${grew(write)} bytes`)
    assert.ok(grew(read) < size / 2, `reading ${size} bytes raised the peak RSS by ${grew(read)} bytes`)
    const out = await stat(join(dir, 'out.arrows'))
    assert.ok(out.size > 128 * MIB, `${out.size} bytes read`)

    // The server hangs up mid-body: the read fails, and the file it was to replace is untouched.
    const target = join(dir, 'snap.arrows')
    await writeFile(target, 'previous')
    const shard = json<ShardJson>(await ctl(s, ['shards', 'show', 'big', '--json']))
    const last = shard.trace.batches.at(-1)?.batches.at(-1)?.parts.at(-1)?.key
    assert.ok(last !== undefined)
    const hold = s.blob.hold((key) => key === `${shard.shardId}/${last}`)
    const cut = startCtl(s, ['shards', 'read', 'big', '--format', 'arrow', '-o', target])
    await hold.reached
    await eventually('the read has written part of the snapshot', async () => {
      for (const name of await readdir(dir)) if (name.startsWith('.snap.arrows.') && (await stat(join(dir, name))).size > 0) return true
      return undefined
    })
    s.app.server.closeAllConnections()
    hold.release()
    const broken = await cut.done
    assert.equal(broken.code, 1, broken.stderr)
    assert.match(broken.stderr, /^compactctl: ERROR: the snapshot broke off before its end: .*\n$/)
    assert.equal(await readFile(target, 'utf8'), 'previous')
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.')), [], 'no temporary file left')
  })

  it('a snapshot whose body ends early but cleanly (no error, no end marker) is an error, not a short file', async (t) => {
    const dir = await tempDir(t)
    // A server (or a proxy) that answers 200 and ends the body cleanly, short: empty, or cut off.
    const whole = { arrow: Buffer.concat([Buffer.from('ffffffff10000000', 'hex'), Buffer.alloc(16), Buffer.from('ffffffff00000000', 'hex')]), json: Buffer.from('{"asOf":5,"updates":[{"key":"a","val":1,"time":5,"diff":1}]}\n') }
    let answer = Buffer.alloc(0)
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': req.headers.accept?.includes('arrow') === true ? 'application/vnd.apache.arrow.stream' : 'application/json' })
      res.end(answer)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const target = join(dir, 'snap')
    await writeFile(target, 'previous')
    const read = (format: string) => ctl(null, ['shards', 'read', 's01a25158-cf8b-7676-afcd-5eb8cde6e682', '--as-of', '5', '--format', format, '-o', target], { COMPACTD_URL: url })
    for (const [format, body, why] of [
      ['arrow', Buffer.alloc(0), 'it was empty'],
      ['arrow', whole.arrow.subarray(0, 20), 'cut short'],
      ['json', whole.json.subarray(0, 30), 'cut short'],
    ] as const) {
      answer = body
      const r = await read(format)
      assert.equal(r.code, 1, `${format} ${body.length} bytes: ${r.stdout}${r.stderr}`)
      assert.match(r.stderr, new RegExp(`^compactctl: ERROR: the snapshot broke off before its end: the body ended without the .* \\(${why}\\)\n$`))
      assert.equal(await readFile(target, 'utf8'), 'previous')
    }
    for (const format of ['arrow', 'json'] as const) {
      answer = whole[format]
      const r = await read(format)
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(await readFile(target), whole[format])
    }
    assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.')), [], 'no temporary file left')
  })
})
