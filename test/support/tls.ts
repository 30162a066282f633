import { randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestBridge, type TestAccount } from './bridge.js';
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

/** A bridge serving FTPS (explicit and implicit) from certificate files it re-reads every second. */
export interface FtpsBridge {
  bridge: TestBridge;
  /** Two certificates for 127.0.0.1; the bridge starts with `certA`. */
  certA: TestCertificate;
  certB: TestCertificate;
  /** The files the bridge is configured with: a test swaps their content to check the reload. */
  live: { cert: string; key: string };
  implicitPort(): number;
  /** A file of `size` random bytes in `dir`. */
  localFile(name: string, size: number): { path: string; data: Buffer };
}

/** Starts an FTPS bridge for `accounts` with its certificates and files in `dir` (see certDir). */
export async function startFtpsBridge(dir: string, accounts: TestAccount[]): Promise<FtpsBridge> {
  const [certA, certB] = await Promise.all([makeCertificate(dir, 'a'), makeCertificate(dir, 'b')]);
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  copyFileSync(certA.cert, live.cert);
  copyFileSync(certA.key, live.key);
  const bridge = await TestBridge.start({
    accounts,
    ftp: { tls: { cert: live.cert, key: live.key, implicitPort: 0, reloadCheckSeconds: 1 } },
  });
  return {
    bridge,
    certA,
    certB,
    live,
    implicitPort: () => bridge.ftpsImplicitPort as number,
    localFile: (name, size) => {
      const data = randomBytes(size);
      const path = join(dir, name);
      writeFileSync(path, data);
      return { path, data };
    },
  };
}
