import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, python, storBytes } from '../support/clients.js';

/**
 * Checksums without re-reading: SHA-256 and MD5 are computed while an upload streams in; HASH
 * (draft-bryan-ftp-hash), XSHA256 and XMD5 answer from them. Only objects written by others are
 * read to compute a digest, and only up to s3.hashMaxStreamMiB.
 */
let bridge: TestBridge;
const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

beforeAll(async () => {
  // Digests of multipart uploads are kept in this process only (nothing is copied after the commit).
  bridge = await TestBridge.start({ proxy: true, s3: { hashMaxStreamMiB: 1 } });
});
afterAll(async () => {
  await bridge?.close();
});

async function login(): Promise<RawFtp> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
  await ftp.command('TYPE I');
  return ftp;
}

/** S3 reads (GetObject) of a key made by the bridge since `since`. */
const readsOf = (key: string, since: number) =>
  (bridge.proxy?.requests ?? []).slice(since).filter((r) => r.operation === 'GetObject' && r.key.endsWith(key));

describe('HASH, XSHA256, XMD5', () => {
  it('FEAT announces HASH with SHA-256 as the default', async () => {
    const ftp = await login();
    try {
      const feat = await ftp.command('FEAT');
      expect(feat.text).toMatch(/^ HASH SHA-256\*;.*MD5/m);
    } finally {
      ftp.close();
    }
  });

  it("FEAT marks the session's selected algorithm after OPTS HASH (draft-bryan-ftp-hash §3), and only for that session", async () => {
    const ftp = await login();
    const other = await login();
    try {
      expect((await ftp.command('OPTS HASH MD5')).text).toBe('200 MD5');
      const lines = (await ftp.command('FEAT')).text.split(/\r?\n/).filter((l) => l.startsWith(' HASH '));
      expect(lines).toEqual([' HASH SHA-256;SHA-1;SHA-512;MD5*']);
      expect((await ftp.command('OPTS HASH SHA-512')).code).toBe(200);
      expect((await ftp.command('FEAT')).text).toMatch(/^ HASH SHA-256;SHA-1;SHA-512\*;MD5$/m);
      expect((await other.command('FEAT')).text).toMatch(/^ HASH SHA-256\*;SHA-1;SHA-512;MD5$/m);
    } finally {
      ftp.close();
      other.close();
    }
  });

  it('a single-request upload stores its digests as object metadata; HASH answers without reading the object', async () => {
    const body = randomBytes(2 * MiB + 17);
    const ftp = await login();
    try {
      await storBytes(ftp, 'in/report.pdf', body);
      const head = await bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: 'in/report.pdf' }));
      expect(head.Metadata?.sha256).toBe(sha256(body));
      expect(head.Metadata?.md5).toBe(md5(body));
      const since = bridge.proxy?.requests.length ?? 0;
      expect((await ftp.command('HASH in/report.pdf')).text).toBe(`213 SHA-256 0-${body.length} ${sha256(body)} /in/report.pdf`);
      expect((await ftp.command('OPTS HASH MD5')).text).toBe('200 MD5');
      expect((await ftp.command('OPTS HASH')).text).toBe('200 MD5');
      expect((await ftp.command('HASH in/report.pdf')).text).toBe(`213 MD5 0-${body.length} ${md5(body)} /in/report.pdf`);
      expect((await ftp.command('XSHA256 in/report.pdf')).text).toBe(`250 ${sha256(body)}`);
      expect((await ftp.command('XMD5 /in/report.pdf')).text).toBe(`250 ${md5(body)}`);
      expect(readsOf('in/report.pdf', since)).toEqual([]);
      // No CRC stored (s3.checksumAlgorithm is none with s3rver): XCRC reads the object (2 MiB, above
      // s3.hashMaxStreamMiB: refused) - a smaller one is read and its CRC-32 computed.
      expect((await ftp.command('XCRC in/report.pdf')).code).toBe(550);
      const small = randomBytes(1000);
      await storBytes(ftp, 'in/small.txt', small);
      expect((await ftp.command('XCRC in/small.txt')).text).toBe(`250 ${crc32(small).toString(16).padStart(8, '0')}`);
      expect(readsOf('in/small.txt', since)).toHaveLength(1);
    } finally {
      ftp.close();
    }
  });

  it('a multipart upload (metadata sent before the data) is hashed from what the upload computed, not re-read', async () => {
    const body = randomBytes(11 * MiB + 3); // above s3.hashMaxStreamMiB too: reading it would be refused
    const ftp = await login();
    try {
      await storBytes(ftp, 'big/clip.mp4', body);
      const since = bridge.proxy?.requests.length ?? 0;
      expect((await ftp.command('HASH big/clip.mp4')).text).toBe(`213 SHA-256 0-${body.length} ${sha256(body)} /big/clip.mp4`);
      expect(readsOf('big/clip.mp4', since)).toEqual([]);
    } finally {
      ftp.close();
    }
  });

  it('an object written by someone else is read to compute its digest, up to the configured size', async () => {
    const small = randomBytes(300_000);
    const large = randomBytes(MiB + 1);
    await bridge.put('other/small.bin', small);
    await bridge.put('other/large.bin', large);
    const ftp = await login();
    try {
      const since = bridge.proxy?.requests.length ?? 0;
      expect((await ftp.command('XSHA256 other/small.bin')).text).toBe(`250 ${sha256(small)}`);
      expect(readsOf('other/small.bin', since)).toHaveLength(1);
      const refused = await ftp.command('HASH other/large.bin');
      expect(refused.code).toBe(550);
      expect(refused.text).toMatch(/too large/);
      expect((await ftp.command('HASH nowhere.bin')).code).toBe(550);
      expect((await ftp.command('OPTS HASH CRC99')).code).toBe(501);
    } finally {
      ftp.close();
    }
  });

  it("with s3.uploadDigests [SHA-256], uploads store no MD5; XMD5 then reads the object, SHA-256 still does not", async () => {
    const lean = await TestBridge.start({ proxy: true, s3: { uploadDigests: ['SHA-256'] } });
    const ftp = await RawFtp.connect(lean.port);
    try {
      await ftp.login(USER, PASSWORD);
      await ftp.command('TYPE I');
      const body = randomBytes(300_000);
      await storBytes(ftp, 'cam/shot.jpg', body);
      const head = await lean.s3.send(new HeadObjectCommand({ Bucket: lean.bucket, Key: 'cam/shot.jpg' }));
      expect(head.Metadata?.sha256).toBe(sha256(body));
      expect(head.Metadata?.md5).toBeUndefined();
      const gets = () => (lean.proxy?.requests ?? []).filter((r) => r.operation === 'GetObject').length;
      expect((await ftp.command('XSHA256 cam/shot.jpg')).text).toBe(`250 ${sha256(body)}`);
      expect(gets()).toBe(0);
      expect((await ftp.command('XMD5 cam/shot.jpg')).text).toBe(`250 ${md5(body)}`);
      expect(gets()).toBe(1);
    } finally {
      ftp.close();
      await lean.close();
    }
  });

  it('a replaced file is never answered with the digest of its former content', async () => {
    const first = randomBytes(12 * MiB);
    const second = randomBytes(1000);
    const ftp = await login();
    try {
      await storBytes(ftp, 'swap.bin', first);
      await bridge.put('swap.bin', second);
      expect((await ftp.command('XSHA256 swap.bin')).text).toBe(`250 ${sha256(second)}`);
    } finally {
      ftp.close();
    }
  });

  it("python ftplib's sendcmd gets the digest of what it stored", async () => {
    const res = await python(
      `
import ftplib, io, sys, hashlib
body = bytes(range(256)) * 4000
ftp = ftplib.FTP()
ftp.connect('127.0.0.1', int(sys.argv[1]))
ftp.login(sys.argv[2], sys.argv[3])
ftp.storbinary('STOR py/data.bin', io.BytesIO(body))
reply = ftp.sendcmd('HASH py/data.bin')
print(reply.split(' ')[3] == hashlib.sha256(body).hexdigest(), reply)
ftp.quit()
`,
      [String(bridge.port), USER, PASSWORD],
    );
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toMatch(/^True 213 SHA-256 0-1024000 /);
  });
});
