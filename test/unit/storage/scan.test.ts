import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeTagging, UploadScan, type ScanSettings } from '../../../src/storage/scan.js';

describe('mergeTagging', () => {
  it("puts the scan's tags first and keeps the account's while S3's limit of 10 allows", () => {
    expect(mergeTagging({ scan: 'infected', signature: 'Eicar-Test-Signature' }, 'partner=acme&retention=7+years')).toBe(
      'scan=infected&signature=Eicar-Test-Signature&partner=acme&retention=7+years',
    );
    const ten = new URLSearchParams(Array.from({ length: 10 }, (_, i): [string, string] => [`k${i}`, 'v'])).toString();
    const merged = new URLSearchParams(mergeTagging({ scan: 'unscanned' }, ten));
    expect(merged.size).toBe(10);
    expect(merged.get('scan')).toBe('unscanned');
  });

  it('an account tag named like a scan tag cannot override it', () => {
    expect(mergeTagging({ scan: 'unscanned' }, 'scan=clean')).toBe('scan=unscanned');
    expect(mergeTagging({}, undefined)).toBeUndefined();
  });
});

describe('UploadScan', () => {
  const settings = (socket: string): ScanSettings => ({ clamd: { socket }, timeoutMs: 5000, maxBytes: 1024, oversize: 'reject', onError: 'reject' });

  it('opens no clamd connection for an upload that never sends a byte, one for an upload that does', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'scan-lazy-'));
    const socket = join(dir, 'clamd.sock');
    let connections = 0;
    // Answers every stream with OK once it ends (the zero-length chunk).
    const fake = createServer((c) => {
      connections++;
      let got = Buffer.alloc(0);
      c.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        if (got.subarray(-4).equals(Buffer.alloc(4))) c.end('stream: OK\0');
      });
    });
    await new Promise<void>((resolve) => fake.listen(socket, resolve));
    try {
      const target = { bucket: 'b', key: 'k' };
      new UploadScan({ settings: settings(socket), mode: 'reject' }, 'a.txt', target, 'a.txt').abort();
      const used = new UploadScan({ settings: settings(socket), mode: 'reject' }, 'b.txt', target, 'b.txt');
      await used.write(Buffer.from('hello'));
      expect(await used.decide()).toMatchObject({ bucket: 'b', key: 'k', tags: {}, report: { result: 'clean', action: 'committed' } });
      expect(connections).toBe(1);
    } finally {
      fake.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails closed when the account asks for a scan and no scanner is configured', async () => {
    const scan = new UploadScan({ settings: undefined, mode: 'reject' }, 'a.txt', { bucket: 'b', key: 'k' }, 'a.txt');
    await expect(scan.write(Buffer.from('x'))).rejects.toMatchObject({ code: 'SCAN_UNAVAILABLE', message: 'a.txt: malware scanner unavailable; nothing stored, try again' });
    await expect(scan.decide()).rejects.toMatchObject({ code: 'SCAN_UNAVAILABLE' });
  });
});
