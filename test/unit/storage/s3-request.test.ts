import { HeadObjectCommand, ListObjectsV2Command, NotFound, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/storage/errors.js';
import { S3Bucket, encodeCopySource, isNotImplemented, s3Request } from '../../../src/storage/s3-request.js';

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message: `${name} text` });
}

/** A client whose every send answers with `answer(command)`. */
function fakeClient(answer: (command: unknown) => Promise<unknown>): S3Client {
  return { send: (command: unknown) => answer(command) } as unknown as S3Client;
}

describe('encodeCopySource', () => {
  it('URL-encodes the key but keeps its slashes', () => {
    expect(encodeCopySource('bucket', 'a/b/c.txt')).toBe('bucket/a/b/c.txt');
    expect(encodeCopySource('bucket', 'dir one/ä+b?c#d%e&f=g.txt')).toBe('bucket/dir%20one/%C3%A4%2Bb%3Fc%23d%25e%26f%3Dg.txt');
  });

  it('decodes back to the very key (as S3 decodes the header once)', () => {
    const key = "user/we ird/~!*'()[]@$,;:\u00e9\u4e2d.bin";
    const encoded = encodeCopySource('b', key);
    expect(encoded.startsWith('b/')).toBe(true);
    expect(decodeURIComponent(encoded.slice(2))).toBe(key);
    expect(encoded).not.toMatch(/[ \u00e9\u4e2d]/);
  });
});

describe('isNotImplemented', () => {
  it('recognises NotImplemented by name, by code and by a 501 status', () => {
    expect(isNotImplemented(s3Error('NotImplemented', 501))).toBe(true);
    expect(isNotImplemented(s3Error('UnknownError', 501))).toBe(true);
    expect(isNotImplemented(Object.assign(new Error('x'), { name: 'Error', Code: 'NotImplemented' }))).toBe(true);
  });

  it('is false for every other failure', () => {
    expect(isNotImplemented(s3Error('AccessDenied', 403))).toBe(false);
    expect(isNotImplemented(s3Error('InternalError', 500))).toBe(false);
    expect(isNotImplemented(new Error('ECONNRESET'))).toBe(false);
    expect(isNotImplemented(undefined)).toBe(false);
  });
});

describe('s3Request', () => {
  it('passes a result through', async () => {
    await expect(s3Request(Promise.resolve(42))).resolves.toBe(42);
  });

  it('classifies a failure into a StorageError that keeps the original as its cause', async () => {
    const original = s3Error('SlowDown', 503);
    const err = await s3Request(Promise.reject(original)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', cause: original });
    expect((err as Error).message).not.toContain('SlowDown text');
  });
});

describe('S3Bucket', () => {
  it('head: the headers of an object, undefined for a missing one, a classified error otherwise', async () => {
    const sent: unknown[] = [];
    const s3 = new S3Bucket(
      fakeClient(async (command) => {
        sent.push(command);
        const key = (command as HeadObjectCommand).input.Key;
        if (key === 'there') return { ContentLength: 3, ETag: '"e"' };
        if (key === 'missing') throw new NotFound({ message: 'x', $metadata: { httpStatusCode: 404 } });
        throw s3Error('AccessDenied', 403);
      }),
      'bkt',
    );
    await expect(s3.head('there')).resolves.toMatchObject({ ContentLength: 3, ETag: '"e"' });
    await expect(s3.head('missing')).resolves.toBeUndefined();
    await expect(s3.head('forbidden')).rejects.toMatchObject({ code: 'DENIED' });
    expect(sent.every((c) => c instanceof HeadObjectCommand && c.input.Bucket === 'bkt')).toBe(true);
  });

  it('firstUnder: one ListObjectsV2 of at most one key under the prefix', async () => {
    const sent: ListObjectsV2Command[] = [];
    const s3 = new S3Bucket(
      fakeClient(async (command) => {
        sent.push(command as ListObjectsV2Command);
        return (command as ListObjectsV2Command).input.Prefix === 'full/' ? { Contents: [{ Key: 'full/a' }] } : {};
      }),
      'bkt',
    );
    await expect(s3.firstUnder('full/')).resolves.toMatchObject({ Key: 'full/a' });
    await expect(s3.firstUnder('empty/')).resolves.toBeUndefined();
    expect(sent.map((c) => c.input)).toEqual([
      { Bucket: 'bkt', Prefix: 'full/', MaxKeys: 1 },
      { Bucket: 'bkt', Prefix: 'empty/', MaxKeys: 1 },
    ]);
  });

  it('send: classifies the failure of any request', async () => {
    const s3 = new S3Bucket(fakeClient(async () => undefined), 'bkt');
    await expect(s3.send(Promise.reject(s3Error('NoSuchBucket', 404)))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
