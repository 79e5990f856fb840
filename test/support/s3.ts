/**
 * A real S3-protocol server for tests: s3rver on 127.0.0.1, port 0, data in a temp dir, with one
 * bucket. `url` is an `s3://` URL for `openBlob`; `urlFor(prefix)` the same under a key prefix.
 *
 * NB: s3rver runs in a child process started with `--openssl-legacy-provider`: its ListObjectsV2
 * continuation tokens are DES-encrypted, which OpenSSL 3 refuses by default, so any paged listing
 * would fail in-process. The child exits when its stdin closes (also if this process dies).
 * NB: sets AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY to s3rver's fixed S3RVER/S3RVER so the SDK's
 * default credential chain (what production uses) finds them.
 *
 * `down()` SIGKILLs the server (requests in flight lose their connection, new ones are refused);
 * `up()` starts it again on the same port and directory, so every object is still there.
 * `freeze()` SIGSTOPs it (connections stay open, nothing is answered) and `thaw()` SIGCONTs it: a
 * pause button for whatever waits on S3, e.g. to hold a compaction mid-way while another store goes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

export const S3_TEST_BUCKET = 'compactd-test'

const CHILD = `
const S3rver = require(process.argv[1])
const server = new S3rver({
  address: '127.0.0.1', port: Number(process.argv[4]), silent: true, directory: process.argv[2],
  configureBuckets: [{ name: process.argv[3], configs: [] }],
})
server.run().then(
  (address) => {
    process.stdout.write(JSON.stringify({ port: address.port }) + '\\n')
    process.stdin.on('data', () => undefined)
    process.stdin.on('end', () => server.close().then(() => process.exit(0), () => process.exit(1)))
  },
  (err) => {
    process.stderr.write(String(err && err.stack || err))
    process.exit(1)
  },
)
`

export interface S3Server {
  /** `s3://<bucket>?endpoint=…&region=us-east-1&forcePathStyle=true` */
  readonly url: string
  /** The same server with a key prefix: `s3://<bucket>/<prefix>?…`. */
  urlFor(prefix: string): string
  readonly endpoint: string
  /** Kills the server process at once; its directory stays. */
  down(): Promise<void>
  /** Starts it again on the same port and directory; resolves once it listens. */
  up(): Promise<void>
  /** Stops the server process without ending it (SIGSTOP); `down()` still kills it. */
  freeze(): void
  /** Lets a frozen server go on (SIGCONT); nothing when it is not frozen. */
  thaw(): void
  stop(): Promise<void>
}

export async function startS3(): Promise<S3Server> {
  process.env['AWS_ACCESS_KEY_ID'] = 'S3RVER'
  process.env['AWS_SECRET_ACCESS_KEY'] = 'S3RVER'
  const dir = await mkdtemp(join(tmpdir(), 'compactd-s3-'))
  let server: Running
  try {
    server = await run(dir, 0)
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw err
  }
  const port = server.port
  let up = true

  const endpoint = `http://127.0.0.1:${port}`
  const query = `endpoint=${encodeURIComponent(endpoint)}&region=us-east-1&forcePathStyle=true`
  let stopping: Promise<void> | undefined
  return {
    url: `s3://${S3_TEST_BUCKET}?${query}`,
    urlFor: (prefix) => `s3://${S3_TEST_BUCKET}/${prefix}?${query}`,
    endpoint,
    async down() {
      if (!up) return
      up = false
      server.child.kill('SIGKILL')
      await server.exited
    },
    async up() {
      if (up) return
      server = await run(dir, port)
      up = true
    },
    freeze() {
      if (up) server.child.kill('SIGSTOP')
    },
    thaw() {
      if (up) server.child.kill('SIGCONT')
    },
    stop: () =>
      (stopping ??= (async () => {
        if (up) {
          server.child.stdin?.end()
          await server.exited
        }
        await rm(dir, { recursive: true, force: true })
      })()),
  }
}

interface Running {
  readonly child: ChildProcess
  readonly port: number
  readonly exited: Promise<unknown>
}

/** s3rver in a child on `port` (0: any free one) over `dir`; resolves once it listens. */
async function run(dir: string, port: number): Promise<Running> {
  const entry = createRequire(import.meta.url).resolve('s3rver')
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', CHILD, entry, dir, S3_TEST_BUCKET, String(port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const exited = once(child, 'exit')
  try {
    const lines = createInterface({ input: child.stdout })
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => String(line)),
      exited.then(([code]) => {
        throw new Error(`s3rver exited with ${String(code)} before listening: ${stderr}`)
      }),
    ])
    lines.close()
    return { child, port: (JSON.parse(first) as { port: number }).port, exited }
  } catch (err) {
    child.kill()
    throw err
  }
}
