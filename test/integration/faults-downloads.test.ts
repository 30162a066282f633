import v8 from 'node:v8';
import vm from 'node:vm';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, curl } from '../support/clients.js';

/**
 * Downloads that S3 breaks mid-body are resumed with a ranged GET pinned to the ETag; when that
 * is impossible the client gets 4xx and a closed data connection, never 226 after a short file.
 */
let bridge: TestBridge;
let fragile: TestBridge;
const MiB = 1024 * 1024;
const body = randomBytes(3 * MiB + 12345);

beforeAll(async () => {
  [bridge, fragile] = await Promise.all([
    TestBridge.start({ proxy: true, s3: { requestTimeoutSeconds: 3 } }),
    TestBridge.start({ proxy: true, s3: { requestTimeoutSeconds: 1, maxAttempts: 2 } }),
  ]);
  await bridge.put('dl/object.bin', body);
  await fragile.put('dl/object.bin', body);
});
afterAll(async () => {
  await Promise.all([bridge?.close(), fragile?.close()]);
});
afterEach(() => {
  bridge.proxy?.clearRules();
  fragile.proxy?.clearRules();
});

/** Everything the data connection delivers until it closes, whether by FIN or by reset. */
function collect(data: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    data.on('data', (c: Buffer) => chunks.push(c));
    data.on('error', () => undefined);
    data.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

async function retr(b: TestBridge, path: string): Promise<{ prelim: number; final: number; received: Buffer }> {
  const ftp = await RawFtp.connect(b.port);
  try {
    await ftp.login(USER, PASSWORD);
    await ftp.command('TYPE I');
    const data = await ftp.pasv();
    const received = collect(data);
    ftp.send(`RETR ${path}`);
    const prelim = (await ftp.reply(30_000)).code;
    const final = (await ftp.reply(60_000)).code;
    return { prelim, final, received: await received };
  } finally {
    ftp.close();
  }
}

describe('resumed downloads', () => {
  for (const kind of ['reset-body', 'truncate-body', 'stall-body'] as const) {
    it(`a GetObject body that S3 breaks (${kind}) is resumed from the byte reached: 226 and every byte`, async () => {
      const proxy = bridge.proxy!;
      const before = proxy.requestsOf('GetObject').length;
      const rule = proxy.addRule({ operation: 'GetObject', times: 1, action: { kind, afterBytes: MiB + 777 } });
      const { prelim, final, received } = await retr(bridge, 'dl/object.bin');
      expect(prelim).toBe(150);
      expect(final).toBe(226);
      expect(received.length).toBe(body.length);
      expect(sha256(received)).toBe(sha256(body));
      expect(rule.fired).toBe(1);
      const gets = proxy.requestsOf('GetObject').slice(before);
      expect(gets.length).toBe(2);
      const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? '')?.[1]);
      // from the byte the bridge reached: all it was sent, less what a reset discarded in flight
      if (kind === 'reset-body') expect(resumedAt).toBeGreaterThan(0);
      else expect(resumedAt).toBe(MiB + 777);
      expect(resumedAt).toBeLessThanOrEqual(MiB + 777);
    });
  }

  it('a REST download that breaks resumes from the right offset too (curl -C)', async () => {
    const proxy = bridge.proxy!;
    proxy.addRule({ operation: 'GetObject', times: 1, action: { kind: 'reset-body', afterBytes: 1000 } });
    const offset = 2 * MiB;
    const r = await curl(['-C', String(offset), bridge.url('/dl/object.bin')]);
    expect(r.code).toBe(0);
    expect(sha256(r.stdout)).toBe(sha256(body.subarray(offset)));
    const gets = proxy.requestsOf('GetObject');
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets.at(-1)?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThanOrEqual(offset);
    expect(resumedAt).toBeLessThanOrEqual(offset + 1000);
    expect(gets.at(-2)?.range).toBe(`bytes=${offset}-`);
  });

  it('a break on every attempt ends in 4xx, a closed data connection and only a prefix of the file', async () => {
    const proxy = fragile.proxy!;
    proxy.addRule({ operation: 'GetObject', times: 1, action: { kind: 'reset-body', afterBytes: MiB } });
    const again = proxy.addRule({ operation: 'GetObject', skip: 1, action: { kind: 'reset' } });
    const { prelim, final, received } = await retr(fragile, 'dl/object.bin');
    expect(prelim).toBe(150);
    expect([426, 451]).toContain(final);
    expect(received.length).toBeLessThan(body.length);
    expect(received.equals(body.subarray(0, received.length))).toBe(true);
    expect(again.fired).toBeGreaterThanOrEqual(1);
  });

  it('bodies that keep ending short of Content-Length without progress end in 4xx, never 226', async () => {
    const proxy = fragile.proxy!;
    proxy.addRule({ operation: 'GetObject', times: 1, action: { kind: 'truncate-body', afterBytes: MiB } });
    const none = proxy.addRule({ operation: 'GetObject', skip: 1, action: { kind: 'truncate-body', afterBytes: 0 } });
    const { final, received } = await retr(fragile, 'dl/object.bin');
    expect([426, 451]).toContain(final);
    expect(none.fired).toBe(1); // maxAttempts 2: the attempt that broke, and one resume without progress
    expect(received.length).toBeLessThanOrEqual(MiB);
    expect(received.equals(body.subarray(0, received.length))).toBe(true);
  });

  it('an object replaced during the download is not stitched together: 451, and only old bytes', async () => {
    const proxy = fragile.proxy!;
    await fragile.put('dl/replaced.bin', body);
    proxy.addRule({ operation: 'GetObject', times: 1, action: { kind: 'reset-body', afterBytes: MiB } });
    const slow = proxy.addRule({ operation: 'GetObject', skip: 1, times: 1, action: { kind: 'latency', ms: 1500 } });
    const replacement = randomBytes(body.length);
    const result = retr(fragile, 'dl/replaced.bin');
    while (slow.matched < 2) await sleep(20);
    await fragile.put('dl/replaced.bin', replacement);
    const { final, received } = await result;
    expect(final).toBe(451);
    expect(received.length).toBeLessThan(body.length);
    expect(received.equals(body.subarray(0, received.length))).toBe(true);
  });
});

