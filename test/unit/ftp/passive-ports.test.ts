import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { replyFor } from '../../../src/ftp/replies.js';
import { PassivePortPool, PassivePortsPerClientError, PoolExhaustedError, passiveWarnings } from '../../../src/ftp/passive-ports.js';

// Below Linux's ephemeral range (32768-60999), where another test's outgoing connection can hold
// a port of the pool, and below the 10000-32009 blocks the integration tests pick from.
const base = () => 3000 + Math.floor(Math.random() * 200) * 10;
const noop = () => {};
const client = '192.0.2.1';

describe('PassivePortPool', () => {
  it('hands out every port once, then refuses; a release makes the next acquire succeed', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 2);
    const leases = [await pool.acquire('127.0.0.1', client, noop), await pool.acquire('127.0.0.1', client, noop), await pool.acquire('127.0.0.1', client, noop)];
    expect(new Set(leases.map((l) => l.port)).size).toBe(3);
    expect(pool.inUse).toBe(3);
    await expect(pool.acquire('127.0.0.1', client, noop)).rejects.toBeInstanceOf(PoolExhaustedError);
    leases[1]!.release();
    leases[1]!.release(); // idempotent: must not free a port twice
    expect(pool.inUse).toBe(2);
    const again = await pool.acquire('127.0.0.1', client, noop);
    expect(again.port).toBe(leases[1]!.port);
    for (const l of [...leases, again]) l.release();
    expect(pool.inUse).toBe(0);
  });

  it('skips a port bound by someone else (EADDRINUSE)', async () => {
    const min = base();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(min, '127.0.0.1', resolve));
    const pool = new PassivePortPool(min, min + 1);
    const lease = await pool.acquire('127.0.0.1', client, noop);
    expect(lease.port).toBe(min + 1);
    await expect(pool.acquire('127.0.0.1', client, noop)).rejects.toBeInstanceOf(PoolExhaustedError);
    lease.release();
    blocker.close();
  });

  it('one client holds at most maxPerClient ports; another client still gets one; a release frees a share', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 7, 3);
    const mine = [];
    for (let i = 0; i < 3; i++) mine.push(await pool.acquire('127.0.0.1', 'a', noop));
    const refused = await pool.acquire('127.0.0.1', 'a', noop).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PassivePortsPerClientError);
    expect(replyFor(refused)).toEqual({ code: 425, message: expect.stringMatching(/passive ports .* your address/) });
    expect(pool.heldByClient('a')).toBe(3);
    expect(pool.inUse).toBe(3);
    const other = await pool.acquire('127.0.0.1', 'b', noop);
    expect(pool.heldByClient('b')).toBe(1);
    mine[0]!.release();
    mine[0]!.release(); // idempotent: the client's count drops once
    expect(pool.heldByClient('a')).toBe(2);
    mine.push(await pool.acquire('127.0.0.1', 'a', noop));
    for (const l of [...mine, other]) l.release();
    expect(pool.inUse).toBe(0);
    expect([pool.heldByClient('a'), pool.heldByClient('b')]).toEqual([0, 0]);
  });

  it('concurrent acquires of one client cannot overshoot its share', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 9, 2);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => pool.acquire('127.0.0.1', 'a', noop)));
    const leases = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    expect(leases.length).toBe(2);
    expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof PassivePortsPerClientError).length).toBe(4);
    for (const l of leases) l.release();
    expect(pool.heldByClient('a')).toBe(0);
  });

  it('a failed acquire (range exhausted) does not count against the client', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min, 4);
    const held = await pool.acquire('127.0.0.1', 'a', noop);
    await expect(pool.acquire('127.0.0.1', 'b', noop)).rejects.toBeInstanceOf(PoolExhaustedError);
    expect(pool.heldByClient('b')).toBe(0);
    held.release();
    (await pool.acquire('127.0.0.1', 'b', noop)).release();
  });

  it('a client holding the whole range is told the range is full (425 "no passive port free"), not over its share', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 1, 2);
    const leases = [await pool.acquire('127.0.0.1', 'a', noop), await pool.acquire('127.0.0.1', 'a', noop)];
    await expect(pool.acquire('127.0.0.1', 'a', noop)).rejects.toBeInstanceOf(PoolExhaustedError);
    for (const l of leases) l.release();
  });

  it('a listener closed from outside (server close) returns the port and the client share', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 1, 1);
    const lease = await pool.acquire('127.0.0.1', 'a', noop);
    await new Promise((resolve) => lease.server.close(resolve));
    expect([pool.inUse, pool.heldByClient('a')]).toEqual([0, 0]);
    (await pool.acquire('127.0.0.1', 'a', noop)).release();
  });

  it('survives 1,000 acquire/release cycles with a pool of 10', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 9);
    for (let i = 0; i < 1000; i++) (await pool.acquire('127.0.0.1', client, noop)).release();
    expect(pool.inUse).toBe(0);
  });
});

const account = { username: 'a', passwordHash: `$2b$10$${'a'.repeat(53)}`, bucket: 'bucket' };

describe('ftp.passive.maxPerClient', () => {
  const passive = (p: object) => parseConfig({ ftp: { passive: p }, accounts: [account] }).ftp.passive;

  it('defaults to a quarter of the range, at least 4; a set value is kept', () => {
    expect(passive({}).maxPerClient).toBe(12); // 30000-30049: 50 ports
    expect(passive({ portMin: 20000, portMax: 20999 }).maxPerClient).toBe(250);
    expect(passive({ portMin: 20000, portMax: 20009 }).maxPerClient).toBe(4);
    expect(passive({ portMin: 20000, portMax: 20000 }).maxPerClient).toBe(4);
    expect(passive({ portMin: 20000, portMax: 20999, maxPerClient: 7 }).maxPerClient).toBe(7);
    expect(() => passive({ maxPerClient: 0 })).toThrow(/maxPerClient/);
  });
});

describe('passiveWarnings', () => {
  const warn = (ftp: object, port = 2121) => passiveWarnings(parseConfig({ ftp, accounts: [account] }).ftp, port);

  it('loopback or private passive address on a wildcard listener without overrides', () => {
    expect(warn({ host: '0.0.0.0', passive: { address: '127.0.0.1' } }).join()).toMatch(/loopback .*Connection refused/);
    expect(warn({ host: '0.0.0.0', passive: { address: '10.1.2.3' } }).join()).toMatch(/private address 10\.1\.2\.3/);
    expect(warn({ host: '0.0.0.0', passive: { address: '10.1.2.3', overrides: [{ cidr: '10.0.0.0/8', address: '10.1.2.3' }] } })).toEqual([]);
    expect(warn({ host: '0.0.0.0', passive: { address: '203.0.113.10' } })).toEqual([]);
    expect(warn({ host: '127.0.0.1', passive: { address: '127.0.0.1' } })).toEqual([]);
    expect(warn({ host: '0.0.0.0' }).join()).toMatch(/not set/);
  });

  it('a range that collides with the control port, starts at 0 or below 1024, or is tiny', () => {
    expect(warn({ host: '127.0.0.1', port: 30010 }, 30010).join()).toMatch(/control port 30010 lies inside/);
    expect(warn({ host: '127.0.0.1', passive: { portMin: 0, portMax: 100 } }).join()).toMatch(/portMin is 0/);
    expect(warn({ host: '127.0.0.1', passive: { portMin: 30000, portMax: 30001 } }).join()).toMatch(/only 2 port/);
  });
});
