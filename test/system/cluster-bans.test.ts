import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER, type TestBridgeOptions } from '../support/bridge.js';
import { RawFtp, storBytes } from '../support/clients.js';
import { LogLines } from '../support/log-lines.js';
import { metricValue } from '../support/metrics.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { sftpBatch, sftpConfig, SshKeys } from '../support/sftp.js';
import { until } from '../support/until.js';

/**
 * Issue 17 §3: brute-force bans and connection limits hold across replicas sharing a Redis (a real
 * redis-server); two bridges on one S3 stand for replicas A and B. Without Redis (killed mid-run)
 * logins and uploads go on, on each replica's own state.
 */

const REFUSED = '530 Login incorrect';
const BANNED = '421 Too many failed logins; try again later';
const TOO_MANY = '421 Too many connections from your address';

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

/** The first reply line of a new control connection (the connection stays open until `close`). */
async function firstReply(port: number): Promise<{ text: string; close: () => void }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.setEncoding('utf8');
  const text = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error('no reply within 20 s')), 20_000);
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf('\r\n');
      if (end >= 0) {
        clearTimeout(timer);
        resolve(buffer.slice(0, end));
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(buffer);
    });
  });
  return { text, close: () => socket.destroy() };
}

/** The first reply line of a new control connection, which is then closed. */
async function replyText(port: number): Promise<string> {
  const reply = await firstReply(port);
  reply.close();
  return reply.text;
}

/** Polls new connections until one is answered `expected` (closing each), for a change that travels between replicas. */
async function untilGreeted(port: number, expected: string): Promise<void> {
  let last = '';
  await until(async () => {
    last = await replyText(port);
    return last.startsWith(expected);
  }, `"${expected}" (last: "${last}")`);
}

/** USER then PASS on a new connection: the reply to PASS. */
async function login(port: number, password: string): Promise<string> {
  const ftp = await RawFtp.connect(port);
  try {
    expect((await ftp.command(`USER ${USER}`)).code).toBe(331);
    return (await ftp.command(`PASS ${password}`)).text;
  } finally {
    ftp.close();
  }
}

interface Replicas {
  prefix: string;
  a: TestBridge;
  b: TestBridge;
  logA: LogLines;
  logB: LogLines;
  close(): Promise<void>;
}

