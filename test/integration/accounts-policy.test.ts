import { randomBytes } from 'node:crypto';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, TestBridge } from '../support/bridge.js';
import { curl, python } from '../support/clients.js';

const MiB = 1024 * 1024;

/*
 * Tags: neither test backend keeps them. s3rver accepts x-amz-tagging and drops it (GetObjectTagging
 * answers an empty set); Swift's s3api answers NotImplemented ("Object tagging is not supported").
 * Neither implements SSE. So the tests prove what the bridge sends (the recording proxy sees the
 * headers on the request that creates the object) and, on Swift, that a refused tagging commits nothing; metadata is read
 * back with HeadObject on both.
 */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({
    proxy: true,
    accounts: [
      {
        username: 'partner',
        password: 'partner-pw',
        prefix: 'acme/',
        policy: { storageClass: 'STANDARD', metadata: { department: 'finance', 'partner-id': 'acme-42' } },
      },
      {
        username: 'tagged',
        password: 'tagged-pw',
        prefix: 'tagged/',
        policy: { tags: { partner: 'acme', retention: '7 years' }, serverSideEncryption: 'AES256', storageClass: 'STANDARD' },
      },
      { username: 'plain', password: 'plain-pw', prefix: 'plain/' },
    ],
  });
});
afterAll(async () => {
  await bridge?.close();
});

const head = (key: string) => bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: key }));

describe('per-account S3 policy', () => {
  it('stores the account metadata and the uploader metadata with a single-request and a multipart upload', async () => {
    const small = Buffer.from('invoice 1\n');
    const large = randomBytes(6 * MiB); // above partSizeMiB (5): a multipart upload
    expect((await curl(['-T', '-', bridge.url('/small.txt', 'partner', 'partner-pw')], small)).code).toBe(0);
    expect((await curl(['-T', '-', bridge.url('/large.bin', 'partner', 'partner-pw')], large)).code).toBe(0);
    expect(await bridge.objectHash('acme/small.txt')).toBe(sha256(small));
    expect(await bridge.objectHash('acme/large.bin')).toBe(sha256(large));
    for (const key of ['acme/small.txt', 'acme/large.bin']) {
      const h = await head(key);
      expect(h.Metadata).toMatchObject({ department: 'finance', 'partner-id': 'acme-42', 'ftp-user': 'partner', 'ftp-client-ip': '127.0.0.1' });
    }
  });

  it('sends the account tags, encryption and storage class with the request that creates the object (never after the commit)', async () => {
    const small = Buffer.from('tagged\n');
    const large = randomBytes(6 * MiB);
    const r1 = await curl(['-T', '-', bridge.url('/small.txt', 'tagged', 'tagged-pw')], small);
    const r2 = await curl(['-T', '-', bridge.url('/large.bin', 'tagged', 'tagged-pw')], large);
    const creating = bridge.proxy!.requests.filter((r) => r.key.startsWith('tagged/') && (r.operation === 'PutObject' || r.operation === 'CreateMultipartUpload'));
    expect(creating.map((r) => r.operation).sort()).toEqual(['CreateMultipartUpload', 'PutObject']);
    for (const r of creating) {
      expect(r.headers['x-amz-tagging']).toBe('partner=acme&retention=7+years');
      expect(r.headers['x-amz-server-side-encryption']).toBe('AES256');
      expect(r.headers['x-amz-storage-class']).toBe('STANDARD');
    }
    expect(bridge.proxy!.requests.filter((r) => r.path.includes('tagging'))).toEqual([]);
    if (bridge.backend.backend === 'swift') {
      // Swift refuses tagging: the uploads fail and nothing is committed.
      expect(r1.code).not.toBe(0);
      expect(r2.code).not.toBe(0);
      expect(await bridge.keys('tagged/')).toEqual([]);
    } else {
      expect(r1.code, r1.stderr).toBe(0);
      expect(r2.code, r2.stderr).toBe(0);
      expect(await bridge.objectHash('tagged/large.bin')).toBe(sha256(large));
    }
  });

  it('records who sent every object, for accounts without a policy too', async () => {
    const py = await python(
      String.raw`
import ftplib, sys, io
f = ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1]), timeout=30); f.login('plain', 'plain-pw')
print(f.storbinary('STOR note.txt', io.BytesIO(b'hello')))
`,
      [String(bridge.port)],
    );
    expect(py.stdout.toString()).toMatch(/^226/);
    const h = await head('plain/note.txt');
    expect(h.Metadata).toEqual(expect.objectContaining({ 'ftp-user': 'plain', 'ftp-client-ip': '127.0.0.1', 'uploader-protocol': 'ftp' }));
    expect(h.Metadata?.department).toBeUndefined();
  });

  it('keeps the metadata when a file is renamed', async () => {
    const py = await python(
      String.raw`
import ftplib, sys
f = ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1]), timeout=30); f.login('partner', 'partner-pw')
print(f.rename('small.txt', 'renamed.txt'))
`,
      [String(bridge.port)],
    );
    expect(py.stdout.toString(), py.stderr.toString()).toMatch(/^250/);
    const h = await head('acme/renamed.txt');
    expect(h.Metadata).toMatchObject({ department: 'finance', 'ftp-user': 'partner' });
  });
});

describe('s3.uploaderMetadata: false', () => {
  it('stores no uploader metadata', async () => {
    const b = await TestBridge.start({ s3: { uploaderMetadata: false } });
    try {
      expect((await curl(['-T', '-', b.url('/x.txt')], 'x')).code).toBe(0);
      const h = await b.s3.send(new HeadObjectCommand({ Bucket: b.bucket, Key: 'x.txt' }));
      expect(h.Metadata?.['ftp-user']).toBeUndefined();
      expect(h.Metadata?.['ftp-client-ip']).toBeUndefined();
    } finally {
      await b.close();
    }
  });
});
