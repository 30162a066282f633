import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, curl } from '../support/clients.js';
import { LogLines } from '../support/log-lines.js';

/**
 * APPE and REST+STOR on S3: a new object made of the old one and the appended bytes, committed
 * atomically. Objects >= 5 MiB are continued with UploadPartCopy (server-side); smaller ones are
 * read and sent again (< 5 MiB). S3 traffic goes through the recording proxy, and the audit log is
 * read: a test looks for an absence only once the bridge answered or reported the failure.
 */
let bridge: TestBridge;
let log: LogLines;
const tmp = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-append-'));
const MiB = 1024 * 1024;

beforeAll(async () => {
  log = new LogLines();
  bridge = await TestBridge.start({ proxy: true, logStream: log.stream, logLevel: 'info' });
});
afterAll(async () => {
  await bridge?.close();
});

function localFile(name: string, data: Buffer): string {
  const path = join(tmp, name);
  writeFileSync(path, data);
  return path;
}

function write(socket: Socket, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(chunk, (err) => (err ? reject(err) : resolve())));
}

async function login(): Promise<RawFtp> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
  expect((await ftp.command('TYPE I')).code).toBe(200);
  return ftp;
}

const commitSent = (key: string) =>
  bridge.proxy!.requestsOf('CompleteMultipartUpload').some((r) => r.key === key) || bridge.proxy!.requestsOf('PutObject').some((r) => r.key === key);

/** Polls STAT (213, bytes moved) during a transfer until the bridge has taken `bytes` from the data connection. */
async function waitForBytesMoved(ftp: RawFtp, bytes: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let stat = await ftp.command('STAT');
  while (!stat.text.includes(` ${bytes} bytes`) && Date.now() < deadline) {
    await sleep(50); // paces the polling only
    stat = await ftp.command('STAT');
  }
  expect(stat.text).toContain(` ${bytes} bytes transferred`);
}

/** Sends `body` with `command` (STOR/APPE) over a fresh PASV connection; the final reply. */
async function upload(ftp: RawFtp, command: string, body: Buffer) {
  const data = await ftp.pasv();
  ftp.send(command);
  const prelim = await ftp.reply();
  if (prelim.code !== 150) {
    data.destroy();
    return prelim;
  }
  // A refusal during the transfer closes the data connection under the writer.
  await write(data, body).then(
    () => data.end(),
    () => data.destroy(),
  );
  return ftp.reply(60_000);
}

