/**
 * Self-signed certificates for tests, made with the openssl command line (scripts/ensure-test-deps.sh
 * installs it): an EC P-256 key and a certificate for 127.0.0.1 and localhost, valid a day (or `days`).
 */
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

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
