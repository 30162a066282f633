import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { sha256, TestBridge } from '../support/bridge.js';
import { curl, RawFtp } from '../support/clients.js';

/**
 * With s3.storeOntoDirectory 'refuse', STOR onto the name of a directory is refused (550) and
 * stores nothing. The bridge looks for such a directory (ListObjectsV2) while the data flows, not
 * before the 150 reply, and commits only once that check came back empty. By default ('allow') it
 * sends no such request, as S3 lets a file and a directory share a name.
 */
let bridge: TestBridge;

beforeAll(async () => {
  bridge = await TestBridge.start({ proxy: true, s3: { storeOntoDirectory: 'refuse' } });
});
afterAll(async () => {
  await bridge?.close();
});

describe('STOR and directories', () => {
  it('STOR onto a directory (a marker, or keys under it) answers 550 and stores nothing', async () => {
    await bridge.put('implicit/inner.bin', 'inner');
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login('alice', 'correct horse');
    // The marker is an empty PutObject with its length: the SDK would print a warning about a
    // "Stream of unknown length" to the console (outside the JSON logs) for every MKD otherwise.
    const warn = vi.spyOn(console, 'warn');
    try {
      expect((await ftp.command('MKD marked')).code).toBe(257);
      expect(warn.mock.calls.map((c) => String(c[0])).filter((m) => /unknown length/.test(m))).toEqual([]);
    } finally {
      warn.mockRestore();
    }
    ftp.close();
    for (const name of ['implicit', 'marked']) {
      const res = await curl(['-T', '-', bridge.url(`/${name}`)], randomBytes(200_000));
      expect(res.code, name).not.toBe(0);
      expect(res.stderr, name).toMatch(/550/);
      expect(await bridge.exists(name), name).toBe(false);
    }
    expect(await bridge.objectHash('implicit/inner.bin')).toBe(sha256('inner'));
    expect(await bridge.keys()).toEqual(['implicit/inner.bin', 'marked/']);
  });

  it('answers 150 before the directory check returns, and commits only after it', async () => {
    const proxy = bridge.proxy!;
    const slow = proxy.addRule({ operation: 'ListObjectsV2', action: { kind: 'latency', ms: 1500 } });
    try {
      const ftp = await RawFtp.connect(bridge.port);
      await ftp.login('alice', 'correct horse');
      await ftp.command('TYPE I');
      const data = await ftp.pasv();
      const started = Date.now();
      ftp.send('STOR fresh.bin');
      expect((await ftp.reply()).code).toBe(150);
      expect(Date.now() - started).toBeLessThan(1000);
      const body = randomBytes(300 * 1024);
      data.end(body);
      expect((await ftp.reply()).code).toBe(226);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      ftp.close();
      expect(slow.fired).toBeGreaterThanOrEqual(1);
      expect(await bridge.objectHash('fresh.bin')).toBe(sha256(body));
    } finally {
      proxy.removeRule(slow);
    }
  });

  it("by default ('allow'), an upload sends no ListObjectsV2 and a file may share a directory's name", async () => {
    const allowing = await TestBridge.start({ proxy: true });
    try {
      await allowing.put('shared/inner.bin', 'inner');
      const body = randomBytes(300 * 1024);
      for (const name of ['plain.bin', 'shared']) {
        const res = await curl(['-T', '-', allowing.url(`/${name}`)], body);
        expect(res.code, `${name}: ${res.stderr}`).toBe(0);
        expect(await allowing.objectHash(name), name).toBe(sha256(body));
      }
      expect(allowing.proxy!.requestsOf('ListObjectsV2')).toHaveLength(0);
      expect(await allowing.objectHash('shared/inner.bin')).toBe(sha256('inner'));
      const listing = await curl(['--list-only', allowing.url('/')]);
      expect(listing.stdout.toString().split(/\r?\n/).filter((l) => l === 'shared')).toHaveLength(2);
    } finally {
      await allowing.close();
    }
  });
});
