import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, TestBridge, type TestAccount } from '../support/bridge.js';
import { firstReplies, openUpload, storedUnder, writeData } from '../support/parallel-uploads.js';
import { RawFtp, storBytes } from '../support/clients.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { until } from '../support/until.js';

const MiB = 1024 * 1024;

let redis: TestRedis;
let probe: Redis;
beforeAll(async () => {
  redis = await startRedis();
  probe = redis.client();
});
afterAll(async () => {
  probe?.disconnect();
  await redis?.stop();
});

/** Two replicas A and B on one bucket and one Redis (same key prefix, their own replica ids). */
async function replicas(keyPrefix: string, accounts: TestAccount[], more: { ftp?: Record<string, unknown> } = {}): Promise<[TestBridge, TestBridge]> {
  const cluster = (replicaId: string) => ({ cluster: { redis: { url: redis.url, keyPrefix }, replicaId }, auth: { quotaRefreshSeconds: 3600 } });
  const a = await TestBridge.start({ accounts, config: cluster('A'), ...more });
  const b = await TestBridge.start({ accounts: accounts.map((x) => ({ ...x, bucket: a.bucket })), config: cluster('B'), ...more });
  await waitForReplicas(keyPrefix);
  return [a, b];
}

/** Both replicas are connected to Redis (each announces itself when its connection is ready). */
const waitForReplicas = (keyPrefix: string) => until(async () => (await probe.exists(`${keyPrefix}replica:A`, `${keyPrefix}replica:B`)) === 2, 'both replicas on Redis');

/** One STOR: 226 or 552 (refused before its first byte or cut at the quota). */
async function stor(bridge: TestBridge, user: string, name: string, body: Buffer): Promise<number> {
  const u = { ...(await openUpload(bridge, user, name, 0)), body };
  u.ftp.send(`STOR ${u.name}`);
  const first = await u.ftp.reply();
  if (first.code !== 150) {
    u.ftp.close();
    u.data.destroy();
    return first.code;
  }
  const final = u.ftp.reply(60_000);
  await writeData(u.data, body);
  u.data.end();
  const code = (await final).code;
  u.ftp.close();
  return code;
}

