/**
 * Start-up refuses a blob store that cannot work, with one line naming the store and the cause
 * (exit 1), against the real S3-protocol server the tests start: no credentials in the SDK's
 * default chain, a missing bucket, credentials the store does not know, an endpoint nobody
 * listens on.
 *
 * NB: the child's environment is scrubbed (no AWS_* credentials, HOME an empty directory, so no
 * profile files) and AWS_EC2_METADATA_DISABLED keeps the SDK's chain from asking an instance
 * metadata address: every attempt stays on loopback. NODE_NO_WARNINGS: on Node 20 the AWS SDK
 * warns on stderr that it will soon need Node 22, which is not compactd's line.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startS3, type S3Server } from './support/s3.js'
import { startMain } from './support/server-process.js'

const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' }

/** A loopback port nobody listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

describe('start-up with a blob store that cannot work', () => {
  let s3: S3Server
  let home: string
  before(async () => {
    s3 = await startS3()
    home = await mkdtemp(join(tmpdir(), 'compactd-home-'))
  })
  after(async () => {
    await s3?.stop()
    await rm(home, { recursive: true, force: true })
  })

  /** Runs main with `blob` and a scrubbed environment; its exit code and stderr. */
  async function startWith(blob: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const child = startMain(['--port', '0', '--data-dir', join(home, 'data'), '--blob', blob], {
      env: { HOME: home, AWS_EC2_METADATA_DISABLED: 'true', NODE_NO_WARNINGS: '1', ...env },
    })
    const { code } = await child.exited()
    return { code, stderr: child.stderr() }
  }

  it('no credentials: exits 1 with one line saying so and how to give them', async () => {
    const { code, stderr } = await startWith(s3.url, {})
    assert.equal(code, 1)
    assert.match(stderr, /^compactd: failed to start: blob store s3:\/\/compactd-test\?[^\n]*: s3 blob get "[^"]+": no credentials \([^\n]*\); set AWS_ACCESS_KEY_ID[^\n]*\n$/)
  })

  it('a missing bucket: exits 1 with one line naming the bucket error', async () => {
    const { code, stderr } = await startWith(s3.url.replace('compactd-test', 'no-such-bucket'), S3RVER_CREDENTIALS)
    assert.equal(code, 1)
    assert.match(stderr, /^compactd: failed to start: blob store s3:\/\/no-such-bucket\?[^\n]*: the bucket does not exist \(NoSuchBucket\); create it or fix the blob URL\n$/)
  })

  it('credentials the store does not know: exits 1 saying the store refused them', async () => {
    const { code, stderr } = await startWith(s3.url, { AWS_ACCESS_KEY_ID: 'UNKNOWN', AWS_SECRET_ACCESS_KEY: 'whatever' })
    assert.equal(code, 1)
    assert.match(stderr, /^compactd: failed to start: blob store [^\n]*: the store refused the request \(InvalidAccessKeyId: [^\n]*\); check the credentials[^\n]*\n$/)
  })

  it('an endpoint nobody listens on: exits 1 with one line saying it cannot be reached', async () => {
    const port = await closedPort()
    const url = `s3://compactd-test?endpoint=${encodeURIComponent(`http://127.0.0.1:${port}`)}&region=us-east-1&forcePathStyle=true`
    const { code, stderr } = await startWith(url, S3RVER_CREDENTIALS)
    assert.equal(code, 1)
    assert.match(stderr, new RegExp(`^compactd: failed to start: blob store [^\\n]*: cannot reach the store \\(ECONNREFUSED: [^\\n]*127\\.0\\.0\\.1:${port}\\)\\n$`))
  })

  it('a working bucket: starts, and says ready', async (t) => {
    const child = startMain(['--port', '0', '--data-dir', join(home, 'data'), '--blob', s3.url], { env: { HOME: home, ...S3RVER_CREDENTIALS } })
    t.after(child.kill)
    const listening = await child.logLine('compactd listening')
    // Started as `node src/main.ts` without the malloc tunable: the log says so.
    assert.equal(listening.mallocHugePages, false)
    const address = listening.address as string
    assert.deepEqual(await (await fetch(`${address}/readyz`)).json(), { status: 'ready', checks: { blob: 'ok', consensus: 'ok', scheduler: 'running' } })
    child.proc.kill('SIGTERM')
    assert.equal((await child.exited()).code, 0, child.stderr())
  })
})
