import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { AddressSet, BruteForceGuard, ConnectionLimiter } from '../../../src/ftp/access-control.js';
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

  it('maxFailures 0 disables it', () => {
    const guard = new BruteForceGuard({ maxFailures: 0, windowSeconds: 10, banSeconds: 60 });
    for (let i = 0; i < 100; i++) expect(guard.recordFailure('1.1.1.1')).toBe(false);
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
        bruteForce: { maxFailures: 5, windowSeconds: 60, banSeconds: 600 },
        maxConnections: 50,
        maxConnectionsPerIp: 5,
        idleTimeoutSeconds: 300,
        loginTimeoutSeconds: 20,
        dataConnectionTimeoutSeconds: 10,
      },
      accounts: [{ ...account, allowFrom: ['192.168.0.0/16', '2001:db8::/32', '203.0.113.7'] }],
    });
    expect(config.ftp.bruteForce).toEqual({ maxFailures: 5, windowSeconds: 60, banSeconds: 600 });
    expect(config.ftp.passive.overrides).toEqual([{ cidr: '10.0.0.0/8', address: '10.0.0.5' }]);
    expect(config.accounts[0]?.allowFrom).toHaveLength(3);
    const defaults = parseConfig({ accounts: [account] }).ftp;
    expect(defaults.idleTimeoutSeconds).toBe(900);
    expect(defaults.bruteForce.maxFailures).toBe(10);
  });

  it('rejects malformed CIDRs and unknown keys', () => {
    expect(() => parseConfig({ accounts: [{ ...account, allowFrom: ['10.0.0.0/33'] }] })).toThrow();
    expect(() => parseConfig({ accounts: [{ ...account, allowFrom: ['example.com'] }] })).toThrow();
    expect(() => parseConfig({ ftp: { passive: { overrides: [{ cidr: 'x', address: '1.2.3.4' }] } }, accounts: [account] })).toThrow();
    expect(() => parseConfig({ ftp: { bruteforce: {} }, accounts: [account] })).toThrow();
  });
});
