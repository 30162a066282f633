import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, type TestAccount } from '../support/bridge.js';
import { RawFtp, type FtpReply } from '../support/clients.js';
import { certDir, makeCertificate, type TestCertificate } from '../support/tls.js';

/** Issue 14 §3: logins cannot be raced past the brute-force guard, and a refusal tells nothing. */

const REFUSED = '530 Login incorrect';
const BANNED = '421 Too many failed logins; try again later';

const FENCED = { username: 'fenced', password: 'fenced-pw', allowFrom: ['10.0.0.0/8'] } satisfies TestAccount;
const TLS_ONLY = { username: 'bob', password: 'bob-pw', policy: { requireTls: true } } satisfies TestAccount;
const LOCAL_ACCOUNTS: TestAccount[] = [{ username: USER, password: PASSWORD }, FENCED, TLS_ONLY];

const dir = certDir();
let cert: TestCertificate;

/** The identity provider: 'partner' is an account that requires TLS, 'silent' never gets an answer in time. */
let hook: Server;
let hookUrl = '';
const HOOK_TIMEOUT_SECONDS = 0.4;

beforeAll(async () => {
  cert = await makeCertificate(dir, 'login');
  hook = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const call = JSON.parse(text) as { username: string; password: string };
      const reply = (status: number, body: string) => {
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      };
      if (call.username === 'silent') return void setTimeout(() => reply(403, '{}'), 5000).unref();
      if (call.username === 'partner' && call.password === 'partner-pw') return reply(200, JSON.stringify({ bucket: 'hooked', requireTls: true }));
      reply(403, '{"error":"denied"}');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/auth`;
});
afterAll(async () => {
  hook?.closeAllConnections();
  await new Promise((resolve) => hook?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** The first words a new control connection gets, up to its close (a ban closes it) or `ms`. */
function greeting(port: number, ms = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', () => undefined);
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

/** USER then PASS on a new connection; the time is from sending PASS to its reply. */
async function timedLogin(port: number, user: string, password: string): Promise<{ reply: FtpReply; ms: number }> {
  const ftp = await RawFtp.connect(port);
  try {
    const userReply = await ftp.command(`USER ${user}`);
    expect(userReply.code, userReply.text).toBe(331);
    const started = performance.now();
    const reply = await ftp.command(`PASS ${password}`);
    return { reply, ms: performance.now() - started };
  } finally {
    ftp.close();
  }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

type Case = readonly [name: string, user: string, password: string];

/**
 * Runs every case `rounds` times, all cases of a round at once (so each sees the same machine
 * load) and in an order rotated each round (so none is always last), after one unmeasured warm-up
 * round, and returns each case's reply texts and median time.
 */
async function measure(port: number, cases: readonly Case[], rounds: number): Promise<Map<string, { texts: Set<string>; median: number }>> {
  const times = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  const texts = new Map<string, Set<string>>(cases.map(([name]) => [name, new Set<string>()]));
  for (let round = 0; round <= rounds; round++) {
    const order = cases.map((_, i) => cases[(i + round) % cases.length] as Case);
    const results = await Promise.all(order.map(([, user, password]) => timedLogin(port, user, password)));
    results.forEach(({ reply, ms }, i) => {
      const [name] = order[i] as Case;
      texts.get(name)?.add(reply.text);
      if (round > 0) times.get(name)?.push(ms);
    });
  }
  return new Map(cases.map(([name]) => [name, { texts: texts.get(name) as Set<string>, median: median(times.get(name) as number[]) }]));
}

/** Each refusal case answers exactly as a wrong password does, and within 20 ms of it (medians). */
function expectIndistinguishable(results: Map<string, { texts: Set<string>; median: number }>, refusalDelayMs: number): void {
  const baseline = results.get('wrong password');
  if (!baseline) throw new Error('no baseline');
  const summary = Object.fromEntries([...results].map(([name, r]) => [name, Math.round(r.median * 10) / 10]));
  for (const [name, result] of results) {
    expect([...result.texts], name).toEqual([REFUSED]);
    // The fixed delay is what hides the check: every refusal waits it out.
    expect(result.median, name).toBeGreaterThanOrEqual(refusalDelayMs - 5);
    expect(Math.abs(result.median - baseline.median), `${name}: medians ${JSON.stringify(summary)}`).toBeLessThan(20);
  }
}

describe('parallel wrong passwords from one address', () => {
  const log = new PassThrough();
  let logText = '';
  log.on('data', (c: Buffer) => (logText += c.toString()));
  let bridge: TestBridge;
  const MAX_FAILURES = 5;
  beforeAll(async () => {
    bridge = await TestBridge.start({
      logStream: log,
      logLevel: 'info',
      ftp: { loginFailureDelayMs: 300, maxConnectionsPerIp: 100, bruteForce: { maxFailures: MAX_FAILURES, windowSeconds: 600, banSeconds: 600 } },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('30 at once get at most maxFailures 530s, the rest 421 unchecked; then even the right password is refused', async () => {
    // A connection already past USER before the attack, with the right password ready.
    const bystander = await RawFtp.connect(bridge.port);
    expect((await bystander.command(`USER ${USER}`)).code).toBe(331);
    const attackers = await Promise.all(Array.from({ length: 30 }, () => RawFtp.connect(bridge.port)));
    await Promise.all(attackers.map(async (ftp) => expect((await ftp.command(`USER ${USER}`)).code).toBe(331)));
    for (const [i, ftp] of attackers.entries()) ftp.send(`PASS wrong-${i}`);
    const replies = await Promise.all(attackers.map((ftp) => ftp.reply(30_000)));
    for (const ftp of attackers) ftp.close();

    const refused = replies.filter((r) => r.code === 530);
    const banned = replies.filter((r) => r.code === 421);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length).toBeLessThanOrEqual(MAX_FAILURES);
    expect(refused.length + banned.length).toBe(30);
    for (const r of refused) expect(r.text).toBe(REFUSED);
    for (const r of banned) expect(r.text).toBe(BANNED);
    // Only the attempts that held a slot had their password checked.
    const lines = logText.split('\n').filter((l) => l.includes('"event":"login"'));
    expect(lines.filter((l) => l.includes('"result":"failed"'))).toHaveLength(refused.length);
    expect(lines.filter((l) => l.includes('"result":"banned"'))).toHaveLength(banned.length);
    expect(logText).toContain('"event":"brute-force-ban"');

    // The right password is refused now: on the connection already open, and on a new one.
    const late = await bystander.command(`PASS ${PASSWORD}`);
    expect(late.text).toBe(BANNED);
    bystander.close();
    const fresh = await greeting(bridge.port);
    expect(fresh.text).toBe(BANNED + '\r\n');
    expect(fresh.closed).toBe(true);
    expect(logText).not.toContain('"result":"ok"');
  });
});

describe('every refusal answers the same, at the same time', () => {
  // The default delay: a bcrypt check on a loaded 2-core machine stays well inside it.
  const TIMING_DELAY_MS = 1000;
  const ROUNDS = 11;

  it('local accounts: unknown user, right password outside allowFrom, right password in the clear for requireTls', async () => {
    const bridge = await TestBridge.start({
      accounts: LOCAL_ACCOUNTS,
      ftp: { loginFailureDelayMs: TIMING_DELAY_MS, tls: { cert: cert.cert, key: cert.key }, bruteForce: { maxFailures: 1000 } },
    });
    try {
      // USER answers the same for every name, the requireTls account included.
      const probe = await RawFtp.connect(bridge.port);
      const userReplies = await Promise.all([USER, TLS_ONLY.username, 'nobody-here'].map(async (name) => (await probe.command(`USER ${name}`)).text));
      probe.close();
      expect(new Set(userReplies)).toEqual(new Set(['331 Password required']));

      const results = await measure(
        bridge.port,
        [
          ['wrong password', USER, 'wrong'],
          ['unknown user', 'nobody-here', 'wrong'],
          ['outside allowFrom', FENCED.username, FENCED.password],
          ['requireTls in the clear', TLS_ONLY.username, TLS_ONLY.password],
        ],
        ROUNDS,
      );
      expectIndistinguishable(results, TIMING_DELAY_MS);
    } finally {
      await bridge.close();
    }
  });

  it('auth hook: deny, time-out, and an account that requires TLS with its right password in the clear', async () => {
    const bridge = await TestBridge.start({
      ftp: { loginFailureDelayMs: TIMING_DELAY_MS, tls: { cert: cert.cert, key: cert.key }, bruteForce: { maxFailures: 1000 } },
      config: { auth: { hook: { url: hookUrl, timeoutSeconds: HOOK_TIMEOUT_SECONDS, cacheSeconds: 0 } } },
    });
    try {
      const results = await measure(
        bridge.port,
        [
          ['wrong password', USER, 'wrong'],
          ['hook deny', 'stranger', 'pw'],
          ['hook time-out', 'silent', 'pw'],
          ['hook requireTls in the clear', 'partner', 'partner-pw'],
        ],
        ROUNDS,
      );
      // The refusal delay (above the hook's time-out + 100 ms) covers a hook that never answers.
      expectIndistinguishable(results, TIMING_DELAY_MS);
    } finally {
      await bridge.close();
    }
  });
});

describe('every kind of refusal counts toward the ban', () => {
  async function expectBannedAfter(bridge: TestBridge, attempts: readonly (readonly [string, string])[]): Promise<void> {
    for (const [user, password] of attempts) {
      // Each attempt's own connection is still admitted: no ban before the last refusal.
      const { reply } = await timedLogin(bridge.port, user, password);
      expect(reply.text, user).toBe(REFUSED);
    }
    const after = await greeting(bridge.port);
    expect(after.text).toBe(BANNED + '\r\n');
  }

  it('local: wrong password, unknown user, outside allowFrom, requireTls in the clear', async () => {
    const bridge = await TestBridge.start({
      accounts: LOCAL_ACCOUNTS,
      ftp: { loginFailureDelayMs: 50, tls: { cert: cert.cert, key: cert.key }, bruteForce: { maxFailures: 4, windowSeconds: 600, banSeconds: 600 } },
    });
    try {
      await expectBannedAfter(bridge, [
        [USER, 'wrong'],
        ['nobody-here', 'x'],
        [FENCED.username, FENCED.password],
        [TLS_ONLY.username, TLS_ONLY.password],
      ]);
    } finally {
      await bridge.close();
    }
  });

  it('auth hook: deny, time-out, requireTls in the clear', async () => {
    const bridge = await TestBridge.start({
      ftp: { loginFailureDelayMs: 50, tls: { cert: cert.cert, key: cert.key }, bruteForce: { maxFailures: 3, windowSeconds: 600, banSeconds: 600 } },
      config: { auth: { hook: { url: hookUrl, timeoutSeconds: HOOK_TIMEOUT_SECONDS, cacheSeconds: 0 } } },
    });
    try {
      await expectBannedAfter(bridge, [
        ['stranger', 'pw'],
        ['silent', 'pw'],
        ['partner', 'partner-pw'],
      ]);
    } finally {
      await bridge.close();
    }
  });
});
