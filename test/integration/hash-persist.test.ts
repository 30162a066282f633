import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { HeadObjectCommand, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, curl, storBytes } from '../support/clients.js';

/**
 * s3.persistMultipartDigests: a multipart upload sent its metadata before any byte was digested;
 * after the commit, in the background, a CopyObject of the object onto itself (MetadataDirective
 * REPLACE, guarded by the committed ETag) stores its SHA-256 and MD5 as metadata, so any bridge
 * process (not only the one that took the upload) answers HASH without reading the object.
 */
const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const tmp = mkdtempSync(join(tmpdir(), 'ftp-s3-bridge-digests-'));
let bridge: TestBridge;
const log: Record<string, unknown>[] = [];

beforeAll(async () => {
  const logStream = new PassThrough();
  let pending = '';
  logStream.on('data', (c: Buffer) => {
    pending += c.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) log.push(JSON.parse(line) as Record<string, unknown>);
  });
  // hashMaxStreamMiB 1: an answer for these objects can never come from reading them.
  bridge = await TestBridge.start({ proxy: true, s3: { hashMaxStreamMiB: 1 }, logStream, logLevel: 'debug' });
});
afterAll(async () => {
  await bridge?.close();
});

const head = (key: string, b = bridge): Promise<HeadObjectCommandOutput> => b.s3.send(new HeadObjectCommand({ Bucket: b.bucket, Key: key }));

