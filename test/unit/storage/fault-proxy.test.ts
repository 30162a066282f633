import { describe, expect, it } from 'vitest';
import { ActiveRule, classifyRequest } from '../../support/fault-proxy.js';

describe('fault proxy request classification', () => {
  const op = (method: string, url: string, headers: Record<string, string> = {}) => classifyRequest(method, url, headers).operation;
  it('derives the S3 operation from method, path, query and headers', () => {
    expect(op('GET', '/b/k')).toBe('GetObject');
    expect(op('HEAD', '/b/k')).toBe('HeadObject');
    expect(op('PUT', '/b/k')).toBe('PutObject');
    expect(op('PUT', '/b/k', { 'x-amz-copy-source': 'b/x' })).toBe('CopyObject');
    expect(op('POST', '/b/k?uploads')).toBe('CreateMultipartUpload');
    expect(op('PUT', '/b/k?partNumber=2&uploadId=u')).toBe('UploadPart');
    expect(op('PUT', '/b/k?partNumber=2&uploadId=u', { 'x-amz-copy-source': 'b/x' })).toBe('UploadPartCopy');
    expect(op('POST', '/b/k?uploadId=u')).toBe('CompleteMultipartUpload');
    expect(op('DELETE', '/b/k?uploadId=u')).toBe('AbortMultipartUpload');
    expect(op('DELETE', '/b/k')).toBe('DeleteObject');
    expect(op('GET', '/b?list-type=2&prefix=a')).toBe('ListObjectsV2');
    expect(op('GET', '/b?uploads')).toBe('ListMultipartUploads');
    expect(op('PUT', '/b')).toBe('CreateBucket');
    expect(classifyRequest('GET', '/b/dir/a%20b.txt', {}).key).toBe('dir/a b.txt');
  });

  it('fires every nth match, after skip, at most times', () => {
    const rule = new ActiveRule({ operation: 'UploadPart', every: 3, skip: 1, times: 2, action: { kind: 'reset' } });
    const part = classifyRequest('PUT', '/b/k?partNumber=1&uploadId=u', {});
    const other = classifyRequest('GET', '/b/k', {});
    const fired = Array.from({ length: 12 }, () => rule.decide(part, Math.random));
    expect(rule.decide(other, Math.random)).toBe(false);
    expect(fired.map((f, i) => (f ? i + 1 : 0)).filter(Boolean)).toEqual([4, 7]);
    expect(rule.matched).toBe(12);
    expect(rule.fired).toBe(2);
  });
});
