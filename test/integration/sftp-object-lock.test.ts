import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, s3Client, sha256 } from '../support/bridge.js';
import { startBackend, type StartedBackend } from '../support/s3-backends.js';
import { sftpBatch, sftpConfig, sftpSession, SshKeys } from '../support/sftp.js';

/**
 * Object Lock and checksums through SFTP, on moto's S3 server (it implements Object Lock; s3rver
 * does not), started here on a free port: an SFTP upload of an account with `retention` is written
 * retained with its SHA-256 checksum, and REMOVE, RENAME and an overwrite of the retained object get
 * SSH_FX_PERMISSION_DENIED naming the date, and change nothing.
 */
const DAY_MS = 86_400_000;
const SFTP_PERMISSION_DENIED = 3;
let moto: StartedBackend;
let s3: S3Client;
let lockedBucket: string;
let bridge: TestBridge;
let keys: SshKeys;
let work: string;

beforeAll(async () => {
  keys = await SshKeys.create();
  work = mkdtempSync(join(tmpdir(), 'sftp-lock-'));
  moto = await startBackend('moto');
  s3 = s3Client(moto.s3);
  lockedBucket = `lock-${randomBytes(5).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: lockedBucket, ObjectLockEnabledForBucket: true }));
  bridge = await TestBridge.start({
    backend: moto.s3,
    s3: { checksumAlgorithm: 'SHA256' },
    accounts: [{ username: USER, password: PASSWORD, bucket: lockedBucket, prefix: 'alice/', policy: { retention: { mode: 'GOVERNANCE', days: 2 } } }],
    config: sftpConfig(keys.hostKey),
  });
}, 120_000);
afterAll(async () => {
  await bridge?.close();
  s3?.destroy();
  await moto?.stop();
  keys?.remove();
  if (work) rmSync(work, { recursive: true, force: true });
});

const rawSftp = () => sftpSession(bridge.sftpPort as number, USER, PASSWORD);

/** The status of a request that answers with a status: 0 for OK, else its code and message. */
const statusOf = (call: (cb: (err?: Error | null) => void) => void) =>
  new Promise<{ code: number; message?: string }>((resolve) => call((err) => resolve(err ? { code: (err as { code?: number }).code ?? -1, message: err.message } : { code: 0 })));

const objectSha = async (key: string) => {
  const res = await s3.send(new GetObjectCommand({ Bucket: lockedBucket, Key: key }));
  return sha256(Buffer.from(await res.Body!.transformToByteArray()));
};

describe('SFTP on an Object Lock account', () => {
  it('an upload is stored retained and with its SHA-256 checksum; REMOVE, RENAME and an overwrite are denied naming the date and change nothing', async () => {
    const data = randomBytes(200_000);
    const local = join(work, 'keep.bin');
    writeFileSync(local, data);
    const put = await sftpBatch({ port: bridge.sftpPort as number, user: USER, password: PASSWORD }, [`put ${local} /keep.bin`]);
    expect(put.code, put.stderr).toBe(0);

    const head = await s3.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: 'alice/keep.bin', ChecksumMode: 'ENABLED' }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    const until = head.ObjectLockRetainUntilDate as Date;
    expect(Math.abs(until.getTime() - (Date.now() + 2 * DAY_MS))).toBeLessThan(60 * 60_000);
    expect(head.ChecksumSHA256).toBe(createHash('sha256').update(data).digest('base64'));

    const { sftp, close } = await rawSftp();
    try {
      const refusal = { code: SFTP_PERMISSION_DENIED, message: `/keep.bin: retained until ${until.toISOString()}` };
      expect(await statusOf((cb) => sftp.unlink('/keep.bin', cb))).toEqual(refusal);
      expect(await statusOf((cb) => sftp.rename('/keep.bin', '/moved.bin', cb))).toEqual(refusal);
      // An overwrite is refused before any byte is written: at OPEN, its first WRITE, or its CLOSE.
      const overwrite = await statusOf((cb) =>
        sftp.open('/keep.bin', 'w', (err, handle) => {
          if (err) return cb(err);
          sftp.write(handle, Buffer.from('replaced'), 0, 8, 0, (werr) => sftp.close(handle, (cerr) => cb(werr ?? cerr)));
        }),
      );
      expect(overwrite).toEqual(refusal);
    } finally {
      close();
    }
    expect(await objectSha('alice/keep.bin')).toBe(sha256(data));
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: lockedBucket, Prefix: 'alice/' }));
    expect((versions.Versions ?? []).map((v) => v.Key)).toEqual(['alice/keep.bin']);
    expect(versions.DeleteMarkers ?? []).toEqual([]);
  }, 60_000);
});
