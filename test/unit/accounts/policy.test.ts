import { describe, expect, it } from 'vitest';
import { objectParamsFor } from '../../../src/accounts/s3-policy.js';
import type { AccountConfig } from '../../../src/config/schema.js';
import { TokenBucket } from '../../../src/sessions/bandwidth.js';

const base: AccountConfig = { username: 'ü-user', passwordHash: '', bucket: 'bucket-1', prefix: 'p/', permissions: ['write'] };

describe('objectParamsFor', () => {
  it('merges account metadata with the uploader metadata and encodes the tags', () => {
    const params = objectParamsFor(
      { ...base, metadata: { team: 'a' }, tags: { partner: 'acme corp', 'a&b': '1=2' }, storageClass: 'STANDARD_IA', serverSideEncryption: 'aws:kms', sseKmsKeyId: 'key-1' },
      { clientIp: '10.0.0.1' },
      true,
    );
    expect(params).toEqual({
      Metadata: { team: 'a', 'ftp-user': '%C3%BC-user', 'ftp-client-ip': '10.0.0.1', 'uploader-protocol': 'ftp' },
      Tagging: 'partner=acme+corp&a%26b=1%3D2',
      StorageClass: 'STANDARD_IA',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'key-1',
    });
    expect(objectParamsFor(base, { clientIp: '10.0.0.1', protocol: 'sftp' }, true).Metadata?.['uploader-protocol']).toBe('sftp');
    expect(objectParamsFor(base, { clientIp: '10.0.0.1' }, false)).toEqual({});
  });
});

describe('TokenBucket', () => {
  it('starts empty and asks for waits that add up to the rate', () => {
    const bucket = new TokenBucket(1024 * 1024);
    let wait = 0;
    for (let i = 0; i < 64; i++) wait = bucket.take(16 * 1024);
    // 1 MiB taken at once from an empty bucket at 1 MiB/s: the last piece may go after about 1 s.
    expect(wait).toBeGreaterThan(950);
    expect(wait).toBeLessThanOrEqual(1000);
  });
});
