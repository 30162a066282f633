import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, TestBridge } from '../support/bridge.js';
import { curl, RawFtp } from '../support/clients.js';
import { run, sftpBatch, sftpConfig, SshKeys } from '../support/sftp.js';

interface HookCall {
  username: string;
  password?: string;
  publicKey?: { fingerprint: string; key: string };
  clientIp: string;
  protocol: string;
}

/** The identity provider: answers by user name. */
let calls: HookCall[] = [];
let hook: Server;
let hookUrl: string;

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  return text;
}

beforeAll(async () => {
  keys = await SshKeys.create();
  hook = createServer((req, res) => {
    void body(req).then((text) => {
      const call = JSON.parse(text) as HookCall;
      calls.push(call);
      const reply = (status: number, payload: string) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(payload);
      };
      if (call.username === 'partner' && call.password === 'partner-pw') {
        return reply(200, JSON.stringify({ bucket: bucketForHook, prefix: 'partners/partner/', permissions: ['list', 'read', 'write'] }));
      }
      // The key line without its comment: what the bridge sends.
      if (call.username === 'keyed' && call.publicKey?.key === keys.clientPublicKey.split(' ').slice(0, 2).join(' ')) {
        return reply(200, JSON.stringify({ bucket: bucketForHook, prefix: 'partners/keyed/', permissions: ['list', 'read', 'write'] }));
      }
      if (call.username === 'slow') return void setTimeout(() => reply(200, JSON.stringify({ bucket: bucketForHook })), 3000).unref();
      if (call.username === 'garbled') return reply(200, '{"bucket": ');
      if (call.username === 'notanaccount') return reply(200, JSON.stringify({ bucket: bucketForHook, passwordHash: 'x', permissions: ['fly'] }));
      reply(403, '{"error":"denied"}');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/auth`;
});
afterAll(async () => {
  keys?.remove();
  hook.closeAllConnections();
  await new Promise((resolve) => hook.close(resolve));
});

let bucketForHook = '';
let keys: SshKeys;

async function attempt(bridge: TestBridge, user: string, password: string): Promise<{ code: number; ms: number }> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.command(`USER ${user}`);
  const started = Date.now();
  const code = (await ftp.command(`PASS ${password}`)).code;
  ftp.close();
  return { code, ms: Date.now() - started };
}

describe('external auth hook', () => {
  const log = new PassThrough();
  let logText = '';
  log.on('data', (c: Buffer) => (logText += c.toString()));
  let bridge: TestBridge;

  beforeAll(async () => {
    bridge = await TestBridge.start({
      accounts: [{ username: 'alice', password: 'local-pw' }],
      logStream: log,
      logLevel: 'info',
      ftp: { bruteForce: { maxFailures: 1000 } },
      config: { auth: { hook: { url: hookUrl, timeoutSeconds: 1, cacheSeconds: 30 } }, ...sftpConfig(keys.hostKey) },
    });
    bucketForHook = bridge.bucket;
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('logs in the account the hook answers with and confines it to that prefix', async () => {
    calls = [];
    const data = Buffer.from('from a partner\n'.repeat(5000));
    const put = await curl(['-T', '-', bridge.url('/report.csv', 'partner', 'partner-pw')], data);
    expect(put.code, put.stderr).toBe(0);
    expect(await bridge.objectHash('partners/partner/report.csv')).toBe(sha256(data));
    expect(calls).toEqual([{ username: 'partner', password: 'partner-pw', clientIp: '127.0.0.1', protocol: 'ftp' }]);
    // Cached (cacheSeconds: 30): the same credentials do not ask again; another password does.
    expect((await attempt(bridge, 'partner', 'partner-pw')).code).toBe(230);
    expect(calls).toHaveLength(1);
    expect((await attempt(bridge, 'partner', 'other-pw')).code).toBe(530);
    expect(calls).toHaveLength(2);
  });

  it('answers a denial, a time-out, invalid JSON and an invalid account with the same 530, logged with the reason', async () => {
    const denied = await attempt(bridge, 'stranger', 'pw');
    const slow = await attempt(bridge, 'slow', 'pw');
    const garbled = await attempt(bridge, 'garbled', 'pw');
    const invalid = await attempt(bridge, 'notanaccount', 'pw');
    for (const r of [denied, slow, garbled, invalid]) expect(r.code).toBe(530);
    expect(slow.ms).toBeGreaterThanOrEqual(950);
    expect(slow.ms).toBeLessThan(2900); // the hook answers at 3 s: the 1 s timeout cut the wait
    const reasons = logText
      .split('\n')
      .filter((l) => l.includes('"login failed"'))
      .map((l) => JSON.parse(l) as { user: string; reason: string });
    const reasonOf = (user: string) => reasons.find((r) => r.user === user)?.reason;
    expect(reasonOf('stranger')).toBe('auth hook: status 403');
    expect(reasonOf('slow')).toBe('auth hook: no answer within 1s');
    expect(reasonOf('garbled')).toBe('auth hook: answer is not valid JSON');
    expect(reasonOf('notanaccount')).toMatch(/^auth hook: answer is not a valid account: .*passwordHash/);
    expect(logText).not.toContain('partner-pw');
  });

  it('checks a local account locally and never asks the hook about it', async () => {
    calls = [];
    expect((await attempt(bridge, 'alice', 'local-pw')).code).toBe(230);
    expect((await attempt(bridge, 'alice', 'wrong')).code).toBe(530);
    expect(calls).toEqual([]);
  });

  it('an SFTP login asks the hook with protocol "sftp" (cached apart from FTP logins) and is confined the same way', async () => {
    expect((await attempt(bridge, 'partner', 'partner-pw')).code).toBe(230);
    calls = [];
    const local = join(keys.dir, 'via-sftp.txt');
    writeFileSync(local, 'via sftp');
    const r = await sftpBatch({ port: bridge.sftpPort as number, user: 'partner', password: 'partner-pw' }, [`put ${local} /../../via-sftp.txt`, 'ls /']);
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toEqual([{ username: 'partner', password: 'partner-pw', clientIp: '127.0.0.1', protocol: 'sftp' }]);
    expect((await bridge.getObject('partners/partner/via-sftp.txt'))?.toString()).toBe('via sftp');
  });

  it('an SFTP public-key login asks the hook with the key and its fingerprint; the hook allows one key and denies another', async () => {
    const fingerprint = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${keys.clientKey}.pub`])).stdout.split(' ')[1];
    expect(fingerprint).toMatch(/^SHA256:/);
    const local = join(keys.dir, 'via-key.txt');
    writeFileSync(local, 'via a key');
    calls = [];
    const r = await sftpBatch({ port: bridge.sftpPort as number, user: 'keyed', key: keys.clientKey }, [`put ${local} /via-key.txt`]);
    expect(r.code, r.stderr).toBe(0);
    // Asked once: when the client offered the key; its signed attempt used that answer.
    expect(calls).toEqual([{ username: 'keyed', publicKey: { fingerprint, key: keys.clientPublicKey.split(' ').slice(0, 2).join(' ') }, clientIp: '127.0.0.1', protocol: 'sftp' }]);
    expect((await bridge.getObject('partners/keyed/via-key.txt'))?.toString()).toBe('via a key');

    const other = join(keys.dir, 'other_ed25519');
    await keys.keygen(other, 'ed25519');
    calls = [];
    const denied = await sftpBatch({ port: bridge.sftpPort as number, user: 'keyed', key: other }, [`put ${local} /denied.txt`]);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/Permission denied/);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.publicKey?.key).toBe((await run('ssh-keygen', ['-y', '-f', other])).stdout.trim().split(' ').slice(0, 2).join(' '));
    expect(await bridge.exists('partners/keyed/denied.txt')).toBe(false);
    expect(logText).toMatch(/"result":"key-refused","reason":"auth hook: status 403"/);
  });

  it('a client offering key after key: at most 6 are put to the hook, then the connection is closed', async () => {
    const offered: string[] = [];
    for (let i = 0; i < 8; i++) {
      const file = join(keys.dir, `many_${i}`);
      await keys.keygen(file, 'ed25519');
      offered.push(readFileSync(file, 'utf8'));
    }
    calls = [];
    let asked = 0;
    const client = new ssh2.Client();
    client.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.connect({
      host: '127.0.0.1',
      port: bridge.sftpPort,
      username: 'keyed',
      hostVerifier: () => true,
      readyTimeout: 60_000,
      authHandler: (_methodsLeft, _partial, next) => {
        const key = offered[asked++];
        next((key ? { type: 'publickey', username: 'keyed', key } : false) as never);
      },
    });
    await closed;
    expect(calls).toHaveLength(6);
    expect(calls.every((c) => c.username === 'keyed' && c.publicKey !== undefined)).toBe(true);
  });
});

describe('auth hook failures and the brute-force guard', () => {
  it('counts refusals by the hook as failed logins: the address is banned after maxFailures', async () => {
    const bridge = await TestBridge.start({
      accounts: [],
      ftp: { bruteForce: { maxFailures: 2, windowSeconds: 60, banSeconds: 60 } },
      // Refusals are held to the hook's time-out: keep it short.
      config: { auth: { hook: { url: hookUrl, timeoutSeconds: 1 } } },
    });
    try {
      bucketForHook = bridge.bucket;
      expect((await attempt(bridge, 'partner', 'partner-pw')).code).toBe(230);
      expect((await attempt(bridge, 'stranger', 'a')).code).toBe(530);
      expect((await attempt(bridge, 'garbled', 'b')).code).toBe(530);
      // Banned now: even the partner's right password does not get in from this address.
      const greeting = await new Promise<string>((resolve, reject) => {
        const socket = connect(bridge.port, '127.0.0.1');
        socket.setEncoding('utf8');
        socket.once('data', (line: string) => {
          socket.destroy();
          resolve(line);
        });
        socket.once('error', reject);
      });
      expect(greeting).toMatch(/^421 /);
    } finally {
      await bridge.close();
    }
  });
});
