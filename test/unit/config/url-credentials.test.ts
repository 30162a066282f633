import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthHook } from '../../../src/accounts/auth-hook.js';
import { splitUrlCredentials } from '../../../src/config/redact.js';
import { WebhookPublisher } from '../../../src/server/events.js';

/** Hook and webhook URLs may carry credentials (`https://user:pw@host/`); fetch refuses such URLs. */
let server: Server;
let base: string;
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      const ok = req.headers.authorization === `Basic ${Buffer.from('hook user:p@ss:w/rd').toString('base64')}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? JSON.stringify({ bucket: 'bucket-1' }) : '{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => server.close(r)));

describe('URLs with credentials', () => {
  it('splitUrlCredentials turns user info into a Basic Authorization header and leaves other URLs alone', () => {
    expect(splitUrlCredentials('https://hook%20user:p%40ss%3Aw%2Frd@idp.test/auth?token=t')).toEqual({
      url: 'https://idp.test/auth?token=t',
      authorization: `Basic ${Buffer.from('hook user:p@ss:w/rd').toString('base64')}`,
    });
    expect(splitUrlCredentials('https://idp.test/auth?token=t')).toEqual({ url: 'https://idp.test/auth?token=t' });
  });

  it('the auth hook logs users in through a URL with user info and a query token', async () => {
    seen.length = 0;
    const hook = new AuthHook({ url: `http://hook%20user:p%40ss%3Aw%2Frd@${base}/auth?token=t1`, timeoutSeconds: 5, cacheSeconds: 0 });
    expect(await hook.login('remote', 'pw', '10.0.0.1')).toMatchObject({ ok: true, account: { username: 'remote', bucket: 'bucket-1' } });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.url).toBe('/auth?token=t1');
    // Without the credentials, the hook's own 401 is the reason (and no credential shows in it).
    const anonymous = new AuthHook({ url: `http://${base}/auth`, timeoutSeconds: 5, cacheSeconds: 0 });
    expect(await anonymous.login('remote', 'pw', '10.0.0.1')).toEqual({ ok: false, reason: 'status 401' });
  });

  it('the webhook delivers through a URL with user info', async () => {
    seen.length = 0;
    const publisher = new WebhookPublisher(
      { url: `http://hook%20user:p%40ss%3Aw%2Frd@${base}/events`, timeoutSeconds: 5, maxAttempts: 1, queueSize: 10 },
      pino({ level: 'silent' }),
    );
    publisher.publish({ type: 'delete', time: '', user: 'u', clientIp: '', bucket: 'b', key: 'k', path: '/k', protocol: 'ftp' });
    for (let i = 0; i < 100 && seen.length === 0; i++) await sleep(20);
    await publisher.close(1000);
    expect(seen.map((s) => s.url)).toEqual(['/events']);
    expect(seen[0]?.headers.authorization).toBe(`Basic ${Buffer.from('hook user:p@ss:w/rd').toString('base64')}`);
  });
});
