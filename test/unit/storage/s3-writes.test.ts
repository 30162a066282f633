import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../../src/storage/object-store.js';
import { S3FileStore } from '../../../src/storage/s3-file-store.js';

/**
 * Appends at a REST offset the caller already checked (WriteOptions.existing): the store appends to
 * the version that check saw, without a HeadObject of its own, and a version changed since is
 * refused as INVALID_RANGE, never appended to.
 */
const MiB = 1024 * 1024;

interface Sent {
  name: string;
  input: Record<string, unknown>;
}

/** A fake S3 that records every request and answers with `answer` (or a plain success). */
function storeWith(answer: (name: string, input: Record<string, unknown>) => unknown): { store: S3FileStore; sent: Sent[] } {
  const sent: Sent[] = [];
  const client = {
    send: async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      sent.push({ name, input: command.input });
      const result = answer(name, command.input);
      if (result instanceof Error) throw result;
      return result ?? {};
    },
  } as unknown as S3Client;
  const store = new S3FileStore({
    client,
    bucket: 'bkt',
    prefix: 'user/',
    partSizeBytes: 5 * MiB,
    queueSize: 2,
    renameDirectoryMaxObjects: 10,
    storeOntoDirectory: 'allow',
    uploadDigests: ['SHA-256'],
    hashMaxStreamBytes: 0,
    maxAttempts: 1,
    multipartCopyThresholdBytes: 5 * 1024 * MiB,
  });
  return { store, sent };
}

const precondition = () => Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
  name: 'PreconditionFailed',
  $metadata: { httpStatusCode: 412 },
});

const file = (size: number, etag: string): Entry => ({ name: 'f.bin', isDirectory: false, size, mtime: new Date(0), etag });

describe('S3FileStore.write at a checked REST offset', () => {
  it('copies a large file as parts pinned to the ETag the check saw, without a HeadObject', async () => {
    const { store, sent } = storeWith((name) => {
      if (name === 'CreateMultipartUpload') return { UploadId: 'u1' };
      if (name === 'UploadPartCopy') return { CopyPartResult: { ETag: '"c1"' } };
      return undefined;
    });
    const sink = await store.write('/dir one/f+.bin', { appendAt: 6 * MiB, existing: file(6 * MiB, '"old"') });
    sink.destroy();
    expect(sent.filter((s) => s.name === 'HeadObject')).toEqual([]);
    const copy = sent.find((s) => s.name === 'UploadPartCopy');
    expect(copy?.input).toMatchObject({ CopySource: 'bkt/user/dir%20one/f%2B.bin', CopySourceIfMatch: '"old"', CopySourceRange: `bytes=0-${6 * MiB - 1}` });
  });

  it('refuses a large file changed since the check as INVALID_RANGE', async () => {
    const { store, sent } = storeWith((name) => {
      if (name === 'CreateMultipartUpload') return { UploadId: 'u1' };
      if (name === 'UploadPartCopy') return precondition();
      return undefined;
    });
    await expect(store.write('/f.bin', { appendAt: 6 * MiB, existing: file(6 * MiB, '"old"') })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    expect(sent.filter((s) => s.name === 'HeadObject')).toEqual([]);
  });

  it('refuses a small file replaced since the check, also on a store that ignores If-Match', async () => {
    const { store, sent } = storeWith((name) => {
      if (name === 'GetObject') return { ETag: '"new"', ContentLength: 3, Body: Readable.from([Buffer.from('new')]) };
      return undefined;
    });
    await expect(store.write('/f.bin', { appendAt: 3, existing: file(3, '"old"') })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    expect(sent.find((s) => s.name === 'GetObject')?.input).toMatchObject({ IfMatch: '"old"' });
    expect(sent.filter((s) => ['HeadObject', 'PutObject', 'CompleteMultipartUpload'].includes(s.name))).toEqual([]);
  });

  it('refuses a file removed since the check as INVALID_RANGE', async () => {
    const { store } = storeWith((name) =>
      name === 'GetObject' ? Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }) : undefined,
    );
    await expect(store.write('/f.bin', { appendAt: 3, existing: file(3, '"old"') })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
  });

  it('without a checked version (APPE), looks the file up once itself', async () => {
    const { store, sent } = storeWith((name) => {
      if (name === 'HeadObject') return { ContentLength: 3, ETag: '"v"' };
      if (name === 'GetObject') return { ETag: '"v"', ContentLength: 3, Body: Readable.from([Buffer.from('old')]) };
      return undefined;
    });
    const sink = await store.write('/f.bin', { appendAt: 'end' });
    sink.destroy();
    expect(sent.map((s) => s.name)).toEqual(['HeadObject', 'GetObject']);
  });
});