/** Waits (bounded) until the object carries a sha256 metadata entry. */
async function stamped(key: string, timeoutMs = 30_000): Promise<HeadObjectCommandOutput> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const h = await head(key);
    if (h.Metadata?.sha256) return h;
    if (Date.now() > until) throw new Error(`${key}: no digests in its metadata after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The bridge's log line reporting how the persistence of `key` ended (bounded wait). */
async function outcomeOf(key: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const line = log.find((l) => l.key === key && (l.msg === 'digests as metadata' || l.msg === 'storing digests as metadata failed'));
    if (line) return line;
    if (Date.now() > until) throw new Error(`${key}: no persistence outcome logged after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function login(port = bridge.port): Promise<RawFtp> {
  const ftp = await RawFtp.connect(port);
  await ftp.login(USER, PASSWORD);
  expect((await ftp.command('TYPE I')).code).toBe(200);
  return ftp;
}

const requestsOf = (b: TestBridge, operation: string, key: string, since = 0) =>
  (b.proxy?.requests ?? []).slice(since).filter((r) => r.operation === operation && r.key === key);

describe('digests of multipart uploads stored as metadata', () => {
  it('curl uploads more than a part; the object gets sha256/md5 metadata, and a new bridge answers HASH/XSHA256 without reading it', async () => {
    const body = randomBytes(11 * MiB + 5);
    const file = join(tmp, 'clip.mp4');
    writeFileSync(file, body);
    const res = await curl(['--ftp-create-dirs', '-T', file, bridge.url('/cam/clip.mp4')]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);

    const h = await stamped('cam/clip.mp4');
    expect(h.Metadata?.sha256).toBe(sha256(body));
    expect(h.Metadata?.md5).toBe(md5(body));
    // The rest of the upload's metadata is kept, and so are the bytes.
    expect(h.Metadata?.['ftp-user']).toBe(USER);
    expect(h.Metadata?.['ftp-client-ip']).toBe('127.0.0.1');
    expect(h.ContentLength).toBe(body.length);
    expect(await bridge.objectHash('cam/clip.mp4')).toBe(sha256(body));
    expect(await outcomeOf('cam/clip.mp4')).toMatchObject({
      result: 'persisted',
      guard: bridge.backend.backend === 'swift' ? 'head' : 'copy-source-if-match',
    });

    // A server-side copy onto itself, guarded by the committed ETag. Swift's s3api answers 412 to
    // the right ETag of a multipart object; the copy is then made after a HeadObject of that ETag.
    const copies = requestsOf(bridge, 'CopyObject', 'cam/clip.mp4');
    expect(copies).toHaveLength(bridge.backend.backend === 'swift' ? 2 : 1);
    const headers = copies[0]?.headers ?? {};
    const committed = log.find((l) => l.event === 'operation' && l.operation === 'STOR' && l.key === 'cam/clip.mp4');
    expect(committed?.etag).toBeTruthy();
    expect(headers['x-amz-copy-source-if-match']).toBe(committed?.etag);
    for (const copy of copies) {
      expect(copy.headers['x-amz-metadata-directive']).toBe('REPLACE');
      expect(copy.headers['x-amz-copy-source']).toBe(`${bridge.bucket}/cam/clip.mp4`);
    }


    // A second bridge on the same bucket: another process as far as digests go (each bridge has its
    // own digest cache), and reading the object is refused (hashMaxStreamMiB 1): only the metadata can answer.
    const second = await TestBridge.start({
      proxy: true,
      s3: { hashMaxStreamMiB: 1 },
      accounts: [{ username: USER, password: PASSWORD, bucket: bridge.bucket }],
    });
    try {
      const ftp = await login(second.port);
      try {
        expect((await ftp.command('XSHA256 cam/clip.mp4')).text).toBe(`250 ${sha256(body)}`);
        expect((await ftp.command('HASH cam/clip.mp4')).text).toBe(`213 SHA-256 0-${body.length} ${sha256(body)} /cam/clip.mp4`);
        expect((await ftp.command('OPTS HASH MD5')).code).toBe(200);
        expect((await ftp.command('HASH cam/clip.mp4')).text).toBe(`213 MD5 0-${body.length} ${md5(body)} /cam/clip.mp4`);
        expect((await ftp.command('XMD5 cam/clip.mp4')).text).toBe(`250 ${md5(body)}`);
      } finally {
        ftp.close();
      }
      expect(requestsOf(second, 'HeadObject', 'cam/clip.mp4').length).toBeGreaterThan(0);
      expect(requestsOf(second, 'GetObject', 'cam/clip.mp4')).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('the 226 does not wait for the copy', async () => {
    const body = randomBytes(6 * MiB);
    const rule = bridge.proxy?.addRule({ operation: 'CopyObject', key: 'slow/a.bin', times: 1, action: { kind: 'latency', ms: 3000 } });
    const ftp = await login();
    try {
      await storBytes(ftp, 'slow/a.bin', body);
      // The 226 came while the copy was still held up by the proxy.
      expect((await head('slow/a.bin')).Metadata?.sha256).toBeUndefined();
      expect((await stamped('slow/a.bin')).Metadata?.sha256).toBe(sha256(body));
      expect(rule?.fired).toBe(1);
    } finally {
      ftp.close();
      if (rule) bridge.proxy?.removeRule(rule);
    }
  });

  it('a DELE right after the upload waits for the copy, so the copy never brings the object back', async () => {
    const body = randomBytes(6 * MiB);
    const rule = bridge.proxy?.addRule({ operation: 'CopyObject', key: 'gone/setup-test.jpg', action: { kind: 'latency', ms: 1500 } });
    const ftp = await login();
    try {
      await storBytes(ftp, 'gone/setup-test.jpg', body);
      expect((await ftp.command('DELE gone/setup-test.jpg')).code).toBe(250);
      // The copy had landed before the delete was sent (not refused as "changed" after it).
      expect(await outcomeOf('gone/setup-test.jpg')).toMatchObject({ result: 'persisted' });
      await sleep(500);
      expect(await bridge.exists('gone/setup-test.jpg')).toBe(false);
    } finally {
      ftp.close();
      if (rule) bridge.proxy?.removeRule(rule);
    }
  });

  it('upload to a temporary name, then RNFR/RNTO (Intellinet): the renamed object carries the digests', async () => {
    const body = randomBytes(7 * MiB + 1);
    const rule = bridge.proxy?.addRule({ operation: 'CopyObject', key: /snap\.jpg\.tmp$/, action: { kind: 'latency', ms: 1500 } });
    const ftp = await login();
    try {
      await storBytes(ftp, 'snap.jpg.tmp', body);
      expect((await ftp.command('RNFR snap.jpg.tmp')).code).toBe(350);
      expect((await ftp.command('RNTO snap.jpg')).code).toBe(250);
      const h = await head('snap.jpg');
      expect(h.Metadata?.sha256).toBe(sha256(body));
      expect(h.Metadata?.md5).toBe(md5(body));
      expect(await bridge.exists('snap.jpg.tmp')).toBe(false);
    } finally {
      ftp.close();
      if (rule) bridge.proxy?.removeRule(rule);
    }
  });

  it('a failing copy is only logged (warn): the upload stays committed and this process still answers HASH', async () => {
    const body = randomBytes(6 * MiB + 9);
    const rule = bridge.proxy?.addRule({ operation: 'CopyObject', key: 'flaky/b.bin', action: { kind: 'error', status: 500 } });
    const ftp = await login();
    try {
      await storBytes(ftp, 'flaky/b.bin', body);
      const outcome = await outcomeOf('flaky/b.bin');
      expect(outcome).toMatchObject({ level: 40, msg: 'storing digests as metadata failed' });
      expect(rule?.fired).toBeGreaterThan(0);
      expect(await bridge.objectHash('flaky/b.bin')).toBe(sha256(body));
      expect((await head('flaky/b.bin')).Metadata?.sha256).toBeUndefined();
      expect((await ftp.command('XSHA256 flaky/b.bin')).text).toBe(`250 ${sha256(body)}`);
    } finally {
      ftp.close();
      if (rule) bridge.proxy?.removeRule(rule);
    }
  });

  it('an object replaced after the commit is never stamped with the digests of the bytes it no longer holds', async () => {
    const old = randomBytes(6 * MiB);
    const replacementA = randomBytes(1000);
    const replacementB = randomBytes(2000);
    // a: replaced before the bridge looked at it again (its HeadObject sees another ETag).
    // b: replaced between that look and the copy: only CopySourceIfMatch stops it.
    const ruleA = bridge.proxy?.addRule({ operation: 'HeadObject', key: 'race/a.bin', action: { kind: 'latency', ms: 1500 } });
    const ruleB = bridge.proxy?.addRule({ operation: 'CopyObject', key: 'race/b.bin', times: 1, action: { kind: 'latency', ms: 1500 } });
    const ftp = await login();
    try {
      await storBytes(ftp, 'race/a.bin', old);
      await bridge.put('race/a.bin', replacementA);
      await storBytes(ftp, 'race/b.bin', old);
      // Replaced once the bridge has looked (HeadObject) and its copy is held up by the proxy.
      const until = Date.now() + 20_000;
      while (!requestsOf(bridge, 'CopyObject', 'race/b.bin').length && Date.now() < until) await sleep(20);
      await bridge.put('race/b.bin', replacementB);
      expect(await outcomeOf('race/a.bin')).toMatchObject({ result: 'skipped', reason: 'changed' });
      expect((await head('race/a.bin')).Metadata?.sha256).toBeUndefined();
      expect(await bridge.objectHash('race/a.bin')).toBe(sha256(replacementA));
      const outcomeB = await outcomeOf('race/b.bin');
      expect(ruleB?.fired).toBe(1);
      if (bridge.backend.capabilities.copySourceIfMatch) {
        expect(outcomeB).toMatchObject({ result: 'skipped', reason: 'changed' });
        expect((await head('race/b.bin')).Metadata?.sha256).toBeUndefined();
        expect(await bridge.objectHash('race/b.bin')).toBe(sha256(replacementB));
      }
    } finally {
      ftp.close();
      for (const r of [ruleA, ruleB]) if (r) bridge.proxy?.removeRule(r);
    }
  });

  it('a graceful drain (SIGTERM) waits for a copy still running', async () => {
    const draining = await TestBridge.start({ proxy: true });
    try {
      const body = randomBytes(6 * MiB + 3);
      draining.proxy?.addRule({ operation: 'CopyObject', times: 1, action: { kind: 'latency', ms: 2000 } });
      const ftp = await login(draining.port);
      try {
        await storBytes(ftp, 'last.bin', body);
      } finally {
        ftp.close();
      }
      const started = Date.now();
      await draining.drain();
      expect(Date.now() - started).toBeGreaterThan(1000);
      // Right when the drain is over, not eventually.
      expect((await head('last.bin', draining)).Metadata?.sha256).toBe(sha256(body));
    } finally {
      await draining.close();
    }
  });

  it('with s3.persistMultipartDigests off, no copy is made', async () => {
    const off = await TestBridge.start({ proxy: true, s3: { persistMultipartDigests: false } });
    try {
      const body = randomBytes(6 * MiB);
      const ftp = await login(off.port);
      try {
        await storBytes(ftp, 'plain.bin', body);
        await sleep(1000);
        expect((await ftp.command('XSHA256 plain.bin')).text).toBe(`250 ${sha256(body)}`);
      } finally {
        ftp.close();
      }
      expect(requestsOf(off, 'CopyObject', 'plain.bin')).toEqual([]);
      expect((await head('plain.bin', off)).Metadata?.sha256).toBeUndefined();
    } finally {
      await off.close();
    }
  });
});
