import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { SweepError, sweepTargets } from '../../../src/storage/sweep.js';

const OLD = new Date('2020-01-01T00:00:00Z');
const NOW = new Date('2030-01-01T00:00:00Z');

/** A stand-in S3 target: per bucket, the uploads it lists, or the error it answers. */
function fakeStore(buckets: Record<string, { key: string; id: string }[] | Error>) {
  const calls: string[] = [];
  const client = {
    send(command: unknown) {
      if (command instanceof ListMultipartUploadsCommand) {
        const { Bucket, Prefix } = command.input;
        calls.push(`list ${Bucket}/${Prefix ?? ''}`);
        const uploads = buckets[Bucket as string];
        if (uploads instanceof Error) return Promise.reject(uploads);
        return Promise.resolve({
          Uploads: (uploads ?? []).filter((u) => u.key.startsWith(Prefix ?? '')).map((u) => ({ Key: u.key, UploadId: u.id, Initiated: OLD })),
          IsTruncated: false,
        });
      }
      if (command instanceof AbortMultipartUploadCommand) {
        calls.push(`abort ${command.input.Bucket}/${command.input.Key}`);
        return Promise.resolve({});
      }
      return Promise.reject(new Error('unexpected command'));
    },
  };
  return { client: client as unknown as S3Client, calls };
}

const notImplemented = () => Object.assign(new Error('not implemented'), { name: 'NotImplemented', $metadata: { httpStatusCode: 501 } });

describe('sweepTargets', () => {
  it('sweeps every target with its own client, nested prefixes of a bucket once per client', async () => {
    const own = fakeStore({ shared: [{ key: 'a/1', id: 'u1' }, { key: 'a/b/2', id: 'u2' }, { key: 'z/3', id: 'u3' }] });
    const partner = fakeStore({ shared: [{ key: 'a/4', id: 'u4' }] });
    const result = await sweepTargets(
      [
        { client: own.client, label: '', targets: [{ bucket: 'shared', prefix: 'a/b/' }, { bucket: 'shared', prefix: 'a/' }] },
        { client: partner.client, label: 'http://partner us-east-1', targets: [{ bucket: 'shared', prefix: 'a/' }] },
      ],
      NOW,
    );
    expect(result).toEqual({ aborted: 3 });
    expect(own.calls).toEqual(['list shared/a/', 'abort shared/a/1', 'abort shared/a/b/2']);
    expect(partner.calls).toEqual(['list shared/a/', 'abort shared/a/4']);
  });

  it('a target that fails does not stop the others; the failures are thrown together, naming each target', async () => {
    const down = fakeStore({ gone: notImplemented() });
    const up = fakeStore({ fine: [{ key: 'p/1', id: 'u1' }] });
    const sweep = sweepTargets(
      [
        { client: down.client, label: 'http://down us-east-1', targets: [{ bucket: 'gone', prefix: 'x/' }] },
        { client: up.client, label: '', targets: [{ bucket: 'fine', prefix: 'p/' }, { bucket: 'missing', prefix: '' }] },
      ],
      NOW,
    );
    await expect(sweep).rejects.toBeInstanceOf(SweepError);
    const err = (await sweep.catch((e: unknown) => e)) as SweepError;
    expect(err.aborted).toBe(1);
    expect(err.failures.map((f) => f.target)).toEqual(['http://down us-east-1 gone/x/']);
    expect(err.message).toMatch(/^http:\/\/down us-east-1 gone\/x\/: /);
    expect(up.calls).toEqual(['list fine/p/', 'abort fine/p/1', 'list missing/']);
  });
});