describe('back-pressure', () => {
  it('a client that does not read its RETR data makes the bridge hold only stream buffers, however large the object', { timeout: 180_000 }, async () => {
    const big = randomBytes(160 * MiB);
    await bridge.put('dl/big.bin', big);
    const proxy = bridge.proxy!;
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    await ftp.command('TYPE I');
    const data = await ftp.pasv();
    data.pause();
    const gc = exposeGc();
    gc();
    const before = process.memoryUsage().arrayBuffers;
    ftp.send('RETR dl/big.bin');
    expect((await ftp.reply()).code).toBe(150);
    await sleep(4500); // longer than requestTimeoutSeconds: the idle S3 socket times out
    // The bridge runs in this process: what the download added to its buffers is the stream
    // buffers, not the object. (What S3 sends meanwhile is bounded by kernel socket buffers, which
    // autotune up to tcp_rmem/tcp_wmem max on every hop, outside any process.)
    // Collected first: buffers of an S3 socket that timed out meanwhile are garbage, not held.
    gc();
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(48 * MiB);
    const received = collect(data);
    data.resume();
    expect((await ftp.reply(60_000)).code).toBe(226);
    expect(sha256(await received)).toBe(sha256(big));
    // When the idle S3 socket timed out meanwhile, the rest came from ranged GETs.
    const gets = proxy.requestsOf('GetObject').filter((r) => r.key === 'dl/big.bin');
    for (const g of gets.slice(1)) expect(g.range).toMatch(/^bytes=\d+-$/);
    ftp.close();
  });
});

/** The V8 garbage collector as a function, without starting the test process with --expose-gc. */
function exposeGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}
