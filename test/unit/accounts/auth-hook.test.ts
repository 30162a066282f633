import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthHook } from '../../../src/accounts/auth-hook.js';
import { Authenticator } from '../../../src/accounts/authenticator.js';
import { AccountStore } from '../../../src/accounts/account-store.js';

let server: Server;
let url: string;
let requests = 0;
beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ bucket: 'bucket-1', prefix: 'x/' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise((r) => server.close(r)));

describe('AuthHook', () => {
  it('caches a successful answer per user, password and address when cacheSeconds > 0, and not otherwise', async () => {
    requests = 0;
    const cached = new AuthHook({ url, timeoutSeconds: 5, cacheSeconds: 60 });
    expect(await cached.login('u', 'p', '10.0.0.1')).toMatchObject({ ok: true, account: { username: 'u', bucket: 'bucket-1', prefix: 'x/' } });
    await cached.login('u', 'p', '10.0.0.1');
    expect(requests).toBe(1);
    await cached.login('u', 'other', '10.0.0.1');
    await cached.login('u', 'p', '10.0.0.2');
    expect(requests).toBe(3);
    // The cache keys hold a hash of the password, never the password.
    const keys = [...(cached as unknown as { cache: Map<string, unknown> }).cache.keys()];
    expect(keys.join()).not.toContain('other');
    const uncached = new AuthHook({ url, timeoutSeconds: 5, cacheSeconds: 0 });
    await uncached.login('u', 'p', '');
    await uncached.login('u', 'p', '');
    expect(requests).toBe(5);
  });

  it('refuses when the hook cannot be reached', async () => {
    const hook = new AuthHook({ url: 'http://127.0.0.1:1/', timeoutSeconds: 1, cacheSeconds: 0 });
    const result = await hook.login('u', 'p', '');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^request failed: /);
  });

  it('is asked by the Authenticator only for names that are not local accounts', async () => {
    requests = 0;
    const auth = new Authenticator(new AccountStore([]), 0, new AuthHook({ url, timeoutSeconds: 5, cacheSeconds: 0 }));
    expect(await auth.login('remote', 'pw', '10.0.0.1')).toMatchObject({ ok: true, source: 'hook' });
    expect(requests).toBe(1);
  });
});
