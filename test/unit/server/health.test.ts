import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { Readiness, type ReadinessTarget } from '../../../src/server/health.js';

/** A stand-in S3 target that answers HeadBucket for the buckets it has, 404 otherwise. */
function fakeStore(buckets: string[]) {
  const heads: string[] = [];
  const client = {
    send(command: unknown) {
      if (!(command instanceof HeadBucketCommand)) return Promise.reject(new Error('unexpected command'));
      const bucket = command.input.Bucket as string;
      heads.push(bucket);
      if (buckets.includes(bucket)) return Promise.resolve({});
      return Promise.reject(Object.assign(new Error('not found'), { name: 'NotFound', $metadata: { httpStatusCode: 404 } }));
    },
  };
  return { client: client as unknown as S3Client, heads };
}

describe('Readiness', () => {
  it('asks for the targets again when its cache expires, and checks each bucket once per client', async () => {
    const own = fakeStore(['a']);
    const partner = fakeStore(['a', 'p']);
    let targets: ReadinessTarget[] = [{ client: own.client, bucket: 'a' }, { client: own.client, bucket: 'a' }];
    const readiness = new Readiness(() => targets, 0);
    expect(await readiness.check()).toEqual({ ready: true, draining: false, buckets: [{ bucket: 'a', ok: true }] });
    targets = [
      { client: own.client, bucket: 'a' },
      { client: partner.client, bucket: 'a', endpoint: 'http://partner us-east-1' },
      { client: partner.client, bucket: 'q', endpoint: 'http://partner us-east-1' },
    ];
    expect(await readiness.check()).toEqual({
      ready: false,
      draining: false,
      buckets: [
        { bucket: 'a', ok: true },
        { bucket: 'a', endpoint: 'http://partner us-east-1', ok: true },
        { bucket: 'q', endpoint: 'http://partner us-east-1', ok: false, error: 'NotFound (HTTP 404)' },
      ],
    });
    expect(own.heads).toEqual(['a', 'a']);
    expect(partner.heads).toEqual(['a', 'q']);
  });

  it('reuses a result within cacheMs and is not ready once draining', async () => {
    const own = fakeStore(['a']);
    let asked = 0;
    const readiness = new Readiness(() => {
      asked++;
      return [{ client: own.client, bucket: 'a' }];
    }, 60_000);
    await readiness.check();
    await readiness.check();
    expect(asked).toBe(1);
    readiness.startDraining();
    expect(await readiness.check()).toEqual({ ready: false, draining: true, buckets: [] });
  });
});
