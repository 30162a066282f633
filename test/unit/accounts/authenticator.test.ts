import { performance } from 'node:perf_hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../../../src/accounts/authenticator.js';
import { hashPassword } from '../../../src/accounts/passwords.js';
import type { AccountConfig } from '../../../src/config/schema.js';

const FAILURE_DELAY_MS = 300;
/**
 * The implementation schedules with millisecond timers (Date.now() and setTimeout), which may
 * fire up to a millisecond or so before the exact instant; allow that much, no more.
 */
const TIMER_SLACK_MS = 2;

let accounts: AccountConfig[];

beforeAll(async () => {
  accounts = [
    { username: 'cam01', passwordHash: await hashPassword('right-password'), bucket: 'uploads', prefix: 'site-a/cam01/', permissions: ['list', 'read', 'write'] },
    { username: 'cam02', passwordHash: await hashPassword('other-password', 'argon2id'), bucket: 'uploads', prefix: '', permissions: ['list'] },
  ];
});

async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - start };
}

describe('Authenticator', () => {
  it('a correct login returns the account', async () => {
    const auth = new Authenticator(accounts, FAILURE_DELAY_MS);
    const result = await auth.login('cam01', 'right-password');
    expect(result).toEqual({ ok: true, account: accounts[0] });
  });

  it('finds the account by username, whatever its hash algorithm', async () => {
    const auth = new Authenticator(accounts, FAILURE_DELAY_MS);
    const result = await auth.login('cam02', 'other-password');
    expect(result.ok).toBe(true);
    expect(result.ok && result.account.username).toBe('cam02');
    // The other account's password does not open this one.
    expect(await auth.login('cam02', 'right-password')).toEqual({ ok: false });
  });

  it('a wrong password and an unknown user both give exactly { ok: false }', async () => {
    const auth = new Authenticator(accounts, 0);
    expect(await auth.login('cam01', 'wrong-password')).toEqual({ ok: false });
    expect(await auth.login('nobody', 'right-password')).toEqual({ ok: false });
    expect(await auth.login('CAM01', 'right-password')).toEqual({ ok: false });
    expect(await auth.login('', '')).toEqual({ ok: false });
  });

  it('both failures take at least the failure delay, and the same time within 150 ms', async () => {
    const auth = new Authenticator(accounts, FAILURE_DELAY_MS);
    const wrongPassword = await timed(() => auth.login('cam01', 'wrong-password'));
    const unknownUser = await timed(() => auth.login('nobody', 'right-password'));
    expect(wrongPassword.result).toEqual({ ok: false });
    expect(unknownUser.result).toEqual({ ok: false });
    expect(wrongPassword.ms).toBeGreaterThanOrEqual(FAILURE_DELAY_MS - TIMER_SLACK_MS);
    expect(unknownUser.ms).toBeGreaterThanOrEqual(FAILURE_DELAY_MS - TIMER_SLACK_MS);
    expect(Math.abs(wrongPassword.ms - unknownUser.ms)).toBeLessThan(150);
  });

  it('a successful login is not held back by the failure delay', async () => {
    const auth = new Authenticator(accounts, 5_000);
    const { result, ms } = await timed(() => auth.login('cam01', 'right-password'));
    expect(result.ok).toBe(true);
    expect(ms).toBeLessThan(5_000);
  });
});
