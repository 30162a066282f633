import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { hashPassword } from '../../src/accounts/passwords.js';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, runProgram, type FtpReply } from '../support/clients.js';
import { writeCliConfig } from '../support/cli-config.js';
import { BIN } from '../support/cli-process.js';
import { LogLines } from '../support/log-lines.js';
import { S3Proxy } from '../support/s3-proxy.js';
import type { BackendName } from '../support/s3-backends.js';

/**
 * The checksum algorithm the bridge uses per bucket, probed at start on the run's S3 (s3rver, or
 * Swift/moto/MinIO in CI): a configured algorithm the store rejects becomes none with one warning
 * naming the bucket and the algorithm; the default with a custom endpoint is SHA256 only where the
 * store verifies it; `check-config --probe` reports the same choice; the bytes round-trip either way.
 */
const MiB = 1024 * 1024;
const s3 = inject('s3');
const bridges: TestBridge[] = [];
const proxies: S3Proxy[] = [];
afterAll(async () => {
  for (const b of bridges) await b.close();
  for (const p of proxies) await p.close();
});

/**
 * What each store does with x-amz-checksum-sha256 (the probe's PutObject right and wrong, HeadObject,
 * and a one-part multipart upload whose commit lists the part's checksum). s3rver ignores the headers;
 * moto keeps them without checking the bytes; Swift's s3api (2.30) ignores them on PutObject and
 * UploadPart, but its CompleteMultipartUpload schema allows only PartNumber and ETag: MalformedXML.
 */
const SHA256_SUPPORT: Record<BackendName, string> = {
  s3rver: 'accepted',
  moto: 'kept',
  swift: 'rejected (MalformedXML on a multipart upload)',
  minio: 'verified',
};

async function startBridge(options: Parameters<typeof TestBridge.start>[0]): Promise<{ bridge: TestBridge; log: LogLines }> {
  const log = new LogLines();
  const bridge = await TestBridge.start({ ...options, logStream: log.stream, logLevel: 'info' });
  bridges.push(bridge);
  return { bridge, log };
}

/** The start-up line about the checksum of `bucket`. */
const checksumLines = (log: LogLines, bucket: string) => log.lines.filter((l) => l.event === 'checksum-algorithm' && l.bucket === bucket);

async function stor(port: number, name: string, body: Buffer): Promise<FtpReply> {
  const ftp = await RawFtp.connect(port);
  try {
    await ftp.login(USER, PASSWORD);
    await ftp.command('TYPE I');
    const data = await ftp.pasv();
    ftp.send(`STOR ${name}`);
    expect((await ftp.reply()).code).toBe(150);
    await new Promise<void>((resolve) => data.end(body, () => resolve()));
    return await ftp.reply(60_000);
  } finally {
    ftp.close();
  }
}

/** A single-request upload and a multipart one (three 5 MiB parts) commit and read back byte for byte. */
async function roundTrip(bridge: TestBridge): Promise<void> {
  for (const [name, body] of [
    ['small.bin', randomBytes(3000)],
    ['large.bin', randomBytes(12 * MiB)],
  ] as const) {
    expect((await stor(bridge.port, name, body)).code).toBe(226);
    expect(await bridge.objectHash(name)).toBe(sha256(body));
  }
}

