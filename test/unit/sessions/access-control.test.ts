import { describe, expect, it } from 'vitest';
import { LOCAL_STATE } from '../../../src/cluster/shared-state.js';
import { parseConfig } from '../../../src/config/load.js';
import { AddressSet, BruteForceGuard, clientKey, ConnectionLimiter, LogThrottle, normalizeIp, type LoginAttempt } from '../../../src/sessions/access-control.js';
import { parseEprt, parsePort } from '../../../src/ftp/commands/data-connection.js';

describe('AddressSet', () => {
  it('matches IPv4 and IPv6 networks, single addresses and IPv4-mapped clients', () => {
    const set = new AddressSet(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32']);
    expect(set.has('10.200.3.4')).toBe(true);
    expect(set.has('::ffff:10.200.3.4')).toBe(true);
    expect(set.has('11.0.0.1')).toBe(false);
    expect(set.has('192.168.1.7')).toBe(true);
    expect(set.has('192.168.1.8')).toBe(false);
    expect(set.has('2001:db8:1::5')).toBe(true);
    expect(set.has('2001:db9::1')).toBe(false);
    expect(set.has(undefined)).toBe(false);
  });
});

describe('normalizeIp', () => {
  it('folds IPv4-mapped IPv6 back to IPv4, in either case', () => {
    expect(normalizeIp('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(normalizeIp('::FFFF:192.168.1.7')).toBe('192.168.1.7');
  });

  it('leaves IPv4, IPv6 and anything that is not a mapped IPv4 address as it is', () => {
    expect(normalizeIp('127.0.0.1')).toBe('127.0.0.1');
    expect(normalizeIp('::1')).toBe('::1');
    expect(normalizeIp('2001:db8::ffff:1')).toBe('2001:db8::ffff:1');
    // An IPv6 address written with hex groups after ::ffff: is not dotted IPv4: nothing to fold.
    expect(normalizeIp('::ffff:a00:1')).toBe('::ffff:a00:1');
    expect(normalizeIp('::ffff:10.0.0')).toBe('::ffff:10.0.0');
    expect(normalizeIp('::ffff:10.0.0.1.evil')).toBe('::ffff:10.0.0.1.evil');
    expect(normalizeIp('::ffff:')).toBe('::ffff:');
  });

  it('turns a missing address into an empty string', () => {
    expect(normalizeIp(undefined)).toBe('');
    expect(normalizeIp('')).toBe('');
  });
});

describe('clientKey', () => {
  it('keeps IPv4 as it is and masks IPv6 to the prefix (default /64), whatever the notation', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    const key = clientKey('2001:db8:1:2::1');
    expect(key).toBe('2001:db8:1:2:0:0:0:0/64');
    for (const same of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:a:b:c:d', '2001:db8:1:2::9%eth0', '2001:db8:1:2::1.2.3.4']) {
      expect(clientKey(same)).toBe(key);
    }
    expect(clientKey('2001:db8:1:3::1')).not.toBe(key);
    expect(clientKey('::1')).toBe('0:0:0:0:0:0:0:0/64');
    expect(clientKey('::')).toBe('0:0:0:0:0:0:0:0/64');
    expect(clientKey('fe80::1')).toBe('fe80:0:0:0:0:0:0:0/64');
  });

  it('masks to any prefix length, also inside a 16-bit group', () => {
    expect(clientKey('2001:db8:abcd:12ff::1', 56)).toBe('2001:db8:abcd:1200:0:0:0:0/56');
    expect(clientKey('2001:db8:abcd:1234::1', 48)).toBe(clientKey('2001:db8:abcd:ffff::2', 48));
    expect(clientKey('2001:db8::1', 128)).toBe('2001:db8:0:0:0:0:0:1/128');
    expect(clientKey('2001:db8::1', 128)).not.toBe(clientKey('2001:db8::2', 128));
    expect(clientKey('2001:db8::1', 1)).toBe('0:0:0:0:0:0:0:0/1');
    expect(clientKey('8001:db8::1', 1)).toBe('8000:0:0:0:0:0:0:0/1');
  });

  it('is what the guard and the connection limiter count by: one /64 is one client', async () => {
    const guard = new BruteForceGuard({ maxFailures: 2, windowSeconds: 60, banSeconds: 60, ipv6PrefixLength: 64 });
    expect(guard.recordFailure('2001:db8:1:2::a')).toBe(false);
    expect(guard.recordFailure('2001:db8:1:2::b')).toBe(true);
    expect(guard.bannedFor('2001:db8:1:2:dead:beef:0:1')).toBeGreaterThan(0);
    expect(await guard.begin('2001:db8:1:2::c')).toBe('banned');
    expect(guard.bannedFor('2001:db8:1:3::a')).toBe(0);
    const narrow = new BruteForceGuard({ maxFailures: 2, windowSeconds: 60, banSeconds: 60, ipv6PrefixLength: 128 });
    narrow.recordFailure('2001:db8:1:2::a');
    expect(narrow.recordFailure('2001:db8:1:2::b')).toBe(false);

    const limiter = new ConnectionLimiter(0, 2, 64);
    expect('release' in limiter.admit('2001:db8:1:2::a')).toBe(true);
    expect('release' in limiter.admit('2001:db8:1:2::b')).toBe(true);
    expect(limiter.admit('2001:db8:1:2::c')).toEqual({ refused: 'max-connections-per-ip' });
    expect('release' in limiter.admit('2001:db8:1:3::a')).toBe(true);
  });
});

describe('BruteForceGuard', () => {
  it('bans after maxFailures within the window, for banSeconds, per address', () => {
    let now = 0;
    const guard = new BruteForceGuard({ maxFailures: 3, windowSeconds: 10, banSeconds: 60 }, () => now);
    expect(guard.recordFailure('1.1.1.1')).toBe(false);
    now = 11_000; // the first failure left the window
    expect(guard.recordFailure('1.1.1.1')).toBe(false);
    expect(guard.recordFailure('1.1.1.1')).toBe(false);
    expect(guard.bannedFor('1.1.1.1')).toBe(0);
    expect(guard.recordFailure('::ffff:1.1.1.1')).toBe(true);
    expect(guard.bannedFor('1.1.1.1')).toBe(60_000);
    expect(guard.bannedFor('2.2.2.2')).toBe(0);
    now += 60_001;
    expect(guard.bannedFor('1.1.1.1')).toBe(0);
  });

  it('maxFailures 0 disables it', async () => {
    const guard = new BruteForceGuard({ maxFailures: 0, windowSeconds: 10, banSeconds: 60 });
    for (let i = 0; i < 100; i++) expect(guard.recordFailure('1.1.1.1')).toBe(false);
    for (let i = 0; i < 100; i++) expect(await guard.begin('1.1.1.1')).not.toBe('banned');
  });

  it('an attempt holds its slot from its start: parallel attempts beyond maxFailures wait, then are banned', async () => {
    const guard = new BruteForceGuard({ maxFailures: 3, windowSeconds: 60, banSeconds: 60 });
    const outcomes: (LoginAttempt | 'banned')[] = [];
    const all = Array.from({ length: 10 }, () => guard.begin('1.1.1.1').then((a) => (outcomes.push(a), a)));
    await new Promise((resolve) => setImmediate(resolve));
    // Three started (the slots), seven wait; none is banned yet.
    expect(outcomes).toHaveLength(3);
    const started = outcomes.filter((a): a is LoginAttempt => a !== 'banned');
    expect(started).toHaveLength(3);
    expect(started[0]?.failed()).toBe(false);
    expect(started[1]?.failed()).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    expect(outcomes).toHaveLength(3);
    expect(started[2]?.failed()).toBe(true);
    // Settling twice counts once.
    expect(started[2]?.failed()).toBe(false);
    const rest = (await Promise.all(all)).slice(3);
    expect(rest.every((a) => a === 'banned')).toBe(true);
    expect(guard.bannedFor('1.1.1.1')).toBeGreaterThan(0);
  });

  it('a successful attempt frees its slot without counting; a waiting one then starts', async () => {
    const guard = new BruteForceGuard({ maxFailures: 2, windowSeconds: 60, banSeconds: 60 });
    const first = await guard.begin('1.1.1.1');
    const second = await guard.begin('1.1.1.1');
    if (first === 'banned' || second === 'banned') throw new Error('banned');
    let third: LoginAttempt | 'banned' | undefined;
    const waiting = guard.begin('1.1.1.1').then((a) => (third = a));
    await new Promise((resolve) => setImmediate(resolve));
    expect(third).toBeUndefined();
    first.succeeded();
    await waiting;
    if (third === undefined || third === 'banned') throw new Error('not started');
    expect(second.failed()).toBe(false);
    third.succeeded();
    // One failure counted in all: one more is not a ban yet, two are.
    expect(guard.recordFailure('1.1.1.1')).toBe(true);
  });
});

describe('ConnectionLimiter', () => {
  it('refuses beyond the per-address and global limits; release frees a slot once', () => {
    const limiter = new ConnectionLimiter(3, 2);
    const a = limiter.admit('1.1.1.1');
    const b = limiter.admit('1.1.1.1');
    expect(limiter.admit('1.1.1.1')).toEqual({ refused: 'max-connections-per-ip' });
    const c = limiter.admit('2.2.2.2');
    expect(limiter.admit('3.3.3.3')).toEqual({ refused: 'max-connections' });
    if (!('release' in a) || !('release' in b) || !('release' in c)) throw new Error('not admitted');
    a.release();
    a.release();
    expect('release' in limiter.admit('3.3.3.3')).toBe(true);
    expect(limiter.admit('4.4.4.4')).toEqual({ refused: 'max-connections' });
  });
});

describe('PORT and EPRT arguments', () => {
  it('parses valid ones and rejects malformed ones', () => {
    expect(parsePort('127,0,0,1,4,1')).toEqual({ host: '127.0.0.1', port: 1025, family: 4 });
    expect(parsePort('127,0,0,1,4')).toHaveProperty('error');
    expect(parsePort('256,0,0,1,4,1')).toHaveProperty('error');
    expect(parseEprt('|1|132.235.1.2|6275|')).toEqual({ host: '132.235.1.2', port: 6275, family: 4 });
    expect(parseEprt('!2!::1!5282!')).toEqual({ host: '::1', port: 5282, family: 6 });
    expect(parseEprt('|2|1.2.3.4|5282|')).toHaveProperty('error');
    expect(parseEprt('|3|::1|5282|')).toEqual({ error: 'Network protocol not supported, use (1,2)' });
    expect(parseEprt('|1|1.2.3.4|70000|')).toHaveProperty('error');
  });
});

describe('configuration keys, accepted as written', () => {
  const account = { username: 'a', passwordHash: `$2b$10$${'a'.repeat(53)}`, bucket: 'bucket' };
  it('network and access-control keys', () => {
    const config = parseConfig({
      ftp: {
        passive: { address: 'ftp.example.com', overrides: [{ cidr: '10.0.0.0/8', address: '10.0.0.5' }] },
        bruteForce: { maxFailures: 5, windowSeconds: 60, banSeconds: 600, ipv6PrefixLength: 56 },
        maxConnections: 50,
        maxConnectionsPerIp: 5,
        idleTimeoutSeconds: 300,
        loginTimeoutSeconds: 20,
        dataConnectionTimeoutSeconds: 10,
      },
      accounts: [{ ...account, allowFrom: ['192.168.0.0/16', '2001:db8::/32', '203.0.113.7'] }],
    });
    expect(config.ftp.bruteForce).toEqual({ maxFailures: 5, windowSeconds: 60, banSeconds: 600, ipv6PrefixLength: 56 });
    expect(config.ftp.passive.overrides).toEqual([{ cidr: '10.0.0.0/8', address: '10.0.0.5' }]);
    expect(config.accounts[0]?.allowFrom).toHaveLength(3);
    const defaults = parseConfig({ accounts: [account] }).ftp;
    expect(defaults.idleTimeoutSeconds).toBe(900);
    expect(defaults.bruteForce.maxFailures).toBe(10);
    expect(defaults.bruteForce.ipv6PrefixLength).toBe(64);
  });

  it('rejects malformed CIDRs and unknown keys', () => {
    expect(() => parseConfig({ accounts: [{ ...account, allowFrom: ['10.0.0.0/33'] }] })).toThrow();
    expect(() => parseConfig({ accounts: [{ ...account, allowFrom: ['example.com'] }] })).toThrow();
    expect(() => parseConfig({ ftp: { passive: { overrides: [{ cidr: 'x', address: '1.2.3.4' }] } }, accounts: [account] })).toThrow();
    expect(() => parseConfig({ ftp: { bruteforce: {} }, accounts: [account] })).toThrow();
    expect(() => parseConfig({ ftp: { bruteForce: { ipv6PrefixLength: 129 } }, accounts: [account] })).toThrow();
    expect(() => parseConfig({ ftp: { bruteForce: { ipv6PrefixLength: 0 } }, accounts: [account] })).toThrow();
  });
});

describe('LogThrottle', () => {
  it('lets one line per key through each interval and counts those suppressed', () => {
    let now = 0;
    const throttle = new LogThrottle(10_000, () => now);
    expect(throttle.admit('a')).toBe(0);
    expect(throttle.admit('a')).toBeUndefined();
    expect(throttle.admit('a')).toBeUndefined();
    expect(throttle.admit('b')).toBe(0);
    now = 9_999;
    expect(throttle.admit('a')).toBeUndefined();
    now = 10_000;
    expect(throttle.admit('a')).toBe(3);
    expect(throttle.admit('a')).toBeUndefined();
  });

  it('holds a bounded number of keys under a flood of distinct ones', () => {
    const throttle = new LogThrottle(10_000, () => 0);
    for (let i = 0; i < 20_000; i++) expect(throttle.admit(`k${i}`)).toBe(0);
    // The oldest keys were dropped, so their next line is let through again.
    expect(throttle.admit('k0')).toBe(0);
    expect(throttle.admit('k19999')).toBeUndefined();
  });
});

describe('with shared state that is unavailable (Redis down)', () => {
  it('the guard decides on its own count: maxFailures slots, then a ban', async () => {
    const guard = new BruteForceGuard({ maxFailures: 3, windowSeconds: 60, banSeconds: 60 }, Date.now, LOCAL_STATE);
    const outcomes: (LoginAttempt | 'banned')[] = [];
    const all = Array.from({ length: 6 }, () => guard.begin('1.1.1.1').then((a) => (outcomes.push(a), a)));
    await new Promise((resolve) => setTimeout(resolve, 10));
    const started = outcomes.filter((a): a is LoginAttempt => a !== 'banned');
    expect(started).toHaveLength(3);
    expect(await started[0]?.failed()).toBe(false);
    expect(await started[1]?.failed()).toBe(false);
    expect(await started[2]?.failed()).toBe(true);
    expect((await Promise.all(all)).slice(3).every((a) => a === 'banned')).toBe(true);
    expect(guard.bannedFor('1.1.1.1')).toBeGreaterThan(0);
    guard.close();
  });

  it('the limiter admits on its own count', async () => {
    const limiter = new ConnectionLimiter(0, 2, 64, LOCAL_STATE);
    const a = await limiter.admitShared('1.1.1.1');
    expect('release' in a).toBe(true);
    expect('release' in (await limiter.admitShared('1.1.1.1'))).toBe(true);
    expect(await limiter.admitShared('1.1.1.1')).toEqual({ refused: 'max-connections-per-ip' });
    if ('release' in a) a.release();
    expect('release' in (await limiter.admitShared('1.1.1.1'))).toBe(true);
  });
});
