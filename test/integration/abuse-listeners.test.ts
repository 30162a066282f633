/**
 * Hostile clients against the listeners: plain TCP floods of the implicit FTPS port (limits and
 * bans apply at accept, before any handshake), silent handshakes (ftp.tls.handshakeTimeoutSeconds),
 * and one address taking the passive range (ftp.passive.maxPerClient).
 */
import { rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { FtpReplyQueue, type FtpReply } from '../support/clients.js';
import { certDir, makeCertificate } from '../support/tls.js';

const dir = certDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A TCP connection that sends nothing; `closed` resolves with the ms from connect to close. */
interface Silent {
  socket: Socket;
  closed: Promise<number>;
}

async function silent(port: number, localAddress = '127.0.0.1'): Promise<Silent> {
  const socket = netConnect({ port, host: '127.0.0.1', localAddress });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const connectedAt = performance.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now() - connectedAt)));
  return { socket, closed };
}

/** Rejects when `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A control connection (plain or implicit TLS) with its replies in order. */
class Control {
  private readonly replies = new FtpReplyQueue();
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket | TLSSocket) {
    socket.on('data', (c: Buffer) => this.replies.push(c));
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async plain(port: number, localAddress = '127.0.0.1'): Promise<Control> {
    const socket = netConnect({ port, host: '127.0.0.1', localAddress });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new Control(socket);
  }

  /** Implicit FTPS; rejects when the handshake does not complete. */
  static async implicit(port: number, localAddress = '127.0.0.1'): Promise<Control> {
    // localAddress reaches net.connect (tls.connect passes its options on); the typings omit it.
    const socket = tlsConnect({ port, host: '127.0.0.1', localAddress, rejectUnauthorized: false } as ConnectionOptions);
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve).once('error', reject);
      socket.once('close', () => reject(new Error('closed before the TLS handshake completed')));
    });
    return new Control(socket);
  }

  reply(timeoutMs = 20_000): Promise<FtpReply> {
    return this.replies.next(timeoutMs);
  }

  command(line: string): Promise<FtpReply> {
    this.socket.write(line + '\r\n');
    return this.reply();
  }

  async login(): Promise<void> {
    expect((await this.command(`USER ${USER}`)).code).toBe(331);
    expect((await this.command(`PASS ${PASSWORD}`)).code).toBe(230);
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * An implicit FTPS connection from 127.0.0.1, retried (up to 10 s) while the bridge refuses it: a
 * slot freed by a client's close is released when the bridge sees that close, a moment later.
 */
async function implicitOnceFree(port: number): Promise<Control> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await Control.implicit(port);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

describe('implicit FTPS: limits and bans at accept (maxConnectionsPerIp 3, handshake time-out 60 s)', () => {
  let bridge: TestBridge;
  const port = () => bridge.ftpsImplicitPort as number;

  beforeAll(async () => {
    const cert = await makeCertificate(dir, 'limits');
    bridge = await TestBridge.start({
      ftp: {
        tls: { cert: cert.cert, key: cert.key, implicitPort: 0, handshakeTimeoutSeconds: 60 },
        maxConnectionsPerIp: 3,
        bruteForce: { maxFailures: 2, windowSeconds: 300, banSeconds: 300 },
      },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('connections that never handshake hold their slots; the ones beyond the limit are closed at once', async () => {
    const held = [await silent(port()), await silent(port()), await silent(port())];
    const extra = [await silent(port()), await silent(port())];
    // Closed by the bridge at accept, not by the 60 s handshake time-out.
    const extraClosedAfter = await within(Promise.all(extra.map((s) => s.closed)), 10_000, 'connections beyond the limit closed');
    for (const ms of extraClosedAfter) expect(ms).toBeLessThan(10_000);
    expect(held.map((s) => s.socket.closed)).toEqual([false, false, false]);

    // The slots taken mid-handshake count on every listener: the control port refuses 127.0.0.1 too.
    const control = await Control.plain(bridge.port);
    const refused = await control.reply();
    expect(refused.code).toBe(421);
    expect(refused.text).toMatch(/Too many connections from your address/);
    await within(control.closed, 10_000, 'refused control connection closed');

    // Another address is not affected.
    const other = await Control.implicit(port(), '127.0.0.2');
    expect((await other.reply()).code).toBe(220);
    await other.login();
    other.close();

    // The silent ones going away free their slots (closing is seen by the bridge a moment later).
    for (const s of held) s.socket.destroy();
    await Promise.all(held.map((s) => s.closed));
    const first = await implicitOnceFree(port());
    expect((await first.reply()).code).toBe(220);
    first.close();
    await first.closed;
  });

  it('an implicit FTPS session is counted once: maxConnectionsPerIp sessions log in, one more is closed before its handshake', async () => {
    // The previous test's connections may still be closing on the bridge's side.
    const sessions: Control[] = [];
    for (let i = 0; i < 3; i++) sessions.push(await implicitOnceFree(port()));
    for (const s of sessions) {
      expect((await s.reply()).code).toBe(220);
      await s.login();
    }
    const fourth = await silent(port());
    await within(fourth.closed, 10_000, 'fourth connection closed');
    await expect(Control.implicit(port())).rejects.toThrow();
    for (const s of sessions) expect((await s.command('NOOP')).code).toBe(200);
    for (const s of sessions) s.close();
    await Promise.all(sessions.map((s) => s.closed));
  });

  it('a banned address is closed at once on the implicit port, before any handshake', async () => {
    // Banned by failing logins on the control port (maxFailures 2) from 127.0.0.3.
    for (let i = 0; i < 2; i++) {
      const control = await Control.plain(bridge.port, '127.0.0.3');
      expect((await control.reply()).code).toBe(220);
      expect((await control.command(`USER ${USER}`)).code).toBe(331);
      expect((await control.command('PASS wrong')).code).toBe(530);
      control.close();
    }

    const raw = await silent(port(), '127.0.0.3');
    expect(await within(raw.closed, 10_000, 'banned connection closed')).toBeLessThan(10_000);
    await expect(Control.implicit(port(), '127.0.0.3')).rejects.toThrow();
    // The control port refuses it too; another address still gets in.
    const plain = await Control.plain(bridge.port, '127.0.0.3');
    const refused = await plain.reply();
    expect(refused.code).toBe(421);
    expect(refused.text).toMatch(/Too many failed logins/);
    plain.close();
    const ok = await Control.implicit(port(), '127.0.0.4');
    expect((await ok.reply()).code).toBe(220);
    ok.close();
  });
});

describe('TLS handshake time-out (ftp.tls.handshakeTimeoutSeconds 1)', () => {
  let bridge: TestBridge;

  beforeAll(async () => {
    const cert = await makeCertificate(dir, 'timeout');
    bridge = await TestBridge.start({
      ftp: { tls: { cert: cert.cert, key: cert.key, implicitPort: 0, handshakeTimeoutSeconds: 1 } },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('a silent connection to the implicit port is closed after about 1 s', async () => {
    const s = await silent(bridge.ftpsImplicitPort as number);
    const ms = await within(s.closed, 15_000, 'silent implicit connection closed');
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(6000);
  });

  it('a client that sends AUTH TLS and then nothing is closed after about 1 s', async () => {
    const control = await Control.plain(bridge.port);
    expect((await control.reply()).code).toBe(220);
    const sent = performance.now();
    expect((await control.command('AUTH TLS')).code).toBe(234);
    await within(control.closed, 15_000, 'silent AUTH TLS connection closed');
    const ms = performance.now() - sent;
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(6000);
  });

  it('a PROT P data connection that never handshakes is dropped after about 1 s, and the transfer fails', async () => {
    const c = await Control.implicit(bridge.ftpsImplicitPort as number);
    expect((await c.reply()).code).toBe(220);
    await c.login();
    const r = await c.command('EPSV');
    const port = Number(/\(\|\|\|(\d+)\|\)/.exec(r.text)?.[1]);
    expect(r.code, r.text).toBe(229);
    await bridge.put('waiting.bin', Buffer.alloc(64 * 1024, 1));
    const data = await silent(port);
    const sent = performance.now();
    expect((await c.command('RETR waiting.bin')).code).toBe(150);
    // The default data-connection time-out (30 s) would hold it far longer.
    await within(data.closed, 15_000, 'silent data connection closed');
    expect(performance.now() - sent).toBeGreaterThanOrEqual(900);
    const final = await c.reply();
    expect(final.code).toBeGreaterThanOrEqual(400);
    expect(performance.now() - sent).toBeLessThan(6000);
    c.close();
  });

  it('a handshake in time works (implicit FTPS session logs in)', async () => {
    const c = await Control.implicit(bridge.ftpsImplicitPort as number);
    expect((await c.reply()).code).toBe(220);
    await c.login();
    c.close();
  });
});

describe('passive ports per client (16 ports, maxPerClient 4, data-connection time-out 2 s)', () => {
  let bridge: TestBridge;

  beforeAll(async () => {
    // Below Linux's ephemeral range (32768-60999), above TestBridge's own picks (10000-29999).
    const portMin = 30000 + Math.floor(Math.random() * 100) * 20;
    bridge = await TestBridge.start({
      ftp: { passive: { portMin, portMax: portMin + 15, maxPerClient: 4 }, dataConnectionTimeoutSeconds: 2 },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  async function session(localAddress = '127.0.0.1'): Promise<Control> {
    const c = await Control.plain(bridge.port, localAddress);
    expect((await c.reply()).code).toBe(220);
    await c.login();
    return c;
  }
  const portOf = (r: FtpReply) => {
    const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(r.text);
    if (!m) throw new Error('not a 227: ' + r.text);
    return Number(m[5]) * 256 + Number(m[6]);
  };

  it('one address holds at most 4 ports; the 5th PASV/EPSV gets 425; another address still gets one; unused ports come back', async () => {
    const holders = [await session(), await session(), await session(), await session()];
    const held: { port: number; since: number }[] = [];
    for (const h of holders) {
      const r = await h.command('PASV');
      expect(r.code, r.text).toBe(227);
      held.push({ port: portOf(r), since: performance.now() });
    }
    // A new PASV in the same session gives up its previous port first: still within the share.
    const again = await holders[0]!.command('PASV');
    expect(again.code, again.text).toBe(227);
    held[0] = { port: portOf(again), since: performance.now() };

    const fifth = await session();
    const refused = await fifth.command('PASV');
    expect(refused.code).toBe(425);
    expect(refused.text).toMatch(/Too many passive ports open from your address/);
    expect((await fifth.command('EPSV')).code).toBe(425);

    // 127.0.0.2 is another client: it gets a port, and a transfer over it works.
    const other = await session('127.0.0.2');
    await bridge.put('shared.txt', 'fair share');
    const r = await other.command('PASV');
    expect(r.code, r.text).toBe(227);
    const data = netConnect({ port: portOf(r), host: '127.0.0.1', localAddress: '127.0.0.2' });
    const chunks: Buffer[] = [];
    data.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((resolve) => data.once('end', resolve));
    await new Promise<void>((resolve, reject) => data.once('connect', resolve).once('error', reject));
    expect((await other.command('RETR shared.txt')).code).toBe(150);
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('fair share');
    expect((await other.reply()).code).toBe(226);

    // Ports 127.0.0.1 never connected to: their listeners close after dataConnectionTimeoutSeconds.
    // Probed from 127.0.0.9, which a listener still open drops (not the client's address) without
    // taking it as the data connection.
    for (const { port, since } of held) {
      const deadline = Date.now() + 20_000;
      let outcome = '';
      while (outcome !== 'ECONNREFUSED' && Date.now() < deadline) {
        const probe = netConnect({ port, host: '127.0.0.1', localAddress: '127.0.0.9' });
        outcome = await new Promise<string>((resolve) => {
          probe.once('connect', () => resolve('connected'));
          probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        });
        probe.destroy();
        if (outcome !== 'ECONNREFUSED') await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(outcome, `port ${port}`).toBe('ECONNREFUSED');
      // Closed by the 2 s time-out, not before (allowing for the timers' granularity).
      expect(performance.now() - since, `port ${port}`).toBeGreaterThanOrEqual(1500);
    }
    // The ports are back in the pool and the share of 127.0.0.1 is free again.
    const back = await fifth.command('PASV');
    expect(back.code, back.text).toBe(227);
    // A session whose port timed out gets 425 for its transfer (no data connection).
    expect((await holders[1]!.command('LIST')).code).toBe(425);
    for (const h of holders.slice(1)) expect((await h.command('EPSV')).code).toBe(229);
    expect((await holders[0]!.command('EPSV')).code).toBe(425);

    for (const c of [...holders, fifth, other]) c.close();
  });
});
