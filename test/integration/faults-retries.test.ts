import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestBridge, sha256 } from '../support/bridge.js';
import { curl } from '../support/clients.js';

/** Transient S3 failures (503, 500, resets, stalls) are retried by the SDK; the client never notices. */
let bridge: TestBridge;
let impatient: TestBridge;
let dir: string;
beforeAll(async () => {
  [bridge, impatient] = await Promise.all([
    TestBridge.start({ proxy: true }),
    TestBridge.start({ proxy: true, s3: { requestTimeoutSeconds: 2 } }),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'faults-retries-'));
});
afterAll(async () => {
  await Promise.all([bridge?.close(), impatient?.close()]);
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  bridge.proxy?.clearRules();
  impatient.proxy?.clearRules();
});

const KiB = 1024;
const MiB = 1024 * KiB;

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe('retries', () => {
  it('50 uploads all get 226 and are byte-exact while every 3rd UploadPart, PutObject and CompleteMultipartUpload answers 503', { timeout: 300_000 }, async () => {
    const proxy = bridge.proxy!;
    const rule = proxy.addRule({
      operation: ['UploadPart', 'PutObject', 'CompleteMultipartUpload'],
      every: 3,
      oncePerRequest: true,
      action: { kind: 'error', status: 503, code: 'SlowDown' },
    });
    const files = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        // every 5th is a multipart upload (2 parts of the test's 5 MiB part size)
        const body = randomBytes(i % 5 === 0 ? 6 * MiB + i * KiB : 20 * KiB + i * 7 * KiB);
        const file = join(dir, `f${i}.bin`);
        await writeFile(file, body);
        return { i, file, hash: sha256(body) };
      }),
    );
    const results: { i: number; code: number | null; stderr: string }[] = [];
    await mapLimit(files, 6, async (f) => {
      const r = await curl(['--ftp-create-dirs', '-T', f.file, bridge.url(`/retry/f${f.i}.bin`)]);
      results.push({ i: f.i, code: r.code, stderr: r.stderr });
    });
    expect(results.filter((r) => r.code !== 0)).toEqual([]);
    for (const f of files) expect(await bridge.objectHash(`retry/f${f.i}.bin`), `f${f.i}`).toBe(f.hash);
    expect(rule.fired).toBeGreaterThanOrEqual(20);
    expect(proxy.requests.filter((r) => r.fault === 'error').length).toBe(rule.fired);
  });

  it('500 InternalError and connection resets before a response are retried', async () => {
    const proxy = bridge.proxy!;
    const internal = proxy.addRule({ operation: 'PutObject', times: 1, action: { kind: 'error', status: 500 } });
    const reset = proxy.addRule({ operation: ['UploadPart', 'HeadObject', 'ListObjectsV2'], every: 2, times: 3, action: { kind: 'reset' } });
    const small = randomBytes(300 * KiB);
    const large = randomBytes(11 * MiB);
    await writeFile(join(dir, 'small.bin'), small);
    await writeFile(join(dir, 'large.bin'), large);
    expect((await curl(['--ftp-create-dirs', '-T', join(dir, 'small.bin'), bridge.url('/retry/small.bin')])).code).toBe(0);
    expect((await curl(['--ftp-create-dirs', '-T', join(dir, 'large.bin'), bridge.url('/retry/large.bin')])).code).toBe(0);
    expect(internal.fired).toBe(1);
    expect(reset.fired).toBe(3);
    expect(await bridge.objectHash('retry/small.bin')).toBe(sha256(small));
    expect(await bridge.objectHash('retry/large.bin')).toBe(sha256(large));
  });

  it('a response body that stalls after its headers fails after requestTimeoutSeconds and is retried', async () => {
    const proxy = impatient.proxy!;
    await impatient.put('stalled/listed.bin', 'listed');
    // The listing's first ListObjectsV2 answer stalls after its headers and a few bytes.
    const stall = proxy.addRule({ operation: 'ListObjectsV2', times: 1, action: { kind: 'stall-body', afterBytes: 10 } });
    const started = Date.now();
    const res = await curl(['--list-only', impatient.url('/stalled/')]);
    expect(res.code).toBe(0);
    expect(res.stdout.toString().split(/\r?\n/)).toContain('listed.bin');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(stall.fired).toBe(1);
    expect(proxy.requestsOf('ListObjectsV2').length).toBeGreaterThanOrEqual(2);
  });

  it('latency below the time-out changes nothing', async () => {
    const proxy = bridge.proxy!;
    const slow = proxy.addRule({ operation: ['PutObject', 'HeadObject', 'ListObjectsV2'], action: { kind: 'latency', ms: 300 } });
    const body = randomBytes(50 * KiB);
    await writeFile(join(dir, 'slow.bin'), body);
    expect((await curl(['--ftp-create-dirs', '-T', join(dir, 'slow.bin'), bridge.url('/retry/slow.bin')])).code).toBe(0);
    expect(slow.fired).toBeGreaterThanOrEqual(1);
    expect(proxy.requestsOf('PutObject').filter((r) => r.key === 'retry/slow.bin').length).toBe(1);
    expect(await bridge.objectHash('retry/slow.bin')).toBe(sha256(body));
  });
});
