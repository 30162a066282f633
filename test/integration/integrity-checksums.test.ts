import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import { HeadObjectCommand, ListObjectVersionsCommand, PutBucketVersioningCommand } from '@aws-sdk/client-s3';
import { Crc64NvmeJs } from '@aws-sdk/checksums/crc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, type FtpReply } from '../support/clients.js';
import { startBackend, type StartedBackend } from '../support/s3-backends.js';

/**
 * s3.checksumAlgorithm on moto's S3 server (which verifies x-amz-checksum-* and keeps them; s3rver
 * ignores them): every upload request carries the checksum of its bytes, computed as they stream
 * in; S3 refuses bytes that differ (451, nothing committed); HASH/XSHA256/XCRC answer from the
 * stored checksum where it covers the whole object; a multipart upload is exactly one write.
 */
const MiB = 1024 * 1024;
let moto: StartedBackend;
const bridges: TestBridge[] = [];
const after: (() => Promise<void>)[] = [];
const log: Record<string, unknown>[] = [];

beforeAll(async () => {
  // A moto of this file's own, on a free port, in memory: nothing shared with other test files.
  moto = await startBackend('moto');
}, 120_000);
afterAll(async () => {
  for (const b of bridges) await b.close();
  for (const f of after) await f();
  await moto?.stop();
});

async function bridgeWith(
  checksumAlgorithm: 'SHA256' | 'CRC64NVME' | 'CRC32C' | 'CRC32',
  uploadDigests?: ('SHA-256' | 'MD5')[],
  webhookUrl?: string,
): Promise<TestBridge> {
  const logStream = new PassThrough();
  let pending = '';
  logStream.on('data', (c: Buffer) => {
    const lines = (pending + c.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) log.push(JSON.parse(line) as Record<string, unknown>);
  });
  const bridge = await TestBridge.start({
    backend: moto.s3,
    proxy: true,
    s3: { checksumAlgorithm, hashMaxStreamMiB: 1, ...(uploadDigests && { uploadDigests }) },
    ...(webhookUrl && { config: { events: { webhook: { url: webhookUrl } } } }),
    logStream,
    logLevel: 'info',
  });
  bridges.push(bridge);
  return bridge;
}

async function login(bridge: TestBridge): Promise<RawFtp> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
  await ftp.command('TYPE I');
  return ftp;
}

/** STOR of `body`; the final reply (226 or the failure). */
async function stor(ftp: RawFtp, name: string, body: Buffer): Promise<FtpReply> {
  const data = await ftp.pasv();
  ftp.send(`STOR ${name}`);
  expect((await ftp.reply()).code).toBe(150);
  await new Promise<void>((resolve) => data.end(body, () => resolve()));
  return ftp.reply(60_000);
}

const headChecksum = (bridge: TestBridge, key: string) =>
  bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: key, ChecksumMode: 'ENABLED' }));
const auditOf = (key: string) => log.find((l) => l.msg === 'operation' && l.key === key && l.operation === 'STOR');

