import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import {
  CreateBucketCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Client, sha256, TestBridge } from '../support/bridge.js';
import { EICAR, EICAR_SIGNATURE, PATTERN_SIGNATURE, TEST_PATTERN, startClamd, type TestClamd } from '../support/clamd.js';
import { RawFtp } from '../support/clients.js';
import { startMoto } from '../support/moto-s3.js';
import { startBackend, type StartedBackend } from '../support/s3-backends.js';
import { sftpConfig, sftpSession, SshKeys } from '../support/sftp.js';

/*
 * Malware scan before the commit, with a real clamd (Debian's clamav-daemon, started here on a
 * Unix socket with a signature database written by test/support/clamd.ts: EICAR and a test pattern).
 * The s3rver bridge checks what is visible (keys and bytes); s3rver drops tags and has no
 * ListMultipartUploads, so a second bridge on a moto of this file's own checks the tags and that
 * no multipart upload is left. Both stores are this file's own, whatever S3_TEST_BACKEND says:
 * Swift's s3api refuses object tags, which quarantine needs (there, as when the quarantine cannot
 * be stored, an infected upload is refused and stored nowhere: tested through the fault proxy).
 */
const MiB = 1024 * 1024;

/** `size` random bytes with `pattern` at their end (in the last part of a multipart upload). */
const withPatternAtEnd = (size: number, pattern: Buffer) => Buffer.concat([randomBytes(size - pattern.length), pattern]);

/** STOR over a passive connection; the final reply (after 150). The bridge may cut the data connection (refusals). */
async function stor(port: number, user: string, name: string, body: Buffer, command = 'STOR'): Promise<{ code: number; text: string }> {
  const ftp = await RawFtp.connect(port);
  try {
    await ftp.login(user, `${user}-pw`);
    const data = await ftp.pasv();
    data.on('error', () => undefined);
    ftp.send(`${command} ${name}`);
    expect((await ftp.reply()).code).toBe(150);
    data.end(body);
    const final = await ftp.reply(60_000);
    data.destroy();
    return { code: final.code, text: final.text.replace(/^\d{3} /, '') };
  } finally {
    ftp.close();
  }
}

/** An SFTP upload (ssh2 client, password login): OPEN, one WRITE, CLOSE; the CLOSE status (0: OK) and its text. */
async function sftpPut(port: number, user: string, path: string, body: Buffer): Promise<{ code: number; text: string }> {
  const { sftp, close } = await sftpSession(port, user, `${user}-pw`);
  try {
    const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(path, 'w', (err, h) => (err ? reject(err) : resolve(h))));
    await new Promise<void>((resolve, reject) => sftp.write(handle, body, 0, body.length, 0, (err) => (err ? reject(err) : resolve())));
    return await new Promise((resolve) =>
      sftp.close(handle, (err) => resolve(err ? { code: (err as { code?: number }).code ?? -1, text: err.message } : { code: 0, text: '' })),
    );
  } finally {
    close();
  }
}

