import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, hostname, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, it, type TestContext } from 'node:test'
import { makeCert } from './support/tls.js'
import { fileReadProblem, isLoopback, loggableSettings, parseAuthTokens, parseSettings, redactUrl, SettingsError, USAGE, wantsHelp } from '../src/settings.js'

const TOKEN = 'abcdefghijklmnop'

describe('parseSettings', () => {
  it('has the documented defaults', () => {
    const s = parseSettings([], {})
    const dataDir = resolve('./data')
    const { instanceId, ...rest } = s
    assert.match(instanceId, new RegExp(`^${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100)}-[0-9a-f]{6}$`))
    assert.notEqual(parseSettings([], {}).instanceId, instanceId, 'two instances on one host get two ids')
    assert.deepEqual(rest, {
      port: 6880,
      host: '127.0.0.1',
      dataDir,
      blobUrl: pathToFileURL(`${dataDir}/blob`).href,
      consensusUrl: pathToFileURL(`${dataDir}/consensus`).href,
      workers: availableParallelism(),
      workerNice: 10,
      reuseIdleMs: 60_000,
      logLevel: 'info',
      logFormat: 'json',
      authTokens: null,
      authTokenFile: null,
      tlsCertFile: null,
      tlsKeyFile: null,
      bodyLimitBytes: 64 * 1024 * 1024,
      shutdownGraceMs: 30_000,
      shutdownDrainMs: 5_000,
      sendTimeoutMs: 60_000,
      gcGraceMs: 600_000,
      metricsShardSeries: 100,
    })
    assert.ok(Object.isFrozen(s))
  })

  it('reads every setting from the environment', () => {
    const s = parseSettings([], {
      COMPACTD_PORT: '7000',
      COMPACTD_HOST: '0.0.0.0',
      COMPACTD_DATA_DIR: '/var/lib/compactd',
      COMPACTD_BLOB: 's3://bucket/prefix?endpoint=http://minio:9000',
      COMPACTD_CONSENSUS: 'postgres://u:p@db/compactd',
      COMPACTD_WORKERS: '3',
      COMPACTD_WORKER_NICE: '0',
      COMPACTD_REUSE_IDLE: '0s',
      COMPACTD_LOG_LEVEL: 'debug',
      COMPACTD_LOG_FORMAT: 'pretty',
      COMPACTD_AUTH_TOKEN: TOKEN,
      COMPACTD_BODY_LIMIT: '2MiB',
      COMPACTD_SHUTDOWN_GRACE: '5s',
      COMPACTD_SHUTDOWN_DRAIN: '0s',
      COMPACTD_SEND_TIMEOUT: '0s',
      COMPACTD_GC_GRACE: '1h',
      COMPACTD_METRICS_SHARD_SERIES: '7',
      COMPACTD_INSTANCE_ID: 'compactd-0.pod',
    })
    assert.equal(s.port, 7000)
    assert.equal(s.host, '0.0.0.0')
    assert.equal(s.dataDir, '/var/lib/compactd')
    assert.equal(s.blobUrl, 's3://bucket/prefix?endpoint=http://minio:9000')
    assert.equal(s.consensusUrl, 'postgres://u:p@db/compactd')
    assert.equal(s.workers, 3)
    assert.equal(s.workerNice, 0)
    assert.equal(s.reuseIdleMs, 0)
    assert.equal(s.logLevel, 'debug')
    assert.equal(s.logFormat, 'pretty')
    assert.deepEqual(s.authTokens, [TOKEN])
    assert.equal(s.bodyLimitBytes, 2 * 1024 * 1024)
    assert.equal(s.shutdownGraceMs, 5000)
    assert.equal(s.shutdownDrainMs, 0)
    assert.equal(s.sendTimeoutMs, 0)
    assert.equal(s.gcGraceMs, 3_600_000)
    assert.equal(s.metricsShardSeries, 7)
    assert.equal(s.instanceId, 'compactd-0.pod')
  })

  it('lets flags win over the environment, in both --flag value and --flag=value forms', () => {
    const s = parseSettings(['--port', '7001', '--log-level=warn', '--body-limit', '1024'], {
      COMPACTD_PORT: '7000',
      COMPACTD_LOG_LEVEL: 'debug',
      COMPACTD_WORKERS: '2',
    })
    assert.equal(s.port, 7001)
    assert.equal(s.logLevel, 'warn')
    assert.equal(s.bodyLimitBytes, 1024)
    assert.equal(s.workers, 2)
  })

  it('puts the default stores under --data-dir, unless --blob/--consensus name others', () => {
    const s = parseSettings(['--data-dir', '/tmp/cd'], {})
    assert.equal(s.blobUrl, 'file:///tmp/cd/blob')
    assert.equal(s.consensusUrl, 'file:///tmp/cd/consensus')
    const t = parseSettings(['--data-dir', '/tmp/cd', '--blob', 'mem://'], {})
    assert.equal(t.blobUrl, 'mem://')
    assert.equal(t.consensusUrl, 'file:///tmp/cd/consensus')
  })

  it('treats an empty environment variable as unset', () => {
    assert.equal(parseSettings([], { COMPACTD_PORT: '', COMPACTD_AUTH_TOKEN: '' }).port, 6880)
  })

  const bad: Array<[string, string[], Record<string, string>, string]> = [
    ['port not a number', ['--port', 'http'], {}, '--port/COMPACTD_PORT: must be an integer in [0, 65535]'],
    ['port too large', [], { COMPACTD_PORT: '65536' }, '--port/COMPACTD_PORT: must be an integer in [0, 65535]'],
    ['port negative', ['--port=-1'], {}, '--port/COMPACTD_PORT: must be an integer in [0, 65535]'],
    ['port fractional', ['--port', '80.5'], {}, '--port/COMPACTD_PORT: must be an integer in [0, 65535]'],
    ['workers zero', ['--workers', '0'], {}, '--workers/COMPACTD_WORKERS: must be an integer in [1, 1024]'],
    ['worker nice above 19', ['--worker-nice', '20'], {}, '--worker-nice/COMPACTD_WORKER_NICE: must be an integer in [0, 19]'],
    ['worker nice negative', [], { COMPACTD_WORKER_NICE: '-5' }, '--worker-nice/COMPACTD_WORKER_NICE: must be an integer in [0, 19]'],
    ['log level', [], { COMPACTD_LOG_LEVEL: 'loud' }, '--log-level/COMPACTD_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent'],
    ['log format', ['--log-format', 'text'], {}, '--log-format/COMPACTD_LOG_FORMAT: must be one of json, pretty'],
    ['blob scheme', ['--blob', 'http://x'], {}, '--blob/COMPACTD_BLOB: must be a URL with scheme mem://, file://, s3://'],
    ['blob not a URL', ['--blob', 'data/blob'], {}, '--blob/COMPACTD_BLOB: must be a URL with scheme mem://, file://, s3://'],
    ['consensus scheme', [], { COMPACTD_CONSENSUS: 's3://b' }, '--consensus/COMPACTD_CONSENSUS: must be a URL with scheme mem://, file://, postgres://, postgresql://'],
    // A malformed URL of a known scheme is a bad setting (exit 2), not a store that failed to open (exit 1).
    ['s3 parameter', ['--blob', 's3://bucket/p?foo=1'], {}, '--blob/COMPACTD_BLOB: unknown parameter "foo"; allowed: endpoint, region, forcePathStyle'],
    ['s3 bucket name', [], { COMPACTD_BLOB: 's3://b/p' }, '--blob/COMPACTD_BLOB: bucket "b" is not a valid S3 bucket name'],
    ['s3 endpoint', ['--blob', 's3://bucket?endpoint=ftp://x'], {}, '--blob/COMPACTD_BLOB: endpoint "ftp://x" must be http(s)://'],
    ['file URL with a host', ['--consensus', 'file://host/x'], {}, '--consensus/COMPACTD_CONSENSUS: a file URL is file:///abs/path or file://./relative (a host is not allowed)'],
    ['mem URL with a path', ['--blob', 'mem://x'], {}, '--blob/COMPACTD_BLOB: a mem:// URL takes no host, path or query'],
    ['body limit unit', ['--body-limit', '64MB'], {}, '--body-limit/COMPACTD_BODY_LIMIT: must be a byte count in [1, 4294967296], optionally with a unit B, KiB, MiB or GiB'],
    ['body limit zero', ['--body-limit', '0'], {}, '--body-limit/COMPACTD_BODY_LIMIT: must be a byte count in [1, 4294967296], optionally with a unit B, KiB, MiB or GiB'],
    ['grace without unit', ['--shutdown-grace', '30'], {}, '--shutdown-grace/COMPACTD_SHUTDOWN_GRACE: a duration string needs a unit (d, h, m, s or ms), got "30"'],
    ['reuse hold above a day', [], { COMPACTD_REUSE_IDLE: '2d' }, '--reuse-idle/COMPACTD_REUSE_IDLE: must be at most 24h'],
    ['reuse hold without unit', ['--reuse-idle', '60'], {}, '--reuse-idle/COMPACTD_REUSE_IDLE: a duration string needs a unit (d, h, m, s or ms), got "60"'],
    ['shutdown grace above a day', ['--shutdown-grace', '30d'], {}, '--shutdown-grace/COMPACTD_SHUTDOWN_GRACE: must be at most 24h'],
    ['shutdown drain above ten minutes', ['--shutdown-drain', '11m'], {}, '--shutdown-drain/COMPACTD_SHUTDOWN_DRAIN: must be at most 10m'],
    ['gc grace fractional', [], { COMPACTD_GC_GRACE: '1.5m' }, '--gc-grace/COMPACTD_GC_GRACE: a duration must be a whole number of a unit (write "1500ms", not "1.5s"), got "1.5m"'],
    ['empty data dir', ['--data-dir='], {}, '--data-dir/COMPACTD_DATA_DIR: must not be empty'],
    ['instance id with a space', [], { COMPACTD_INSTANCE_ID: 'node 1' }, '--instance-id/COMPACTD_INSTANCE_ID: must be 1 to 128 characters of A-Z a-z 0-9 . _ -'],
    ['host garbage', ['--host', 'a b'], {}, '--host/COMPACTD_HOST: must be an IP address or a host name'],
    ['short token', [], { COMPACTD_AUTH_TOKEN: 'short' }, 'COMPACTD_AUTH_TOKEN: must be at least 16 characters'],
    ['token with a space', [], { COMPACTD_AUTH_TOKEN: 'abcdefgh ijklmnopq' }, 'COMPACTD_AUTH_TOKEN: must not contain whitespace'],
    ['token as a flag', ['--auth-token', TOKEN], {}, '--auth-token: not accepted as a flag (it would be visible in the process list); set COMPACTD_AUTH_TOKEN'],
    ['unknown flag', ['--prot', '1'], {}, 'unknown option --prot; see --help'],
    ['missing value', ['--port'], {}, '--port: needs a value'],
    ['value swallowed by the next flag', ['--port', '--host', 'x'], {}, '--port: needs a value'],
    ['positional', ['serve'], {}, 'unexpected argument "serve"; see --help'],
    [
      'non-loopback without a token',
      ['--host', '0.0.0.0'],
      {},
      '--host/COMPACTD_HOST: refusing to listen on 0.0.0.0 without COMPACTD_AUTH_TOKEN or COMPACTD_AUTH_TOKEN_FILE; set a token or listen on a loopback address',
    ],
    [
      'public IPv6 without a token',
      [],
      { COMPACTD_HOST: '::' },
      '--host/COMPACTD_HOST: refusing to listen on :: without COMPACTD_AUTH_TOKEN or COMPACTD_AUTH_TOKEN_FILE; set a token or listen on a loopback address',
    ],
  ]
  for (const [name, argv, env, message] of bad) {
    it(`refuses ${name} with one line naming the setting`, () => {
      assert.throws(
        () => parseSettings(argv, env),
        (err: unknown) => {
          assert.ok(err instanceof SettingsError)
          assert.equal(err.message, message)
          assert.ok(!err.message.includes('\n'))
          return true
        },
      )
    })
  }

  it('accepts a non-loopback host once a token is set, and loopback hosts without one', () => {
    assert.equal(parseSettings(['--host', '0.0.0.0'], { COMPACTD_AUTH_TOKEN: TOKEN }).host, '0.0.0.0')
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) assert.equal(parseSettings(['--host', host], {}).host, host)
  })
})

