import { performance } from 'node:perf_hooks';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Authenticator } from '../../../src/accounts/authenticator.js';
import { hashPassword, verifyPassword } from '../../../src/accounts/passwords.js';
import type { AccountConfig } from '../../../src/config/schema.js';

// The real password functions, watched: verifyPassword keeps its behaviour but records its calls.
vi.mock('../../../src/accounts/passwords.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/accounts/passwords.js')>();
  return { ...real, verifyPassword: vi.fn(real.verifyPassword) };
});

// Well above a bcrypt/argon2id verification even on a loaded 2-core CI machine: the guarantee holds
// while a verification takes less than the delay (the default delay is 1000 ms).
const FAILURE_DELAY_MS = 1000;
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

beforeEach(() => {
  vi.mocked(verifyPassword).mockClear();
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
    expect(result).toEqual({ ok: true, account: accounts[0], source: 'local' });
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

  it('an unknown user still costs a full hash verification, against a hash of no account', async () => {
    const auth = new Authenticator(accounts, 0);
    await auth.login('nobody', 'right-password');
    expect(verifyPassword).toHaveBeenCalledTimes(1);
    const [password, hash] = vi.mocked(verifyPassword).mock.calls[0] as [string, string];
    expect(password).toBe('right-password');
    expect(hash).toMatch(/^\$2[aby]\$\d\d\$.{53}$/);
    expect(accounts.map((a) => a.passwordHash)).not.toContain(hash);
    // Same hash every time: it is computed once per Authenticator, not per attempt.
    await auth.login('someone-else', 'x');
    expect(vi.mocked(verifyPassword).mock.calls[1]?.[1]).toBe(hash);
  });

  it('both failures take at least the failure delay, and the same time within 150 ms', async () => {
    const auth = new Authenticator(accounts, FAILURE_DELAY_MS);
    // Let the one-off work of a new Authenticator (hashing its dummy password) finish first.
    expect(await auth.login('warm-up', 'x')).toEqual({ ok: false });

    const wrongPassword = await timed(() => auth.login('cam01', 'wrong-password'));
    const unknownUser = await timed(() => auth.login('nobody', 'right-password'));
    expect(wrongPassword.result).toEqual({ ok: false });
    expect(unknownUser.result).toEqual({ ok: false });
    expect(wrongPassword.ms).toBeGreaterThanOrEqual(FAILURE_DELAY_MS - TIMER_SLACK_MS);
    expect(unknownUser.ms).toBeGreaterThanOrEqual(FAILURE_DELAY_MS - TIMER_SLACK_MS);
    expect(Math.abs(wrongPassword.ms - unknownUser.ms)).toBeLessThan(150);
  });

  it('the delay also evens out accounts whose hashes cost differently (argon2id vs bcrypt)', async () => {
    const auth = new Authenticator(accounts, FAILURE_DELAY_MS);
    await auth.login('warm-up', 'x');
    const argon = await timed(() => auth.login('cam02', 'wrong-password'));
    const unknown = await timed(() => auth.login('nobody', 'wrong-password'));
    expect(argon.result).toEqual({ ok: false });
    expect(argon.ms).toBeGreaterThanOrEqual(FAILURE_DELAY_MS - TIMER_SLACK_MS);
    expect(unknown.ms).toBeGreaterThanOrEqual(FAILURE_DELAY_MS - TIMER_SLACK_MS);
    expect(Math.abs(argon.ms - unknown.ms)).toBeLessThan(150);
  });

  it('a successful login is not held back by the failure delay', async () => {
    const auth = new Authenticator(accounts, 5_000);
    const { result, ms } = await timed(() => auth.login('cam01', 'right-password'));
    expect(result.ok).toBe(true);
    expect(ms).toBeLessThan(5_000);
  });
});
