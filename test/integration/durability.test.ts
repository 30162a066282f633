import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Socket } from 'node:net';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';

/**
 * The durability contract: 226 only once S3 holds the object; every failure answers 4xx, leaves no
 * object (and no new version of an existing one) and aborts the multipart upload.
 */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start();
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

/** No incomplete multipart upload is left (checked where the backend can list them). */
async function expectNoPendingUploads(b: TestBridge): Promise<void> {
  if (!b.backend.capabilities.listMultipartUploads) return;
  const deadline = Date.now() + 10_000;
  let pending = await b.pendingUploads();
  while (pending.length && Date.now() < deadline) {
    await sleep(200);
    pending = await b.pendingUploads();
  }
  expect(pending).toEqual([]);
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
    await sleep(300);
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
    await sleep(300);
    data.resetAndDestroy();
    const reply = await ftp.reply(60_000);
    expect(reply.code).toBe(426);
    expect(await bridge.exists('fail/reset.bin')).toBe(false);
    await expectNoPendingUploads(bridge);
    ftp.close();
  });

  it('a reset while overwriting keeps the old object intact', async () => {
    const old = randomBytes(1000);
    await bridge.put('fail/keep.bin', old);
    const { ftp, data } = await startStor('fail/keep.bin');
    await write(data, randomBytes(2 * MiB)); // within one part: would have been a single PutObject
    await sleep(200);
    data.resetAndDestroy();
    expect((await ftp.reply(60_000)).code).toBe(426);
    expect(await bridge.objectHash('fail/keep.bin')).toBe(sha256(old));
    ftp.close();
  });

  it('a data EOF after the control connection closed is a failed upload, not a complete one', async () => {
    for (const size of [100 * 1024, 6 * MiB]) {
      const key = `fail/truncated-${size}.bin`;
      const { ftp, data } = await startStor(key);
      await write(data, randomBytes(size));
      ftp.socket.end(); // the client is gone (rclone would now commit a truncated object)
      await sleep(100);
      data.end();
      await sleep(1500);
      expect(await bridge.exists(key)).toBe(false);
    }
    await expectNoPendingUploads(bridge);
  });

  it('a client that dies (both connections closed at once) commits nothing', async () => {
    const { ftp, data } = await startStor('fail/died.bin');
    await write(data, randomBytes(3 * MiB));
    data.end();
    ftp.socket.end();
    await sleep(1500);
    expect(await bridge.exists('fail/died.bin')).toBe(false);
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
    const b = await TestBridge.start();
    const ftp = await RawFtp.connect(b.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    ftp.send('STOR shutdown.bin');
    expect((await ftp.reply()).code).toBe(150);
    await write(data, randomBytes(6 * MiB));
    const bucket = b.bucket;
    await b.close();
    data.destroy();
    ftp.close();
    await sleep(500);
    // the closed bridge destroyed its S3 client: look with the long-lived bridge's
    await expect(bridge.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'shutdown.bin' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
  });
});
