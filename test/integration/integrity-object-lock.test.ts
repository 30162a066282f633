import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { Readiness } from '../../src/server/health.js';
import { writeCliConfig } from '../support/cli-config.js';
import { BIN } from '../support/cli-process.js';
import { PASSWORD, TestBridge, USER, s3Client, sha256 } from '../support/bridge.js';
import { RawFtp, runProgram, type FtpReply } from '../support/clients.js';
import { startBackend, type StartedBackend } from '../support/s3-backends.js';

/**
 * accounts[].retention and accounts[].legalHold on moto's S3 server (it implements Object Lock;
 * s3rver does not): every object the account uploads is written locked in the request that
 * creates it; DELE, STOR over it, RNFR/RNTO and RMD of its directory get 550 naming the date and
 * change nothing; a bucket without Object Lock keeps the bridge from starting, and fails /readyz.
 */
const MiB = 1024 * 1024;
const DAY_MS = 86_400_000;
let moto: StartedBackend;
let s3: S3Client;
let lockedBucket: string;
let bridge: TestBridge;
const HOLD_USER = 'holder';

beforeAll(async () => {
  moto = await startBackend('moto');
  s3 = s3Client(moto.s3);
  lockedBucket = `lock-${randomBytes(5).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: lockedBucket, ObjectLockEnabledForBucket: true }));
  bridge = await TestBridge.start({
    backend: moto.s3,
    proxy: true,
    s3: { checksumAlgorithm: 'SHA256' },
    accounts: [
      { username: USER, password: PASSWORD, bucket: lockedBucket, prefix: 'alice/', policy: { retention: { mode: 'GOVERNANCE', days: 2 } } },
      { username: HOLD_USER, password: PASSWORD, bucket: lockedBucket, prefix: 'holder/', policy: { legalHold: true } },
    ],
  });
}, 120_000);
afterAll(async () => {
  await bridge?.close();
  s3?.destroy();
  await moto?.stop();
});

async function login(user = USER): Promise<RawFtp> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(user, PASSWORD);
  await ftp.command('TYPE I');
  return ftp;
}

/** STOR of `body`: the final reply, or the refusal that came instead of 150. */
async function stor(ftp: RawFtp, name: string, body: Buffer): Promise<FtpReply> {
  const data = await ftp.pasv();
  ftp.send(`STOR ${name}`);
  const first = await ftp.reply();
  if (first.code !== 150) {
    data.destroy();
    return first;
  }
  await new Promise<void>((resolve) => data.end(body, () => resolve()));
  return ftp.reply(60_000);
}

const head = (key: string) => s3.send(new HeadObjectCommand({ Bucket: lockedBucket, Key: key }));
const versionsOf = async (key: string) => {
  const res = await s3.send(new ListObjectVersionsCommand({ Bucket: lockedBucket, Prefix: key }));
  return { versions: (res.Versions ?? []).filter((v) => v.Key === key).length, deleteMarkers: (res.DeleteMarkers ?? []).filter((m) => m.Key === key).length };
};
const objectSha = async (key: string) => {
  const res = await s3.send(new GetObjectCommand({ Bucket: lockedBucket, Key: key }));
  return sha256(Buffer.from(await res.Body!.transformToByteArray()));
};

describe('Object Lock retention per account', () => {
  it('an upload is written retained (single request and multipart), in the request that creates it', async () => {
    const ftp = await login();
    try {
      const since = bridge.proxy!.requests.length;
      const started = Date.now();
      expect((await stor(ftp, 'small.pdf', randomBytes(1000))).code).toBe(226);
      expect((await stor(ftp, 'big.bin', randomBytes(11 * MiB))).code).toBe(226);
      const mine = bridge.proxy!.requests.slice(since);
      const put = mine.find((r) => r.operation === 'PutObject' && r.key === 'alice/small.pdf');
      const create = mine.find((r) => r.operation === 'CreateMultipartUpload' && r.key === 'alice/big.bin');
      for (const r of [put, create]) {
        expect(r?.headers['x-amz-object-lock-mode']).toBe('GOVERNANCE');
        const until = Date.parse(String(r?.headers['x-amz-object-lock-retain-until-date']));
        expect(until).toBeGreaterThanOrEqual(started + 2 * DAY_MS - 1000);
        expect(until).toBeLessThanOrEqual(Date.now() + 2 * DAY_MS + 1000);
      }
      // No request after the commit sets the lock (nothing is ever unlocked in between).
      expect(mine.filter((r) => /retention|legal-hold/.test(r.path))).toEqual([]);
      // (moto applies Object Lock headers of PutObject, not those of CreateMultipartUpload: the
      // multipart object's lock is checked above, in the request, not here.)
      const h = await head('alice/small.pdf');
      expect(h.ObjectLockMode).toBe('GOVERNANCE');
      expect(h.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + DAY_MS);
    } finally {
      ftp.close();
    }
  });

  it('DELE, STOR over it, RNFR/RNTO and RMD of its directory: 550 <name>: retained until <date>, nothing changed', async () => {
    const ftp = await login();
    try {
      const body = randomBytes(4000);
      expect((await ftp.command('MKD keep')).code).toBe(257);
      expect((await stor(ftp, 'keep/report.pdf', body)).code).toBe(226);
      const until = (await head('alice/keep/report.pdf')).ObjectLockRetainUntilDate!.toISOString();
      const refusal = `550 /keep/report.pdf: retained until ${until}`;
      const since = bridge.proxy!.requests.length;

      expect((await ftp.command('DELE keep/report.pdf')).text).toBe(refusal);
      const data = await ftp.pasv();
      ftp.send('STOR keep/report.pdf');
      expect((await ftp.reply()).text).toBe(refusal);
      data.destroy();
      expect((await ftp.command('RNFR keep/report.pdf')).code).toBe(350);
      expect((await ftp.command('RNTO moved.pdf')).text).toBe(refusal);
      expect((await ftp.command('RMD keep')).code).toBe(550);

      // Refused before any write: STOR before its 150, RNTO before its copy, DELE before its delete.
      expect(bridge.proxy!.requests.slice(since).filter((r) => !['HeadObject', 'ListObjectsV2'].includes(r.operation))).toEqual([]);
      // Still one version, no delete marker, the same bytes; no copy under the new name.
      expect(await versionsOf('alice/keep/report.pdf')).toEqual({ versions: 1, deleteMarkers: 0 });
      expect(await objectSha('alice/keep/report.pdf')).toBe(sha256(body));
      expect(await versionsOf('alice/moved.pdf')).toEqual({ versions: 0, deleteMarkers: 0 });
      expect((await ftp.command('SIZE keep/report.pdf')).text).toBe(`213 ${body.length}`);
    } finally {
      ftp.close();
    }
  });

  it('renaming a directory that holds a retained file is refused before any copy', async () => {
    const ftp = await login();
    try {
      expect((await ftp.command('MKD box')).code).toBe(257);
      expect((await stor(ftp, 'box/a.txt', randomBytes(10))).code).toBe(226);
      const since = bridge.proxy!.requests.length;
      expect((await ftp.command('RNFR box')).code).toBe(350);
      expect((await ftp.command('RNTO box2')).text).toMatch(/^550 \/box\/a\.txt: retained until \d{4}-/);
      expect(bridge.proxy!.requests.slice(since).filter((r) => ['CopyObject', 'DeleteObject', 'UploadPartCopy'].includes(r.operation))).toEqual([]);
    } finally {
      ftp.close();
    }
  });

  it('renaming a file that is not locked (written by another tool) copies it retained, the copy carrying the lock', async () => {
    const body = randomBytes(2000);
    await s3.send(new PutObjectCommand({ Bucket: lockedBucket, Key: 'alice/unlocked.txt', Body: body }));
    const ftp = await login();
    try {
      const started = Date.now();
      expect((await ftp.command('RNFR unlocked.txt')).code).toBe(350);
      expect((await ftp.command('RNTO renamed-unlocked.txt')).code).toBe(250);
      const h = await head('alice/renamed-unlocked.txt');
      expect(h.ObjectLockMode).toBe('GOVERNANCE');
      expect(h.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThanOrEqual(started + 2 * DAY_MS - 60_000);
      expect(await objectSha('alice/renamed-unlocked.txt')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('legalHold: the upload is held; DELE gets 550 <name>: under legal hold', async () => {
    const ftp = await login(HOLD_USER);
    try {
      expect((await stor(ftp, 'evidence.bin', randomBytes(2000))).code).toBe(226);
      expect((await head('holder/evidence.bin')).ObjectLockLegalHoldStatus).toBe('ON');
      expect((await ftp.command('DELE evidence.bin')).text).toBe('550 /evidence.bin: under legal hold');
      expect(await versionsOf('holder/evidence.bin')).toEqual({ versions: 1, deleteMarkers: 0 });
    } finally {
      ftp.close();
    }
  });

  it('a bucket without Object Lock: the bridge refuses to start, one line per account; /readyz reports it', async () => {
    const plain = `plain-${randomBytes(5).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: plain }));
    const started = TestBridge.start({
      backend: moto.s3,
      s3: { checksumAlgorithm: 'SHA256' },
      accounts: [
        { username: 'a1', password: PASSWORD, bucket: plain, policy: { retention: { mode: 'COMPLIANCE', days: 1 } } },
        { username: 'a2', password: PASSWORD, bucket: plain, policy: { legalHold: true } },
        { username: 'a3', password: PASSWORD, bucket: lockedBucket, policy: { retention: { mode: 'GOVERNANCE', days: 1 } } },
      ],
    });
    await expect(started).rejects.toMatchObject({
      problems: [
        `accounts[a1].retention: bucket ${plain}: Object Lock is not enabled on the bucket`,
        `accounts[a2].legalHold: bucket ${plain}: Object Lock is not enabled on the bucket`,
      ],
    });
    const readiness = new Readiness(
      () => [
        { client: s3, bucket: plain, objectLock: true },
        { client: s3, bucket: lockedBucket, objectLock: true },
        { client: s3, bucket: plain },
      ],
      0,
    );
    const report = await readiness.check();
    expect(report.ready).toBe(false);
    expect(report.buckets).toEqual([
      { bucket: plain, ok: false, error: 'Object Lock is not enabled on the bucket' },
      { bucket: lockedBucket, ok: true },
      { bucket: plain, ok: true },
    ]);
  });

  it('retention without a checksum (s3.checksumAlgorithm none) is refused at start', async () => {
    await expect(
      TestBridge.start({
        backend: moto.s3,
        s3: { checksumAlgorithm: 'none' },
        accounts: [{ username: 'a4', password: PASSWORD, bucket: lockedBucket, policy: { retention: { mode: 'GOVERNANCE', days: 1 } } }],
      }),
    ).rejects.toMatchObject({ problems: ['accounts[a4].retention: needs s3.checksumAlgorithm (S3 requires a checksum with Object Lock)'] });
  });

  it('check-config --probe reports what each bucket accepts and whether the lock can work; exit 1 when it cannot', async () => {
    const plain = `probe-${randomBytes(5).toString('hex')}`;
    await s3.send(new CreateBucketCommand({ Bucket: plain }));
    const passwordHash = await hashPassword('pw');
    const file = writeCliConfig(moto.s3, {
      s3: { checksumAlgorithm: 'SHA256' },
      accounts: [
        { username: 'locked', passwordHash, bucket: lockedBucket, prefix: 'p1/', retention: { mode: 'GOVERNANCE', days: 1 } },
        { username: 'unlocked', passwordHash, bucket: plain, prefix: 'p2/', retention: { mode: 'GOVERNANCE', days: 1 } },
      ],
    });
    const res = await runProgram(process.execPath, [BIN, 'check-config', '--probe', '--config', file], { timeoutMs: 60_000 });
    const lines = res.stdout.toString().trim().split('\n');
    expect(lines).toEqual([
      'configuration OK',
      's3.checksumAlgorithm: SHA256',
      `bucket ${lockedBucket} (${moto.s3.endpoint} us-east-1):`,
      // moto keeps the checksums it is sent, and stores bytes that do not match them.
      '  checksum SHA256: kept',
      '  checksum CRC64NVME: kept',
      '  checksum CRC32C: kept',
      '  checksum CRC32: kept',
      '  in force: SHA256 (the store takes SHA256 (kept): uploads carry it (s3.checksumAlgorithm SHA256))',
      '  Object Lock for locked: enabled',
      `bucket ${plain} (${moto.s3.endpoint} us-east-1):`,
      '  checksum SHA256: kept',
      '  checksum CRC64NVME: kept',
      '  checksum CRC32C: kept',
      '  checksum CRC32: kept',
      '  in force: SHA256 (the store takes SHA256 (kept): uploads carry it (s3.checksumAlgorithm SHA256))',
      '  Object Lock for unlocked: Object Lock is not enabled on the bucket',
    ]);
    expect(res.code).toBe(1);
    // The probe objects are gone.
    const left = await s3.send(new ListObjectVersionsCommand({ Bucket: plain }));
    expect((left.Versions ?? []).filter((v) => v.IsLatest)).toEqual([]);
  });

  it('a rename whose delete the store refuses removes the copy it made: 550, the file only under its old name', async () => {
    // The run's s3rver, whose DeleteObject the proxy answers 403 AccessDenied, as S3 does for a
    // lock the bridge could not see (no s3:GetObjectRetention) or a policy.
    const plain = await TestBridge.start({ proxy: true });
    try {
      const body = randomBytes(3000);
      await plain.put('doc.txt', body);
      const ftp = await RawFtp.connect(plain.port);
      try {
        await ftp.login(USER, PASSWORD);
        const rule = plain.proxy!.addRule({ operation: 'DeleteObject', key: 'doc.txt', times: 1, action: { kind: 'error', status: 403, code: 'AccessDenied' } });
        expect((await ftp.command('RNFR doc.txt')).code).toBe(350);
        expect((await ftp.command('RNTO renamed.txt')).code).toBe(550);
        expect(rule.fired).toBe(1);
        expect(plain.proxy!.requestsOf('CopyObject').map((r) => r.key)).toEqual(['renamed.txt']);
        expect(await plain.keys()).toEqual(['doc.txt']);
        expect(await plain.objectHash('doc.txt')).toBe(sha256(body));
      } finally {
        ftp.close();
      }
    } finally {
      await plain.close();
    }
  });
});
