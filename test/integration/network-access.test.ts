import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, curl } from '../support/clients.js';
import { waitForSessions } from '../support/metrics.js';

const log = new PassThrough();
let logText = '';
log.on('data', (c: Buffer) => (logText += c.toString()));

/** Connects and collects everything the server sends until it closes (or `ms` pass). */
function firstWords(port: number, localAddress = '127.0.0.1', ms = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect({ port, host: '127.0.0.1', localAddress });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, closed: false });
    }, ms);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    s.on('error', () => {});
  });
}

describe('accounts[].allowFrom', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await TestBridge.start({
      logStream: log,
      logLevel: 'debug',
      accounts: [
        { username: 'inside', password: 'inside-pw', allowFrom: ['127.0.0.0/30', '::1'] },
        { username: 'outside', password: 'outside-pw', allowFrom: ['10.0.0.0/8', '2001:db8::/32'] },
        { username: 'only2', password: 'only2-pw', allowFrom: ['127.0.0.2'] },
      ],
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('a login from inside the list works, from outside gets the same 530 as a wrong password', async () => {
    const ok = await curl(['-T', '-', bridge.url('/in.txt', 'inside', 'inside-pw')], 'in');
    expect(ok.stderr).toBe('');
    expect(await bridge.exists('in.txt')).toBe(true);

    const refused = await RawFtp.connect(bridge.port);
    expect((await refused.command('USER outside')).code).toBe(331);
    const r = await refused.command('PASS outside-pw');
    const wrong = await RawFtp.connect(bridge.port);
    await wrong.command('USER outside');
    const w = await wrong.command('PASS not-the-password');
    expect(r.code).toBe(530);
    expect(r.text).toBe(w.text);
    expect(logText).toContain('"result":"address-not-allowed"');
    refused.close();
    wrong.close();
  });

  it('a single address: only2 logs in from 127.0.0.2, not from 127.0.0.1', async () => {
    const fromOne = await RawFtp.connect(bridge.port);
    await fromOne.command('USER only2');
    expect((await fromOne.command('PASS only2-pw')).code).toBe(530);
    fromOne.close();
    const s = connect({ port: bridge.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    s.write('USER only2\r\nPASS only2-pw\r\n');
    const deadline = Date.now() + 30_000;
    while (!/^(230|530) /m.test(text) && Date.now() < deadline) await sleep(50); // polls for the reply
    expect(text).toMatch(/^230 /m);
    s.destroy();
  });
});

describe('brute-force guard', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await TestBridge.start({
      logStream: log,
      logLevel: 'debug',
      ftp: { loginFailureDelayMs: 50, bruteForce: { maxFailures: 3, windowSeconds: 60, banSeconds: 2 } },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('after maxFailures failed logins the address is refused (421) for banSeconds, other addresses are not; logged', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    for (let i = 0; i < 3; i++) {
      await ftp.command(`USER ${USER}`);
      expect((await ftp.command('PASS wrong')).code).toBe(530);
    }
    // Even the right password is refused on the connection already open, which is then closed.
    await ftp.command(`USER ${USER}`);
    expect((await ftp.command(`PASS ${PASSWORD}`)).text).toBe('421 Too many failed logins; try again later');
    ftp.close();
    expect(logText).toContain('"event":"brute-force-ban"');
    const banned = await firstWords(bridge.port);
    expect(banned.text).toMatch(/^421 /);
    expect(banned.closed).toBe(true);
    expect(logText).toContain('"reason":"banned"');
    // Another address is not affected.
    const other = await firstWords(bridge.port, '127.0.0.2', 500);
    expect(other.text).toMatch(/^220[ -]/);
    await sleep(2200);
    const after = await curl(['-T', '-', bridge.url('/after-ban.txt')], 'ok');
    expect(after.stderr).toBe('');
    expect(await bridge.exists('after-ban.txt')).toBe(true);
  });
});

describe('connection limits (maxConnections 3, maxConnectionsPerIp 2)', () => {
  let bridge: TestBridge;
  beforeEach(async () => {
    bridge = await TestBridge.start({ logStream: log, logLevel: 'debug', ftp: { maxConnections: 3, maxConnectionsPerIp: 2 } });
  });
  afterEach(async () => {
    await bridge?.close();
  });

  it('maxConnectionsPerIp: a third connection from one address gets 421 and is closed; logged; a slot frees when a client leaves', async () => {
    const a = await RawFtp.connect(bridge.port);
    const b = await RawFtp.connect(bridge.port);
    const third = await firstWords(bridge.port, '127.0.0.1', 1000);
    expect(third.text).toMatch(/^421 .*your address/);
    expect(third.closed).toBe(true);
    await expect.poll(() => logText, { timeout: 10_000 }).toContain('"reason":"max-connections-per-ip"');
    a.close();
    await waitForSessions(bridge, 1); // b alone: a's slot is free
    const again = await RawFtp.connect(bridge.port);
    await again.login(USER, PASSWORD);
    again.close();
    b.close();
  });

  it('maxConnections: beyond it 421 from any address; of two clients racing for a freed slot exactly one gets it', async () => {
    const a = await RawFtp.connect(bridge.port);
    const b = await RawFtp.connect(bridge.port);
    const c = await firstWords(bridge.port, '127.0.0.2', 300); // admitted (2 + 1 = 3), closed by us after 300 ms
    expect(c.text).toMatch(/^220[ -]/);
    await waitForSessions(bridge, 2); // c's slot is free again
    const d1 = connect({ port: bridge.port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    const d2 = connect({ port: bridge.port, host: '127.0.0.1', localAddress: '127.0.0.3' });
    // Everything up to the first complete reply (the end of the banner, or the 421).
    const words = (s: Socket) =>
      new Promise<string>((resolve) => {
        let t = '';
        s.setEncoding('utf8');
        s.on('data', (x: string) => {
          t += x;
          if (/^\d{3} [^\r\n]*\r\n/m.test(t)) resolve(t);
        });
        s.on('close', () => resolve(t));
        s.on('error', () => undefined);
      });
    const [w1, w2] = await Promise.all([words(d1), words(d2)]);
    // Exactly one of them got the third slot; the other was over the global limit.
    expect([w1, w2].filter((w) => w.startsWith('220-')).length).toBe(1);
    expect([w1, w2].find((w) => w.startsWith('421'))).toMatch(/Too many connections/);
    d1.destroy();
    d2.destroy();
    a.close();
    b.close();
  });
});

describe('user enumeration (RFC 2577)', () => {
  it('USER and a failed PASS answer the same, in about the same time, for existing and unknown users', async () => {
    const bridge = await TestBridge.start({ ftp: { loginFailureDelayMs: 1000 } });
    try {
      const known = await RawFtp.connect(bridge.port);
      const unknown = await RawFtp.connect(bridge.port);
      const ku = await known.command(`USER ${USER}`);
      const uu = await unknown.command('USER nobody-here');
      expect(ku).toEqual(uu);
      let t = Date.now();
      const kp = await known.command('PASS wrong');
      const kt = Date.now() - t;
      t = Date.now();
      const up = await unknown.command('PASS wrong');
      const ut = Date.now() - t;
      expect(kp).toEqual(up);
      expect(kp.code).toBe(530);
      // Both wait out the 1000 ms floor; an unknown user answered without it would differ by ~1 s.
      // 500 ms leaves room for a loaded machine's scheduling.
      expect(Math.abs(kt - ut)).toBeLessThan(500);
      known.close();
      unknown.close();
    } finally {
      await bridge.close();
    }
  });
});

describe('timeouts', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await TestBridge.start({ logStream: log, logLevel: 'debug', ftp: { idleTimeoutSeconds: 1 } });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('a connection that does not log in is closed after loginTimeoutSeconds with 421', async () => {
    const short = await TestBridge.start({ ftp: { loginTimeoutSeconds: 1, idleTimeoutSeconds: 0 } });
    try {
      const r = await firstWords(short.port, '127.0.0.1', 4000);
      expect(r.text).toMatch(/^220[^]*\r\n421 Login timeout[^\n]*\r\n$/);
      expect(r.closed).toBe(true);
    } finally {
      await short.close();
    }
  });

  it('an idle logged-in connection is closed; NOOPs keep it open', async () => {
    const kept = await RawFtp.connect(bridge.port);
    await kept.login(USER, PASSWORD);
    const idle = await RawFtp.connect(bridge.port);
    await idle.login(USER, PASSWORD);
    for (let i = 0; i < 10; i++) {
      await sleep(250); // paces the keep-alive: 750 ms of the 1 s idle timeout left for a loaded machine
      expect((await kept.command('NOOP')).code).toBe(200);
    }
    expect((await idle.reply(3000)).text).toMatch(/^421 Idle timeout/);
    await new Promise((resolve) => (idle.socket.destroyed ? resolve(null) : idle.socket.once('close', resolve)));
    kept.close();
  });

  it('a transfer longer than the idle timeout is not cut', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    expect((await ftp.command('STOR slow.bin')).code).toBe(150);
    const parts: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const part = randomBytes(1000);
      parts.push(part);
      data.write(part);
      await sleep(300);
    }
    data.end();
    expect((await ftp.reply()).code).toBe(226);
    expect(await bridge.objectHash('slow.bin')).toBe(sha256(Buffer.concat(parts)));
    ftp.close();
  });
});
