import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DigestCache, StreamDigests, digestMetadata, digestsFromMetadata, parseDigestAlgorithm } from '../../../src/storage/digests.js';

describe('StreamDigests', () => {
  it('SHA-256 and MD5 of chunks equal those of the whole', () => {
    const d = new StreamDigests();
    const whole = Buffer.from('hello, world: '.repeat(1000));
    for (let i = 0; i < whole.length; i += 777) d.update(whole.subarray(i, i + 777));
    expect(d.digest()).toEqual({
      'SHA-256': createHash('sha256').update(whole).digest('hex'),
      MD5: createHash('md5').update(whole).digest('hex'),
    });
  });
});

describe('digest metadata', () => {
  it('round-trips through x-amz-meta keys and ignores anything that is not hex', () => {
    const meta = digestMetadata({ 'SHA-256': 'ab12', MD5: 'cd34' });
    expect(meta).toEqual({ sha256: 'ab12', md5: 'cd34' });
    expect(digestsFromMetadata(meta)).toEqual({ 'SHA-256': 'ab12', MD5: 'cd34' });
    expect(digestsFromMetadata({ sha256: 'not hex!', 'ftp-user': 'x' })).toEqual({});
    expect(digestsFromMetadata(undefined)).toEqual({});
  });

  it('parses algorithm names as HASH and OPTS HASH send them', () => {
    expect(parseDigestAlgorithm('sha-256')).toBe('SHA-256');
    expect(parseDigestAlgorithm('SHA256')).toBe('SHA-256');
    expect(parseDigestAlgorithm(' md5 ')).toBe('MD5');
    expect(parseDigestAlgorithm('SHA-512')).toBe('SHA-512');
    expect(parseDigestAlgorithm('CRC32')).toBeUndefined();
  });
});

describe('DigestCache', () => {
  it('answers only for the same bucket, key and ETag, and drops the oldest entries beyond its size', () => {
    const cache = new DigestCache(2);
    cache.set('b', 'k1', '"e1"', { MD5: '01' });
    cache.set('b', 'k2', '"e2"', { MD5: '02' });
    expect(cache.get('b', 'k1', '"e1"')).toEqual({ MD5: '01' });
    expect(cache.get('b', 'k1', '"other"')).toBeUndefined();
    expect(cache.get('c', 'k1', '"e1"')).toBeUndefined();
    cache.set('b', 'k3', '"e3"', { MD5: '03' });
    expect(cache.get('b', 'k1', '"e1"')).toBeUndefined();
    expect(cache.get('b', 'k3', '"e3"')).toEqual({ MD5: '03' });
    cache.set('b', 'k4', undefined, { MD5: '04' });
    expect(cache.get('b', 'k4', undefined)).toBeUndefined();
  });
});
