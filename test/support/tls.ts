import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProgram } from './clients.js';

export interface TestCertificate {
  cert: string;
  key: string;
  /** As node:crypto X509Certificate reports it (AA:BB:...) */
  fingerprint256: string;
  serialNumber: string;
}

/** A fresh temporary directory for certificate files (never committed: keys are made per run). */
export const certDir = (): string => mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-tls-'));

/**
 * Makes a self-signed certificate for 127.0.0.1 with `openssl` (P-256 key, random serial) as
 * `<dir>/<name>.crt` and `<dir>/<name>.key`. Being self-signed, the certificate is also the CA a
 * client can be given (curl --cacert, ssl cafile).
 */
export async function makeCertificate(dir: string, name: string): Promise<TestCertificate> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const res = await runProgram('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=ftp-s3-bridge test ${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-set_serial', '0x' + randomBytes(8).toString('hex'),
  ]);
  if (res.code !== 0) throw new Error('openssl failed: ' + res.stderr);
  const x509 = new X509Certificate(readFileSync(cert));
  return { cert, key, fingerprint256: x509.fingerprint256, serialNumber: x509.serialNumber };
}
