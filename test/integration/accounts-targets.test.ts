import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { s3Client, TestBridge } from '../support/bridge.js';
import { writeCliConfig } from '../support/cli-config.js';
import { runProgram } from '../support/clients.js';
import { BIN, CliBridge } from '../support/ops-cli.js';

/*
 * The multipart sweep (periodic and `sweep-uploads`) and /readyz cover every account in force now,
 * including those an accounts file brings in after the start, each on the account's own S3 target.
 *
 * The partner's target is the test S3 under another name (its endpoint with a trailing "/"), so the
 * client cache holds a second client. On Swift it also has credentials of its own: Swift's `probe`
 * user (see infra/swift-s3/start-swift-s3.sh) is another Swift account, whose buckets the test user
 * cannot see, so only the partner's own client reaches the partner's bucket.
 */
const s3 = inject('s3');
const swift = s3.backend === 'swift';
// A new object each time: the SDK marks the credentials objects it is given.
const partnerCredentials = () =>
  swift ? { accessKeyId: 'probe:probe', secretAccessKey: 'probe' } : { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
const partnerTarget = () => ({ endpoint: `${s3.endpoint}/`, ...(swift ? { credentials: partnerCredentials() } : {}) });
/** How /readyz and the sweep name the partner's target. */
const partnerLabel = `${s3.endpoint}/ ${s3.region}${swift ? ' probe:probe' : ''}`;
const PARTNER_PW = 'partner pw';

let defaultClient: S3Client;
let partnerClient: S3Client;
let partnerHash: string;
const uploads: { client: S3Client; bucket: string; key: string; id: string }[] = [];

beforeAll(async () => {
  defaultClient = s3Client(s3);
  partnerClient = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: partnerCredentials(),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  partnerHash = await hashPassword(PARTNER_PW);
});

afterAll(async () => {
  if (s3.capabilities.abortMultipartUpload) {
    for (const u of uploads) await u.client.send(new AbortMultipartUploadCommand({ Bucket: u.bucket, Key: u.key, UploadId: u.id })).catch(() => undefined);
  }
  defaultClient?.destroy();
  partnerClient?.destroy();
});

const newBucket = async (client: S3Client, name: string) => {
  const bucket = `${name}-${randomBytes(5).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
};

/** An interrupted upload (one part sent), as a crashed bridge leaves it. */
async function startUpload(client: S3Client, bucket: string, key: string): Promise<void> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(1024) }));
  uploads.push({ client, bucket, key, id: UploadId as string });
}

const pending = async (client: S3Client, bucket: string) =>
  ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.Key as string).sort();

const partnerAccount = (bucket: string) => ({
  username: 'partner',
  passwordHash: partnerHash,
  bucket,
  prefix: 'in/',
  ...partnerTarget(),
});

/** Replaces the accounts file at once, as a Secret update does. */
function writeAccounts(file: string, accounts: unknown[]): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(accounts));
  renameSync(`${file}.tmp`, file);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

type Report = { ready: boolean; buckets: { bucket: string; endpoint?: string; ok: boolean; error?: string }[] };

let cli: CliBridge | undefined;
afterEach(() => cli?.kill());

describe('readiness covers the accounts in force, on their own S3 targets', () => {
  it('an account the accounts file adds later is checked on its own target; removing it drops the check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'targets-'));
    const file = join(dir, 'accounts.json');
    writeAccounts(file, []);
    cli = await CliBridge.start({
      auth: { accountsFile: file, accountsReload: { pollSeconds: 1 } },
      http: { host: '127.0.0.1', port: 0, readinessCacheSeconds: 0, readyzDetails: true },
    });
    const bridge = cli;
    const readyz = async () => {
      const res = await bridge.http('/readyz');
      return { status: res.status, report: JSON.parse(res.body) as Report };
    };
    expect(await readyz()).toEqual({ status: 200, report: { ready: true, draining: false, checks: { serving: 'ok', buckets: 'ok' }, buckets: [{ bucket: bridge.bucket, ok: true }] } });

    // The partner's bucket does not exist yet: once the file is reloaded, /readyz says so.
    const partnerBucket = `partner-${randomBytes(5).toString('hex')}`;
    writeAccounts(file, [partnerAccount(partnerBucket)]);
    const notReady = await waitFor('/readyz to check the partner bucket', async () => {
      const r = await readyz();
      return r.report.buckets.length === 2 ? r : undefined;
    });
    expect(notReady.status).toBe(503);
    expect(notReady.report.buckets).toEqual([
      { bucket: bridge.bucket, ok: true },
      { bucket: partnerBucket, endpoint: partnerLabel, ok: false, error: expect.stringMatching(/HTTP 404/) as unknown as string },
    ]);

    await partnerClient.send(new CreateBucketCommand({ Bucket: partnerBucket }));
    if (swift) {
      // Only the partner's credentials reach it: the bridge's own client would not find it.
      await expect(defaultClient.send(new HeadBucketCommand({ Bucket: partnerBucket }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    }
    expect(await readyz()).toEqual({
      status: 200,
      report: { ready: true, draining: false, checks: { serving: 'ok', buckets: 'ok' }, buckets: [{ bucket: bridge.bucket, ok: true }, { bucket: partnerBucket, endpoint: partnerLabel, ok: true }] },
    });

    writeAccounts(file, []);
    await waitFor('/readyz to drop the removed account', async () => ((await readyz()).report.buckets.length === 1 ? true : undefined));
    expect(await readyz()).toEqual({ status: 200, report: { ready: true, draining: false, checks: { serving: 'ok', buckets: 'ok' }, buckets: [{ bucket: bridge.bucket, ok: true }] } });
  }, 60_000);
});

describe('the multipart sweep covers the accounts in force, on their own S3 targets', () => {
  it('the periodic sweep aborts a stale upload of an account the accounts file adds after the start', async () => {
    const AGE_SECONDS = 2;
    const partnerBucket = await newBucket(partnerClient, 'partner');
    await startUpload(partnerClient, partnerBucket, 'in/stale.bin');
    await startUpload(partnerClient, partnerBucket, 'elsewhere/stale.bin');
    const dir = mkdtempSync(join(tmpdir(), 'targets-'));
    const file = join(dir, 'accounts.json');
    writeAccounts(file, []);
    const lines: { component?: string; msg?: string; aborted?: number; err?: { message?: string } }[] = [];
    const logStream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as (typeof lines)[number]);
        cb();
      },
    });
    const bridge = await TestBridge.start({
      config: { auth: { accountsFile: file, accountsReload: { pollSeconds: 1 } } },
      s3: { sweepUploadsOlderThanHours: AGE_SECONDS / 3600, sweepUploadsIntervalSeconds: 1 },
      logStream,
      logLevel: 'info',
    });
    try {
      const sweeps = () => lines.filter((l) => l.component === 'sweep');
      await sleep((AGE_SECONDS + 0.5) * 1000);
      // Sweeps before the partner exists leave its upload alone.
      await waitFor('a sweep', () => (sweeps().length ? true : undefined));
      if (s3.capabilities.listMultipartUploads) expect(await pending(partnerClient, partnerBucket)).toEqual(['elsewhere/stale.bin', 'in/stale.bin']);
      writeAccounts(file, [partnerAccount(partnerBucket)]);
      if (s3.capabilities.listMultipartUploads) {
        await waitFor('a sweep that aborts the partner upload', () => (sweeps().some((l) => l.aborted === 1) ? true : undefined));
        // Under the partner's prefix only.
        expect(await pending(partnerClient, partnerBucket)).toEqual(['elsewhere/stale.bin']);
      } else {
        // No ListMultipartUploads (s3rver): the sweep fails, and names the partner's target among the failures.
        const failed = await waitFor('a failed sweep that names the partner target', () =>
          sweeps().find((l) => l.msg === 'sweeping incomplete multipart uploads failed' && l.err?.message?.includes(partnerBucket)),
        );
        expect(failed.err?.message).toContain(`${partnerLabel} ${partnerBucket}/in/`);
        expect(failed.err?.message).toContain(`${bridge.bucket}/`);
      }
    } finally {
      await bridge.close();
    }
  }, 60_000);

  it('sweep-uploads sweeps the accounts of the accounts file on their own target', async () => {
    const ownBucket = await newBucket(defaultClient, 'own');
    const partnerBucket = await newBucket(partnerClient, 'partner');
    await startUpload(defaultClient, ownBucket, 'cam/stale.bin');
    await startUpload(partnerClient, partnerBucket, 'in/stale.bin');
    // --older-than 0s compares with the stores' Initiated times, which have whole seconds on Swift.
    await new Promise((r) => setTimeout(r, 1100));
    const dir = mkdtempSync(join(tmpdir(), 'targets-'));
    const accountsFile = join(dir, 'accounts.json');
    writeAccounts(accountsFile, [partnerAccount(partnerBucket)]);
    const configFile = writeCliConfig(s3, {
      accounts: [{ username: 'cam', passwordHash: partnerHash, bucket: ownBucket, prefix: 'cam/' }],
      auth: { accountsFile },
    });
    const res = await runProgram(process.execPath, ['--openssl-legacy-provider', BIN, 'sweep-uploads', '--config', configFile, '--older-than', '0s']);
    if (s3.capabilities.listMultipartUploads) {
      expect(res.code, res.stderr.toString()).toBe(0);
      expect(JSON.parse(res.stdout.toString())).toEqual({ aborted: 2 });
      expect(await pending(defaultClient, ownBucket)).toEqual([]);
      expect(await pending(partnerClient, partnerBucket)).toEqual([]);
    } else {
      // s3rver lists no multipart uploads: both targets are tried, both fail, exit 1.
      expect(res.code).toBe(1);
      const out = JSON.parse(res.stdout.toString()) as { aborted: number; failed: { target: string; error: string }[] };
      expect(out.aborted).toBe(0);
      expect(out.failed.map((f) => f.target)).toEqual([`${ownBucket}/cam/`, `${partnerLabel} ${partnerBucket}/in/`]);
      expect(res.stderr.toString()).toMatch(/^sweep failed: /);
    }
  }, 60_000);
});

describe('accounts list', () => {
  it('names an account endpoint without the credentials its URL may carry', async () => {
    const configFile = writeCliConfig(s3, {
      accounts: [
        { username: 'cam', passwordHash: partnerHash, bucket: 'own-bucket' },
        { username: 'partner', passwordHash: partnerHash, bucket: 'partner-bucket', endpoint: 'https://key:url-secret@s3.partner.test/?token=tok-123' },
      ],
    });
    const res = await runProgram(process.execPath, ['--openssl-legacy-provider', BIN, 'accounts', 'list', '--config', configFile]);
    expect(res.code, res.stderr.toString()).toBe(0);
    const out = res.stdout.toString();
    expect(out).toContain('https://[redacted]@s3.partner.test/?token=[redacted] partner-bucket/');
    expect(out).not.toMatch(/url-secret|tok-123/);
  });
});
