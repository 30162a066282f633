import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PASSWORD, s3Client, sha256, TestBridge, USER } from '../support/bridge.js';
import { curl } from '../support/clients.js';

/**
 * The periodic sweep (`s3.sweepUploadsOlderThanHours`, every `s3.sweepUploadsIntervalSeconds`):
 * the incomplete multipart uploads a crashed bridge left under an account's prefix are aborted
 * once older than the age, younger ones (uploads in progress) and those outside every account's
 * prefix are left alone. Stores without ListMultipartUploads (s3rver): the failed sweep is logged
 * and the bridge serves on.
 */
const PREFIX = 'site/cam/';
const AGE_SECONDS = 8;
const s3 = inject('s3');
let client: S3Client;
let bucket: string;
let bridge: TestBridge;
const logLines: { msg?: string; level?: number; aborted?: number; component?: string }[] = [];
const uploads = new Map<string, string>();

/** Starts a multipart upload with one part, as an interrupted STOR leaves it. */
async function startUpload(key: string): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(1024) }));
  uploads.set(key, UploadId as string);
}

const pending = async () =>
  ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.Key as string).sort();

const sweepLines = () => logLines.filter((l) => l.component === 'sweep');

async function waitFor(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; sweep log: ${JSON.stringify(sweepLines())}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  client = s3Client(s3);
  bucket = `sweep-${randomBytes(5).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  await startUpload(`${PREFIX}stale.bin`);
  await startUpload('other/outside.bin');
  if (s3.capabilities.listMultipartUploads) await sleep((AGE_SECONDS + 1.5) * 1000);
  await startUpload(`${PREFIX}fresh.bin`);
  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logLines.push(JSON.parse(line) as (typeof logLines)[number]);
      cb();
    },
  });
  bridge = await TestBridge.start({
    accounts: [{ username: USER, password: PASSWORD, bucket, prefix: PREFIX }],
    s3: { sweepUploadsOlderThanHours: AGE_SECONDS / 3600, sweepUploadsIntervalSeconds: 1 },
    logStream,
    logLevel: 'info',
  });
}, 60_000);

afterAll(async () => {
  await bridge?.close();
  if (s3.capabilities.abortMultipartUpload) {
    for (const [key, id] of uploads) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id })).catch(() => undefined);
  }
  client?.destroy();
});

describe('periodic multipart sweep', () => {
  it('aborts the stale upload under the account prefix within an interval, not the fresh one or one outside every account', { timeout: 60_000 }, async () => {
    if (s3.capabilities.listMultipartUploads) {
      expect(await pending()).toEqual(['other/outside.bin', `${PREFIX}fresh.bin`, `${PREFIX}stale.bin`]);
      await waitFor('a sweep that aborts one upload', () => sweepLines().some((l) => l.aborted === 1), 10_000);
      // Checked while the fresh upload is still well within the age.
      expect(await pending()).toEqual(['other/outside.bin', `${PREFIX}fresh.bin`]);
      // The sweep repeats every interval, and finds nothing more to abort.
      const before = sweepLines().length;
      await waitFor('a later sweep', () => sweepLines().length > before, 5_000);
      expect(sweepLines().slice(before)[0]).toMatchObject({ msg: 'swept incomplete multipart uploads', aborted: 0 });
      expect(await pending()).toEqual(['other/outside.bin', `${PREFIX}fresh.bin`]);
    } else {
      // No ListMultipartUploads: each sweep fails with a warning, every interval.
      await waitFor('two failed sweeps', () => sweepLines().filter((l) => l.msg === 'sweeping incomplete multipart uploads failed').length >= 2, 10_000);
      expect(sweepLines().every((l) => l.level === 40)).toBe(true);
    }
    // The bridge serves on: an upload lands byte-exact.
    const data = randomBytes(300 * 1024);
    const res = await curl(['-T', '-', bridge.url('/after.bin')], data);
    expect(res.code, res.stderr).toBe(0);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${PREFIX}after.bin` }));
    expect(sha256(Buffer.from(await got.Body!.transformToByteArray()))).toBe(sha256(data));
  });
});