/** The audit lines of the bridge's log (JSON, level info). */
function auditLog(): { stream: PassThrough; operations: () => Record<string, unknown>[] } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return {
    stream,
    operations: () =>
      text
        .split('\n')
        .filter((l) => l.includes('"event":"operation"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('malware scan on s3rver: reject, quarantine placement, oversize, scanner down', () => {
  let clamd: TestClamd;
  let s3rver: StartedBackend;
  let bridge: TestBridge;
  let keys: SshKeys;
  const log = auditLog();
  beforeAll(async () => {
    [clamd, s3rver, keys] = await Promise.all([startClamd(), startBackend('s3rver'), SshKeys.create()]);
    bridge = await TestBridge.start({
      backend: s3rver.s3,
      proxy: true,
      accounts: [
        { username: 'rejects', password: 'rejects-pw', prefix: 'r/', policy: { scan: 'reject' } },
        { username: 'quarantines', password: 'quarantines-pw', prefix: 'q/', policy: { scan: 'quarantine', quarantine: { prefix: 'quarantine/' } } },
        { username: 'plain', password: 'plain-pw', prefix: 'p/' },
      ],
      config: { scan: { clamd: { socket: clamd.socket }, timeoutSeconds: 20, maxMiB: 8 }, ...sftpConfig(keys.hostKey) },
      logStream: log.stream,
      logLevel: 'info',
    });
  });
  afterAll(async () => {
    await bridge?.close();
    await Promise.all([clamd?.close(), s3rver?.stop()]);
    keys?.remove();
  });

  it('commits clean files (single request and multipart) with 226, the bytes intact', async () => {
    const small = Buffer.from('a clean invoice\n');
    const large = randomBytes(7 * MiB + 123); // partSizeMiB 5: two parts
    expect((await stor(bridge.port, 'rejects', 'clean.txt', small)).code).toBe(226);
    expect((await stor(bridge.port, 'rejects', 'clean.bin', large)).code).toBe(226);
    expect(await bridge.objectHash('r/clean.txt')).toBe(sha256(small));
    expect(await bridge.objectHash('r/clean.bin')).toBe(sha256(large));
    const audit = log.operations().find((o) => o.key === 'r/clean.bin');
    expect(audit).toMatchObject({ replyCode: 226, scan: { result: 'clean', action: 'committed' } });
  });

  it('refuses EICAR and a multipart upload with the pattern in its last part: 550 with the signature, nothing in the bucket', async () => {
    const eicar = await stor(bridge.port, 'rejects', 'eicar.com', EICAR);
    expect(eicar.code).toBe(550);
    expect(eicar.text).toBe(`eicar.com: rejected by the malware scanner (${EICAR_SIGNATURE})`);
    const large = await stor(bridge.port, 'rejects', 'large.bin', withPatternAtEnd(7 * MiB, TEST_PATTERN));
    expect(large).toEqual({ code: 550, text: `large.bin: rejected by the malware scanner (${PATTERN_SIGNATURE})` });
    expect(await bridge.keys('r/')).toEqual(['r/clean.bin', 'r/clean.txt']);
    // Not even for a moment: no request that creates an object was sent for them, and the multipart upload was aborted.
    const created = [...bridge.proxy!.requestsOf('PutObject'), ...bridge.proxy!.requestsOf('CompleteMultipartUpload'), ...bridge.proxy!.requestsOf('CopyObject')];
    expect(created.map((r) => r.key).filter((k) => k === 'r/eicar.com' || k === 'r/large.bin')).toEqual([]);
    expect(bridge.proxy!.requestsOf('AbortMultipartUpload').map((r) => r.key)).toContain('r/large.bin');
    expect(log.operations().find((o) => o.key === 'r/large.bin')).toMatchObject({
      replyCode: 550,
      error: 'SCAN_REJECTED',
      scan: { result: 'infected', signature: PATTERN_SIGNATURE, action: 'rejected' },
    });
  });

  it('SFTP uploads are scanned too: EICAR refused at CLOSE with the signature, nothing stored; a clean file committed; the audit carries the verdict', async () => {
    const clean = Buffer.from('a clean sftp invoice\n');
    expect(await sftpPut(bridge.sftpPort!, 'rejects', '/sftp-clean.txt', clean)).toEqual({ code: 0, text: '' });
    expect(await bridge.objectHash('r/sftp-clean.txt')).toBe(sha256(clean));
    expect(log.operations().find((o) => o.key === 'r/sftp-clean.txt')).toMatchObject({ protocol: 'sftp', replyCode: 0, scan: { result: 'clean', action: 'committed' } });

    const eicar = await sftpPut(bridge.sftpPort!, 'rejects', '/sftp-eicar.com', EICAR);
    expect(eicar).toEqual({ code: 4, text: `sftp-eicar.com: rejected by the malware scanner (${EICAR_SIGNATURE})` });
    expect(await bridge.keys('r/sftp-')).toEqual(['r/sftp-clean.txt']);
    expect(bridge.proxy!.requestsOf('PutObject').map((r) => r.key)).not.toContain('r/sftp-eicar.com');
    expect(log.operations().find((o) => o.key === 'r/sftp-eicar.com')).toMatchObject({
      protocol: 'sftp',
      result: 'error',
      error: 'SCAN_REJECTED',
      scan: { result: 'infected', signature: EICAR_SIGNATURE, action: 'rejected' },
    });
  });

  it('quarantine: infected files (single request and multipart) land under the quarantine prefix, same relative path; clean ones where asked, no staging left', async () => {
    const eicar = await stor(bridge.port, 'quarantines', 'in/eicar.com', EICAR);
    expect(eicar).toEqual({ code: 550, text: `eicar.com: rejected by the malware scanner (${EICAR_SIGNATURE})` });
    const infected = withPatternAtEnd(6 * MiB, TEST_PATTERN);
    expect((await stor(bridge.port, 'quarantines', 'in/large.bin', infected)).code).toBe(550);
    const clean = randomBytes(6 * MiB);
    expect((await stor(bridge.port, 'quarantines', 'in/clean.bin', clean)).code).toBe(226);
    expect(await bridge.objectHash('quarantine/in/eicar.com')).toBe(sha256(EICAR));
    expect(await bridge.objectHash('quarantine/in/large.bin')).toBe(sha256(infected));
    expect(await bridge.objectHash('q/in/clean.bin')).toBe(sha256(clean));
    // Nothing else: no infected file at its own key, no staged upload left behind.
    expect(await bridge.keys('q/')).toEqual(['q/in/clean.bin']);
    expect(await bridge.keys('quarantine/')).toEqual(['quarantine/in/eicar.com', 'quarantine/in/large.bin']);
  });

  it('quarantine that cannot be stored (S3 refuses it): still 550, stored nowhere', async () => {
    const rule = bridge.proxy?.addRule({ operation: 'PutObject', key: /^quarantine\//, action: { kind: 'error', status: 500 } });
    try {
      const res = await stor(bridge.port, 'quarantines', 'in/refused.com', EICAR);
      expect(res).toEqual({ code: 550, text: `refused.com: rejected by the malware scanner (${EICAR_SIGNATURE})` });
      expect(rule?.fired).toBeGreaterThan(0);
    } finally {
      if (rule) bridge.proxy?.removeRule(rule);
    }
    expect(await bridge.exists('quarantine/in/refused.com')).toBe(false);
    expect(await bridge.exists('q/in/refused.com')).toBe(false);
    expect(log.operations().find((o) => o.key === 'q/in/refused.com')).toMatchObject({
      replyCode: 550,
      scan: { result: 'infected', action: 'rejected', signature: EICAR_SIGNATURE },
    });
  });

  it('oversize (scan.maxMiB 8, scan.oversize reject): 550 once past the limit, nothing stored', async () => {
    const res = await stor(bridge.port, 'rejects', 'huge.bin', randomBytes(9 * MiB));
    expect(res).toEqual({ code: 550, text: 'huge.bin: too large for the malware scanner (over 8 MiB)' });
    expect(await bridge.exists('r/huge.bin')).toBe(false);
  });

  it('APPE: a signature split across an upload and its append is found (small, and >= 5 MiB where the old bytes are streamed through the scanner); the old object stays', async () => {
    const head = TEST_PATTERN.subarray(0, 10);
    const tail = TEST_PATTERN.subarray(10);
    for (const [name, size] of [['split-small.bin', 1000], ['split-large.bin', 6 * MiB]] as const) {
      const first = Buffer.concat([randomBytes(size), head]);
      expect((await stor(bridge.port, 'rejects', name, first)).code).toBe(226);
      const appended = await stor(bridge.port, 'rejects', name, tail, 'APPE');
      expect(appended).toEqual({ code: 550, text: `${name}: rejected by the malware scanner (${PATTERN_SIGNATURE})` });
      expect(await bridge.objectHash(`r/${name}`)).toBe(sha256(first));
    }
  });

  it('accounts without scan are not scanned', async () => {
    expect((await stor(bridge.port, 'plain', 'eicar.com', EICAR)).code).toBe(226);
    expect(await bridge.objectHash('p/eicar.com')).toBe(sha256(EICAR));
  });

  it('clamd stopped: 451 and nothing committed (fail closed), /readyz failed; back up, uploads pass again and /readyz is ok', async () => {
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${bridge.httpPort}/readyz`);
      return { status: res.status, body: (await res.json()) as unknown };
    };
    const ready = { status: 200, body: { ready: true, draining: false, checks: { serving: 'ok', buckets: 'ok', scanner: 'ok' } } };
    // Each answer is awaited; the scanner's PING result is reused for up to 5 s (readinessCacheSeconds).
    await expect.poll(readyz, { timeout: 30_000, interval: 200 }).toEqual(ready);
    await clamd.stop();
    try {
      const res = await stor(bridge.port, 'rejects', 'while-down.txt', Buffer.from('clean, but unscanned\n'));
      expect(res).toEqual({ code: 451, text: 'while-down.txt: malware scanner unavailable; nothing stored, try again' });
      expect(await bridge.exists('r/while-down.txt')).toBe(false);
      // ok/failed only: no socket path or error (http.readyzDetails is off).
      await expect
        .poll(readyz, { timeout: 30_000, interval: 200 })
        .toEqual({ status: 503, body: { ready: false, draining: false, checks: { serving: 'ok', buckets: 'ok', scanner: 'failed' } } });
    } finally {
      await clamd.start();
    }
    await expect.poll(readyz, { timeout: 30_000, interval: 200 }).toEqual(ready);
    expect((await stor(bridge.port, 'rejects', 'while-down.txt', Buffer.from('clean\n'))).code).toBe(226);
  });

  it('counts verdicts and scan latency in /metrics', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${bridge.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/scan_verdicts_total\{result="infected",action="rejected"\} 6/);
    expect(metrics).toMatch(/scan_verdicts_total\{result="infected",action="quarantined"\} 2/);
    expect(metrics).toMatch(/scan_verdicts_total\{result="error",action="rejected"\} 1/);
    expect(metrics).toMatch(/scan_verdicts_total\{result="oversize",action="rejected"\} 1/);
    expect(metrics).toMatch(/scan_latency_seconds_count \d+/);
  });
});

describe('malware scan on moto: quarantine tags, no multipart upload left, accept-unscanned', () => {
  let clamd: TestClamd;
  let moto: StartedBackend;
  let bridge: TestBridge;
  beforeAll(async () => {
    [clamd, moto] = await Promise.all([startClamd(), startMoto()]);
    bridge = await TestBridge.start({
      backend: moto.s3,
      accounts: [
        { username: 'rejects', password: 'rejects-pw', prefix: 'r/', policy: { scan: 'reject', tags: { partner: 'acme' } } },
        {
          username: 'quarantines',
          password: 'quarantines-pw',
          prefix: 'q/',
          policy: { scan: 'quarantine', quarantine: { prefix: 'quarantine/' }, tags: { partner: 'acme' } },
        },
      ],
      config: { scan: { clamd: { socket: clamd.socket }, timeoutSeconds: 20, maxMiB: 6, oversize: 'accept-unscanned', onError: 'accept-unscanned' } },
    });
  });
  afterAll(async () => {
    await bridge?.close();
    await Promise.all([clamd?.close(), moto?.stop()]);
  });

  const tags = async (key: string) =>
    Object.fromEntries(((await bridge.s3.send(new GetObjectTaggingCommand({ Bucket: bridge.bucket, Key: key }))).TagSet ?? []).map((t) => [t.Key, t.Value]));

  it('a multipart upload with the pattern in its last part is aborted: no object, no upload left', async () => {
    // Under scan.maxMiB (6), above partSizeMiB (5).
    const res = await stor(bridge.port, 'rejects', 'large.bin', withPatternAtEnd(5 * MiB + 10, TEST_PATTERN));
    expect(res.code).toBe(550);
    expect(await bridge.keys()).toEqual([]);
    expect(await bridge.pendingUploads()).toEqual([]);
  });

  it('quarantined files carry scan=infected and the signature (with the account tags); clean ones only the account tags', async () => {
    expect((await stor(bridge.port, 'quarantines', 'eicar.com', EICAR)).code).toBe(550);
    expect((await stor(bridge.port, 'quarantines', 'large.bin', withPatternAtEnd(5 * MiB + 10, TEST_PATTERN))).code).toBe(550);
    expect((await stor(bridge.port, 'quarantines', 'clean.bin', randomBytes(5 * MiB + 10))).code).toBe(226);
    expect(await tags('quarantine/eicar.com')).toEqual({ scan: 'infected', signature: EICAR_SIGNATURE, partner: 'acme' });
    expect(await tags('quarantine/large.bin')).toEqual({ scan: 'infected', signature: PATTERN_SIGNATURE, partner: 'acme' });
    expect(await tags('q/clean.bin')).toEqual({ partner: 'acme' });
    expect(await bridge.keys()).toEqual(['q/clean.bin', 'quarantine/eicar.com', 'quarantine/large.bin']);
    expect(await bridge.pendingUploads()).toEqual([]);
  });

  it('scan.oversize accept-unscanned: a file above maxMiB is committed tagged scan=unscanned', async () => {
    const body = randomBytes(7 * MiB);
    expect((await stor(bridge.port, 'rejects', 'huge.bin', body)).code).toBe(226);
    expect(await bridge.objectHash('r/huge.bin')).toBe(sha256(body));
    expect(await tags('r/huge.bin')).toEqual({ scan: 'unscanned', partner: 'acme' });
  });

  it('scan.onError accept-unscanned: with clamd stopped, uploads are committed tagged scan=unscanned', async () => {
    await clamd.stop();
    try {
      expect((await stor(bridge.port, 'rejects', 'while-down.txt', Buffer.from('x\n'))).code).toBe(226);
      expect((await stor(bridge.port, 'quarantines', 'while-down.bin', randomBytes(5 * MiB + 10))).code).toBe(226);
    } finally {
      await clamd.start();
    }
    expect(await tags('r/while-down.txt')).toEqual({ scan: 'unscanned', partner: 'acme' });
    expect(await tags('q/while-down.bin')).toEqual({ scan: 'unscanned', partner: 'acme' });
  });
});

describe('malware scan with a hung clamd (SIGSTOP)', () => {
  let clamd: TestClamd;
  let bridge: TestBridge;
  beforeAll(async () => {
    clamd = await startClamd();
    bridge = await TestBridge.start({
      accounts: [{ username: 'rejects', password: 'rejects-pw', prefix: 'r/', policy: { scan: 'reject' } }],
      config: { scan: { clamd: { socket: clamd.socket }, timeoutSeconds: 2 } },
    });
  });
  afterAll(async () => {
    clamd?.resume();
    await bridge?.close();
    await clamd?.close();
  });

  it('holds the client back (back-pressure, not buffering), then answers 451 after scan.timeoutSeconds; nothing stored', async () => {
    clamd.pause();
    const body = randomBytes(48 * MiB);
    const ftp = await RawFtp.connect(bridge.port);
    try {
      await ftp.login('rejects', 'rejects-pw');
      const data = await ftp.pasv();
      data.on('error', () => undefined);
      ftp.send('STOR hung.bin');
      expect((await ftp.reply()).code).toBe(150);
      let allSent = false;
      data.write(body, (err) => (allSent = !err));
      const final = await ftp.reply(60_000);
      expect(final.code).toBe(451);
      expect(final.text).toBe('451 hung.bin: malware scanner timed out; nothing stored, try again');
      // The bridge took no more than its bounded buffers while clamd read nothing: most of the
      // 48 MiB never left the client.
      expect(allSent).toBe(false);
      data.destroy();
    } finally {
      ftp.close();
      clamd.resume();
    }
    expect(await bridge.exists('r/hung.bin')).toBe(false);
    expect((await stor(bridge.port, 'rejects', 'after.txt', Buffer.from('clamd runs again\n'))).code).toBe(226);
  });
});

describe('malware scan with checksums and Object Lock (moto)', () => {
  // A quarantine account on a bucket with Object Lock, uploads with SHA256 checksums: a multipart
  // upload is staged, then copied where the verdict says (CopyObject). What is committed where
  // asked carries a checksum S3 verified and the account's retention; a quarantined file is not
  // locked (the operator must be able to delete it), and no staged object or version is left.
  let clamd: TestClamd;
  let moto: StartedBackend;
  let s3: S3Client;
  let bridge: TestBridge;
  const bucket = `scanlock-${randomBytes(5).toString('hex')}`;
  beforeAll(async () => {
    [clamd, moto] = await Promise.all([startClamd(), startMoto()]);
    s3 = s3Client(moto.s3);
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    bridge = await TestBridge.start({
      backend: moto.s3,
      s3: { checksumAlgorithm: 'SHA256' },
      accounts: [
        {
          username: 'quarantines',
          password: 'quarantines-pw',
          bucket,
          prefix: 'q/',
          policy: { scan: 'quarantine', quarantine: { prefix: 'quarantine/' }, retention: { mode: 'GOVERNANCE', days: 1 } },
        },
      ],
      config: { scan: { clamd: { socket: clamd.socket }, timeoutSeconds: 20, maxMiB: 16 } },
    });
  }, 120_000);
  afterAll(async () => {
    await bridge?.close();
    s3?.destroy();
    await Promise.all([clamd?.close(), moto?.stop()]);
  });

  const head = (key: string) => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
  const base64Sha256 = (b: Buffer) => Buffer.from(sha256(b), 'hex').toString('base64');
  const bytesOf = async (key: string) => Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());

  it('clean uploads (single request, and multipart copied from staging) are stored retained, with a SHA256 checksum S3 keeps', async () => {
    const small = Buffer.from('a clean delivery note\n');
    const large = randomBytes(5 * MiB + 10);
    const started = Date.now();
    expect((await stor(bridge.port, 'quarantines', 'small.txt', small)).code).toBe(226);
    expect((await stor(bridge.port, 'quarantines', 'large.bin', large)).code).toBe(226);
    for (const [key, body] of [['q/small.txt', small], ['q/large.bin', large]] as const) {
      const res = await head(key);
      expect(sha256(await bytesOf(key))).toBe(sha256(body));
      expect(res.ObjectLockMode).toBe('GOVERNANCE');
      expect(res.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThanOrEqual(started + 86_400_000 - 60_000);
      // The single request carried the object's SHA-256; the copy of the staged upload asked S3 for it.
      expect(res.ChecksumSHA256).toBe(base64Sha256(body));
    }
  });

  it('infected uploads (single request and multipart) are quarantined unlocked; no staged object or version is left', async () => {
    expect((await stor(bridge.port, 'quarantines', 'eicar.com', EICAR)).code).toBe(550);
    const large = withPatternAtEnd(5 * MiB + 10, TEST_PATTERN);
    expect((await stor(bridge.port, 'quarantines', 'large-infected.bin', large)).code).toBe(550);
    for (const [key, body] of [['quarantine/eicar.com', EICAR], ['quarantine/large-infected.bin', large]] as const) {
      const res = await head(key);
      expect(sha256(await bytesOf(key))).toBe(sha256(body));
      expect(res.ObjectLockMode).toBeUndefined();
      expect(res.ObjectLockLegalHoldStatus).toBeUndefined();
    }
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'quarantine/.scanning/' }));
    expect([...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])]).toEqual([]);
    expect((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).toEqual([]);
  });
});
