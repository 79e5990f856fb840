/**
 * The process entry, as an operator runs it: `node --import tsx src/main.ts`.
 */
import assert from 'node:assert/strict'
import { get } from 'node:https'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ctl } from './support/compactctl.js'
import { startMain } from './support/server-process.js'
import { makeCert, makeExpiredCert, servedFingerprint } from './support/tls.js'

describe('main', () => {
  it('starts on the file stores under --data-dir, serves, and exits 0 on SIGTERM', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const child = startMain(['--port', '0', '--data-dir', dataDir])
    t.after(child.kill)

    const listening = await child.logLine('compactd listening')
    const address = listening.address as string
    assert.match(address, /^http:\/\/127\.0\.0\.1:\d+$/)
    assert.equal((listening.settings as Record<string, unknown>).blob, `file://${dataDir}/blob`)
    assert.equal((listening.settings as Record<string, unknown>).auth, 'off')

    const health = await fetch(`${address}/healthz`)
    assert.equal(health.status, 200)
    assert.deepEqual(await health.json(), { status: 'ok' })
    const ready = await fetch(`${address}/readyz`)
    assert.equal(ready.status, 200)
    assert.equal(ready.headers.get('x-request-id')?.length, 36)
    assert.deepEqual(await ready.json(), { status: 'ready', checks: { blob: 'ok', consensus: 'ok', scheduler: 'running' } })

    child.proc.kill('SIGTERM')
    assert.equal((await child.exited()).code, 0, child.stderr())
    assert.deepEqual((await readdir(dataDir)).sort(), ['blob', 'consensus'])
  })

  it('logs process warnings (background work that failed) as JSON warn lines on stdout, none as text on stderr', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    // A preloaded module emits a warning when told (SIGUSR2), as background work does when it fails.
    const preload = `data:text/javascript,${encodeURIComponent("process.on('SIGUSR2', () => process.emitWarning('the idle sweep failed; it runs again at the next interval: probe', { code: 'COMPACTD_TEST' }))")}`
    const child = startMain(['--port', '0', '--data-dir', dataDir], { env: { NODE_OPTIONS: `--import=${preload}` } })
    t.after(child.kill)
    await child.logLine('compactd listening')
    child.proc.kill('SIGUSR2')
    const line = await child.logLine('the idle sweep failed; it runs again at the next interval: probe')
    assert.equal(line.level, 40)
    assert.equal(line.code, 'COMPACTD_TEST')
    assert.equal(typeof line.time, 'number')
    child.proc.kill('SIGTERM')
    assert.equal((await child.exited()).code, 0, child.stderr())
    assert.doesNotMatch(child.stderr(), /Warning/)
  })

  it('drains on SIGTERM: /readyz answers 503 while requests are still served, then the listener closes and it exits 0', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    // NB: the drain only bounds how long the test has to see it; nothing waits it out but the exit.
    const child = startMain(['--port', '0', '--data-dir', dataDir, '--shutdown-drain', '5s'])
    t.after(child.kill)
    const address = (await child.logLine('compactd listening')).address as string
    const shard = await fetch(`${address}/v1/shards`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'utf8' } }) })
    assert.equal(shard.status, 201)
    const { shardId } = (await shard.json()) as { shardId: string }

    child.proc.kill('SIGTERM')
    await child.logLine('shutting down')
    // A load balancer's probe: not ready any more, while the listener still accepts.
    const ready = await fetch(`${address}/readyz`)
    assert.equal(ready.status, 503)
    assert.equal(((await ready.json()) as { checks: { scheduler: string } }).checks.scheduler, 'stopped')
    // What a load balancer sent before it noticed is still served, and closes its connection.
    const write = await fetch(`${address}/v1/shards/${shardId}/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lower: [0], upper: [1], updates: [{ key: 'k', val: 'v', time: 0, diff: 1 }] }) })
    assert.equal(write.status, 201, await write.clone().text())
    assert.equal(write.headers.get('connection'), 'close')

    await child.logLine('drained; no longer listening')
    assert.equal((await child.exited()).code, 0, child.stderr())
  })

  it('keeps compactions across a restart on the file stores: history, the record and its idempotency key', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const start = async (): Promise<{ address: string; stop: () => Promise<void> }> => {
      const child = startMain(['--port', '0', '--data-dir', dataDir])
      t.after(child.kill)
      const address = (await child.logLine('compactd listening')).address as string
      return {
        address,
        stop: async () => {
          child.proc.kill('SIGTERM')
          assert.equal((await child.exited()).code, 0, child.stderr())
        },
      }
    }
    const call = async (address: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Record<string, unknown>> => {
      const res = await fetch(`${address}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${await res.clone().text()}`)
      return (await res.json()) as Record<string, unknown>
    }

    const first = await start()
    const shard = (await call(first.address, 'POST', '/v1/shards', { timestamp: 'u64', keySchema: { type: 'utf8' }, valSchema: { type: 'utf8' } })).shardId as string
    for (let i = 0; i < 3; i++) {
      await call(first.address, 'POST', `/v1/shards/${shard}/batches`, { lower: [i], upper: [i + 1], updates: [{ key: `k${i}`, val: 'v', time: i, diff: 1 }] })
    }
    const key = { 'idempotency-key': 'restart-1' }
    const done = await call(first.address, 'POST', `/v1/shards/${shard}/compactions`, { major: true, wait: true }, key)
    assert.equal(done.status, 'succeeded', JSON.stringify(done))
    await first.stop()

    const second = await start()
    assert.deepEqual(await call(second.address, 'GET', `/v1/compactions/${String(done.id)}`), done)
    const again = await call(second.address, 'POST', `/v1/shards/${shard}/compactions`, { major: true }, key)
    assert.equal(again.id, done.id, 'the idempotency key is known after the restart')
    const listed = (await call(second.address, 'GET', `/v1/compactions?shardId=${shard}&source=request`)).compactions as { id: string }[]
    assert.deepEqual(listed.map((c) => c.id), [done.id])
    await second.stop()
  })

  it('rotates bearer tokens from the token file on SIGHUP, keeping the tokens in force when the file is bad', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const OLD = 'old-token-0123456789'
    const NEW = 'new-token-9876543210'
    const file = join(dataDir, 'tokens')
    await writeFile(file, `${OLD}\n`)
    const child = startMain(['--port', '0', '--data-dir', dataDir, '--auth-token-file', file])
    t.after(child.kill)
    const listening = await child.logLine('compactd listening')
    const address = listening.address as string
    assert.equal((listening.settings as Record<string, unknown>).authTokens, 1)
    const status = async (token: string): Promise<number> => (await fetch(`${address}/v1/shards`, { headers: { authorization: `Bearer ${token}` } })).status
    assert.deepEqual([await status(OLD), await status(NEW)], [200, 401])

    // The rotation: both while clients move over, then the new one alone.
    await writeFile(file, `# rotation\n${OLD}\n${NEW}\n`)
    child.proc.kill('SIGHUP')
    assert.equal((await child.logLine('auth token file applied')).tokens, 2)
    assert.deepEqual([await status(OLD), await status(NEW)], [200, 200])

    await writeFile(file, 'short\n')
    child.proc.kill('SIGHUP')
    await child.logLine(`auth token file not applied, the one in force stays: ${file}: line 1: a token must be at least 16 characters`)
    assert.deepEqual([await status(OLD), await status(NEW)], [200, 200])

    await writeFile(file, `${NEW}\n`)
    child.proc.kill('SIGHUP')
    assert.equal((await child.logLine('auth token file applied', 2)).tokens, 1)
    assert.deepEqual([await status(OLD), await status(NEW)], [401, 200])
    assert.ok(!JSON.stringify(child.lines()).includes(OLD) && !child.stderr().includes(NEW), 'no token in any log line')

    child.proc.kill('SIGTERM')
    assert.equal((await child.exited()).code, 0, child.stderr())
  })

  it('serves HTTPS with the certificate given, and a renewed one from SIGHUP on', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const first = makeCert(dataDir, 'first')
    const second = makeCert(dataDir, 'second', 90)
    const cert = join(dataDir, 'tls.crt')
    const key = join(dataDir, 'tls.key')
    await writeFile(cert, first.cert)
    await writeFile(key, first.key)
    const child = startMain(['--port', '0', '--data-dir', dataDir, '--tls-cert', cert, '--tls-key', key])
    t.after(child.kill)
    const listening = await child.logLine('compactd listening')
    const address = listening.address as string
    assert.match(address, /^https:\/\/127\.0\.0\.1:\d+$/)
    const port = Number(new URL(address).port)
    // The certificate a new connection is served, checked against the one expected.
    const served = (ca: Buffer): Promise<string> => servedFingerprint(port, ca)
    assert.equal(await served(first.cert), first.fingerprint256)
    const health = await new Promise<number>((resolve, reject) => get({ host: '127.0.0.1', port, path: '/healthz', ca: first.cert }, (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
      }).on('error', reject),
    )
    assert.equal(health, 200)
    // The certificate's expiry, for an alert before it ends.
    const expiry = async (ca: Buffer): Promise<string[]> => {
      const text = await new Promise<string>((resolve, reject) => get({ host: '127.0.0.1', port, path: '/metrics', ca }, (res) => {
          let body = ''
          res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body))
        }).on('error', reject),
      )
      return text.split('\n').filter((l) => l.startsWith('compactd_tls_certificate_expiry_timestamp_seconds{'))
    }
    assert.deepEqual(await expiry(first.cert), [`compactd_tls_certificate_expiry_timestamp_seconds{subject="CN=first"} ${first.notAfter}`])
    // compactctl over HTTPS, trusting the certificate as Node's clients do (NODE_EXTRA_CA_CERTS).
    const cli = await ctl(null, ['status', '--json'], { COMPACTD_URL: address, NODE_EXTRA_CA_CERTS: first.certPath })
    assert.equal(cli.code, 0, cli.stderr)
    const untrusted = await ctl(null, ['status'], { COMPACTD_URL: address })
    assert.equal(untrusted.code, 3, 'a certificate the client does not trust: unreachable, in one line')
    assert.equal(untrusted.stderr.split('\n').filter((l) => l !== '').length, 1, untrusted.stderr)
    assert.match(untrusted.stderr, /self-signed certificate.* \(to trust its CA, point NODE_EXTRA_CA_CERTS at its PEM file\)\n$/)

    await writeFile(cert, second.cert)
    await writeFile(key, second.key)
    child.proc.kill('SIGHUP')
    assert.equal((await child.logLine('TLS certificate applied')).subject, 'CN=second')
    assert.equal(await served(second.cert), second.fingerprint256)
    assert.deepEqual(await expiry(second.cert), [`compactd_tls_certificate_expiry_timestamp_seconds{subject="CN=second"} ${second.notAfter}`])

    child.proc.kill('SIGTERM')
    assert.equal((await child.exited()).code, 0, child.stderr())
  })

  it('says so when its certificate has ended, takes a renewal, and refuses an ended one after it', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dataDir, { recursive: true, force: true }))
    const old = makeExpiredCert(dataDir, 'old')
    const renewed = makeCert(dataDir, 'renewed')
    const cert = join(dataDir, 'tls.crt')
    const key = join(dataDir, 'tls.key')
    await writeFile(cert, old.cert)
    await writeFile(key, old.key)
    const child = startMain(['--port', '0', '--data-dir', dataDir, '--tls-cert', cert, '--tls-key', key])
    t.after(child.kill)
    // Served all the same (background work goes on), with an error line that says what clients see.
    const ended = await child.logLine(`TLS certificate served though ${cert}'s certificate expired on 2024-01-02T00:00:00.000Z: clients that check it refuse every connection until it is renewed`)
    assert.equal(ended.level, 50)
    const address = (await child.logLine('compactd listening')).address as string
    const port = Number(new URL(address).port)
    const served = (): Promise<string> => servedFingerprint(port)
    assert.equal(await served(), old.fingerprint256)

    await writeFile(cert, renewed.cert)
    await writeFile(key, renewed.key)
    child.proc.kill('SIGHUP')
    assert.equal((await child.logLine('TLS certificate applied')).subject, 'CN=renewed')
    // The old pair copied back by mistake: refused, the renewed one stays.
    await writeFile(cert, old.cert)
    await writeFile(key, old.key)
    child.proc.kill('SIGHUP')
    await child.logLine(`TLS certificate not applied, the one in force stays: ${cert}'s certificate expired on 2024-01-02T00:00:00.000Z`)
    assert.equal(await served(), renewed.fingerprint256)

    child.proc.kill('SIGTERM')
    assert.equal((await child.exited()).code, 0, child.stderr())
  })

  it('exits 2 naming the files when the TLS key is not the certificate\'s', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'compactd-main-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const a = makeCert(dir, 'a')
    const b = makeCert(dir, 'b')
    const child = startMain(['--tls-cert', a.certPath, '--tls-key', b.keyPath])
    assert.equal((await child.exited()).code, 2)
    assert.equal(child.stderr(), `compactd: --tls-cert/COMPACTD_TLS_CERT: ${b.keyPath} is not the private key of ${a.certPath}'s certificate, or not a PEM key (ERR_OSSL_X509_KEY_VALUES_MISMATCH)\n`)
  })

  it('exits 2 with one line naming a bad setting', async () => {
    const child = startMain(['--port', 'http'])
    assert.equal((await child.exited()).code, 2)
    assert.equal(child.stderr(), 'compactd: --port/COMPACTD_PORT: must be an integer in [0, 65535]\n')
  })

  it('exits 2 refusing a non-loopback host without a token', async () => {
    const child = startMain([], { env: { COMPACTD_HOST: '0.0.0.0' } })
    assert.equal((await child.exited()).code, 2)
    assert.match(child.stderr(), /^compactd: --host\/COMPACTD_HOST: refusing to listen on 0\.0\.0\.0 without COMPACTD_AUTH_TOKEN or COMPACTD_AUTH_TOKEN_FILE;[^\n]*\n$/)
  })

  it('prints usage for --help and exits 0', async () => {
    const child = startMain(['--help'])
    assert.equal((await child.exited()).code, 0)
    assert.match(String(child.lines()[0]), /^Usage: compactd/)
  })
})