describe('checksums S3 verifies', () => {
  it('SHA256: a single PutObject carries x-amz-checksum-sha256; S3 keeps it; HASH and XSHA256 answer from it without reading', async () => {
    const bridge = await bridgeWith('SHA256');
    const body = randomBytes(300 * 1024);
    const ftp = await login(bridge);
    try {
      const since = bridge.proxy!.requests.length;
      expect((await stor(ftp, 'small.bin', body)).code).toBe(226);
      const puts = bridge.proxy!.requests.slice(since).filter((r) => r.operation === 'PutObject' && r.key === 'small.bin');
      expect(puts).toHaveLength(1);
      expect(puts[0]!.headers['x-amz-checksum-sha256']).toBe(Buffer.from(sha256(body), 'hex').toString('base64'));
      // No aws-chunked trailer of the SDK's own next to ours.
      expect(puts[0]!.headers['x-amz-trailer']).toBeUndefined();
      const head = await headChecksum(bridge, 'small.bin');
      expect(head.ChecksumSHA256).toBe(Buffer.from(sha256(body), 'hex').toString('base64'));
      const reads = bridge.proxy!.requests.length;
      expect((await ftp.command('XSHA256 small.bin')).text).toBe(`250 ${sha256(body)}`);
      expect(bridge.proxy!.requests.slice(reads).filter((r) => r.operation === 'GetObject')).toHaveLength(0);
      expect(auditOf('small.bin')?.checksum).toBe(`SHA256:${head.ChecksumSHA256}`);
      expect(await bridge.objectHash('small.bin')).toBe(sha256(body));
      // An empty file carries the checksum of no bytes.
      expect((await stor(ftp, 'empty.bin', Buffer.alloc(0))).code).toBe(226);
      expect((await headChecksum(bridge, 'empty.bin')).ChecksumSHA256).toBe(Buffer.from(sha256(''), 'hex').toString('base64'));
    } finally {
      ftp.close();
    }
  });

  it('SHA256 multipart: each part carries its checksum, the commit lists them (composite); one write, one version, no copy', async () => {
    // A webhook receiver on loopback: the upload event carries the checksum too.
    const events: Record<string, unknown>[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        events.push(JSON.parse(body) as Record<string, unknown>);
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    after.push(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const bridge = await bridgeWith('SHA256', undefined, `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`);
    await bridge.s3.send(new PutBucketVersioningCommand({ Bucket: bridge.bucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const body = randomBytes(12 * MiB);
    const ftp = await login(bridge);
    try {
      const since = bridge.proxy!.requests.length;
      expect((await stor(ftp, 'big.bin', body)).code).toBe(226);
      const mine = bridge.proxy!.requests.slice(since).filter((r) => r.key === 'big.bin');
      const parts = mine.filter((r) => r.operation === 'UploadPart');
      expect(parts).toHaveLength(3);
      for (const [i, part] of parts.entries()) {
        const bytes = body.subarray(i * 5 * MiB, Math.min((i + 1) * 5 * MiB, body.length));
        expect(part.headers['x-amz-checksum-sha256']).toBe(Buffer.from(sha256(bytes), 'hex').toString('base64'));
      }
      expect(mine.filter((r) => r.operation === 'CreateMultipartUpload')[0]!.headers['x-amz-checksum-algorithm']).toBe('SHA256');
      // Exactly one write: the commit; no background CopyObject of the object onto itself.
      expect(mine.filter((r) => r.operation === 'CompleteMultipartUpload')).toHaveLength(1);
      expect(mine.filter((r) => ['CopyObject', 'PutObject', 'UploadPartCopy'].includes(r.operation))).toHaveLength(0);
      const versions = await bridge.s3.send(new ListObjectVersionsCommand({ Bucket: bridge.bucket, Prefix: 'big.bin' }));
      expect(versions.Versions ?? []).toHaveLength(1);
      const head = await headChecksum(bridge, 'big.bin');
      // The SHA-256 of the parts' SHA-256s, "-3" (moto's HEAD leaves the suffix out).
      const composite = sha256(Buffer.concat([0, 1, 2].map((i) => Buffer.from(sha256(body.subarray(i * 5 * MiB, (i + 1) * 5 * MiB)), 'hex'))));
      expect(head.ChecksumType).toBe('COMPOSITE');
      expect(head.ChecksumSHA256).toBe(Buffer.from(composite, 'hex').toString('base64'));
      expect(auditOf('big.bin')?.checksum).toBe(`SHA256:${head.ChecksumSHA256}-3`);
      const deadline = Date.now() + 30_000;
      while (!events.some((e) => e.key === 'big.bin') && Date.now() < deadline) await sleep(50);
      expect(events.find((e) => e.key === 'big.bin')?.checksum).toBe(`SHA256:${head.ChecksumSHA256}-3`);
      // Composite: not the object's SHA-256; HASH answers from the process's cache.
      expect((await ftp.command('XSHA256 big.bin')).text).toBe(`250 ${sha256(body)}`);
      expect(await bridge.objectHash('big.bin')).toBe(sha256(body));
      // Nothing more was written after the reply (no copy follows the commit).
      expect(bridge.proxy!.requests.slice(since).filter((r) => r.key === 'big.bin' && r.operation === 'CopyObject')).toHaveLength(0);
    } finally {
      ftp.close();
    }
  });

  it('SHA256 without the SHA-256 digest (s3.uploadDigests [MD5]): the parts still carry their own SHA-256', async () => {
    const bridge = await bridgeWith('SHA256', ['MD5']);
    const body = randomBytes(7 * MiB);
    const ftp = await login(bridge);
    try {
      const since = bridge.proxy!.requests.length;
      expect((await stor(ftp, 'md5only.bin', body)).code).toBe(226);
      const parts = bridge.proxy!.requests.slice(since).filter((r) => r.operation === 'UploadPart' && r.key === 'md5only.bin');
      expect(parts.map((p) => p.headers['x-amz-checksum-sha256'])).toEqual(
        [body.subarray(0, 5 * MiB), body.subarray(5 * MiB)].map((b) => Buffer.from(sha256(b), 'hex').toString('base64')),
      );
      expect(await bridge.objectHash('md5only.bin')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('CRC64NVME multipart: a full-object checksum, sent with the commit and kept by S3', async () => {
    const bridge = await bridgeWith('CRC64NVME');
    const body = randomBytes(11 * MiB);
    const ftp = await login(bridge);
    try {
      const since = bridge.proxy!.requests.length;
      expect((await stor(ftp, 'nvme.bin', body)).code).toBe(226);
      const mine = bridge.proxy!.requests.slice(since).filter((r) => r.key === 'nvme.bin');
      expect(mine.filter((r) => r.operation === 'UploadPart').every((r) => typeof r.headers['x-amz-checksum-crc64nvme'] === 'string')).toBe(true);
      const complete = mine.find((r) => r.operation === 'CompleteMultipartUpload');
      expect(complete?.headers['x-amz-checksum-type']).toBe('FULL_OBJECT');
      const crc = new Crc64NvmeJs();
      crc.update(body);
      expect(complete?.headers['x-amz-checksum-crc64nvme']).toBe(Buffer.from(await crc.digest()).toString('base64'));
      // (moto without awscrt stores a CRC32 in place of a CRC64NVME it computes itself: its HEAD is not checked here.)
      expect(await bridge.objectHash('nvme.bin')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('CRC32: XCRC answers from the stored checksum without reading the object', async () => {
    const bridge = await bridgeWith('CRC32');
    const body = randomBytes(2 * MiB);
    const ftp = await login(bridge);
    try {
      expect((await stor(ftp, 'crc.bin', body)).code).toBe(226);
      const { crc32 } = await import('node:zlib');
      const reads = bridge.proxy!.requests.length;
      expect((await ftp.command('XCRC crc.bin')).text).toBe(`250 ${crc32(body).toString(16).padStart(8, '0')}`);
      expect(bridge.proxy!.requests.slice(reads).filter((r) => r.operation === 'GetObject')).toHaveLength(0);
    } finally {
      ftp.close();
    }
  });

  it('CRC32 multipart: a full-object checksum combined from the parts, sent with the commit; XCRC answers from it without reading', async () => {
    const bridge = await bridgeWith('CRC32');
    const body = randomBytes(11 * MiB);
    const { crc32 } = await import('node:zlib');
    const ftp = await login(bridge);
    try {
      const since = bridge.proxy!.requests.length;
      expect((await stor(ftp, 'crc-multi.bin', body)).code).toBe(226);
      const mine = bridge.proxy!.requests.slice(since).filter((r) => r.key === 'crc-multi.bin');
      expect(mine.filter((r) => r.operation === 'UploadPart')).toHaveLength(3);
      const complete = mine.find((r) => r.operation === 'CompleteMultipartUpload');
      expect(complete?.headers['x-amz-checksum-type']).toBe('FULL_OBJECT');
      const whole = Buffer.alloc(4);
      whole.writeUInt32BE(crc32(body));
      expect(complete?.headers['x-amz-checksum-crc32']).toBe(whole.toString('base64'));
      // moto computes the full-object CRC32 of what it assembled and keeps it as FULL_OBJECT.
      expect(await headChecksum(bridge, 'crc-multi.bin')).toMatchObject({ ChecksumCRC32: whole.toString('base64'), ChecksumType: 'FULL_OBJECT' });
      expect(auditOf('crc-multi.bin')?.checksum).toBe(`CRC32:${whole.toString('base64')}`);
      const reads = bridge.proxy!.requests.length;
      expect((await ftp.command('XCRC crc-multi.bin')).text).toBe(`250 ${crc32(body).toString(16).padStart(8, '0')}`);
      expect(bridge.proxy!.requests.slice(reads).filter((r) => r.operation === 'GetObject')).toHaveLength(0);
    } finally {
      ftp.close();
    }
  });

  it('APPE onto an object of 5 MiB or more: the copy parts are S3\'s, the appended bytes carry their checksum; a changed byte is 451 and the object stays', async () => {
    const bridge = await bridgeWith('SHA256');
    const old = randomBytes(6 * MiB);
    await bridge.put('grow.bin', old);
    const more = randomBytes(300 * 1024);
    const appe = async (body: Buffer): Promise<FtpReply> => {
      const ftp = await login(bridge);
      try {
        const data = await ftp.pasv();
        ftp.send('APPE grow.bin');
        expect((await ftp.reply()).code).toBe(150);
        await new Promise<void>((resolve) => data.end(body, () => resolve()));
        return await ftp.reply(60_000);
      } finally {
        ftp.close();
      }
    };
    const since = bridge.proxy!.requests.length;
    expect((await appe(more)).code).toBe(226);
    expect(await bridge.objectHash('grow.bin')).toBe(sha256(Buffer.concat([old, more])));
    const mine = bridge.proxy!.requests.slice(since).filter((r) => r.key === 'grow.bin');
    expect(mine.find((r) => r.operation === 'CreateMultipartUpload')?.headers['x-amz-checksum-algorithm']).toBe('SHA256');
    expect(mine.filter((r) => r.operation === 'UploadPartCopy')).toHaveLength(1);
    const parts = mine.filter((r) => r.operation === 'UploadPart');
    expect(parts.map((r) => r.headers['x-amz-checksum-sha256'])).toEqual([createHash('sha256').update(more).digest('base64')]);

    const rule = bridge.proxy!.addRule({ operation: 'UploadPart', key: 'grow.bin', times: 1, action: { kind: 'corrupt-body' } });
    const reply = await appe(randomBytes(300 * 1024));
    expect(rule.fired).toBe(1);
    expect(reply.code).toBe(451);
    expect(reply.text).toMatch(/checksum mismatch/);
    expect(await bridge.objectHash('grow.bin')).toBe(sha256(Buffer.concat([old, more])));
  });

  for (const [name, op, size] of [
    ['one byte of one part changed in flight', 'UploadPart', 12 * MiB],
    ['one byte of a single PutObject changed in flight', 'PutObject', 200 * 1024],
  ] as const) {
    it(`${name}: S3 refuses it, 451, nothing committed`, async () => {
      const bridge = await bridgeWith('SHA256');
      const key = `corrupt-${op}.bin`;
      const rule = bridge.proxy!.addRule({ operation: op, key, skip: op === 'UploadPart' ? 1 : 0, times: 1, action: { kind: 'corrupt-body' } });
      const ftp = await login(bridge);
      try {
        const reply = await stor(ftp, key, randomBytes(size));
        expect(rule.fired).toBe(1);
        expect(reply.code).toBe(451);
        expect(reply.text).toMatch(/checksum mismatch/);
        expect(await bridge.exists(key)).toBe(false);
        if (op === 'UploadPart') expect(await bridge.pendingUploads()).toEqual([]);
      } finally {
        ftp.close();
      }
    });
  }
});
