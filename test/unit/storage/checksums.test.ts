import { describe, expect, it } from 'vitest';
import { checksumInForce } from '../../../src/storage/checksum-probe.js';
import { checksumOf, createChecksum } from '../../../src/storage/checksums.js';

const hexOf = async (algorithm: Parameters<typeof createChecksum>[0], data: string, split = 4) => {
  const h = createChecksum(algorithm);
  for (let i = 0; i < data.length; i += split) h.update(Buffer.from(data.slice(i, i + split)));
  return Buffer.from(await h.digest(), 'base64').toString('hex');
};

describe('checksums', () => {
  it('computes the standard check values of "123456789", fed in pieces', async () => {
    expect(await hexOf('CRC32', '123456789')).toBe('cbf43926');
    expect(await hexOf('CRC32C', '123456789')).toBe('e3069283');
    expect(await hexOf('CRC64NVME', '123456789')).toBe('ae8b14860a799888');
    expect(await hexOf('SHA256', 'abc', 1)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('defaults to SHA256 on AWS; with a custom endpoint to what the probe finds; a rejected algorithm becomes none', () => {
    const custom = 'http://127.0.0.1:9000';
    const probe = (support: 'verified' | 'kept' | 'accepted' | 'rejected', algorithm: 'SHA256' | 'CRC32C' = 'SHA256') => ({ probe: { algorithm, support } });
    expect(checksumInForce(undefined, undefined, undefined).algorithm).toBe('SHA256');
    expect(checksumInForce('CRC32', undefined, undefined).algorithm).toBe('CRC32');
    expect(checksumInForce('none', custom, undefined).algorithm).toBeUndefined();
    // The default with a custom endpoint: SHA256 only where the store refuses mismatching bytes.
    expect(checksumInForce(undefined, custom, probe('verified')).algorithm).toBe('SHA256');
    expect(checksumInForce(undefined, custom, probe('kept')).algorithm).toBeUndefined();
    expect(checksumInForce(undefined, custom, probe('accepted')).algorithm).toBeUndefined();
    expect(checksumInForce(undefined, custom, undefined).algorithm).toBeUndefined();
    expect(checksumInForce(undefined, custom, { probe: { algorithm: 'SHA256', support: 'rejected', error: 'MalformedXML on a multipart upload' } })).toMatchObject({ algorithm: undefined, warn: false });
    // A configured algorithm stays unless the store rejects it, and stays when the probe cannot answer.
    expect(checksumInForce('CRC32C', custom, probe('accepted', 'CRC32C')).algorithm).toBe('CRC32C');
    const rejected = checksumInForce('CRC32C', custom, { probe: { algorithm: 'CRC32C', support: 'rejected', error: 'MalformedXML on a multipart upload' } });
    expect(rejected).toMatchObject({ algorithm: undefined, warn: true });
    expect(rejected.message).toContain('rejects x-amz-checksum-crc32c (MalformedXML on a multipart upload)');
    expect(checksumInForce('CRC32C', custom, { failed: 'TimeoutError' })).toMatchObject({ algorithm: 'CRC32C', warn: true });
    expect(checksumInForce(undefined, custom, { failed: 'TimeoutError' })).toMatchObject({ algorithm: undefined, warn: true });
    expect(checksumInForce(undefined, custom, { retains: true }).algorithm).toBe('SHA256');
  });

  it('reads the checksum of a HeadObject answer; a "-<parts>" value is composite whatever the type says', () => {
    expect(checksumOf({ ChecksumSHA256: 'abc=', ChecksumType: 'FULL_OBJECT' })).toEqual({ algorithm: 'SHA256', value: 'abc=', type: 'FULL_OBJECT' });
    expect(checksumOf({ ChecksumCRC32: 'abc=-3' })).toEqual({ algorithm: 'CRC32', value: 'abc=-3', type: 'COMPOSITE' });
    expect(checksumOf({ ChecksumCRC64NVME: 'abc=' })?.type).toBe('FULL_OBJECT');
    expect(checksumOf({})).toBeUndefined();
    // No ChecksumType (older stores): a multipart object's checksum is taken as composite.
    expect(checksumOf({ ChecksumSHA256: 'abc=', ETag: '"0123-3"' })?.type).toBe('COMPOSITE');
    expect(checksumOf({ ChecksumCRC64NVME: 'abc=', ChecksumType: 'FULL_OBJECT', ETag: '"0123-3"' })?.type).toBe('FULL_OBJECT');
  });
});

describe('combineCrc64Nvme', () => {
  it('the CRC64NVME of parts joined equals the CRC64NVME of the whole, whatever the part lengths', async () => {
    const { randomBytes } = await import('node:crypto');
    const { fullObjectCrc64Nvme } = await import('../../../src/storage/checksums.js');
    const of = async (b: Buffer) => {
      const h = createChecksum('CRC64NVME');
      h.update(b);
      return h.digest();
    };
    for (const lengths of [[1, 1], [5, 3, 0, 7], [1000, 65536, 33], [3 * 1024 * 1024 + 5, 17]]) {
      const parts = lengths.map((n) => randomBytes(n));
      const combined = fullObjectCrc64Nvme(await Promise.all(parts.map(async (p) => ({ value: await of(p), length: p.length }))));
      expect(combined).toBe(await of(Buffer.concat(parts)));
    }
  });
});

describe('fullObjectCrc', () => {
  it('for CRC32 and CRC32C too: the CRC of parts joined equals the CRC of the whole', async () => {
    const { randomBytes } = await import('node:crypto');
    const { fullObjectCrc } = await import('../../../src/storage/checksums.js');
    for (const algorithm of ['CRC32', 'CRC32C'] as const) {
      const of = async (b: Buffer) => {
        const h = createChecksum(algorithm);
        h.update(b);
        return h.digest();
      };
      for (const lengths of [[1, 1], [5, 3, 0, 7], [1000, 65536, 33], [3 * 1024 * 1024 + 5, 17]]) {
        const parts = lengths.map((n) => randomBytes(n));
        const combined = fullObjectCrc(algorithm, await Promise.all(parts.map(async (p) => ({ value: await of(p), length: p.length }))));
        expect(combined).toBe(await of(Buffer.concat(parts)));
      }
    }
  });
});
