import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import { sftpBatch, sftpConfig, sftpSession, SshKeys } from '../support/sftp.js';

/** Permissions, confinement to the account's prefix, quotas and allowFrom, over SFTP. */
let keys: SshKeys;
let bridge: TestBridge;
let work: string;

beforeAll(async () => {
  keys = await SshKeys.create();
  work = mkdtempSync(join(tmpdir(), 'sftp-policy-'));
  bridge = await TestBridge.start({
    accounts: [
      { username: USER, password: PASSWORD, prefix: 'home/alice/' },
      { username: 'reader', password: 'reader-pw', prefix: 'home/alice/', permissions: ['list', 'read'] },
      { username: 'drop', password: 'drop-pw', prefix: 'drop/', permissions: ['write'] },
      { username: 'small', password: 'small-pw', prefix: 'q/', policy: { quota: { maxBytes: 100_000 } } },
      { username: 'faraway', password: 'faraway-pw', allowFrom: ['10.0.0.0/8'] },
    ],
    config: sftpConfig(keys.hostKey),
  });
  await bridge.put('outside.txt', 'not yours');
}, 60_000);

afterAll(async () => {
  await bridge?.close();
  keys?.remove();
  rmSync(work, { recursive: true, force: true });
});

const as = (user: string, password: string) => ({ port: bridge.sftpPort as number, user, password });
const file = (name: string, data: Buffer | string) => {
  const path = join(work, name);
  writeFileSync(path, data);
  return path;
};

describe('SFTP path confinement', () => {
  it('".." and absolute paths stop at the account root: nothing outside the prefix is reached', async () => {
    const local = file('escape.txt', 'inside');
    const back = join(work, 'outside-back.txt');
    const r = await sftpBatch(as(USER, PASSWORD), [
      `put ${local} ../../../escape.txt`,
      'cd ../../..',
      'pwd',
      `-get /../outside.txt ${back}`,
      `-get ../../outside.txt ${back}`,
      'ls -1 /../..',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Remote working directory: /\n');
    expect(r.stderr).toMatch(/outside\.txt.*not found|No such file/);
    expect(() => readFileSync(back)).toThrow();
    expect(await bridge.keys()).toEqual(['home/alice/escape.txt', 'outside.txt']);
    expect((await bridge.getObject('home/alice/escape.txt'))?.toString()).toBe('inside');
  });
});

describe('SFTP listings of hostile names', () => {
  it('a control character in a name is shown as ? in the ls -l line; the filename field carries the name as it is', async () => {
    // DEL: a control character that every store here can list (Swift's XML listing cannot carry ESC).
    await bridge.put('home/alice/evil\x7f[2Jname.txt', 'x');
    const { sftp, close } = await sftpSession(bridge.sftpPort as number, USER, PASSWORD);
    try {
      const list = await new Promise<{ filename: string; longname: string }[]>((resolve, reject) => sftp.readdir('/', (err, l) => (err ? reject(err) : resolve(l))));
      const evil = list.find((e) => e.filename.startsWith('evil'));
      expect(evil?.filename).toBe('evil\x7f[2Jname.txt');
      expect(evil?.longname).toMatch(/ evil\?\[2Jname\.txt$/);
    } finally {
      close();
    }
  });
});

describe('SFTP permissions', () => {
  it('list+read: get and ls work; put, rm, mkdir, rename are denied and change nothing', async () => {
    await bridge.put('home/alice/shared.txt', 'shared');
    const back = join(work, 'shared-back.txt');
    const local = file('denied.txt', 'nope');
    const r = await sftpBatch(as('reader', 'reader-pw'), [
      `get /shared.txt ${back}`,
      'ls /',
      `-put ${local} /denied.txt`,
      '-rm /shared.txt',
      '-mkdir /newdir',
      '-rename /shared.txt /moved.txt',
    ]);
    expect(r.code).toBe(0);
    expect(readFileSync(back, 'utf8')).toBe('shared');
    expect(r.stderr.match(/Permission denied/g)?.length).toBe(4);
    expect(await bridge.keys('home/alice/')).not.toContain('home/alice/denied.txt');
    expect(await bridge.exists('home/alice/shared.txt')).toBe(true);
    expect(await bridge.keys('home/alice/newdir')).toEqual([]);
    expect(await bridge.exists('home/alice/moved.txt')).toBe(false);
  });

  it('write only (an upload drop): put works; ls and get are refused (STAT needs list or read)', async () => {
    const data = randomBytes(40_000);
    const local = file('drop.bin', data);
    const r = await sftpBatch(as('drop', 'drop-pw'), [`put ${local} /drop.bin`, '-ls /', `-get /drop.bin ${join(work, 'drop-back.bin')}`]);
    expect(r.code).toBe(0);
    expect(await bridge.objectHash('drop/drop.bin')).toBe(sha256(data));
    // OpenSSH stats a path before it lists or fetches it, and words any refused STAT as "not found".
    expect(r.stderr).toContain(`Can't ls: "/" not found`);
    expect(r.stderr).toContain('File "/drop.bin" not found.');
  });
});

describe('SFTP quota and allowFrom', () => {
  it('an upload that would exceed the quota fails and commits nothing; one within it succeeds', async () => {
    const big = file('big-for-quota.bin', randomBytes(200_000));
    const ok = randomBytes(50_000);
    const fits = file('fits.bin', ok);
    const r = await sftpBatch(as('small', 'small-pw'), [`-put ${big} /big.bin`, `put ${fits} /fits.bin`]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Failure|Exceeded storage allocation/);
    expect(await bridge.exists('q/big.bin')).toBe(false);
    expect(await bridge.objectHash('q/fits.bin')).toBe(sha256(ok));
  });

  it('the right password from outside allowFrom is refused', async () => {
    const r = await sftpBatch(as('faraway', 'faraway-pw'), ['ls /']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Permission denied/);
  });
});
