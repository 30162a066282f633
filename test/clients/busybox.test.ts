import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, runProgram } from '../support/clients.js';
import { scratch } from './helpers.js';

/**
 * busybox ftpput/ftpget: what many IP cameras run. They only store and retrieve (no listing,
 * rename or delete), so listing, rename and delete of what they stored go over a raw session.
 */
let bridge: TestBridge;
const dir = scratch('busybox');
beforeAll(async () => {
  bridge = await TestBridge.start();
});
afterAll(async () => {
  await bridge?.close();
});

const common = () => ['-u', USER, '-p', PASSWORD, '-P', String(bridge.port), '127.0.0.1'];

describe('busybox ftpput/ftpget', () => {
  it('stores snapshots into an existing directory and reads them back; S3 holds the bytes', async () => {
    const mk = await RawFtp.connect(bridge.port);
    await mk.login(USER, PASSWORD);
    expect((await mk.command('MKD snapshots')).code).toBe(257);

    const data = randomBytes(400_000);
    writeFileSync(join(dir, 'snap.jpg'), data);
    const put = await runProgram('busybox', ['ftpput', '-v', ...common(), 'snapshots/20261129-0400.jpg', join(dir, 'snap.jpg')]);
    expect(put.code, put.stderr).toBe(0);
    expect(await bridge.objectHash('snapshots/20261129-0400.jpg')).toBe(sha256(data));

    const get = await runProgram('busybox', ['ftpget', '-v', ...common(), join(dir, 'back.jpg'), 'snapshots/20261129-0400.jpg']);
    expect(get.code, get.stderr).toBe(0);
    expect(sha256(readFileSync(join(dir, 'back.jpg')))).toBe(sha256(data));

    try {
      const data2 = await mk.pasv();
      mk.send('NLST snapshots');
      const chunks: Buffer[] = [];
      data2.on('data', (c: Buffer) => chunks.push(c));
      expect((await mk.reply()).code).toBe(150);
      expect((await mk.reply()).code).toBe(226);
      expect(Buffer.concat(chunks).toString()).toBe('20261129-0400.jpg\r\n');
      expect((await mk.command('RNFR snapshots/20261129-0400.jpg')).code).toBe(350);
      expect((await mk.command('RNTO snapshots/kept.jpg')).code).toBe(250);
      expect(await bridge.objectHash('snapshots/kept.jpg')).toBe(sha256(data));
      expect((await mk.command('DELE snapshots/kept.jpg')).code).toBe(250);
      expect(await bridge.exists('snapshots/kept.jpg')).toBe(false);
    } finally {
      mk.close();
    }
  });
});
