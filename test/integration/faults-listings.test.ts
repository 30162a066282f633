import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';

/** Listings and renames that S3 breaks: an error reply, never a partial listing with 226 or a 250. */
let bridge: TestBridge;
const OBJECTS = 2050; // three ListObjectsV2 pages of at most 1000 keys

beforeAll(async () => {
  bridge = await TestBridge.start({ proxy: true, s3: { maxAttempts: 2 } });
  const names = Array.from({ length: OBJECTS }, (_, i) => `big/f${String(i).padStart(5, '0')}.txt`);
  let next = 0;
  await Promise.all(
    Array.from({ length: 24 }, async () => {
      while (next < names.length) await bridge.put(names[next++] as string, 'x');
    }),
  );
}, 300_000);
afterAll(async () => {
  await bridge?.close();
});
afterEach(() => bridge.proxy?.clearRules());

function collect(data: Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    data.on('data', (c: Buffer) => chunks.push(c));
    data.on('error', () => undefined);
    data.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

async function session(): Promise<RawFtp> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(USER, PASSWORD);
  return ftp;
}

async function nlst(ftp: RawFtp, path: string): Promise<{ final: number; lines: string[] }> {
  const data = await ftp.pasv();
  const text = collect(data);
  ftp.send(`NLST ${path}`);
  expect((await ftp.reply()).code).toBe(150);
  const final = (await ftp.reply(60_000)).code;
  return { final, lines: (await text).split('\r\n').filter(Boolean) };
}

/** Page 3 of a listing: the second ListObjectsV2 that carries a continuation token. */
const pageThree = { operation: 'ListObjectsV2' as const, query: /continuation-token=/, skip: 1 };

describe('listings', () => {
  it('a listing whose page 3 fails after the retries answers 451, not a partial listing with 226', async () => {
    const rule = bridge.proxy!.addRule({ ...pageThree, action: { kind: 'error', status: 503 } });
    const ftp = await session();
    const { final, lines } = await nlst(ftp, 'big');
    expect(final).toBe(451);
    expect(lines.length).toBeLessThanOrEqual(2000); // at most the pages before the failure; the reply says it is not all
    expect(rule.fired).toBe(2); // maxAttempts: 2
    // the session goes on
    expect((await ftp.command('NOOP')).code).toBe(200);
    ftp.close();
  });

  it('a page 3 that fails once is retried: 226 with every entry', async () => {
    const rule = bridge.proxy!.addRule({ ...pageThree, times: 1, action: { kind: 'error', status: 500 } });
    const ftp = await session();
    const { final, lines } = await nlst(ftp, 'big');
    expect(final).toBe(226);
    expect(new Set(lines).size).toBe(OBJECTS);
    expect(rule.fired).toBe(1);
    ftp.close();
  });

  it('a page 3 whose body is reset mid-response answers 451 once retries are spent', async () => {
    bridge.proxy!.addRule({ ...pageThree, action: { kind: 'reset-body' } });
    const ftp = await session();
    const { final } = await nlst(ftp, 'big');
    expect(final).toBe(451);
    ftp.close();
  });
});

describe('renames', () => {
  it('a rename whose copy succeeded and whose delete failed answers 451 (never 250); no data is lost', async () => {
    const body = randomBytes(200_000);
    await bridge.put('mv/source.bin', body);
    const rule = bridge.proxy!.addRule({ operation: 'DeleteObject', key: 'mv/source.bin', action: { kind: 'error', status: 503 } });
    const ftp = await session();
    expect((await ftp.command('RNFR mv/source.bin')).code).toBe(350);
    const rnto = await ftp.command('RNTO mv/target.bin');
    expect(rnto.code).toBe(451);
    expect(rnto.text).toMatch(/both names/);
    expect(rule.fired).toBe(2);
    // What the client then sees: the file under both names, both complete.
    expect(await bridge.objectHash('mv/source.bin')).toBe(sha256(body));
    expect(await bridge.objectHash('mv/target.bin')).toBe(sha256(body));
    const { final, lines } = await nlst(ftp, 'mv');
    expect(final).toBe(226);
    expect(lines.map((l) => l.replace(/^.*\//, '')).sort()).toEqual(['source.bin', 'target.bin']);
    // Once S3 recovers, deleting the old name finishes the rename by hand.
    bridge.proxy!.clearRules();
    expect((await ftp.command('DELE mv/source.bin')).code).toBe(250);
    expect(await bridge.exists('mv/source.bin')).toBe(false);
    expect(await bridge.objectHash('mv/target.bin')).toBe(sha256(body));
    ftp.close();
  });

  it('a rename whose copy fails answers 451 and leaves the source alone, with no target', async () => {
    const body = randomBytes(1000);
    await bridge.put('mv/a.bin', body);
    bridge.proxy!.addRule({ operation: 'CopyObject', action: { kind: 'error', status: 500 } });
    const ftp = await session();
    expect((await ftp.command('RNFR mv/a.bin')).code).toBe(350);
    expect((await ftp.command('RNTO mv/b.bin')).code).toBe(451);
    expect(await bridge.objectHash('mv/a.bin')).toBe(sha256(body));
    expect(await bridge.exists('mv/b.bin')).toBe(false);
    ftp.close();
  });
});
