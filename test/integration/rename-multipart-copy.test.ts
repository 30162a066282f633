import { randomBytes } from 'node:crypto';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, TestBridge } from '../support/bridge.js';
import { curl, python } from '../support/clients.js';

const MiB = 1024 * 1024;

/*
 * A rename copies the object. Above `s3.multipartCopyThresholdMiB` (5 GiB by default, 5 MiB here so
 * a test object is enough) it is copied part by part with UploadPartCopy, which, unlike CopyObject,
 * carries nothing over by itself: the bridge gives the new upload the source's metadata (uploader,
 * digests, account metadata), content headers and tags, and the account's class and encryption.
 * Stores without UploadPartCopy (s3rver) refuse such a rename and keep the source.
 */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({
    proxy: true,
    // 16 MiB parts: the 7 MiB upload is one PutObject, whose digests are stored as metadata at once.
    s3: { multipartCopyThresholdMiB: 5, partSizeMiB: 16 },
    accounts: [
      {
        username: 'partner',
        password: 'partner-pw',
        prefix: 'acme/',
        policy: { storageClass: 'STANDARD', metadata: { department: 'finance', 'partner-id': 'acme-42' } },
      },
    ],
  });
});
afterAll(async () => {
  await bridge?.close();
});

const head = (key: string) => bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: key }));

const rename = (from: string, to: string) =>
  python(
    String.raw`
import ftplib, sys
f = ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1]), timeout=60); f.login('partner', 'partner-pw')
try:
    print(f.rename(sys.argv[2], sys.argv[3]))
except ftplib.all_errors as e:
    print(e)
`,
    [String(bridge.port), from, to],
  );

describe('rename of an object above the multipart-copy threshold', () => {
  it('keeps the metadata (uploader, digests, account metadata) and content type of the source', async () => {
    const data = randomBytes(7 * MiB + 12345);
    const up = await curl(['-T', '-', bridge.url('/big.bin', 'partner', 'partner-pw')], data);
    expect(up.code, up.stderr.toString()).toBe(0);
    const before = await head('acme/big.bin');
    expect(before.Metadata).toMatchObject({
      'ftp-user': 'partner',
      'ftp-client-ip': '127.0.0.1',
      department: 'finance',
      'partner-id': 'acme-42',
      sha256: sha256(data),
      md5: expect.stringMatching(/^[0-9a-f]{32}$/) as unknown as string,
    });

    const res = await rename('big.bin', 'renamed.bin');
    if (bridge.backend.capabilities.uploadPartCopy) {
      expect(res.stdout.toString(), res.stderr.toString()).toMatch(/^250/);
      const after = await head('acme/renamed.bin');
      expect(after.Metadata).toEqual(before.Metadata);
      expect(after.ContentType).toBe(before.ContentType);
      expect(after.ContentLength).toBe(data.length);
      expect(await bridge.objectHash('acme/renamed.bin')).toBe(sha256(data));
      expect(await bridge.exists('acme/big.bin')).toBe(false);
      // The copy went part by part (5 MiB + the rest), into an upload created with the metadata.
      const proxy = bridge.proxy!;
      expect(proxy.requestsOf('CopyObject').filter((r) => r.key === 'acme/renamed.bin')).toEqual([]);
      expect(proxy.requestsOf('UploadPartCopy').filter((r) => r.key === 'acme/renamed.bin')).toHaveLength(2);
      const create = proxy.requestsOf('CreateMultipartUpload').filter((r) => r.key === 'acme/renamed.bin');
      expect(create).toHaveLength(1);
      expect(create[0]?.headers['x-amz-meta-sha256']).toBe(sha256(data));
      expect(create[0]?.headers['x-amz-storage-class']).toBe('STANDARD');
      expect(await bridge.pendingUploads()).toEqual([]);
    } else {
      // No UploadPartCopy: the rename is refused, and the source stays as it was.
      expect(res.stdout.toString()).toMatch(/^[45]\d\d/);
      expect(await bridge.objectHash('acme/big.bin')).toBe(sha256(data));
      expect(await bridge.exists('acme/renamed.bin')).toBe(false);
      expect((await head('acme/big.bin')).Metadata).toEqual(before.Metadata);
    }
  }, 120_000);

  it('copies an object at or under the threshold with one CopyObject, metadata included', async () => {
    const data = randomBytes(5 * MiB);
    const up = await curl(['-T', '-', bridge.url('/five.bin', 'partner', 'partner-pw')], data);
    expect(up.code, up.stderr.toString()).toBe(0);
    const before = await head('acme/five.bin');
    const res = await rename('five.bin', 'five-renamed.bin');
    expect(res.stdout.toString(), res.stderr.toString()).toMatch(/^250/);
    expect((await head('acme/five-renamed.bin')).Metadata).toEqual(before.Metadata);
    expect(await bridge.objectHash('acme/five-renamed.bin')).toBe(sha256(data));
    expect(bridge.proxy!.requestsOf('CopyObject').filter((r) => r.key === 'acme/five-renamed.bin')).toHaveLength(1);
    expect(bridge.proxy!.requestsOf('UploadPartCopy').filter((r) => r.key === 'acme/five-renamed.bin')).toEqual([]);
  }, 120_000);
});
