import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { PassivePortPool, PoolExhaustedError, passiveWarnings } from '../../../src/ftp/passive-ports.js';

// Below Linux's ephemeral range (32768-60999), where another test's outgoing connection can hold
// a port of the pool, and below the 10000-32009 blocks the integration tests pick from.
const base = () => 3000 + Math.floor(Math.random() * 200) * 10;
const noop = () => {};

describe('PassivePortPool', () => {
  it('hands out every port once, then refuses; a release makes the next acquire succeed', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 2);
    const leases = [await pool.acquire('127.0.0.1', noop), await pool.acquire('127.0.0.1', noop), await pool.acquire('127.0.0.1', noop)];
    expect(new Set(leases.map((l) => l.port)).size).toBe(3);
    expect(pool.inUse).toBe(3);
    await expect(pool.acquire('127.0.0.1', noop)).rejects.toBeInstanceOf(PoolExhaustedError);
    leases[1]!.release();
    leases[1]!.release(); // idempotent: must not free a port twice
    expect(pool.inUse).toBe(2);
    const again = await pool.acquire('127.0.0.1', noop);
    expect(again.port).toBe(leases[1]!.port);
    for (const l of [...leases, again]) l.release();
    expect(pool.inUse).toBe(0);
  });

  it('skips a port bound by someone else (EADDRINUSE)', async () => {
    const min = base();
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(min, '127.0.0.1', resolve));
    const pool = new PassivePortPool(min, min + 1);
    const lease = await pool.acquire('127.0.0.1', noop);
    expect(lease.port).toBe(min + 1);
    await expect(pool.acquire('127.0.0.1', noop)).rejects.toBeInstanceOf(PoolExhaustedError);
    lease.release();
    blocker.close();
  });

  it('survives 1,000 acquire/release cycles with a pool of 10', async () => {
    const min = base();
    const pool = new PassivePortPool(min, min + 9);
    for (let i = 0; i < 1000; i++) (await pool.acquire('127.0.0.1', noop)).release();
    expect(pool.inUse).toBe(0);
  });
});

const account = { username: 'a', passwordHash: `$2b$10$${'a'.repeat(53)}`, bucket: 'bucket' };

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
