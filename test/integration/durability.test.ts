import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';
import { LogLines } from '../support/log-lines.js';

/**
 * The durability contract: 226 only once S3 holds the object; every failure answers 4xx, leaves no
 * object (and no new version of an existing one) and aborts the multipart upload. S3 traffic goes
 * through the recording proxy: a test waits for the upload to reach S3, and for the failure to be
 * answered (426) or, with the client gone, reported (the audit line, written once the multipart
 * upload is aborted), before it looks for an absence.
 */
let bridge: TestBridge;
let log: LogLines;
beforeAll(async () => {
  log = new LogLines();
  bridge = await TestBridge.start({ proxy: true, logStream: log.stream, logLevel: 'info' });
});
afterAll(async () => {
  await bridge?.close();
});

const MiB = 1024 * 1024;

async function startStor(name: string): Promise<{ ftp: RawFtp; data: Socket }> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
  await ftp.command('TYPE I');
  const data = await ftp.pasv();
  ftp.send(`STOR ${name}`);
  const prelim = await ftp.reply();
  expect(prelim.code).toBe(150);
  return { ftp, data };
}

function write(socket: Socket, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/** Waits until the bridge sent S3 a part of the upload of `key`: a multipart upload is in flight. */
async function waitForUploadPart(key: string): Promise<void> {
  await expect.poll(() => bridge.proxy!.requestsOf('UploadPart').some((r) => r.key === key), { timeout: 30_000 }).toBe(true);
}

const abortSent = (key: string) => bridge.proxy!.requestsOf('AbortMultipartUpload').some((r) => r.key === key);
const commitSent = (key: string) =>
  bridge.proxy!.requestsOf('CompleteMultipartUpload').some((r) => r.key === key) || bridge.proxy!.requestsOf('PutObject').some((r) => r.key === key);

/** No incomplete multipart upload is left (checked where the backend can list them). */
async function expectNoPendingUploads(b: TestBridge): Promise<void> {
  if (!b.backend.capabilities.listMultipartUploads) return;
  // called once the failure was answered or reported: the abort was sent; a backend may list late
  await expect.poll(() => b.pendingUploads(), { timeout: 10_000 }).toEqual([]);
}

describe('226 means committed', () => {
  it('the object is readable, complete, the moment 226 arrives', async () => {
    const body = randomBytes(11 * MiB);
    const { ftp, data } = await startStor('commit/now.bin');
    await write(data, body);
    data.end();
    const reply = await ftp.reply(60_000);
    expect(reply.code).toBe(226);
    // no wait: the commit happened before the reply was sent
    expect(await bridge.objectHash('commit/now.bin')).toBe(sha256(body));
    ftp.close();
  });

  it('readers see the old version while the new one uploads, and the new one after 226', async () => {
    const old = Buffer.from('old version');
    await bridge.put('commit/replace.bin', old);
    const body = randomBytes(7 * MiB);
    const { ftp, data } = await startStor('commit/replace.bin');
    await write(data, body.subarray(0, 6 * MiB));
    // the first 5 MiB part is in S3's hands: the new version exists there, unfinished
    await waitForUploadPart('commit/replace.bin');
    expect(await bridge.getObject('commit/replace.bin')).toEqual(old);
    await write(data, body.subarray(6 * MiB));
    data.end();
    expect((await ftp.reply(60_000)).code).toBe(226);
    expect(await bridge.objectHash('commit/replace.bin')).toBe(sha256(body));
    ftp.close();
  });
});

describe('failures leave nothing behind', () => {
  it('a data connection reset mid-upload answers 426, commits nothing and aborts the multipart upload', async () => {
    const { ftp, data } = await startStor('fail/reset.bin');
    await write(data, randomBytes(7 * MiB)); // more than one 5 MiB part: a multipart upload exists
    await waitForUploadPart('fail/reset.bin');
    data.resetAndDestroy();
    const reply = await ftp.reply(60_000);
    expect(reply.code).toBe(426);
    // 426 is sent once the abort request was answered
    expect(abortSent('fail/reset.bin')).toBe(true);
    expect(commitSent('fail/reset.bin')).toBe(false);
    expect(await bridge.exists('fail/reset.bin')).toBe(false);
    await expectNoPendingUploads(bridge);
    ftp.close();
  });

  it('a reset while overwriting keeps the old object intact', async () => {
    const old = randomBytes(1000);
    await bridge.put('fail/keep.bin', old);
    const { ftp, data } = await startStor('fail/keep.bin');
    await write(data, randomBytes(2 * MiB)); // within one part: would have been a single PutObject
    data.resetAndDestroy();
    expect((await ftp.reply(60_000)).code).toBe(426);
    expect(commitSent('fail/keep.bin')).toBe(false);
    expect(await bridge.objectHash('fail/keep.bin')).toBe(sha256(old));
    ftp.close();
  });

  /** The client is gone, so no reply comes: the audit line says the upload failed (after its abort). */
  async function expectFailedUpload(key: string): Promise<void> {
    expect(await log.waitForOperation('STOR', `/${key}`, 'error')).toMatchObject({ result: 'error' });
    expect(commitSent(key)).toBe(false);
    expect(await bridge.exists(key)).toBe(false);
  }

  // The control connection's close must be seen before the data EOF: both happen on the bridge's
  // loop, so the test waits for the control socket to be closed on its side first (rclone would
  // otherwise have the bridge commit a truncated object).
  it.each([
    ['within one part', 100 * 1024],
    ['multipart', 6 * MiB],
  ])('a data EOF after the control connection closed is a failed upload, not a complete one (%s)', async (_, size) => {
    const key = `fail/truncated-${size}.bin`;
    const { ftp, data } = await startStor(key);
    await write(data, randomBytes(size));
    if (size > 5 * MiB) await waitForUploadPart(key);
    ftp.socket.end();
    await new Promise((resolve) => ftp.socket.once('close', resolve));
    data.end();
    await expectFailedUpload(key);
    if (size > 5 * MiB) expect(abortSent(key)).toBe(true);
    await expectNoPendingUploads(bridge);
  });

  it('a client that dies (both connections closed at once) commits nothing', async () => {
    const { ftp, data } = await startStor('fail/died.bin');
    await write(data, randomBytes(3 * MiB));
    data.end();
    ftp.socket.end();
    await expectFailedUpload('fail/died.bin');
  });

  it('an S3 failure answers 451 with no S3 text, and the session goes on', async () => {
    const b = await TestBridge.start({ accounts: [{ username: USER, password: PASSWORD, bucket: 'no-such-bucket-ftp-s3-bridge' }] });
    try {
      const ftp = await RawFtp.connect(b.port);
      await ftp.login(USER, PASSWORD);
      const data = await ftp.pasv();
      ftp.send('STOR x.bin');
      const first = await ftp.reply(60_000);
      if (first.code === 150) {
        data.end(randomBytes(1000));
        const final = await ftp.reply(60_000);
        expect(final.code).toBe(451);
        expect(final.text).not.toMatch(/NoSuchBucket|Error:|at |s3/i);
      } else {
        expect(first.code).toBe(451);
        expect(first.text).not.toMatch(/NoSuchBucket|Error:|at |s3/i);
      }
      expect((await ftp.command('NOOP')).code).toBe(200);
      ftp.close();
    } finally {
      await b.close();
    }
  });

  it('a server shut down mid-upload commits nothing', async () => {
    const bLog = new LogLines();
    const b = await TestBridge.start({ proxy: true, logStream: bLog.stream, logLevel: 'info' });
    const ftp = await RawFtp.connect(b.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    ftp.send('STOR shutdown.bin');
    expect((await ftp.reply()).code).toBe(150);
    await write(data, randomBytes(6 * MiB));
    await expect.poll(() => b.proxy!.requestsOf('UploadPart').some((r) => r.key === 'shutdown.bin'), { timeout: 30_000 }).toBe(true);
    const bucket = b.bucket;
    const requests = b.proxy!.requests;
    await b.close();
    data.destroy();
    ftp.close();
    // the upload's end is reported (result error) once its abort settled
    expect(await bLog.waitForOperation('STOR', '/shutdown.bin', 'error')).toMatchObject({ result: 'error' });
    expect(requests.some((r) => r.key === 'shutdown.bin' && (r.operation === 'CompleteMultipartUpload' || r.operation === 'PutObject'))).toBe(false);
    // the closed bridge destroyed its S3 client: look with the long-lived bridge's
    await expect(bridge.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'shutdown.bin' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
  });
});
