import { performance } from 'node:perf_hooks';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AuthHook } from '../../../src/accounts/auth-hook.js';
import { Authenticator } from '../../../src/accounts/authenticator.js';
import { hashPassword, verifyPassword } from '../../../src/accounts/passwords.js';
import type { AccountConfig } from '../../../src/config/schema.js';

// The real password functions, watched: verifyPassword keeps its behaviour but records its calls.
vi.mock('../../../src/accounts/passwords.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/accounts/passwords.js')>();
  return { ...real, verifyPassword: vi.fn(real.verifyPassword) };
});

const FAILURE_DELAY_MS = 1000;

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

  it('answers as soon as it knows, success and failure alike: the caller holds refusals to refusalDelayMs', async () => {
    const auth = new Authenticator(accounts, 5_000);
    expect(auth.refusalDelayMs).toBe(5_000);
    await auth.login('warm-up', 'x');
    const ok = await timed(() => auth.login('cam01', 'right-password'));
    const wrong = await timed(() => auth.login('cam01', 'wrong-password'));
    expect(ok.result.ok).toBe(true);
    expect(wrong.result).toEqual({ ok: false });
    expect(ok.ms).toBeLessThan(5_000);
    expect(wrong.ms).toBeLessThan(5_000);
  });

  it('with an auth hook, refusals are held at least to the hook time-out, so a silent hook looks like any refusal', () => {
    const hook = (timeoutSeconds: number) => new AuthHook({ url: 'http://127.0.0.1:1/', timeoutSeconds, cacheSeconds: 0 });
    expect(new Authenticator(accounts, 1000, hook(5)).refusalDelayMs).toBe(5_100);
    expect(new Authenticator(accounts, 8000, hook(5)).refusalDelayMs).toBe(8_000);
    expect(new Authenticator(accounts, 0, hook(0.3)).refusalDelayMs).toBe(400);
  });
});