describe('APPE', () => {
  it('curl -a appends to a small file (read and resent) and the result is whole by hash', async () => {
    const a = randomBytes(100_000);
    const b = randomBytes(70_000);
    await bridge.put('logs/a.log', a);
    const res = await curl(['-a', '-T', localFile('b.part', b), bridge.url('/logs/a.log')]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(await bridge.objectHash('logs/a.log')).toBe(sha256(Buffer.concat([a, b])));
  });

  it('APPE to a missing file creates it, like STOR', async () => {
    const body = randomBytes(5000);
    const ftp = await login();
    try {
      expect((await upload(ftp, 'APPE new/fresh.bin', body)).code).toBe(226);
      expect(await bridge.objectHash('new/fresh.bin')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
  });

  it('readers see the old object until the append commits; a dropped APPE leaves it untouched', async () => {
    const old = randomBytes(200_000);
    await bridge.put('atomic.bin', old);
    const ftp = await login();
    try {
      const data = await ftp.pasv();
      ftp.send('APPE atomic.bin');
      expect((await ftp.reply()).code).toBe(150);
      await write(data, randomBytes(300_000));
      // the bridge holds every appended byte, and has not committed them
      await waitForBytesMoved(ftp, 300_000);
      expect(await bridge.objectHash('atomic.bin')).toBe(sha256(old));
      data.resetAndDestroy();
      expect((await ftp.reply()).code).toBe(426);
      expect(commitSent('atomic.bin')).toBe(false);
      expect(await bridge.objectHash('atomic.bin')).toBe(sha256(old));
    } finally {
      ftp.close();
    }
  });

  it('appends to a file of 5 MiB or more with UploadPartCopy, or refuses with 504 where the store cannot copy parts', async () => {
    const old = randomBytes(6 * MiB + 123);
    const more = randomBytes(7 * MiB + 45); // two parts of the 5 MiB test part size
    await bridge.put('big/video.bin', old);
    const ftp = await login();
    try {
      const reply = await upload(ftp, 'APPE big/video.bin', more);
      if (bridge.backend.capabilities.uploadPartCopy) {
        expect(reply.code).toBe(226);
        expect(await bridge.objectHash('big/video.bin')).toBe(sha256(Buffer.concat([old, more])));
        expect((await ftp.command('SIZE big/video.bin')).text).toBe(`213 ${old.length + more.length}`);
      } else {
        expect(reply.code).toBe(504);
        expect(reply.text).toMatch(/5 MiB/);
        expect(await bridge.objectHash('big/video.bin')).toBe(sha256(old));
      }
    } finally {
      ftp.close();
    }
  });
});

describe('APPE to a large object, interrupted', () => {
  it('a dropped append to a >= 5 MiB object aborts its multipart upload and leaves the object as it was', async () => {
    const old = randomBytes(5 * MiB + 1);
    await bridge.put('big/dropped.bin', old);
    const ftp = await login();
    try {
      const data = await ftp.pasv();
      ftp.send('APPE big/dropped.bin');
      const prelim = await ftp.reply();
      if (bridge.backend.capabilities.uploadPartCopy) {
        expect(prelim.code).toBe(150);
        // More than one part of new data, so parts are in flight when the connection drops.
        await write(data, randomBytes(6 * MiB)).catch(() => undefined);
        await expect.poll(() => bridge.proxy!.requestsOf('UploadPart').some((r) => r.key === 'big/dropped.bin'), { timeout: 30_000 }).toBe(true);
        data.resetAndDestroy();
        expect((await ftp.reply(30_000)).code).toBe(426);
        // 426 is sent once the abort request was answered
        expect(bridge.proxy!.requestsOf('AbortMultipartUpload').some((r) => r.key === 'big/dropped.bin')).toBe(true);
        expect(commitSent('big/dropped.bin')).toBe(false);
      } else {
        // The server-side copy is tried first: refused before any data is taken.
        expect(prelim.code).toBe(504);
        data.destroy();
      }
      expect(await bridge.objectHash('big/dropped.bin')).toBe(sha256(old));
      if (bridge.backend.capabilities.listMultipartUploads) {
        await expect.poll(() => bridge.pendingUploads(), { timeout: 10_000 }).toEqual([]);
      }
    } finally {
      ftp.close();
    }
  });
});

describe('REST n + STOR', () => {
  it('checks the offset with one HeadObject, and appends to the version that HEAD saw', async () => {
    const proxied = await TestBridge.start({ proxy: true });
    try {
      const first = randomBytes(200_000);
      const rest = randomBytes(100_000);
      await proxied.put('resume/one-head.bin', first);
      const ftp = await RawFtp.connect(proxied.port);
      await ftp.login(USER, PASSWORD);
      expect((await ftp.command('TYPE I')).code).toBe(200);
      try {
        expect((await ftp.command(`REST ${first.length}`)).code).toBe(350);
        const data = await ftp.pasv();
        ftp.send('STOR resume/one-head.bin');
        expect((await ftp.reply()).code).toBe(150);
        data.end(rest);
        expect((await ftp.reply(60_000)).code).toBe(226);
      } finally {
        ftp.close();
      }
      expect(await proxied.objectHash('resume/one-head.bin')).toBe(sha256(Buffer.concat([first, rest])));
      expect(proxied.proxy!.requestsOf('HeadObject').filter((r) => r.key.endsWith('resume/one-head.bin'))).toHaveLength(1);
      // The old bytes were read pinned to the ETag that HEAD returned.
      const reads = proxied.proxy!.requestsOf('GetObject').filter((r) => r.key.endsWith('resume/one-head.bin'));
      expect(reads[0]?.headers['if-match']).toBeTruthy();
    } finally {
      await proxied.close();
    }
  });

  it('a file replaced between the offset check and the append is refused with 554 and left as replaced', async () => {
    const proxied = await TestBridge.start({ proxy: true });
    try {
      await proxied.put('resume/raced.bin', randomBytes(1000));
      // Holds the read of the old bytes until the file has been replaced under the bridge.
      const held = proxied.proxy!.addRule({ operation: 'GetObject', key: 'resume/raced.bin', action: { kind: 'latency', ms: 3000 } });
      const ftp = await RawFtp.connect(proxied.port);
      await ftp.login(USER, PASSWORD);
      expect((await ftp.command('TYPE I')).code).toBe(200);
      try {
        expect((await ftp.command('REST 1000')).code).toBe(350);
        const data = await ftp.pasv();
        ftp.send('STOR resume/raced.bin');
        const deadline = Date.now() + 30_000;
        while (held.matched === 0 && Date.now() < deadline) await sleep(20);
        expect(held.matched).toBe(1);
        const replacement = randomBytes(1000);
        await proxied.put('resume/raced.bin', replacement);
        const reply = await ftp.reply(60_000);
        data.destroy();
        expect(reply.code).toBe(554);
        expect(reply.text).toMatch(/changed/);
        expect(await proxied.objectHash('resume/raced.bin')).toBe(sha256(replacement));
      } finally {
        ftp.close();
      }
    } finally {
      await proxied.close();
    }
  });

  it('curl -C - resumes an upload where the stored file ends', async () => {
    const full = randomBytes(900_000);
    await bridge.put('resume/curl.bin', full.subarray(0, 250_000));
    const res = await curl(['-C', '-', '-T', localFile('full.bin', full), bridge.url('/resume/curl.bin')]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(await bridge.objectHash('resume/curl.bin')).toBe(sha256(full));
  });

  it('REST at an offset that is not the current size is refused with 554 and a reason', async () => {
    await bridge.put('resume/wrong.bin', randomBytes(1000));
    const ftp = await login();
    try {
      expect((await ftp.command('REST 500')).code).toBe(350);
      const reply = await upload(ftp, 'STOR resume/wrong.bin', randomBytes(10));
      expect(reply.code).toBe(554);
      expect(reply.text).toMatch(/current size \(1000\)/);
      expect((await ftp.command('REST 10')).code).toBe(350);
      const missing = await upload(ftp, 'STOR resume/missing.bin', randomBytes(10));
      expect(missing.code).toBe(554);
      expect(await bridge.exists('resume/missing.bin')).toBe(false);
    } finally {
      ftp.close();
    }
  });

  it('after a connection dropped mid-upload: nothing committed, SIZE gives the old size, REST+STOR of the rest completes the file', async () => {
    const full = randomBytes(3 * MiB);
    const first = full.subarray(0, MiB);
    const ftp1 = await login();
    expect((await upload(ftp1, 'STOR cam/clip.mp4', first)).code).toBe(226);
    // The second piece starts, then the connection drops (a camera losing its uplink).
    expect((await ftp1.command(`REST ${first.length}`)).code).toBe(350);
    const data = await ftp1.pasv();
    ftp1.send('STOR cam/clip.mp4');
    expect((await ftp1.reply()).code).toBe(150);
    await write(data, full.subarray(MiB, 2 * MiB));
    data.resetAndDestroy();
    ftp1.socket.resetAndDestroy();
    // no reply can come: the audit line reports the failed upload once its abort settled
    expect(await log.waitForOperation('STOR', '/cam/clip.mp4', 'error')).toMatchObject({ result: 'error' });
    expect(await bridge.objectHash('cam/clip.mp4')).toBe(sha256(first));

    const ftp2 = await login();
    try {
      const size = await ftp2.command('SIZE cam/clip.mp4');
      expect(size.text).toBe(`213 ${first.length}`);
      expect((await ftp2.command(`REST ${first.length}`)).code).toBe(350);
      expect((await upload(ftp2, 'STOR cam/clip.mp4', full.subarray(first.length))).code).toBe(226);
      expect(await bridge.objectHash('cam/clip.mp4')).toBe(sha256(full));
      // The digest of the whole file is known without reading it again.
      const hash = await ftp2.command('HASH cam/clip.mp4');
      expect(hash.text).toBe(`213 SHA-256 0-${full.length} ${sha256(full)} /cam/clip.mp4`);
    } finally {
      ftp2.close();
    }
  });
});
