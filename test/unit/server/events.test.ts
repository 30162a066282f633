import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { eventFor, signBody, WebhookPublisher, type BridgeEvent } from '../../../src/server/events.js';
import type { OperationEvent } from '../../../src/sessions/operations.js';

const op = (fields: Partial<OperationEvent>): OperationEvent => ({
  op: 'STOR',
  sessionId: 's1',
  user: 'cam01',
  clientIp: '127.0.0.1',
  path: '/a.jpg',
  bucket: 'b',
  key: 'a.jpg',
  durationMs: 5,
  result: 'ok',
  code: 226,
  ...fields,
});

describe('webhook events', () => {
  it('are made only for successful uploads, deletes and renames', () => {
    const now = new Date('2026-01-02T03:04:05Z');
    expect(eventFor(op({ bytes: 3, etag: '"e"' }), now)).toEqual({
      type: 'upload', time: '2026-01-02T03:04:05.000Z', user: 'cam01', clientIp: '127.0.0.1', bucket: 'b', key: 'a.jpg', path: '/a.jpg', protocol: 'ftp', size: 3, etag: '"e"',
    });
    expect(eventFor(op({ bytes: 3, checksum: 'SHA256:abc=' }), now)).toMatchObject({ type: 'upload', checksum: 'SHA256:abc=' });
    expect(eventFor(op({ protocol: 'sftp', code: 0 }), now)).toMatchObject({ type: 'upload', protocol: 'sftp' });
    expect(eventFor(op({ op: 'RENAME', from: '/old.jpg', code: 250 }), now)).toMatchObject({ type: 'rename', fromPath: '/old.jpg' });
    expect(eventFor(op({ op: 'DELE', code: 250 }), now)).toMatchObject({ type: 'delete' });
    expect(eventFor(op({ result: 'error', code: 451 }))).toBeUndefined();
    expect(eventFor(op({ op: 'RETR' }))).toBeUndefined();
    expect(eventFor(op({ op: 'MKD', code: 257 }))).toBeUndefined();
  });

  it('carry the malware scan verdict, and announce a quarantined upload (550) at its quarantine key', () => {
    expect(eventFor(op({ scan: { result: 'clean', action: 'committed', latencyMs: 3 } }))).toMatchObject({ type: 'upload', scan: { result: 'clean', action: 'committed' } });
    const quarantined = eventFor(
      op({
        result: 'error',
        code: 550,
        error: 'SCAN_REJECTED',
        scan: { result: 'infected', signature: 'Eicar-Test-Signature', action: 'quarantined', quarantined: { bucket: 'q', key: 'quarantine/a.jpg' } },
      }),
    );
    expect(quarantined).toMatchObject({ type: 'quarantined', bucket: 'q', key: 'quarantine/a.jpg', scan: { result: 'infected', action: 'quarantined', signature: 'Eicar-Test-Signature' } });
    expect(eventFor(op({ result: 'error', code: 550, error: 'SCAN_REJECTED', scan: { result: 'infected', signature: 'X', action: 'rejected' } }))).toBeUndefined();
  });

  it('are signed with HMAC-SHA256 of the body', () => {
    // echo -n '{"a":1}' | openssl dgst -sha256 -hmac k
    expect(signBody('k', '{"a":1}')).toBe('sha256=c3a92ff9e274cdcce27a58c15a78ec6dcbbdbd0038a87e7a11baef2028fd8bff');
    expect(signBody('k', '{"a":1}')).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(signBody('k', '{"a":1}')).not.toBe(signBody('k2', '{"a":1}'));
  });

  it('a full queue drops the oldest event, counts and logs it; delivery goes on in order', async () => {
    const bodies: string[] = [];
    let hold: ServerResponse | undefined;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(body);
        if (bodies.length === 1) hold = res;
        else res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
    let dropped = 0;
    let delivered = 0;
    const publisher = new WebhookPublisher({ url, timeoutSeconds: 10, maxAttempts: 1, queueSize: 2 }, logger, {
      onDelivered: () => delivered++,
      onFailed: () => {},
      onDropped: () => dropped++,
    });
    const event = (key: string): BridgeEvent => ({ type: 'upload', time: '', user: 'u', clientIp: '', bucket: 'b', key, path: '/' + key, protocol: 'ftp' });
    publisher.publish(event('1'));
    while (bodies.length < 1) await sleep(10);
    // '1' is in flight; the queue holds two: 2 and 3 are pushed out by 4 and 5.
    for (const k of ['2', '3', '4', '5']) publisher.publish(event(k));
    expect(dropped).toBe(2);
    expect(lines.filter((l) => l.includes('webhook queue full')).length).toBe(2);
    hold?.end();
    while (delivered < 3) await sleep(10);
    expect(bodies.map((b) => (JSON.parse(b) as BridgeEvent).key)).toEqual(['1', '4', '5']);
    await publisher.close(1000);
    server.close();
  });
});
