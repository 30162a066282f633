import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';
import { featuresOf, type CommandContext } from '../../../src/ftp/commands/index.js';
import { connect as tlsConnect, type SecureContext, type SecureVersion } from 'node:tls';
import { serverTlsSocket, TlsCredentials } from '../../../src/ftp/tls.js';
import { makeCertificate, type TestCertificate } from '../../support/tls.js';

const HASH = '$2b$10$' + 'a'.repeat(53);
const account = { username: 'cam01', passwordHash: HASH, bucket: 'uploads' };

let dir: string;
let cert: TestCertificate;
let other: TestCertificate;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-tls-unit-'));
  [cert, other] = await Promise.all([makeCertificate(dir, 'one'), makeCertificate(dir, 'two')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('FTPS configuration keys', () => {
  it('accepts ftp.tls.cert/key/implicitPort/minVersion, ftp.requireTls and accounts[].requireTls as written', () => {
    const config = parseConfig({
      ftp: { tls: { cert: '/tls/tls.crt', key: '/tls/tls.key', implicitPort: 990, minVersion: 'TLSv1.1' }, requireTls: true },
      accounts: [{ ...account, requireTls: true }],
    });
    expect(config.ftp.tls).toMatchObject({ cert: '/tls/tls.crt', key: '/tls/tls.key', implicitPort: 990, minVersion: 'TLSv1.1' });
    expect(config.ftp.requireTls).toBe(true);
    expect(config.accounts[0]?.requireTls).toBe(true);
  });

  it('defaults: no TLS, TLS 1.2 minimum, nothing required', () => {
    const config = parseConfig({ accounts: [account] });
    expect(config.ftp.tls.cert).toBeUndefined();
    expect(config.ftp.tls.minVersion).toBe('TLSv1.2');
    expect(config.ftp.requireTls).toBe(false);
  });

  it.each([
    [{ ftp: { tls: { cert: '/c' } }, accounts: [account] }, 'ftp.tls: cert and key must be given together'],
    [{ ftp: { tls: { implicitPort: 990 } }, accounts: [account] }, 'ftp.tls: implicitPort needs cert and key'],
    [{ ftp: { requireTls: true }, accounts: [account] }, 'ftp.requireTls: needs ftp.tls.cert and ftp.tls.key'],
    [{ accounts: [{ ...account, requireTls: true }] }, 'accounts.0.requireTls: needs ftp.tls.cert and ftp.tls.key'],
    [{ ftp: { tls: { cert: '/c', key: '/k', minVersion: 'SSLv3' } }, accounts: [account] }, 'ftp.tls.minVersion'],
  ])('refuses %j', (raw, problem) => {
    expect(problems(raw).join('\n')).toContain(problem);
  });

  it('takes the keys from the environment too', () => {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, `accounts:\n  - { username: cam01, passwordHash: "${HASH}", bucket: uploads }\n`);
    const config = loadConfig({
      file,
      env: {
        FTP_S3_BRIDGE__FTP__TLS__CERT: '/etc/tls/tls.crt',
        FTP_S3_BRIDGE__FTP__TLS__KEY: '/etc/tls/tls.key',
        FTP_S3_BRIDGE__FTP__TLS__IMPLICIT_PORT: '990',
        FTP_S3_BRIDGE__FTP__REQUIRE_TLS: 'true',
        FTP_S3_BRIDGE__ACCOUNTS__0__REQUIRE_TLS: 'true',
      },
    });
    expect(config.ftp.tls).toMatchObject({ cert: '/etc/tls/tls.crt', key: '/etc/tls/tls.key', implicitPort: 990 });
    expect(config.ftp.requireTls).toBe(true);
    expect(config.accounts[0]?.requireTls).toBe(true);
  });
});

describe('FEAT and TLS', () => {
  const ctx = (tls: unknown) => ({ tls }) as unknown as CommandContext;

  it('announces AUTH TLS, PBSZ and PROT only on a server with a certificate', () => {
    expect(featuresOf(ctx({}))).toEqual(expect.arrayContaining(['AUTH TLS', 'PBSZ', 'PROT']));
    expect(featuresOf(ctx(undefined))).not.toEqual(expect.arrayContaining(['AUTH TLS']));
    expect(featuresOf(ctx(undefined))).not.toContain('PBSZ');
  });
});

describe('TlsCredentials', () => {
  const log = pino({ level: 'silent' });

  it('loads a certificate and key and reports the certificate', async () => {
    const creds = await TlsCredentials.load({ cert: cert.cert, key: cert.key, minVersion: 'TLSv1.2', reloadCheckSeconds: 60 }, log);
    try {
      expect(creds.certificate.fingerprint256).toBe(cert.fingerprint256);
      expect(creds.serverOptions.minVersion).toBe('TLSv1.2');
    } finally {
      creds.close();
    }
  });

  it('fails loudly at start on a key that does not belong to the certificate, or a missing file', async () => {
    await expect(TlsCredentials.load({ cert: cert.cert, key: other.key, minVersion: 'TLSv1.2', reloadCheckSeconds: 60 }, log)).rejects.toThrow(/mismatch/);
    await expect(TlsCredentials.load({ cert: join(dir, 'nope.crt'), key: cert.key, minVersion: 'TLSv1.2', reloadCheckSeconds: 60 }, log)).rejects.toThrow(/ENOENT/);
  });

  it('check() picks up replaced files and emits reload; an unusable pair keeps the current one', async () => {
    const files = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
    writeFileSync(files.cert, readFileSync(cert.cert));
    writeFileSync(files.key, readFileSync(cert.key));
    const creds = await TlsCredentials.load({ ...files, minVersion: 'TLSv1.3', reloadCheckSeconds: 3600 }, log);
    try {
      writeFileSync(files.cert, readFileSync(other.cert));
      await creds.check();
      expect(creds.certificate.fingerprint256).toBe(cert.fingerprint256);
      const reloaded = new Promise((resolve) => creds.once('reload', resolve));
      writeFileSync(files.key, readFileSync(other.key));
      await creds.check();
      await reloaded;
      expect(creds.certificate.fingerprint256).toBe(other.fingerprint256);
      expect(creds.serverOptions.minVersion).toBe('TLSv1.3');
    } finally {
      creds.close();
    }
  });

  /**
   * One loopback TLS connection served with `context`: the client writes, ends, and reads to the
   * server's end, so every ticket the server sent has been seen by then.
   */
  async function connectionWith(context: SecureContext, version: SecureVersion, session?: Buffer): Promise<{ reused: boolean; tickets: Buffer[] }> {
    const server = createServer((socket) => {
      const secure = serverTlsSocket(socket, context, 10_000, log);
      secure.resume();
      secure.on('end', () => secure.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, minVersion: version, maxVersion: version, session });
      const tickets: Buffer[] = [];
      client.on('session', (t: Buffer) => tickets.push(t));
      await new Promise<void>((resolve, reject) => client.once('secureConnect', resolve).once('error', reject));
      const reused = client.isSessionReused();
      client.end('upload');
      client.resume();
      await new Promise<void>((resolve, reject) => client.once('end', resolve).once('error', reject));
      return { reused, tickets };
    } finally {
      server.close();
    }
  }

  it.each(['TLSv1.3', 'TLSv1.2'] as const)(
    '%s: the data-connection context resumes sessions of the control context, also after a reload, and sends no ticket after the handshake',
    async (version) => {
      const files = { cert: join(dir, `data-${version}.crt`), key: join(dir, `data-${version}.key`) };
      writeFileSync(files.cert, readFileSync(cert.cert));
      writeFileSync(files.key, readFileSync(cert.key));
      const creds = await TlsCredentials.load({ ...files, minVersion: 'TLSv1.2', reloadCheckSeconds: 3600 }, log);
      try {
        expect(creds.dataSecureContext).not.toBe(creds.secureContext);
        const control = await connectionWith(creds.secureContext, version);
        expect(control.tickets.length).toBeGreaterThan(0);
        const ticket = control.tickets.at(-1);

        const resumed = await connectionWith(creds.dataSecureContext, version, ticket);
        expect(resumed.reused).toBe(true);
        const full = await connectionWith(creds.dataSecureContext, version);
        expect(full.reused).toBe(false);
        // TLS 1.3 tickets follow the handshake; TLS 1.2 ones are part of it (and harmless).
        if (version === 'TLSv1.3') expect([resumed.tickets, full.tickets]).toEqual([[], []]);

        writeFileSync(files.cert, readFileSync(other.cert));
        writeFileSync(files.key, readFileSync(other.key));
        await creds.check();
        expect(creds.certificate.fingerprint256).toBe(other.fingerprint256);
        expect((await connectionWith(creds.dataSecureContext, version, ticket)).reused).toBe(true);
      } finally {
        creds.close();
      }
    },
  );
});