/** Replicas A and B on the test's Redis under a key prefix of their own, both subscribed to the bans and announced. */
async function replicas(ftp: TestBridgeOptions['ftp'], more: { account?: Record<string, unknown>; configB?: Record<string, unknown> } = {}): Promise<Replicas> {
  const prefix = `{cb-${randomBytes(4).toString('hex')}}:`;
  const logA = new LogLines();
  const logB = new LogLines();
  const start = (replicaId: string, log: LogLines, bucket?: string, config: Record<string, unknown> = {}) =>
    TestBridge.start({
      logStream: log.stream,
      logLevel: 'info',
      ftp: { loginFailureDelayMs: 100, ...ftp },
      accounts: [{ username: USER, password: PASSWORD, ...(bucket ? { bucket } : {}), ...(more.account ? { policy: more.account } : {}) }],
      config: { cluster: { redis: { url: redis.url, keyPrefix: prefix }, replicaId }, ...config },
    });
  const a = await start('a', logA);
  // B serves A's bucket: what one replica stores, the test reads through `a`.
  const b = await start('b', logB, a.bucket, more.configB);
  await waitForCluster(prefix);
  return {
    prefix,
    a,
    b,
    logA,
    logB,
    close: async () => {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

/** Both replicas alive in Redis and listening for bans. */
async function waitForCluster(prefix: string): Promise<void> {
  await until(async () => (await probe.exists(`${prefix}replica:a`, `${prefix}replica:b`)) === 2, 'both liveness keys');
  await until(async () => {
    const [, count] = (await probe.pubsub('NUMSUB', `${prefix}bans:events`)) as [string, number];
    return Number(count) >= 2;
  }, 'both replicas subscribed to the bans');
}

const loginLines = (log: LogLines, result: string) => log.lines.filter((l) => l.event === 'login' && l.result === result);

describe('brute-force bans across replicas', () => {
  it('a ban earned on A refuses the address on B: at accept (pub/sub) and at PASS', async () => {
    const r = await replicas({ maxConnectionsPerIp: 100, bruteForce: { maxFailures: 3, windowSeconds: 600, banSeconds: 600 } });
    try {
      // A connection to B past USER before the attack, with the right password ready.
      const bystander = await RawFtp.connect(r.b.port);
      expect((await bystander.command(`USER ${USER}`)).code).toBe(331);
      for (let i = 0; i < 3; i++) expect(await login(r.a.port, `wrong-${i}`)).toBe(REFUSED);
      expect(r.logA.lines.some((l) => l.event === 'brute-force-ban')).toBe(true);

      // B never saw a failure: it refuses at accept once the ban reached it over pub/sub.
      await untilGreeted(r.b.port, BANNED);
      expect((await bystander.command(`PASS ${PASSWORD}`)).text).toBe(BANNED);
      bystander.close();
      expect(loginLines(r.logB, 'ok')).toHaveLength(0);
      expect(loginLines(r.logB, 'failed')).toHaveLength(0);
      expect(await probe.pttl(`${r.prefix}bans:ban:127.0.0.1`)).toBeGreaterThan(500_000);
    } finally {
      await r.close();
    }
  });

  it('the check at PASS asks Redis: a ban there that was never announced refuses the right password', async () => {
    const r = await replicas({ maxConnectionsPerIp: 100, bruteForce: { maxFailures: 3, windowSeconds: 600, banSeconds: 600 } });
    try {
      expect(await login(r.a.port, PASSWORD)).toMatch(/^230 /);
      // Set behind the replicas' backs: no pub/sub message, so no cache knows it.
      await probe.set(`${r.prefix}bans:ban:127.0.0.1`, '1', 'PX', 600_000);
      const ftp = await RawFtp.connect(r.a.port);
      expect((await ftp.command(`USER ${USER}`)).code).toBe(331);
      expect((await ftp.command(`PASS ${PASSWORD}`)).text).toBe(BANNED);
      ftp.close();
      // Now cached: a new connection is refused at accept.
      expect(await replyText(r.a.port)).toBe(BANNED);
    } finally {
      await r.close();
    }
  });

  it('login slots of a replica that died without cleaning up do not count', async () => {
    const r = await replicas({ maxConnectionsPerIp: 100, bruteForce: { maxFailures: 2, windowSeconds: 600, banSeconds: 600 } });
    try {
      // A dead replica left two attempts in flight (leases of a minute); its liveness key is gone.
      const slots = `${r.prefix}bans:slots:127.0.0.1`;
      const [seconds] = (await probe.time()) as [number, number];
      await probe.zadd(slots, seconds * 1000 + 60_000, 'ghost|1', seconds * 1000 + 60_000, 'ghost|2');
      expect(await login(r.a.port, 'wrong')).toBe(REFUSED);
      expect(loginLines(r.logA, 'failed')).toHaveLength(1);
      expect(await probe.zcard(`${r.prefix}bans:failures:127.0.0.1`)).toBe(1);
      // One more failure is the ban (2): the ghost's slots were never counted.
      expect(await login(r.b.port, 'wrong')).toBe(REFUSED);
      expect(await probe.exists(`${r.prefix}bans:ban:127.0.0.1`)).toBe(1);
    } finally {
      await r.close();
    }
  });

  it('30 parallel wrong passwords spread over A and B get at most maxFailures passwords checked', async () => {
    const MAX_FAILURES = 5;
    const r = await replicas({ loginFailureDelayMs: 300, maxConnectionsPerIp: 100, bruteForce: { maxFailures: MAX_FAILURES, windowSeconds: 600, banSeconds: 600 } });
    try {
      const attackers = await Promise.all(Array.from({ length: 30 }, (_, i) => RawFtp.connect(i % 2 ? r.b.port : r.a.port)));
      await Promise.all(attackers.map(async (ftp) => expect((await ftp.command(`USER ${USER}`)).code).toBe(331)));
      for (const [i, ftp] of attackers.entries()) ftp.send(`PASS wrong-${i}`);
      const replies = await Promise.all(attackers.map((ftp) => ftp.reply(60_000)));
      for (const ftp of attackers) ftp.close();

      const refused = replies.filter((reply) => reply.text === REFUSED);
      const banned = replies.filter((reply) => reply.text === BANNED);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.length).toBeLessThanOrEqual(MAX_FAILURES);
      expect(refused.length + banned.length).toBe(30);
      // Only the attempts that held a cluster-wide slot had their password checked.
      const checked = loginLines(r.logA, 'failed').length + loginLines(r.logB, 'failed').length;
      expect(checked).toBe(refused.length);
      expect(loginLines(r.logA, 'banned').length + loginLines(r.logB, 'banned').length).toBe(banned.length);
    } finally {
      await r.close();
    }
  });
});

describe('connection limits across replicas', () => {
  it('maxConnectionsPerIp 2 over A and B: the third is refused on either, a close frees a slot on the other, a dead replica stops counting', async () => {
    const r = await replicas({ maxConnectionsPerIp: 2 });
    const clientCounts = `${r.prefix}conn:client:127.0.0.1`;
    try {
      const onA = await firstReply(r.a.port);
      expect(onA.text).toMatch(/^220[ -]/);
      const onB = await firstReply(r.b.port);
      expect(onB.text).toMatch(/^220[ -]/);
      expect(await replyText(r.a.port)).toBe(TOO_MANY);
      expect(await replyText(r.b.port)).toBe(TOO_MANY);

      onA.close();
      await untilGreeted(r.b.port, '220');
      onB.close();
      await until(async () => Object.keys(await probe.hgetall(clientCounts)).length === 0, 'the counts to drop to none');

      // A replica that died without cleaning up: its counts stay in Redis, but its liveness key lapses.
      await probe.set(`${r.prefix}replica:ghost`, '1', 'PX', 600_000);
      await probe.hset(clientCounts, 'ghost', 2);
      expect(await replyText(r.a.port)).toBe(TOO_MANY);
      await probe.del(`${r.prefix}replica:ghost`);
      const afterGhost = await firstReply(r.a.port);
      expect(afterGhost.text).toMatch(/^220[ -]/);
      expect(await probe.hexists(clientCounts, 'ghost')).toBe(0);
      afterGhost.close();
    } finally {
      await r.close();
    }
  });
});

describe('sessions per account across replicas', () => {
  let keys: SshKeys;
  beforeAll(async () => {
    keys = await SshKeys.create();
  });
  afterAll(() => keys?.remove());

  it('maxConnections 1: a session on A refuses the right password on B (FTP and SFTP) without counting toward a ban; its close frees the slot', async () => {
    const r = await replicas({ maxConnectionsPerIp: 100, bruteForce: { maxFailures: 2, windowSeconds: 600, banSeconds: 600 } }, { account: { maxConnections: 1 }, configB: sftpConfig(keys.hostKey) });
    try {
      const held = await RawFtp.connect(r.a.port);
      await held.login(USER, PASSWORD);
      // More refusals than maxFailures: none is a failed login.
      for (let i = 0; i < 3; i++) expect(await login(r.b.port, PASSWORD)).toBe('530 Too many sessions for this account');
      const sftp = await sftpBatch({ port: r.b.sftpPort as number, user: USER, password: PASSWORD }, ['pwd']);
      expect(sftp.code).not.toBe(0);
      expect(r.logB.lines.filter((l) => l.event === 'login' && l.result === 'too-many-sessions')).toHaveLength(4);
      expect(loginLines(r.logB, 'failed')).toHaveLength(0);
      expect(r.logB.lines.some((l) => l.event === 'brute-force-ban')).toBe(false);

      held.close();
      await until(async () => (await login(r.b.port, PASSWORD)).startsWith('230'), 'a login on B after the close on A');
      // That session's close is written to Redis after B let its slot go.
      await until(async () => Object.keys(await probe.hgetall(`${r.prefix}conn:account:${USER}`)).length === 0, 'no session of the account left');
      const afterClose = await sftpBatch({ port: r.b.sftpPort as number, user: USER, password: PASSWORD }, ['pwd']);
      expect(afterClose.code, afterClose.stderr).toBe(0);
    } finally {
      await r.close();
    }
  });
});

describe('Redis killed mid-run', () => {
  it('logins and uploads go on, one warning, /readyz ready; when Redis returns the counts are re-published and bans are shared again', async () => {
    const r = await replicas({ maxConnectionsPerIp: 10, bruteForce: { maxFailures: 3, windowSeconds: 600, banSeconds: 600 } });
    try {
      expect(await metricValue(r.a, 'cluster_redis_up')).toBe(1);
      // An upload in flight when Redis dies.
      const body = randomBytes(6 * 1024 * 1024);
      const uploader = await RawFtp.connect(r.a.port);
      await uploader.login(USER, PASSWORD);
      const data = await uploader.pasv();
      uploader.send('STOR during-outage.bin');
      expect((await uploader.reply()).code).toBe(150);
      await new Promise<void>((resolve, reject) => data.write(body.subarray(0, 3 * 1024 * 1024), (err) => (err ? reject(err) : resolve())));

      await redis.kill();
      await until(async () => (await metricValue(r.a, 'cluster_redis_up')) === 0 && (await metricValue(r.b, 'cluster_redis_up')) === 0, 'cluster_redis_up 0');
      await new Promise<void>((resolve, reject) => data.end(body.subarray(3 * 1024 * 1024), (err?: Error | null) => (err ? reject(err) : resolve())));
      expect((await uploader.reply(60_000)).code).toBe(226);
      uploader.close();
      expect(await r.a.objectHash('during-outage.bin')).toBe(sha256(body));

      // New logins and uploads on both replicas, on their own state; this connection stays open.
      const held = await RawFtp.connect(r.a.port);
      await held.login(USER, PASSWORD);
      const small = randomBytes(200_000);
      await storBytes(held, 'a-after-kill.bin', small);
      const onB = await RawFtp.connect(r.b.port);
      await onB.login(USER, PASSWORD);
      await storBytes(onB, 'b-after-kill.bin', small);
      onB.close();
      expect(await r.a.objectHash('a-after-kill.bin')).toBe(sha256(small));
      expect(await r.a.objectHash('b-after-kill.bin')).toBe(sha256(small));

      const ready = await fetch(`http://127.0.0.1:${r.a.httpPort}/readyz`);
      expect(ready.status).toBe(200);
      expect(await metricValue(r.a, 'cluster_redis_fallbacks_total')).toBeGreaterThan(0);
      const warnings = r.logA.lines.filter((l) => l.event === 'cluster' && l.level === 40);
      expect(warnings).toHaveLength(1);

      await redis.start();
      await until(async () => (await metricValue(r.a, 'cluster_redis_up')) === 1 && (await metricValue(r.b, 'cluster_redis_up')) === 1, 'cluster_redis_up 1', 60_000);
      // The slot A took while Redis was down is in the (empty, restarted) Redis again.
      await until(async () => (await probe.hget(`${r.prefix}conn:client:127.0.0.1`, 'a').catch(() => null)) === '1', "A's count re-published");
      held.close();
      await waitForCluster(r.prefix);

      for (let i = 0; i < 3; i++) expect(await login(r.a.port, `wrong-${i}`)).toBe(REFUSED);
      await untilGreeted(r.b.port, BANNED);
    } finally {
      await r.close();
    }
  });
});