describe('the checksum algorithm per bucket, probed at start', () => {
  it(`default on a custom endpoint: SHA256 only where the store verifies it (${s3.backend}: ${SHA256_SUPPORT[s3.backend]}); check-config --probe agrees`, async () => {
    const { bridge, log } = await startBridge({});
    const lines = checksumLines(log, bridge.bucket);
    expect(lines).toHaveLength(1);
    const expected = SHA256_SUPPORT[s3.backend] === 'verified' ? 'SHA256' : 'none';
    expect(lines[0]).toMatchObject({ checksumAlgorithm: expected, configured: 'default', level: 30 });
    expect(String(lines[0]?.msg)).toContain(`bucket ${bridge.bucket} (`);

    const file = writeCliConfig(s3, { accounts: [{ username: 'probe', passwordHash: await hashPassword('pw'), bucket: bridge.bucket, prefix: 'p/' }] });
    const res = await runProgram(process.execPath, [BIN, 'check-config', '--probe', '--config', file], { timeoutMs: 90_000 });
    const out = res.stdout.toString();
    expect(out).toContain(`  checksum SHA256: ${SHA256_SUPPORT[s3.backend]}\n`);
    expect(out).toContain(`  in force: ${expected} (`);
    expect(res.code).toBe(0);

    await roundTrip(bridge);
    // The probe objects are gone: only the uploads are in the bucket.
    expect(await bridge.keys()).toEqual(['large.bin', 'small.bin']);
  });

  it(`configured SHA256: kept where the store takes it, none with one warning where it rejects it (${s3.backend})`, async () => {
    const { bridge, log } = await startBridge({ s3: { checksumAlgorithm: 'SHA256' } });
    const lines = checksumLines(log, bridge.bucket);
    expect(lines).toHaveLength(1);
    if (SHA256_SUPPORT[s3.backend].startsWith('rejected')) {
      expect(lines[0]).toMatchObject({ checksumAlgorithm: 'none', configured: 'SHA256', level: 40 });
      expect(lines[0]?.msg).toContain(`bucket ${bridge.bucket} (`);
      expect(lines[0]?.msg).toContain('rejects x-amz-checksum-sha256');
    } else {
      expect(lines[0]).toMatchObject({ checksumAlgorithm: 'SHA256', configured: 'SHA256', level: 30 });
    }
    // Without the fallback, every multipart upload to a store that rejects the commit's checksums fails.
    await roundTrip(bridge);
  });

  it('a store that refuses the commit of a multipart upload with checksums (answered as Swift does) gets none, with one warning naming bucket and algorithm', async () => {
    const proxy = await S3Proxy.start(s3.endpoint);
    proxies.push(proxy);
    // The probe's commit is the first CompleteMultipartUpload: refused as Swift's s3api refuses a <ChecksumCRC32> in a <Part>.
    const rule = proxy.addRule({ operation: 'CompleteMultipartUpload', times: 1, action: { kind: 'error', status: 400, code: 'MalformedXML' } });
    const { bridge, log } = await startBridge({ backend: { ...s3, endpoint: proxy.endpoint }, s3: { checksumAlgorithm: 'CRC32' } });
    expect(rule.fired).toBe(1);
    const lines = checksumLines(log, bridge.bucket);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ checksumAlgorithm: 'none', configured: 'CRC32', level: 40 });
    expect(lines[0]?.msg).toBe(
      `bucket ${bridge.bucket} (${proxy.endpoint} ${s3.region}): the store rejects x-amz-checksum-crc32 (MalformedXML on a multipart upload): uploads carry no checksum (s3.checksumAlgorithm CRC32 -> none)`,
    );
    await roundTrip(bridge);
    // The uploads carried no checksum.
    const sent = proxy.requests.filter((r) => ['PutObject', 'UploadPart', 'CreateMultipartUpload'].includes(r.operation) && r.key.endsWith('.bin'));
    expect(sent.length).toBeGreaterThanOrEqual(5);
    for (const r of sent) expect(Object.keys(r.headers).filter((h) => h.startsWith('x-amz-checksum'))).toEqual([]);
  });

  it('a bucket that a reloaded accounts file names first is probed as it arrives: a store refusing the commit\'s checksums gets none before the first upload', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'probe-accounts-'));
    const file = join(dir, 'accounts.yaml');
    writeFileSync(file, '[]\n');
    const proxy = await S3Proxy.start(s3.endpoint);
    proxies.push(proxy);
    try {
      const { bridge, log } = await startBridge({
        backend: { ...s3, endpoint: proxy.endpoint },
        accounts: [],
        s3: { checksumAlgorithm: 'SHA256' },
        config: { auth: { accountsFile: file, accountsReload: { pollSeconds: 1 } } },
      });
      // No account at start: nothing probed.
      expect(checksumLines(log, bridge.bucket)).toEqual([]);
      const rule = proxy.addRule({ operation: 'CompleteMultipartUpload', times: 1, action: { kind: 'error', status: 400, code: 'MalformedXML' } });
      writeFileSync(
        file,
        `accounts:\n  - username: ${USER}\n    passwordHash: '${await hashPassword(PASSWORD)}'\n    bucket: ${bridge.bucket}\n    prefix: ''\n`,
      );
      await expect.poll(() => checksumLines(log, bridge.bucket).length, { timeout: 30_000, interval: 100 }).toBe(1);
      expect(rule.fired).toBe(1);
      expect(checksumLines(log, bridge.bucket)[0]).toMatchObject({ checksumAlgorithm: 'none', configured: 'SHA256', level: 40 });
      await roundTrip(bridge);
      const sent = proxy.requests.filter((r) => ['PutObject', 'UploadPart', 'CreateMultipartUpload'].includes(r.operation) && r.key.endsWith('.bin'));
      for (const r of sent) expect(Object.keys(r.headers).filter((h) => h.startsWith('x-amz-checksum'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a store the probe cannot get an answer from (access denied) keeps the configured algorithm, and the line says so', async () => {
    const proxy = await S3Proxy.start(s3.endpoint);
    proxies.push(proxy);
    const { bridge } = await startBridge({ backend: { ...s3, endpoint: proxy.endpoint } });
    // From now on every PutObject is refused as by credentials without s3:PutObject: the probe cannot answer.
    const rule = proxy.addRule({ operation: 'PutObject', action: { kind: 'error', status: 403, code: 'AccessDenied' } });
    const log = new LogLines();
    const second = await TestBridge.start({
      backend: { ...s3, endpoint: proxy.endpoint },
      s3: { checksumAlgorithm: 'CRC32' },
      accounts: [{ username: USER, password: PASSWORD, bucket: bridge.bucket }],
      logStream: log.stream,
      logLevel: 'info',
    });
    bridges.push(second);
    expect(rule.fired).toBeGreaterThan(0);
    const lines = checksumLines(log, bridge.bucket);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ checksumAlgorithm: 'CRC32', configured: 'CRC32', level: 40 });
    expect(lines[0]?.msg).toContain('the checksum probe could not answer (AccessDenied): uploads carry CRC32 checksums as configured');
    proxy.removeRule(rule);
  });
});
