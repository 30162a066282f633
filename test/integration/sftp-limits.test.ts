import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';
import { sftpConfig, SshKeys } from '../support/sftp.js';

/** SFTP's own bounds: channels per connection, open handles per channel, login and idle time-outs. */
let keys: SshKeys;
let bridge: TestBridge;

beforeAll(async () => {
  keys = await SshKeys.create();
  bridge = await TestBridge.start({
    ftp: { loginTimeoutSeconds: 2 },
    config: sftpConfig(keys.hostKey, { maxSessionsPerConnection: 2, maxOpenHandlesPerSession: 2, idleTimeoutSeconds: 2 }),
  });
}, 60_000);
afterAll(async () => {
  await bridge?.close();
  keys?.remove();
});

async function loginAs(username: string, password: string, port: number): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  client.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username, password, hostVerifier: () => true, readyTimeout: 30_000 });
  });
  return client;
}

const login = () => loginAs(USER, PASSWORD, bridge.sftpPort as number);

const sftpOf = (client: ssh2.Client) => new Promise<SFTPWrapper>((resolve, reject) => client.sftp((err, s) => (err ? reject(err) : resolve(s))));
const closed = (client: ssh2.Client) => new Promise<void>((resolve) => client.once('close', () => resolve()));

describe('SFTP limits', () => {
  it('a connection gets at most maxSessionsPerConnection channels at once', async () => {
    const client = await login();
    try {
      await sftpOf(client);
      await sftpOf(client);
      await expect(sftpOf(client)).rejects.toThrow();
    } finally {
      client.end();
    }
  });

  it('a session holds at most maxOpenHandlesPerSession open files; closing one frees its slot', async () => {
    const client = await login();
    try {
      const sftp = await sftpOf(client);
      const open = (path: string) => new Promise<Buffer>((resolve, reject) => sftp.open(path, 'w', (err, h) => (err ? reject(err) : resolve(h))));
      const first = await open('/h1.txt');
      await open('/h2.txt');
      await expect(open('/h3.txt')).rejects.toMatchObject({ code: 4, message: 'Too many open files' });
      await new Promise<void>((resolve, reject) => sftp.close(first, (err) => (err ? reject(err) : resolve())));
      await open('/h3.txt');
    } finally {
      client.end();
    }
  });

  it('a connection that never logs in is closed after ftp.loginTimeoutSeconds', async () => {
    const socket = connect(bridge.sftpPort as number, '127.0.0.1');
    let banner = '';
    socket.on('data', (c: Buffer) => (banner += c.toString('latin1')));
    socket.on('error', () => undefined);
    const started = Date.now();
    await new Promise((resolve) => socket.once('close', resolve));
    expect(banner).toMatch(/^SSH-2\.0-ftp-s3-bridge/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
  }, 30_000);

  it('a logged-in connection without requests is closed after sftp.idleTimeoutSeconds', async () => {
    const client = await login();
    const gone = closed(client);
    await sftpOf(client);
    const started = Date.now();
    await gone;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
  }, 30_000);
});

describe('SFTP and FTP share the connection limits', () => {
  it('with maxConnectionsPerIp 1, an open FTP connection gets an SFTP connection from the same address closed at accept', async () => {
    const limited = await TestBridge.start({ ftp: { maxConnectionsPerIp: 1 }, config: sftpConfig(keys.hostKey) });
    try {
      const ftp = await RawFtp.connect(limited.port);
      const socket = connect(limited.sftpPort as number, '127.0.0.1');
      let received = '';
      socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
      socket.on('error', () => undefined);
      await new Promise((resolve) => socket.once('close', resolve));
      // Closed before any SSH version line was sent.
      expect(received).toBe('');
      ftp.close();
    } finally {
      await limited.close();
    }
  });
});

describe('SFTP sessions of removed accounts', () => {
  it('an account removed from auth.accountsFile has its SFTP connection closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sftp-accounts-'));
    const file = join(dir, 'accounts.yaml');
    const hash = await hashPassword('temp-pw');
    const bucketLine = (bucket: string) => `    bucket: ${bucket}\n`;
    writeFileSync(file, 'accounts: []\n');
    const withFile = await TestBridge.start({
      accounts: [],
      // The attempts before the reload applies are refused logins: no ban for them.
      ftp: { bruteForce: { maxFailures: 1000 } },
      config: { ...sftpConfig(keys.hostKey), auth: { accountsFile: file, accountsReload: { pollSeconds: 1 } } },
    });
    try {
      writeFileSync(file, `accounts:\n  - username: temp\n    passwordHash: '${hash}'\n${bucketLine(withFile.bucket)}`);
      // Reloads are asynchronous: log in once the account is there (bounded).
      let client: ssh2.Client | undefined;
      for (let i = 0; i < 100 && !client; i++) {
        client = await loginAs('temp', 'temp-pw', withFile.sftpPort as number).catch(() => undefined);
        if (!client) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(client).toBeDefined();
      const gone = closed(client as ssh2.Client);
      await sftpOf(client as ssh2.Client);
      writeFileSync(file, 'accounts: []\n');
      await gone;
    } finally {
      await withFile.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
