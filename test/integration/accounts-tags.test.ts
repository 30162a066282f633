import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectTaggingCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, TestBridge } from '../support/bridge.js';
import { curl, python } from '../support/clients.js';

const MiB = 1024 * 1024;

/*
 * An account's tags, encryption, storage class and metadata, read back from the store. Only moto
 * (S3_TEST_BACKEND=moto, see infra/fetch-moto.sh) keeps tags and SSE: on it they are read back with
 * GetObjectTagging and HeadObject, after a single-request upload, a multipart upload, and a rename
 * that copies part by part (UploadPartCopy, above s3.multipartCopyThresholdMiB), which must carry
 * the tags over itself. s3rver accepts the tags and drops them; Swift's s3api refuses tagging, so
 * there nothing is committed (see accounts-policy.test.ts).
 */
const TAGS = [
  { Key: 'partner', Value: 'acme' },
  { Key: 'retention', Value: '7 years' },
];
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({
    proxy: true,
    s3: { multipartCopyThresholdMiB: 5 },
    accounts: [
      {
        username: 'tagged',
        password: 'tagged-pw',
        prefix: 'acme/',
        policy: {
          tags: { partner: 'acme', retention: '7 years' },
          metadata: { department: 'finance' },
          storageClass: 'STANDARD_IA',
          serverSideEncryption: 'AES256',
        },
      },
    ],
  });
});
afterAll(async () => {
  await bridge?.close();
});

const head = (key: string) => bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: key }));
const tags = async (key: string) =>
  ((await bridge.s3.send(new GetObjectTaggingCommand({ Bucket: bridge.bucket, Key: key }))).TagSet ?? [])
    .map((t) => ({ Key: t.Key, Value: t.Value }))
    .sort((a, b) => (a.Key ?? '').localeCompare(b.Key ?? ''));

/** Runs ftplib commands as `tagged`; prints the final reply, or the error reply. */
const ftp = (body: string, ...args: string[]) =>
  python(
    String.raw`
import ftplib, sys
f = ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1]), timeout=60); f.login('tagged', 'tagged-pw')
try:
    ${body}
except ftplib.all_errors as e:
    print(e)
`,
    [String(bridge.port), ...args],
  );

async function expectPolicy(key: string): Promise<void> {
  expect(await tags(key)).toEqual(TAGS);
  const h = await head(key);
  expect(h.ServerSideEncryption).toBe('AES256');
  expect(h.StorageClass).toBe('STANDARD_IA');
  expect(h.Metadata).toMatchObject({ department: 'finance', 'ftp-user': 'tagged', 'ftp-client-ip': '127.0.0.1' });
}

describe('account tags and encryption as the store keeps them', () => {
  it('uploads (single request and multipart) and a multipart-copy rename carry the tags, SSE, class and metadata', async () => {
    const small = Buffer.from('tagged invoice\n');
    const large = randomBytes(6 * MiB + 4321); // above partSizeMiB (5): a multipart upload
    const dir = mkdtempSync(join(tmpdir(), 'tags-'));
    writeFileSync(join(dir, 'large.bin'), large);
    const r1 = await curl(['-T', '-', bridge.url('/small.txt', 'tagged', 'tagged-pw')], small);
    const r2 = await ftp(`print(f.storbinary('STOR large.bin', open(sys.argv[2], 'rb')))`, join(dir, 'large.bin'));
    rmSync(dir, { recursive: true, force: true });
    if (bridge.backend.backend === 'swift') {
      // Swift's s3api refuses tagging: both uploads fail, nothing is committed.
      expect(r1.code).not.toBe(0);
      expect(r2.stdout.toString()).toMatch(/^[45]\d\d/);
      expect(await bridge.keys('acme/')).toEqual([]);
      return;
    }
    expect(r1.code, r1.stderr.toString()).toBe(0);
    expect(r2.stdout.toString(), r2.stderr.toString()).toMatch(/^226/);
    expect(await bridge.objectHash('acme/small.txt')).toBe(sha256(small));
    expect(await bridge.objectHash('acme/large.bin')).toBe(sha256(large));
    if (!bridge.backend.capabilities.uploadPartCopy) {
      // s3rver keeps neither tags nor SSE (and cannot copy parts); the metadata it keeps.
      expect(await tags('acme/small.txt')).toEqual([]);
      expect((await head('acme/large.bin')).Metadata).toMatchObject({ department: 'finance', 'ftp-user': 'tagged' });
      return;
    }
    await expectPolicy('acme/small.txt');
    await expectPolicy('acme/large.bin');
    const before = await head('acme/large.bin');

    const renamed = await ftp(`print(f.rename('large.bin', 'moved.bin'))`);
    expect(renamed.stdout.toString(), renamed.stderr.toString()).toMatch(/^250/);
    expect(await bridge.objectHash('acme/moved.bin')).toBe(sha256(large));
    expect(await bridge.exists('acme/large.bin')).toBe(false);
    // Copied part by part: tags, metadata and content type came from the source, not by themselves.
    expect(bridge.proxy!.requestsOf('UploadPartCopy').filter((r) => r.key === 'acme/moved.bin')).toHaveLength(2);
    const create = bridge.proxy!.requestsOf('CreateMultipartUpload').filter((r) => r.key === 'acme/moved.bin');
    expect(create.map((r) => r.headers['x-amz-tagging'])).toEqual(['partner=acme&retention=7+years']);
    await expectPolicy('acme/moved.bin');
    const after = await head('acme/moved.bin');
    expect(after.Metadata).toMatchObject(before.Metadata ?? {});
    expect(after.ContentType).toBe(before.ContentType);
  }, 120_000);
});
