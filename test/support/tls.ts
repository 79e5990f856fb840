/**
 * Self-signed certificates for tests, made with the openssl command line (scripts/ensure-test-deps.sh
 * installs it): an EC P-256 key and a certificate for 127.0.0.1 and localhost, valid a day (or `days`).
 */
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
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
