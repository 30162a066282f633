import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from '../support/bridge.js';
import { curl, RawFtp } from '../support/clients.js';
import { CliBridge, OPS_PASSWORD, OPS_USER } from '../support/ops-cli.js';

const write = (socket: Socket, data: Buffer) => new Promise<void>((done, fail) => socket.write(data, (err) => (err ? fail(err) : done())));
const closed = (socket: Socket) => new Promise<void>((done) => (socket.destroyed ? done() : socket.once('close', () => done())));

/** A raw STOR that sends `first` now and the rest when told: an upload held in flight. */
async function heldUpload(port: number, name: string): Promise<{ ftp: RawFtp; data: Socket }> {
  const ftp = await RawFtp.connect(port);
  await ftp.login(OPS_USER, OPS_PASSWORD);
  expect((await ftp.command('TYPE I')).code).toBe(200);
  const data = await ftp.pasv();
  ftp.send(`STOR ${name}`);
  expect((await ftp.reply()).code).toBe(150);
  return { ftp, data };
}

let bridge: CliBridge | undefined;
afterEach(() => bridge?.kill());

describe('graceful drain on SIGTERM (the real CLI process)', () => {
  it('lets transfers in flight finish, closes idle sessions with 421, refuses new connections, aborts what outlives the deadline, exits 0', async () => {
    bridge = await CliBridge.start({ shutdown: { drainTimeoutSeconds: 15 } });
    const b = bridge;
    expect((await b.http('/readyz')).status).toBe(200);

    // Finishes during the drain (raw client, completes on cue).
    const finisherBody = randomBytes(3 * 1024 * 1024 + 17);
    const finisher = await heldUpload(b.ftpPort, 'finisher.bin');
    await write(finisher.data, finisherBody.subarray(0, 1024 * 1024));
    // Never finishes: cut off at the deadline, no object may appear.
    const staller = await heldUpload(b.ftpPort, 'staller.bin');
    await write(staller.data, randomBytes(6 * 1024 * 1024));
    // Logged in, nothing in flight.
    const idle = await RawFtp.connect(b.ftpPort);
    await idle.login(OPS_USER, OPS_PASSWORD);
    // Real clients, rate-limited so they are still sending when SIGTERM comes (~2.5 s each).
    const curlBodies = [0, 1, 2].map(() => randomBytes(768 * 1024));
    // From files, not stdin: a curl cut off by the drain must not leave a broken pipe behind.
    const dir = mkdtempSync(join(tmpdir(), 'ops-drain-'));
    const curls = curlBodies.map((body, i) => {
      writeFileSync(join(dir, `${i}.bin`), body);
      return curl(['--limit-rate', '300k', '-T', join(dir, `${i}.bin`), b.url(`/curl-${i}.bin`)]);
    });
    // All six sessions logged in (the curls then send STOR within milliseconds).
    const until = Date.now() + 20_000;
    while (!/^ftp_logins_total\{result="ok"\} 6$/m.test((await b.http('/metrics')).body) && Date.now() < until) await sleep(50);
    await sleep(300);

    b.child.kill('SIGTERM');
    const signalled = Date.now();

    // The idle session is told and closed at once.
    const idleReply = await idle.reply(10_000);
    expect(idleReply.code).toBe(421);
    await closed(idle.socket);
    // Not ready any more, while the drain runs.
    const ready = await b.http('/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: false, draining: true });
    // New control connections are refused.
    await expect(RawFtp.connect(b.ftpPort)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    // The held upload completes during the drain: 226, then 421 and the connection is closed.
    await write(finisher.data, finisherBody.subarray(1024 * 1024));
    finisher.data.end();
    expect((await finisher.ftp.reply(30_000)).code).toBe(226);
    expect((await finisher.ftp.reply(10_000)).code).toBe(421);
    await closed(finisher.ftp.socket);

    // The rate-limited curl uploads: each one either completed (226, intact object) or failed
    // without an object. (They are in flight at SIGTERM, so they normally all complete.)
    const results = await Promise.all(curls);
    for (const [i, r] of results.entries()) {
      expect(await b.objectHash(`curl-${i}.bin`), r.stderr).toBe(r.code === 0 ? sha256(curlBodies[i] as Buffer) : undefined);
    }

    // The staller is cut off at the deadline: its control connection goes without a 226.
    let stallerReply: number | undefined;
    staller.ftp.socket.on('data', (c: Buffer) => (stallerReply ??= Number(c.toString().slice(0, 3))));
    await closed(staller.ftp.socket);
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(14_500);
    expect(stallerReply).not.toBe(226);
    staller.data.destroy();

    expect(await b.exited).toBe(0);
    expect(await b.objectHash('finisher.bin')).toBe(sha256(finisherBody));
    expect(await b.objectHash('staller.bin')).toBeUndefined();
    const capabilities = (await import('vitest')).inject('s3').capabilities;
    if (capabilities.listMultipartUploads) expect(await b.pendingUploads()).toEqual([]);

    // One audit line per transfer, with the documented fields; never the password.
    const audit = b.logLines().filter((l) => l.event === 'operation');
    const ok = audit.find((l) => l.path === '/finisher.bin');
    expect(ok).toMatchObject({ operation: 'STOR', bucket: b.bucket, key: 'finisher.bin', bytes: finisherBody.length, result: 'ok', replyCode: 226, session: expect.any(String), user: OPS_USER, clientIp: '127.0.0.1' });
    expect(ok?.etag).toEqual(expect.any(String));
    expect(ok?.durationMs).toEqual(expect.any(Number));
    expect(audit.find((l) => l.path === '/staller.bin')).toMatchObject({ operation: 'STOR', result: 'error' });
    expect(b.log).not.toContain(OPS_PASSWORD);
  }, 90_000);

  it('a connection made just before SIGTERM but not logged in is closed with 421 too', async () => {
    bridge = await CliBridge.start({ shutdown: { drainTimeoutSeconds: 30 } });
    const b = bridge;
    const fresh = await RawFtp.connect(b.ftpPort);
    b.child.kill('SIGINT');
    expect((await fresh.reply(3000)).code).toBe(421);
    await closed(fresh.socket);
    // Nothing in flight: the process does not wait for the 30 s drain timeout.
    const started = Date.now();
    expect(await b.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const refused = connect(b.ftpPort, '127.0.0.1');
    await expect(new Promise((_, fail) => refused.once('error', fail))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  }, 30_000);
});
