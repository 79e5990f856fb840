import assert from 'node:assert/strict'
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { Gauge, Registry } from 'prom-client'
import { BearerTokens } from '../../src/http/auth.js'
import { showCertificate, tlsWatch, tokenFileWatch, type WatchLog } from '../../src/http/watched-files.js'
import { tlsOf } from '../../src/settings.js'
import { makeCert, type TestCert } from '../support/tls.js'

const A = 'token-a-0123456789'
const B = 'token-b-0123456789'

interface Entry {
  readonly level: 'info' | 'error'
  readonly obj: object
  readonly msg: string
}

async function setUp(t: TestContext, text: string) {
  const dir = await mkdtemp(join(tmpdir(), 'compactd-token-file-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'tokens')
  await writeFile(path, text)
  const logged: Entry[] = []
  const waiters: Array<() => void> = []
  const push = (e: Entry): void => {
    logged.push(e)
    for (const w of waiters.splice(0)) w()
  }
  const log: WatchLog = { info: (obj, msg) => push({ level: 'info', obj, msg }), error: (obj, msg) => push({ level: 'error', obj, msg }) }
  const tokens = new BearerTokens([A])
  const watcher = tokenFileWatch({ path, tokens, initial: [A], log, intervalMs: 10 })
  t.after(() => watcher.stop())
  const nextLog = (): Promise<void> => new Promise((resolve) => waiters.push(resolve))
  return { path, tokens, watcher, logged, nextLog }
}

describe('BearerTokens', () => {
  it('accepts any of its tokens, nothing else, and swaps them whole', () => {
    const tokens = new BearerTokens([A, B])
    assert.deepEqual([tokens.accepts(A), tokens.accepts(B), tokens.accepts('token-c-0123456789'), tokens.accepts('')], [true, true, false, false])
    tokens.replace([B])
    assert.deepEqual([tokens.accepts(A), tokens.accepts(B), tokens.size], [false, true, 1])
    assert.throws(() => tokens.replace([]), RangeError)
  })
})

describe('the token file, read again', () => {
  it('applies a changed file, and says nothing of an unchanged one unless a signal asked', async (t) => {
    const { path, tokens, watcher, logged } = await setUp(t, `${A}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'unchanged' })
    assert.equal(logged.length, 0, 'the tokens read at start-up are already in force')
    await writeFile(path, `${B}\n${A}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'applied' })
    assert.ok(tokens.accepts(B) && tokens.accepts(A))
    await writeFile(path, `# reordered\n${A}\n${B}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'unchanged' })
    assert.deepEqual(await watcher.reload('signal'), { kind: 'unchanged' })
    assert.deepEqual(
      logged.map((e) => [e.level, e.msg]),
      [
        ['info', 'auth token file applied'],
        ['info', 'auth token file read again: unchanged'],
      ],
    )
  })

  it('keeps the tokens in force when the file is bad or gone, logging each problem once', async (t) => {
    const { path, tokens, watcher, logged } = await setUp(t, `${A}\n`)
    await writeFile(path, 'short\n')
    assert.equal((await watcher.reload('interval')).kind, 'refused')
    for (let i = 0; i < 2; i++) assert.equal((await watcher.reload('interval')).kind, 'unchanged', 'the same bad file is not parsed again')
    await unlink(path)
    for (let i = 0; i < 3; i++) assert.equal((await watcher.reload('interval')).kind, 'refused')
    assert.ok(tokens.accepts(A))
    assert.deepEqual(
      logged.map((e) => [e.level, e.msg]),
      [
        ['error', `auth token file not applied, the one in force stays: ${path}: line 1: a token must be at least 16 characters`],
        ['error', `auth token file not applied, the one in force stays: cannot read ${path} (ENOENT)`],
      ],
    )
    await writeFile(path, `${B}\n`)
    assert.deepEqual(await watcher.reload('interval'), { kind: 'applied' })
    assert.ok(!tokens.accepts(A) && tokens.accepts(B))
    assert.ok(!JSON.stringify(logged).includes(A) && !JSON.stringify(logged).includes(B), 'no token is logged')
  })

  it('reads the file again on its own once started', async (t) => {
    const { path, tokens, watcher, nextLog } = await setUp(t, `${A}\n`)
    // NB: the watcher's timer does not hold the process open; this one keeps Node 20 from ending
    // the test while it waits on that timer alone.
    const alive = setInterval(() => undefined, 1_000)
    t.after(() => clearInterval(alive))
    const logged = nextLog()
    watcher.start()
    await writeFile(path, `${B}\n`)
    await logged
    assert.ok(tokens.accepts(B) && !tokens.accepts(A))
  })
})

/**
 * A TLS watcher over `tls.crt`/`tls.key` in a temp dir, `first` in force (files, served pair and
 * expiry gauge); `served` lists the certificates applied since, `logged` its log lines, `shown`
 * the gauge's series.
 */
async function tlsWatchOf(t: TestContext, first: TestCert, dir: string, now?: () => number) {
  const certPath = join(dir, 'tls.crt')
  const keyPath = join(dir, 'tls.key')
  await writeFile(certPath, first.cert)
  await writeFile(keyPath, first.key)
  const initial = tlsOf(certPath, first.cert, keyPath, first.key)
  assert.ok(initial.ok)
  const served: Buffer[] = []
  const logged: string[] = []
  const log: WatchLog = { info: (_o, msg) => logged.push(msg), error: (_o, msg) => logged.push(msg) }
  const expiry = new Gauge({ name: 'expiry', help: 'expiry', labelNames: ['subject'], registers: [new Registry()] })
  showCertificate(expiry, initial.value)
  const shown = async (): Promise<Array<[string | number | undefined, number]>> => (await expiry.get()).values.map((v) => [v.labels.subject, v.value])
  const server = { setSecureContext: (o: { cert?: unknown }) => void served.push(o.cert as Buffer) }
  const watch = tlsWatch({ certPath, keyPath, server, expiry, initial: initial.value, log, ...(now === undefined ? {} : { now }) })
  t.after(() => watch.stop())
  return { certPath, keyPath, watch, served, logged, shown }
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'compactd-tls-watch-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('the TLS certificate, read again', () => {
  it('serves a renewed pair, and keeps the one in force when the key does not match the certificate', async (t) => {
    const dir = await tempDir(t)
    const first = makeCert(dir, 'first')
    const second = makeCert(dir, 'second', 90)
    const { certPath, keyPath, watch, served, logged, shown } = await tlsWatchOf(t, first, dir)
    assert.deepEqual(await watch.reload('interval'), { kind: 'unchanged' })
    // A renewal caught half written: the new certificate beside the old key.
    await writeFile(certPath, second.cert)
    const refused = await watch.reload('interval')
    assert.equal(refused.kind, 'refused')
    assert.deepEqual(served, [])
    assert.deepEqual(await shown(), [['CN=first', first.notAfter]])
    await writeFile(keyPath, second.key)
    assert.deepEqual(await watch.reload('interval'), { kind: 'applied' })
    assert.deepEqual(served, [second.cert])
    assert.deepEqual(await shown(), [['CN=second', second.notAfter]], 'one series: the certificate served now')
    assert.deepEqual(logged, [`TLS certificate not applied, the one in force stays: ${keyPath} is not the private key of ${certPath}'s certificate, or not a PEM key (ERR_OSSL_X509_KEY_VALUES_MISMATCH)`, 'TLS certificate applied'])
  })

  it('refuses a renewal whose certificate has already ended, and keeps the one in force', async (t) => {
    const dir = await tempDir(t)
    const good = makeCert(dir, 'good', 30)
    const old = makeCert(dir, 'old')
    // The clock: a day and a half from now, past old's end (a day) and before good's (30 days).
    const now = (): number => Date.now() + 36 * 3_600_000
    const { certPath, keyPath, watch, served, logged, shown } = await tlsWatchOf(t, good, dir, now)
    // An old pair copied back in place.
    await writeFile(certPath, old.cert)
    await writeFile(keyPath, old.key)
    const refused = await watch.reload('signal')
    const validTo = new Date(old.notAfter * 1000).toISOString()
    assert.deepEqual(refused, { kind: 'refused', problem: `${certPath}'s certificate expired on ${validTo}` })
    assert.deepEqual(served, [])
    assert.deepEqual(await shown(), [['CN=good', good.notAfter]])
    assert.deepEqual(logged, [`TLS certificate not applied, the one in force stays: ${certPath}'s certificate expired on ${validTo}`])
    // The good pair back: the one in force, so nothing changes.
    await writeFile(certPath, good.cert)
    await writeFile(keyPath, good.key)
    assert.deepEqual(await watch.reload('signal'), { kind: 'unchanged' })
  })
})
