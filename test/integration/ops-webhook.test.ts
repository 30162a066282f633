import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { curl } from '../support/clients.js';
import { CliBridge, OPS_USER } from '../support/ops-cli.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on loopback whose answers the test scripts. */
class Receiver {
  readonly received: Received[] = [];
  /** Status codes for the next requests, in order; then 200. */
  statuses: number[] = [];
  delayMs = 0;
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server);
    server.on('request', (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        receiver.received.push({ headers: req.headers, body });
        const status = receiver.statuses.shift() ?? 200;
        setTimeout(() => res.writeHead(status).end(), receiver.delayMs);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** The delivered (2xx-answered or last) events, parsed. */
  events(): Record<string, unknown>[] {
    return this.received.map((r) => JSON.parse(r.body) as Record<string, unknown>);
  }

  async waitFor(count: number, timeoutMs = 15_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.received.length < count) {
      if (Date.now() > until) throw new Error(`only ${this.received.length} of ${count} webhook requests`);
      await sleep(50);
    }
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const SECRET = 'webhook-secret-123';
let bridge: CliBridge | undefined;
let receiver: Receiver | undefined;
afterEach(async () => {
  bridge?.kill();
  await receiver?.close();
});

describe('upload events webhook', () => {
  it('posts signed events after upload, rename and delete, retries after a 500, and a slow webhook does not delay 226', async () => {
    receiver = await Receiver.start();
    const r = receiver;
    bridge = await CliBridge.start({ events: { webhook: { url: r.url, secret: SECRET, maxAttempts: 3, timeoutSeconds: 10 } } });
    const b = bridge;

    // Upload: the first delivery gets a 500, the retry succeeds.
    r.statuses = [500];
    const body = randomBytes(10_000);
    expect((await curl(['-T', '-', b.url('/a.bin')], body)).code).toBe(0);
    await r.waitFor(2);
    expect(r.received[0]?.body).toBe(r.received[1]?.body);
    for (const { headers, body: raw } of r.received) {
      expect(headers['content-type']).toBe('application/json');
      const expected = 'sha256=' + createHmac('sha256', SECRET).update(raw).digest('hex');
      expect(headers['x-ftp-s3-bridge-signature']).toBe(expected);
    }
    const upload = r.events()[1];
    expect(upload).toMatchObject({ type: 'upload', user: OPS_USER, bucket: b.bucket, key: 'a.bin', path: '/a.bin', size: body.length, clientIp: '127.0.0.1' });
    expect(upload?.etag).toEqual(expect.any(String));
    expect(Date.parse(upload?.time as string)).toBeGreaterThan(Date.now() - 60_000);

    // Rename and delete.
    expect((await curl(['-Q', 'RNFR /a.bin', '-Q', 'RNTO /b.bin', b.url('/')])).code).toBe(0);
    expect((await curl(['-Q', 'DELE /b.bin', b.url('/')])).code).toBe(0);
    await r.waitFor(4);
    expect(r.events()[2]).toMatchObject({ type: 'rename', key: 'b.bin', path: '/b.bin', fromPath: '/a.bin', bucket: b.bucket });
    expect(r.events()[3]).toMatchObject({ type: 'delete', key: 'b.bin', bucket: b.bucket });

    // A webhook that takes 8 s to answer does not hold up the FTP reply.
    r.delayMs = 8000;
    const started = Date.now();
    expect((await curl(['-T', '-', b.url('/slow.bin')], 'x')).code).toBe(0);
    // below the receiver's 8 s delay with room for a loaded machine: the reply did not wait for it
    expect(Date.now() - started).toBeLessThan(7000);
    expect(await b.objectHash('slow.bin')).toEqual(expect.any(String));
    await r.waitFor(5);
    expect(r.events()[4]).toMatchObject({ type: 'upload', key: 'slow.bin', size: 1 });
    expect(b.log).not.toContain(SECRET);
  }, 60_000);

  it('a webhook that always fails gives up after maxAttempts and never changes the FTP reply', async () => {
    receiver = await Receiver.start();
    const r = receiver;
    r.statuses = Array.from({ length: 50 }, () => 503);
    bridge = await CliBridge.start({ events: { webhook: { url: r.url, maxAttempts: 2 } } });
    const b = bridge;
    expect((await curl(['-T', '-', b.url('/x.bin')], 'payload')).code).toBe(0);
    expect(await b.objectHash('x.bin')).toEqual(expect.any(String));
    // the sender reports giving up on the event: no attempt can follow
    await expect.poll(() => b.logLines().some((l) => l.msg === 'webhook event not delivered'), { timeout: 30_000 }).toBe(true);
    // Exactly maxAttempts tries; no signature header without a secret.
    expect(r.received).toHaveLength(2);
    expect(r.received[0]?.headers['x-ftp-s3-bridge-signature']).toBeUndefined();
    const metrics = (await b.http('/metrics')).body;
    expect(metrics).toMatch(/^webhook_events_total\{result="failed"\} 1$/m);
    expect(b.logLines().some((l) => l.msg === 'webhook event not delivered')).toBe(true);
  }, 60_000);
});
