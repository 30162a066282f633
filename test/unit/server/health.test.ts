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

  it('with a scanner check: not ready while it fails; asked at most every 3 s however often /readyz is polled', async () => {
    const own = fakeStore(['a']);
    let pings = 0;
    let up = false;
    const readiness = new Readiness(() => [{ client: own.client, bucket: 'a' }], 0, 5000, () => {
      pings++;
      return up ? Promise.resolve() : Promise.reject(new Error('clamd unreachable: ENOENT'));
    });
    const first = await readiness.check();
    expect(first).toEqual({ ready: false, draining: false, buckets: [{ bucket: 'a', ok: true }], scanner: { ok: false, error: 'clamd unreachable: ENOENT' } });
    up = true;
    for (let i = 0; i < 50; i++) expect((await readiness.check()).scanner).toEqual({ ok: false, error: 'clamd unreachable: ENOENT' });
    expect(pings).toBe(1);
    // The buckets are asked every time (cacheMs 0); the scanner is not.
    expect(own.heads.length).toBe(51);
  });
});
