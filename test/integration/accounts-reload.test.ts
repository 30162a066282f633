import { mkdtempSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { sha256, TestBridge } from '../support/bridge.js';
import { curl, RawFtp } from '../support/clients.js';

const log = new PassThrough();
let logText = '';
log.on('data', (c: Buffer) => (logText += c.toString()));

let dir: string;
let version = 0;
let bridge: TestBridge;

/** Publishes new content the way a Kubernetes Secret volume does: a new directory and a symlink swap. */
function publish(content: string): void {
  const name = `..v${++version}`;
  mkdirSync(join(dir, name));
  writeFileSync(join(dir, name, 'accounts.yaml'), content);
  symlinkSync(name, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
}

async function tryLogin(user: string, password: string): Promise<number> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.command(`USER ${user}`);
  const code = (await ftp.command(`PASS ${password}`)).code;
  ftp.close();
  return code;
}

/** Waits (bounded) until a login gives the expected reply: reloads are asynchronous. */
async function until(user: string, password: string, code: number): Promise<void> {
  const deadline = Date.now() + 8000;
  let last = 0;
  while (Date.now() < deadline) {
    last = await tryLogin(user, password);
    if (last === code) return;
    await sleep(100);
  }
  throw new Error(`login of ${user} still answers ${last}, not ${code}`);
}

const hashes = new Map<string, Promise<string>>();
const hashOf = (password: string) => {
  if (!hashes.has(password)) hashes.set(password, hashPassword(password));
  return hashes.get(password) as Promise<string>;
};

async function accountsYaml(accounts: { username: string; password: string; prefix?: string }[], bucket: string): Promise<string> {
  const lines = ['accounts:'];
  for (const a of accounts) {
    lines.push(`  - username: ${a.username}`, `    passwordHash: '${await hashOf(a.password)}'`, `    bucket: ${bucket}`, `    prefix: '${a.prefix ?? ''}'`);
  }
  return lines.join('\n') + '\n';
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'accounts-'));
  publish('[]\n');
  symlinkSync('..data/accounts.yaml', join(dir, 'accounts.yaml'));
  bridge = await TestBridge.start({
    accounts: [],
    logStream: log,
    logLevel: 'info',
    // Polling is slow here: these reloads must come from the directory watch.
    config: { auth: { accountsFile: join(dir, 'accounts.yaml'), accountsReload: { pollSeconds: 120 } } },
  });
});
afterAll(async () => {
  await bridge?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('accounts file reloads', () => {
  it('applies added, changed and removed accounts while sessions are open, and rejects an invalid file as a whole', async () => {
    expect(await tryLogin('alice', 'alice-1')).toBe(530);

    // Added: both can log in, and alice's upload lands in S3.
    publish(await accountsYaml([{ username: 'alice', password: 'alice-1' }, { username: 'bob', password: 'bob-1', prefix: 'bob/' }], bridge.bucket));
    await until('alice', 'alice-1', 230);
    const body = Buffer.from('added while running\n'.repeat(1000));
    const put = await curl(['-T', '-', bridge.url('/hello.txt', 'alice', 'alice-1')], body);
    expect(put.code, put.stderr).toBe(0);
    expect(await bridge.objectHash('hello.txt')).toBe(sha256(body));
    expect(logText).toMatch(/"added":\["alice","bob"\]/);

    const aliceSession = await RawFtp.connect(bridge.port);
    await aliceSession.login('alice', 'alice-1');
    const bobSession = await RawFtp.connect(bridge.port);
    await bobSession.login('bob', 'bob-1');

    // Changed password: the next login needs the new one; the open session goes on.
    publish(await accountsYaml([{ username: 'alice', password: 'alice-2' }, { username: 'bob', password: 'bob-1', prefix: 'bob/' }], bridge.bucket));
    await until('alice', 'alice-2', 230);
    expect(await tryLogin('alice', 'alice-1')).toBe(530);
    expect((await aliceSession.command('NOOP')).code).toBe(200);
    expect(logText).toMatch(/"changed":\["alice"\]/);

    // Removed: bob's open session is closed with 421 and bob cannot log in again.
    const bobReply = bobSession.reply(10_000);
    publish(await accountsYaml([{ username: 'alice', password: 'alice-2' }], bridge.bucket));
    expect((await bobReply).code).toBe(421);
    await until('bob', 'bob-1', 530);
    expect(logText).toMatch(/"removed":\["bob"\]/);
    expect((await aliceSession.command('PWD')).code).toBe(257);

    // Invalid: rejected as a whole, one line per bad field; the accounts in force stay.
    const before = logText.length;
    publish(
      'accounts:\n' +
        '  - username: alice\n    passwordHash: plain-text\n    bucket: ' + bridge.bucket + '\n' +
        '  - username: carol\n    passwordHash: x\n    bucket: b\n    prefix: /abs\n',
    );
    const deadline = Date.now() + 8000;
    while (!logText.slice(before).includes('rejected as a whole') && Date.now() < deadline) await sleep(50);
    const rejected = logText.slice(before).split('\n').filter((l) => l.includes('accounts file rejected:'));
    expect(rejected.map((l) => JSON.parse(l).problem as string).sort()).toEqual([
      'accounts.0.passwordHash: must be a bcrypt ($2b$...) or argon2id ($argon2id$...) hash',
      'accounts.1.bucket: Too small: expected string to have >=3 characters',
      'accounts.1.passwordHash: must be a bcrypt ($2b$...) or argon2id ($argon2id$...) hash',
      'accounts.1.prefix: must be "" or end with "/" and not start with "/"',
    ]);
    expect(await tryLogin('alice', 'alice-2')).toBe(230);
    expect(await tryLogin('carol', 'x')).toBe(530);
    expect((await aliceSession.command('NOOP')).code).toBe(200);
    aliceSession.close();
    bobSession.close();
    expect(logText).not.toContain('alice-1');
    expect(logText).not.toContain('$2b$10$');
  });
});