describe('quota reservations shared by two replicas on Redis', () => {
  let a: TestBridge;
  let b: TestBridge;
  const accounts = ['par', 'seq', 'kill', 'ghost'].map((username) => ({
    username,
    password: `${username}-pw`,
    prefix: `${username}/`,
    policy: { quota: { maxBytes: username === 'kill' ? 20 * MiB : 13 * MiB } },
  }));
  beforeAll(async () => {
    [a, b] = await replicas('{cq}:', accounts);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('6 parallel 6 MiB STORs of one account, 3 through each replica, under maxBytes 13 MiB never commit more than 13 MiB', async () => {
    const uploads = await Promise.all(Array.from({ length: 6 }, (_, i) => openUpload(i % 2 ? b : a, 'par', `f${i}.bin`, 6 * MiB)));
    for (const u of uploads) u.ftp.send(`STOR ${u.name}`);
    for (const u of uploads) expect((await u.ftp.reply()).code).toBe(150);
    const finals = uploads.map((u) => u.ftp.reply(60_000));
    await Promise.all(uploads.map((u) => writeData(u.data, u.body)));
    // At most two fit: four are cut while every data connection is still open (all bytes sent).
    await firstReplies(finals, 4);
    for (const u of uploads) u.data.end();
    const codes = (await Promise.all(finals)).map((r) => r.code);
    for (const u of uploads) u.ftp.close();
    const winners = uploads.filter((_, i) => codes[i] === 226);
    // As on one replica: the two that fit commit (a refused upload's lease goes back in the same step).
    expect([...codes].sort()).toEqual([226, 226, 552, 552, 552, 552]);
    const s3 = await storedUnder(a, 'par/');
    expect(s3.bytes).toBeLessThanOrEqual(13 * MiB);
    // Every 226 is intact; the refused ones left nothing (no object, no pending multipart upload).
    expect(s3.hashes).toEqual(new Map(winners.map((u) => [`par/${u.name}`, sha256(u.body)])));
    if (a.backend.capabilities.listMultipartUploads) expect(await a.pendingUploads()).toEqual([]);
  }, 180_000);

  it("a replica counts another replica's commit at once, without measuring again", async () => {
    // B measures first (1 KiB stored), then A commits 8 MiB: B refuses 8 MiB more.
    expect(await stor(b, 'seq', 'small.bin', randomBytes(1024))).toBe(226);
    const big = randomBytes(8 * MiB);
    expect(await stor(a, 'seq', 'big-a.bin', big)).toBe(226);
    expect(await stor(b, 'seq', 'big-b.bin', randomBytes(8 * MiB))).toBe(552);
    // What is left (13 MiB - 8 MiB - 1 KiB) is still there to use, through B.
    const rest = randomBytes(4 * MiB);
    expect(await stor(b, 'seq', 'rest.bin', rest)).toBe(226);
    const s3 = await storedUnder(a, 'seq/');
    expect([...s3.hashes.keys()].sort()).toEqual(['seq/big-a.bin', 'seq/rest.bin', 'seq/small.bin']);
    expect(s3.hashes.get('seq/big-a.bin')).toBe(sha256(big));
    expect(s3.hashes.get('seq/rest.bin')).toBe(sha256(rest));
  }, 120_000);

  it("what a crashed replica held stops counting once its liveness key is gone", async () => {
    const id = createHash('sha1').update(JSON.stringify(['', a.bucket, 'ghost/'])).digest('hex');
    // A replica "ghost" holds 12 MiB of the 13 MiB while it lives.
    await probe.hset(`{cq}:quota:${id}:r`, 'ghost:b', String(12 * MiB), 'ghost:o', '1');
    await probe.set('{cq}:replica:ghost', '1', 'PX', 60_000);
    expect(await stor(a, 'ghost', 'one.bin', randomBytes(2 * MiB))).toBe(552);
    expect(await a.exists('ghost/one.bin')).toBe(false);
    // It crashed: its liveness key expires (here: removed), and its reservation no longer counts.
    await probe.del('{cq}:replica:ghost');
    const body = randomBytes(2 * MiB);
    expect(await stor(b, 'ghost', 'two.bin', body)).toBe(226);
    expect(await a.objectHash('ghost/two.bin')).toBe(sha256(body));
    expect(await probe.hexists(`{cq}:quota:${id}:r`, 'ghost:b')).toBe(0);
  }, 120_000);

  it('Redis killed mid-upload: the upload completes, later ones use per-replica state, and the shared ledger resumes when Redis returns', async () => {
    const body = randomBytes(8 * MiB);
    const u = { ...(await openUpload(a, 'kill', 'during.bin', 0)), body };
    u.ftp.send(`STOR ${u.name}`);
    expect((await u.ftp.reply()).code).toBe(150);
    const final = u.ftp.reply(60_000);
    await writeData(u.data, body.subarray(0, 2 * MiB));
    await redis.kill();
    await writeData(u.data, body.subarray(2 * MiB));
    u.data.end();
    expect((await final).code).toBe(226);
    u.ftp.close();
    expect(await a.objectHash('kill/during.bin')).toBe(sha256(body));
    // Redis down: both replicas go on deciding on their own ledgers.
    const more = [randomBytes(MiB), randomBytes(MiB)];
    expect(await stor(a, 'kill', 'down-a.bin', more[0]!)).toBe(226);
    expect(await stor(b, 'kill', 'down-b.bin', more[1]!)).toBe(226);
    expect(await a.objectHash('kill/down-a.bin')).toBe(sha256(more[0]!));
    expect(await a.objectHash('kill/down-b.bin')).toBe(sha256(more[1]!));
    // Said in a metric; the replica stays ready (an outage of Redis stops no upload).
    const metrics = await (await fetch(`http://127.0.0.1:${a.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^cluster_redis_up 0$/m);
    expect(Number(/^cluster_redis_fallbacks_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${a.httpPort}/readyz`)).status).toBe(200);

    // Redis is back (empty): A commits 6 MiB (16 of 20 MiB used). B's own ledger (10 MiB measured
    // during the outage, 1 MiB of its own since) would let 6 MiB more in; the shared one refuses it.
    await redis.start();
    await waitForReplicas('{cq}:');
    expect(await stor(a, 'kill', 'after-a.bin', randomBytes(6 * MiB))).toBe(226);
    expect(await stor(b, 'kill', 'after-b.bin', randomBytes(6 * MiB))).toBe(552);
    expect(await a.exists('kill/after-b.bin')).toBe(false);
    expect((await storedUnder(a, 'kill/')).bytes).toBe(16 * MiB);
  }, 180_000);
});

describe('the global bandwidth cap shared by two replicas on Redis', () => {
  let a: TestBridge;
  let b: TestBridge;
  beforeAll(async () => {
    [a, b] = await replicas('{cb}:', [{ username: 'bw', password: 'bw-pw', prefix: 'bw/' }], { ftp: { bandwidth: { uploadKiBps: 1024 } } });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('two simultaneous 2 MiB uploads through A and B take about as long as 4 MiB at the cap', async () => {
    const bodies = [randomBytes(2 * MiB), randomBytes(2 * MiB)];
    const sessions = [await RawFtp.connect(a.port), await RawFtp.connect(b.port)];
    for (const s of sessions) await s.login('bw', 'bw-pw');
    const t0 = performance.now();
    await Promise.all(sessions.map((s, i) => storBytes(s, `f${i}.bin`, bodies[i]!)));
    const seconds = (performance.now() - t0) / 1000;
    for (const s of sessions) s.close();
    // 4 MiB at 1024 KiB/s is 4 s; each replica at the whole cap would take 2 s. The first replica
    // may run alone for up to a second before it sees the other; the buckets' burst is a quarter second.
    expect(seconds).toBeGreaterThan(3);
    expect(await a.objectHash('bw/f0.bin')).toBe(sha256(bodies[0]!));
    expect(await a.objectHash('bw/f1.bin')).toBe(sha256(bodies[1]!));
  }, 120_000);
});
