/**
 * Self-signed certificates for tests, made with the openssl command line (scripts/ensure-test-deps.sh
 * installs it): an EC P-256 key and a certificate for 127.0.0.1 and localhost, valid a day (or `days`).
 */
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { connect } from 'node:tls'
import { join } from 'node:path'
import { tlsOf, type TlsFiles } from '../../src/settings.js'

export interface TestCert {
  readonly cert: Buffer
  readonly key: Buffer
  readonly certPath: string
  readonly keyPath: string
  /** SHA-256 fingerprint as `tls.getPeerCertificate().fingerprint256` shows it. */
  readonly fingerprint256: string
  /** Its notAfter, in Unix seconds. */
  readonly notAfter: number
}

/** Writes `<name>.crt` and `<name>.key` in `dir`. */
export function makeCert(dir: string, name: string, days = 1): TestCert {
  const certPath = join(dir, `${name}.crt`)
  const keyPath = join(dir, `${name}.key`)
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', String(days), '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { stdio: 'ignore' },
  )
  const cert = readFileSync(certPath)
  const x509 = new X509Certificate(cert)
  return { cert, key: readFileSync(keyPath), certPath, keyPath, fingerprint256: x509.fingerprint256, notAfter: Date.parse(x509.validTo) / 1000 }
}

/**
 * Like makeCert, but a certificate that ended long ago (valid 2024-01-01 to 2024-01-02): `openssl
 * req -x509` cannot backdate one, `openssl ca -selfsign` can.
 */
export function makeExpiredCert(dir: string, name: string): TestCert {
  const certPath = join(dir, `${name}.crt`)
  const keyPath = join(dir, `${name}.key`)
  const csrPath = join(dir, `${name}.csr`)
  const caDir = join(dir, `${name}-ca`)
  mkdirSync(caDir, { recursive: true })
  writeFileSync(join(caDir, 'index.txt'), '')
  writeFileSync(join(caDir, 'serial'), '01\n')
  const config = join(caDir, 'ca.cnf')
  writeFileSync(
    config,
    [
      '[ca]', 'default_ca = c',
      '[c]', `dir = ${caDir}`, 'database = $dir/index.txt', 'serial = $dir/serial', 'new_certs_dir = $dir', 'default_md = sha256', 'policy = p', 'x509_extensions = ext',
      '[p]', 'commonName = supplied',
      '[ext]', 'subjectAltName = IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  )
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', `/CN=${name}`], { stdio: 'ignore' })
  execFileSync('openssl', ['ca', '-batch', '-config', config, '-selfsign', '-keyfile', keyPath, '-in', csrPath, '-out', certPath, '-startdate', '20240101000000Z', '-enddate', '20240102000000Z'], { stdio: 'ignore' })
  // NB: `openssl ca` writes the certificate's text before its PEM; keep the PEM only.
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n/.exec(readFileSync(certPath, 'utf8'))?.[0]
  if (pem === undefined) throw new Error(`openssl ca wrote no certificate to ${certPath}`)
  writeFileSync(certPath, pem)
  const cert = Buffer.from(pem)
  const x509 = new X509Certificate(cert)
  return { cert, key: readFileSync(keyPath), certPath, keyPath, fingerprint256: x509.fingerprint256, notAfter: Date.parse(x509.validTo) / 1000 }
}

/** A temp dir (removed after the test) with a certificate `name` and its pair as the server loads it. */
export async function tlsPairOf(t: { after(fn: () => Promise<void>): void }, name: string, days = 1): Promise<{ readonly dir: string; readonly cert: TestCert; readonly pair: TlsFiles }> {
  const dir = await mkdtemp(join(tmpdir(), `compactd-${name}-`))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const cert = makeCert(dir, name, days)
  const pair = tlsOf(cert.certPath, cert.cert, cert.keyPath, cert.key)
  if (!pair.ok) throw new Error(pair.problem)
  return { dir, cert, pair: pair.value }
}

/** The SHA-256 fingerprint of the certificate a new connection to 127.0.0.1:`port` is served (checked against `ca`, or not checked). */
export async function servedFingerprint(port: number, ca?: Buffer): Promise<string> {
  const socket = connect({ host: '127.0.0.1', port, ...(ca === undefined ? { rejectUnauthorized: false } : { ca }) })
  try {
    await once(socket, 'secureConnect')
    return socket.getPeerCertificate().fingerprint256
  } finally {
    socket.destroy()
  }
}