describe('token file', () => {
  const OTHER = 'a-second-token-of-rotation'
  const withFile = (t: TestContext, text: string | Buffer): string => {
    const dir = mkdtempSync(join(tmpdir(), 'compactd-tokens-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'tokens')
    writeFileSync(path, text)
    return path
  }

  it('accepts every token of the file, skipping comments and blank lines, and logs neither', (t) => {
    const path = withFile(t, `# current\n${TOKEN}\n\n  # next, for the rotation\n  ${OTHER}  \r\n${TOKEN}\n`)
    const s = parseSettings(['--auth-token-file', path, '--host', '0.0.0.0'], {})
    assert.deepEqual(s.authTokens, [TOKEN, OTHER])
    assert.equal(s.authTokenFile, path)
    assert.ok(Object.isFrozen(s.authTokens))
    const logged = JSON.stringify(loggableSettings(s))
    assert.ok(!logged.includes(TOKEN) && !logged.includes(OTHER), logged)
    assert.match(logged, /"auth":"bearer","authTokenFile":"[^"]+","authTokens":2/)
    assert.equal(parseSettings([], { COMPACTD_AUTH_TOKEN_FILE: path }).authTokenFile, path, 'from the environment')
  })

  const refused: Array<[string, string | Buffer, (path: string) => string]> = [
    ['an empty file', '\n# nothing yet\n', (p) => `--auth-token-file/COMPACTD_AUTH_TOKEN_FILE: ${p}: holds no token: write one token a line`],
    ['a short token', `${TOKEN}\nshort\n`, (p) => `--auth-token-file/COMPACTD_AUTH_TOKEN_FILE: ${p}: line 2: a token must be at least 16 characters`],
    ['two tokens on a line', `${TOKEN} ${OTHER}\n`, (p) => `--auth-token-file/COMPACTD_AUTH_TOKEN_FILE: ${p}: line 1: a token must not contain whitespace (one token a line)`],
    ['a file too large to be one', Buffer.alloc(65 * 1024, 'a'), (p) => `--auth-token-file/COMPACTD_AUTH_TOKEN_FILE: ${p} is larger than 64 KiB: is it a token file?`],
  ]
  for (const [name, text, message] of refused) {
    it(`refuses ${name} with one line that shows no token`, (t) => {
      const path = withFile(t, text)
      assert.throws(
        () => parseSettings(['--auth-token-file', path], {}),
        (err: unknown) => err instanceof SettingsError && err.message === message(path) && !err.message.includes(TOKEN),
      )
    })
  }

  it('refuses a missing file, and a file beside COMPACTD_AUTH_TOKEN', (t) => {
    const path = withFile(t, TOKEN)
    assert.throws(() => parseSettings(['--auth-token-file', `${path}.gone`], {}), { message: `--auth-token-file/COMPACTD_AUTH_TOKEN_FILE: cannot read ${path}.gone (ENOENT)` })
    // A secret the process may not read (a root-owned 0600 file in the image, which runs as uid
    // 1000) names the ids that need access. NB: built from the error, as tests run as root.
    const denied = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' })
    assert.equal(fileReadProblem('/run/secrets/tokens', denied, { uid: 1000, gid: 1000 }), 'cannot read /run/secrets/tokens (EACCES): this process runs as uid 1000, gid 1000; make the file, and the directories above it, readable by one of them (chown, or chgrp and chmod g+rX)')
    assert.throws(() => parseSettings(['--auth-token-file', path], { COMPACTD_AUTH_TOKEN: TOKEN }), {
      message: 'COMPACTD_AUTH_TOKEN and COMPACTD_AUTH_TOKEN_FILE: set one of them, not both (the file can hold several tokens)',
    })
  })

  it('parses a file as a reload does', () => {
    assert.deepEqual(parseAuthTokens(`${OTHER}\n`), [OTHER])
    assert.equal(parseAuthTokens(''), 'holds no token: write one token a line')
  })
})

describe('TLS files', () => {
  it('takes a certificate with its key, and refuses one without the other or files that cannot serve', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'compactd-tls-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const a = makeCert(dir, 'a')
    const s = parseSettings(['--tls-cert', a.certPath], { COMPACTD_TLS_KEY: a.keyPath })
    assert.deepEqual([s.tlsCertFile, s.tlsKeyFile], [a.certPath, a.keyPath])
    assert.match(JSON.stringify(loggableSettings(s)), /"tls":\{"cert":"[^"]+a\.crt","key":"[^"]+a\.key"\}/)
    assert.throws(() => parseSettings(['--tls-cert', a.certPath], {}), { message: '--tls-key/COMPACTD_TLS_KEY: is needed with COMPACTD_TLS_CERT: give both the certificate and its key' })
    assert.throws(() => parseSettings(['--tls-cert', `${a.certPath}.gone`, '--tls-key', a.keyPath], {}), { message: `--tls-cert/COMPACTD_TLS_CERT: cannot read ${a.certPath}.gone (ENOENT)` })
    assert.throws(() => parseSettings(['--tls-cert', a.keyPath, '--tls-key', a.keyPath], {}), { message: `--tls-cert/COMPACTD_TLS_CERT: ${a.keyPath} holds no PEM certificate` })
  })
})

describe('isLoopback', () => {
  const table: Array<[string, boolean]> = [
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['LOCALHOST', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['localhost.example.com', false],
    ['example.com', false],
  ]
  for (const [host, expected] of table) it(`${host} → ${expected}`, () => assert.equal(isLoopback(host), expected))
})

describe('redaction and help', () => {
  it('hides passwords and secret-looking query values', () => {
    assert.equal(redactUrl('postgres://user:hunter2@db:5432/x'), 'postgres://user:***@db:5432/x')
    assert.equal(redactUrl('s3://b/p?region=eu&secretAccessKey=abc'), 's3://b/p?region=eu&secretAccessKey=***')
    assert.equal(redactUrl('not a url'), '<unparseable URL>')
  })

  it('logs whether auth is on, never the token', () => {
    const s = parseSettings([], { COMPACTD_AUTH_TOKEN: TOKEN, COMPACTD_CONSENSUS: 'postgres://u:pw@db/x' })
    const logged = JSON.stringify(loggableSettings(s))
    assert.ok(!logged.includes(TOKEN))
    assert.ok(!logged.includes('pw@'))
    assert.match(logged, /"auth":"bearer"/)
  })

  it('recognises --help and -h and documents every variable', () => {
    assert.equal(wantsHelp(['--port', '1', '--help']), true)
    assert.equal(wantsHelp(['-h']), true)
    assert.equal(wantsHelp(['--port', '1']), false)
    for (const name of ['COMPACTD_PORT', 'COMPACTD_HOST', 'COMPACTD_DATA_DIR', 'COMPACTD_BLOB', 'COMPACTD_CONSENSUS', 'COMPACTD_WORKERS', 'COMPACTD_LOG_LEVEL', 'COMPACTD_AUTH_TOKEN', 'COMPACTD_BODY_LIMIT', 'COMPACTD_SHUTDOWN_GRACE', 'COMPACTD_SHUTDOWN_DRAIN', 'COMPACTD_GC_GRACE']) {
      assert.ok(USAGE.includes(name), name)
    }
  })

  it('lines the help up: every variable and every description starts at the same column', () => {
    const rows = USAGE.split('\n').filter((l) => /COMPACTD_/.test(l))
    assert.ok(rows.length >= 17)
    assert.equal(new Set(rows.map((l) => l.indexOf('COMPACTD_'))).size, 1, USAGE)
    const help = /^ {2}--help +/.exec(USAGE.split('\n').find((l) => l.startsWith('  --help')) ?? '')?.[0].length
    assert.deepEqual(new Set([help, ...rows.map((l) => /^.*?COMPACTD_[A-Z_]+ +/.exec(l)?.[0].length)]), new Set([help]), USAGE)
  })
})
