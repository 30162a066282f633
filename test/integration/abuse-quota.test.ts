import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, TestBridge } from '../support/bridge.js';
import { firstReplies, openUpload, storedUnder, writeData, type PendingUpload } from '../support/parallel-uploads.js';

const MiB = 1024 * 1024;

let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({
    accounts: [
      { username: 'bytes', password: 'bytes-pw', prefix: 'bytes/', policy: { quota: { maxBytes: 1000 } } },
      { username: 'count', password: 'count-pw', prefix: 'count/', policy: { quota: { maxObjects: 2 } } },
      { username: 'large', password: 'large-pw', prefix: 'large/', policy: { quota: { maxBytes: 13 * MiB } } },
      { username: 'append', password: 'append-pw', prefix: 'append/', policy: { quota: { maxBytes: 1000, maxObjects: 1 } } },
    ],
  });
  await bridge.put('append/log.txt', Buffer.alloc(600, 'a'));
});
afterAll(async () => {
  await bridge?.close();
});

/** `count` sessions of `user`, each logged in with its data connection open, ready for STOR. */
function sessions(user: string, count: number, size: number, names = 'f'): Promise<PendingUpload[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => openUpload(bridge, user, `${names}${i}.bin`, size)));
}

/**
 * STORs (or `verb`) on every session at once, every upload's bytes sent while all data connections stay open;
 * waits for the `refused` uploads to be refused while the others are still open, then closes the
 * data connections. Returns each upload's final reply code.
 */
async function parallelStors(uploads: PendingUpload[], refused: number, verb = 'STOR'): Promise<number[]> {
  for (const u of uploads) u.ftp.send(`${verb} ${u.name}`);
  for (const u of uploads) expect((await u.ftp.reply()).code).toBe(150);
  const finals = uploads.map((u) => u.ftp.reply(60_000));
  await Promise.all(uploads.map((u) => writeData(u.data, u.body)));
  const early = await firstReplies(finals, refused);
  expect(early.map((r) => r.code)).toEqual(Array(refused).fill(552));
  for (const u of uploads) u.data.end();
  const codes = (await Promise.all(finals)).map((r) => r.code);
  for (const u of uploads) u.ftp.close();
  return codes;
}

describe('quotas under parallel uploads', () => {
  it('5 parallel 900-byte STORs under maxBytes 1000: one commits, the other four get 552 while it is still open', async () => {
    const uploads = await sessions('bytes', 5, 900);
    const codes = await parallelStors(uploads, 4);
    expect([...codes].sort()).toEqual([226, 552, 552, 552, 552]);
    const winners = uploads.filter((_, i) => codes[i] === 226);
    const s3 = await storedUnder(bridge, 'bytes/');
    expect(s3.bytes).toBeLessThanOrEqual(1000);
    expect(s3.hashes).toEqual(new Map(winners.map((u) => [`bytes/${u.name}`, sha256(u.body)])));
    // The four aborted uploads left nothing reserved: the 100 bytes left are still there to use.
    expect(await parallelStors(await sessions('bytes', 1, 100, 'next'), 0)).toEqual([226]);
    expect((await storedUnder(bridge, 'bytes/')).bytes).toBe(1000);
  }, 120_000);

  it('5 parallel STORs of new names under maxObjects 2: two are admitted, three refused before their first byte', async () => {
    const uploads = await sessions('count', 5, 10);
    for (const u of uploads) u.ftp.send(`STOR ${u.name}`);
    const first = await Promise.all(uploads.map((u) => u.ftp.reply()));
    expect(first.map((r) => r.code).sort()).toEqual([150, 150, 552, 552, 552]);
    const admitted = uploads.filter((_, i) => first[i]?.code === 150);
    await Promise.all(admitted.map((u) => writeData(u.data, u.body)));
    for (const u of admitted) u.data.end();
    expect((await Promise.all(admitted.map((u) => u.ftp.reply(60_000)))).map((r) => r.code)).toEqual([226, 226]);
    for (const u of uploads) u.ftp.close();
    const s3 = await storedUnder(bridge, 'count/');
    expect(s3.hashes).toEqual(new Map(admitted.map((u) => [`count/${u.name}`, sha256(u.body)])));
  }, 120_000);

  it('3 parallel multipart uploads of 6 MiB under maxBytes 13 MiB: two commit, one is aborted, nothing left over', async () => {
    const uploads = await sessions('large', 3, 6 * MiB);
    const codes = await parallelStors(uploads, 1);
    expect([...codes].sort()).toEqual([226, 226, 552]);
    const s3 = await storedUnder(bridge, 'large/');
    expect(s3.bytes).toBeLessThanOrEqual(13 * MiB);
    expect(s3.hashes).toEqual(new Map(uploads.filter((_, i) => codes[i] === 226).map((u) => [`large/${u.name}`, sha256(u.body)])));
    if (bridge.backend.capabilities.listMultipartUploads) expect(await bridge.pendingUploads()).toEqual([]);
  }, 120_000);

  it('2 parallel APPEs of 300 bytes to a 600-byte file under maxBytes 1000: the appended bytes count, one is refused', async () => {
    const uploads = (await sessions('append', 2, 300)).map((u) => ({ ...u, name: 'log.txt' }));
    const codes = await parallelStors(uploads, 1, 'APPE');
    expect([...codes].sort()).toEqual([226, 552]);
    const winner = uploads.filter((_, i) => codes[i] === 226);
    const expected = Buffer.concat([Buffer.alloc(600, 'a'), ...winner.map((u) => u.body)]);
    expect((await storedUnder(bridge, 'append/')).hashes).toEqual(new Map([['append/log.txt', sha256(expected)]]));
    // 100 bytes are left; an append to the existing file takes no object slot at maxObjects 1.
    const [last] = await sessions('append', 1, 100);
    expect(await parallelStors([{ ...last!, name: 'log.txt' }], 0, 'APPE')).toEqual([226]);
    // Full: refused before its first byte.
    const [over] = await sessions('append', 1, 1);
    expect((await over!.ftp.command('APPE log.txt')).code).toBe(552);
    over!.ftp.close();
    expect((await storedUnder(bridge, 'append/')).bytes).toBe(1000);
  }, 120_000);
});
