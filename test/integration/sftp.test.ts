import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import { scp, sftpBatch, sftpConfig, SshKeys } from '../support/sftp.js';

let keys: SshKeys;
let bridge: TestBridge;
let work: string;

beforeAll(async () => {
  keys = await SshKeys.create();
  work = mkdtempSync(join(tmpdir(), 'sftp-it-'));
  bridge = await TestBridge.start({
    accounts: [{ username: USER, password: PASSWORD, policy: { publicKeys: [keys.clientPublicKey] } }],
    config: sftpConfig(keys.hostKey),
  });
}, 60_000);

afterAll(async () => {
  await bridge?.close();
  keys?.remove();
  rmSync(work, { recursive: true, force: true });
});

const password = () => ({ port: bridge.sftpPort as number, user: USER, password: PASSWORD });
const publicKey = () => ({ port: bridge.sftpPort as number, user: USER, key: keys.clientKey });

describe('SFTP with OpenSSH sftp', () => {
  it('password login: put, ls, get byte-exact; the object in S3 has the same sha256', async () => {
    const data = randomBytes(300_000);
    const local = join(work, 'up.bin');
    writeFileSync(local, data);
    const back = join(work, 'down.bin');
    const r = await sftpBatch(password(), [`put ${local} /up.bin`, 'ls -l /', `get /up.bin ${back}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/up\.bin/);
    expect(await bridge.objectHash('up.bin')).toBe(sha256(data));
    expect(sha256(readFileSync(back))).toBe(sha256(data));
    const head = await bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: 'up.bin' }));
    expect(head.Metadata).toMatchObject({ 'ftp-user': USER, 'ftp-client-ip': '127.0.0.1', 'uploader-protocol': 'sftp' });
  });

  it('public-key login: mkdir, put into it, rename, rm, rmdir', async () => {
    const local = join(work, 'k.txt');
    writeFileSync(local, 'key login\n');
    const r = await sftpBatch(publicKey(), ['mkdir /dir', `put ${local} /dir/a.txt`, 'rename /dir/a.txt /dir/b.txt', 'ls /dir']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await bridge.getObject('dir/b.txt')).toEqual(Buffer.from('key login\n'));
    expect(await bridge.exists('dir/a.txt')).toBe(false);
    const r2 = await sftpBatch(publicKey(), ['rm /dir/b.txt', 'rmdir /dir']);
    expect(r2.code).toBe(0);
    expect(await bridge.keys('dir')).toEqual([]);
  });

  it('rename: the server announces posix-rename@openssh.com, OpenSSH renames with it, and it replaces an existing target', async () => {
    const first = join(work, 'first.txt');
    const second = join(work, 'second.txt');
    writeFileSync(first, 'first\n');
    writeFileSync(second, 'second\n');
    const r = await sftpBatch(publicKey(), [`put ${first} /first.txt`, `put ${second} /second.txt`, 'rename /first.txt /second.txt'], { args: ['-vv'] });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Server supports extension "posix-rename@openssh.com" revision 1/);
    expect(r.stderr).toMatch(/Sending SSH2_FXP_EXTENDED\(posix-rename@openssh.com\) "\/first.txt" to "\/second.txt"/);
    expect((await bridge.getObject('second.txt'))?.toString()).toBe('first\n');
    expect(await bridge.exists('first.txt')).toBe(false);
  });

  it('metrics count SFTP logins and transfers under protocol="sftp"', async () => {
    const local = join(work, 'counted.bin');
    writeFileSync(local, 'counted');
    expect((await sftpBatch(publicKey(), [`put ${local} /counted.bin`])).code).toBe(0);
    const metrics = await (await fetch(`http://127.0.0.1:${bridge.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^ftp_logins_total\{result="ok",protocol="sftp"\} [1-9]/m);
    expect(metrics).toMatch(/^ftp_transfers_total\{operation="STOR",result="ok",protocol="sftp"\} [1-9]/m);
  });

  it('scp up and down', async () => {
    const data = randomBytes(70_000);
    const local = join(work, 'scp.bin');
    writeFileSync(local, data);
    const up = await scp(publicKey(), local, ':/scp.bin');
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(await bridge.objectHash('scp.bin')).toBe(sha256(data));
    const back = join(work, 'scp-back.bin');
    const down = await scp(password(), ':/scp.bin', back);
    expect(down.code).toBe(0);
    expect(sha256(readFileSync(back))).toBe(sha256(data));
  });
});
