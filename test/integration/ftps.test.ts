import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { FtpReplyQueue, curl, python, readAll, type FtpReply } from '../support/clients.js';
import { certDir, startFtpsBridge, type FtpsBridge, type TestCertificate } from '../support/tls.js';

const TLS_USER = 'bob';
const TLS_PASSWORD = 'tls only please';

const dir = certDir();
let ftps: FtpsBridge;
let bridge: TestBridge;
let certA: TestCertificate;
let certB: TestCertificate;
/** The files the bridge is configured with; tests swap their content. */
let live: FtpsBridge['live'];
const implicitPort = () => ftps.implicitPort();
const localFile = (name: string, size: number) => ftps.localFile(name, size);

beforeAll(async () => {
  ftps = await startFtpsBridge(dir, [
    { username: USER, password: PASSWORD },
    { username: TLS_USER, password: TLS_PASSWORD, policy: { requireTls: true } },
  ]);
  ({ bridge, certA, certB, live } = ftps);
});
afterAll(async () => {
  await bridge?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A control connection that can be upgraded to TLS (AUTH TLS) or start in TLS (implicit). */
class Control {
  private readonly replies = new FtpReplyQueue();
  /** The TLS sessions (tickets) the server issued on this control connection, in order. */
  readonly sessions: Buffer[] = [];

  private constructor(public socket: Socket | TLSSocket) {
    this.listen(socket);
  }

  static async plain(port: number): Promise<Control> {
    const socket = netConnect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new Control(socket);
    expect((await c.reply()).code).toBe(220);
    return c;
  }

  static async implicit(port: number, options: ConnectionOptions = {}): Promise<Control> {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...options });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const c = new Control(socket);
    expect((await c.reply()).code).toBe(220);
    return c;
  }

  private listen(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.replies.push(chunk));
    socket.on('error', () => undefined);
  }

  reply(timeoutMs = 15_000): Promise<FtpReply> {
    return this.replies.next(timeoutMs);
  }

  send(line: string): void {
    this.socket.write(line + '\r\n');
  }

  command(line: string): Promise<FtpReply> {
    this.send(line);
    return this.reply();
  }

  /** Handshake over the existing connection after a 234 (the plaintext listener is dropped). */
  async startTls(options: ConnectionOptions = {}): Promise<TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, ...options });
    secure.on('session', (session: Buffer) => this.sessions.push(session));
    await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    this.socket = secure;
    this.listen(secure);
    return secure;
  }

  async authTls(options: ConnectionOptions = {}): Promise<TLSSocket> {
    expect((await this.command('AUTH TLS')).code).toBe(234);
    return this.startTls(options);
  }

  /** EPSV, then a plain TCP data connection (TLS is started by the caller after the 150). */
  async epsv(): Promise<Socket> {
    const r = await this.command('EPSV');
    const m = /\(\|\|\|(\d+)\|\)/.exec(r.text);
    if (r.code !== 229 || !m) throw new Error('EPSV: ' + r.text);
    const data = netConnect(Number(m[1]), '127.0.0.1');
    await new Promise<void>((resolve, reject) => data.once('connect', resolve).once('error', reject));
    return data;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The certificate a TLS handshake on `port` presents (implicit, or explicit after AUTH TLS). */
async function presentedFingerprint(mode: 'implicit' | 'explicit'): Promise<string> {
  const c = mode === 'implicit' ? await Control.implicit(implicitPort()) : await Control.plain(bridge.port);
  try {
    const secure = mode === 'implicit' ? (c.socket as TLSSocket) : await c.authTls();
    return secure.getPeerX509Certificate()?.fingerprint256 ?? '';
  } finally {
    c.close();
  }
}

const PY_FTPS = String.raw`
import ftplib, hashlib, io, json, ssl, sys
port, user, password, cafile, passive, prot, payload_path = sys.argv[1:8]
ctx = ssl.create_default_context(cafile=cafile)
f = ftplib.FTP_TLS(context=ctx, timeout=30)
f.connect('127.0.0.1', int(port))
out = {'auth': f.auth()}
out['login'] = f.login(user, password)
if prot == 'P':
    out['prot'] = f.prot_p()
f.set_pasv(passive == 'passive')
data = open(payload_path, 'rb').read()
out['stor'] = f.storbinary('STOR py-' + passive + '-' + prot + '.bin', io.BytesIO(data))
buf = io.BytesIO()
out['retr'] = f.retrbinary('RETR py-' + passive + '-' + prot + '.bin', buf.write)
out['retr_sha'] = hashlib.sha256(buf.getvalue()).hexdigest()
out['nlst'] = f.nlst()
f.quit()
print(json.dumps(out))
`;

describe('explicit FTPS (AUTH TLS)', () => {
  it('curl --ssl-reqd stores and retrieves a file in passive mode, certificate verified', async () => {
    const { path, data } = localFile('curl-explicit-passive.bin', 700_000);
    const url = `ftp://127.0.0.1:${bridge.port}/curl-explicit-passive.bin`;
    const auth = ['--user', `${USER}:${PASSWORD}`, '--ssl-reqd', '--cacert', certA.cert];
    const up = await curl([...auth, '-T', path, url]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(await bridge.objectHash('curl-explicit-passive.bin')).toBe(sha256(data));
    const down = await curl([...auth, url]);
    expect(down.code).toBe(0);
    expect(sha256(down.stdout)).toBe(sha256(data));
  });

  it('curl --ftp-ssl-control (TLS login, PROT C data) stores and retrieves a file in active mode', async () => {
    const { path, data } = localFile('curl-explicit-active-c.bin', 700_000);
    const url = `ftp://127.0.0.1:${bridge.port}/curl-explicit-active-c.bin`;
    const auth = ['--user', `${USER}:${PASSWORD}`, '--ftp-ssl-control', '--cacert', certA.cert, '--ftp-port', '127.0.0.1'];
    const up = await curl([...auth, '-T', path, url]);
    expect(up.code).toBe(0);
    expect(await bridge.objectHash('curl-explicit-active-c.bin')).toBe(sha256(data));
    const down = await curl([...auth, url]);
    expect(down.code).toBe(0);
    expect(sha256(down.stdout)).toBe(sha256(data));
  });

  it('curl --ssl-reqd in active mode: a round trip, or with curl 7.87/7.88 (sends PROT P data in the clear, curl#10666) a refusal', async () => {
    const version = /^curl (\d+)\.(\d+)/.exec((await curl(['--version'])).stdout.toString()) ?? [];
    const brokenCurl = version[1] === '7' && (version[2] === '87' || version[2] === '88');
    const { path, data } = localFile('curl-explicit-active-p.bin', 700_000);
    const url = `ftp://127.0.0.1:${bridge.port}/curl-explicit-active-p.bin`;
    const auth = ['--user', `${USER}:${PASSWORD}`, '--ssl-reqd', '--cacert', certA.cert, '--ftp-port', '127.0.0.1'];
    const up = await curl([...auth, '-T', path, url]);
    if (brokenCurl) {
      // The bridge expects a TLS handshake on the data connection and must not take clear bytes.
      expect(up.code).not.toBe(0);
      expect(await bridge.exists('curl-explicit-active-p.bin')).toBe(false);
      return;
    }
    expect(up.code).toBe(0);
    expect(await bridge.objectHash('curl-explicit-active-p.bin')).toBe(sha256(data));
    const down = await curl([...auth, url]);
    expect(sha256(down.stdout)).toBe(sha256(data));
  });

  it.each([
    ['passive', 'P'],
    ['active', 'P'],
    ['passive', 'C'],
  ] as const)('python ftplib.FTP_TLS stores and retrieves in %s mode with PROT %s', async (mode, prot) => {
    const { path, data } = localFile(`py-${mode}-${prot}.src`, 300_000);
    const res = await python(PY_FTPS, [String(bridge.port), USER, PASSWORD, certA.cert, mode, prot, path]);
    expect(res.stderr).toBe('');
    const out = JSON.parse(res.stdout.toString()) as Record<string, string & string[]>;
    expect(out.auth).toMatch(/^234/);
    if (prot === 'P') expect(out.prot).toMatch(/^200/);
    expect(out.stor).toMatch(/^226/);
    expect(out.retr).toMatch(/^226/);
    expect(out.retr_sha).toBe(sha256(data));
    expect(out.nlst).toContain(`py-${mode}-${prot}.bin`);
    expect(await bridge.objectHash(`py-${mode}-${prot}.bin`)).toBe(sha256(data));
  });

  it('announces AUTH TLS, PBSZ and PROT in FEAT', async () => {
    const c = await Control.plain(bridge.port);
    try {
      const feat = await c.command('FEAT');
      expect(feat.text).toMatch(/^ AUTH TLS$/m);
      expect(feat.text).toMatch(/^ PBSZ$/m);
      expect(feat.text).toMatch(/^ PROT$/m);
    } finally {
      c.close();
    }
  });

  it('orders the RFC 4217 commands: PBSZ/PROT need AUTH, PROT needs PBSZ; unknown mechanisms and levels refused', async () => {
    const c = await Control.plain(bridge.port);
    try {
      expect((await c.command('PBSZ 0')).code).toBe(503);
      expect((await c.command('PROT P')).code).toBe(503);
      expect((await c.command('AUTH KERBEROS_V4')).code).toBe(504);
      await c.authTls();
      expect((await c.command('AUTH TLS')).code).toBe(503);
      expect((await c.command('PROT P')).code).toBe(503);
      expect((await c.command('PBSZ 0')).text).toBe('200 PBSZ=0');
      expect((await c.command('PROT S')).code).toBe(536);
      expect((await c.command('PROT X')).code).toBe(504);
      expect((await c.command('PROT P')).code).toBe(200);
      expect((await c.command(`USER ${USER}`)).code).toBe(331);
      expect((await c.command(`PASS ${PASSWORD}`)).code).toBe(230);
      // A raw PROT P data connection: the server waits for the handshake the client starts after 150.
      await bridge.put('raw-tls.txt', 'over TLS\n');
      const data = await c.epsv();
      c.send('RETR raw-tls.txt');
      expect((await c.reply()).code).toBe(150);
      const secureData = tlsConnect({ socket: data, rejectUnauthorized: false });
      expect((await readAll(secureData)).toString()).toBe('over TLS\n');
      expect((await c.reply()).code).toBe(226);
    } finally {
      c.close();
    }
  });

  it('ignores commands sent in the clear behind AUTH TLS (no STARTTLS command injection)', async () => {
    const c = await Control.plain(bridge.port);
    try {
      // One segment: the USER must not run as if it had come over TLS.
      c.send(`AUTH TLS\r\nUSER ${USER}`);
      expect((await c.reply()).code).toBe(234);
      await c.startTls();
      const pass = await c.command(`PASS ${PASSWORD}`);
      expect(pass.code).toBe(503);
      expect((await c.command(`USER ${USER}`)).code).toBe(331);
      expect((await c.command(`PASS ${PASSWORD}`)).code).toBe(230);
    } finally {
      c.close();
    }
  });

  it('a failed handshake after AUTH TLS closes that connection and nothing else', async () => {
    const c = await Control.plain(bridge.port);
    c.send('AUTH TLS');
    expect((await c.reply()).code).toBe(234);
    const closed = new Promise<void>((resolve) => c.socket.once('close', () => resolve()));
    c.socket.write('this is not a TLS ClientHello\r\n');
    await closed;
    expect(await presentedFingerprint('explicit')).toBe(await presentedFingerprint('implicit'));
  });
});

describe('data connections of clients that never read an upload (Perl Net::FTP, Go jlaffaye/ftp)', () => {
  /** AUTH TLS with `version`, login, PBSZ 0, PROT P; the control connection's tickets are kept. */
  async function protectedSession(version: 'TLSv1.2' | 'TLSv1.3'): Promise<Control> {
    const c = await Control.plain(bridge.port);
    const secure = await c.authTls({ minVersion: version, maxVersion: version });
    expect(secure.getProtocol()).toBe(version);
    expect((await c.command(`USER ${USER}`)).code).toBe(331);
    expect((await c.command(`PASS ${PASSWORD}`)).code).toBe(230);
    expect((await c.command('PBSZ 0')).code).toBe(200);
    expect((await c.command('PROT P')).code).toBe(200);
    return c;
  }

  // A TLS 1.3 session ticket comes after the handshake; TLS 1.2 sends tickets inside it.
  it.each([
    ['TLSv1.3', 'full'],
    ['TLSv1.3', 'resumed'],
    ['TLSv1.2', 'full'],
    ['TLSv1.2', 'resumed'],
  ] as const)('%s, %s handshake: the data connection of an upload gets no session ticket after the handshake; the upload is whole', async (version, handshake) => {
    const c = await protectedSession(version);
    try {
      // Tickets follow the handshake on the same stream, so they are in before the 230 is: the
      // control connection keeps issuing them (clients resume its session on data connections).
      expect(c.sessions.length).toBeGreaterThan(0);
      const body = randomBytes(3 * 1024 * 1024);
      const name = `tickets-${version}-${handshake}.bin`;
      const data = await c.epsv();
      c.send(`STOR ${name}`);
      expect((await c.reply()).code).toBe(150);
      const session = handshake === 'resumed' ? c.sessions.at(-1) : undefined;
      const secureData = tlsConnect({ socket: data, rejectUnauthorized: false, session, minVersion: version, maxVersion: version });
      const dataSessions: Buffer[] = [];
      secureData.on('session', (s: Buffer) => dataSessions.push(s));
      await new Promise<void>((resolve, reject) => secureData.once('secureConnect', resolve).once('error', reject));
      expect(secureData.isSessionReused()).toBe(handshake === 'resumed');
      let received = 0;
      secureData.on('data', (chunk: Buffer) => (received += chunk.length));
      secureData.end(body);
      // The bridge ends its side once the upload is in; whatever it sent before has been read then.
      await new Promise<void>((resolve, reject) => secureData.once('end', resolve).once('error', reject));
      expect((await c.reply(60_000)).code).toBe(226);
      if (version === 'TLSv1.3') expect(dataSessions).toEqual([]);
      expect(received).toBe(0);
      expect(await bridge.objectHash(name)).toBe(sha256(body));
    } finally {
      c.close();
    }
  });

  it('a client may handshake on a passive data connection before it sends the transfer command (Go jlaffaye/ftp before 2023)', async () => {
    const c = await protectedSession('TLSv1.3');
    try {
      const body = randomBytes(500_000);
      // The handshake completes while the server has no transfer command yet.
      const up = tlsConnect({ socket: await c.epsv(), rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => up.once('secureConnect', resolve).once('error', reject));
      c.send('STOR early-handshake.bin');
      expect((await c.reply()).code).toBe(150);
      up.end(body);
      expect((await c.reply(60_000)).code).toBe(226);
      expect(await bridge.objectHash('early-handshake.bin')).toBe(sha256(body));

      const down = tlsConnect({ socket: await c.epsv(), rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => down.once('secureConnect', resolve).once('error', reject));
      const received = readAll(down);
      c.send('RETR early-handshake.bin');
      expect((await c.reply()).code).toBe(150);
      expect(sha256(await received)).toBe(sha256(body));
      expect((await c.reply(60_000)).code).toBe(226);
    } finally {
      c.close();
    }
  });

  it('an empty listing or a 0-byte file under PROT P gets no 226 until the data connection has done its handshake', async () => {
    await bridge.put('zero.bin', '');
    await Promise.all(
      ['NLST empty-listing', 'RETR zero.bin'].map(async (command) => {
        // A client that connects its data connection and never starts TLS: nothing was delivered.
        const c = await protectedSession('TLSv1.3');
        try {
          if (command.startsWith('NLST')) expect([257, 550]).toContain((await c.command('MKD empty-listing')).code);
          const data = await c.epsv();
          data.on('error', () => undefined);
          const closed = new Promise<void>((resolve) => data.once('close', () => resolve()));
          const t0 = Date.now();
          expect((await c.command(command)).code).toBe(150);
          const final = await c.reply(60_000);
          expect(final.code, final.text).toBe(426);
          // Refused by the handshake time-out (ftp.tls.handshakeTimeoutSeconds, 10 s by default), not at once.
          expect(Date.now() - t0).toBeGreaterThanOrEqual(9_000);
          await closed;
        } finally {
          c.close();
        }
      }),
    );
    // The same with the handshake done after the 150 (what curl and ftplib do): 226, with the bytes.
    const c = await protectedSession('TLSv1.3');
    try {
      const down = tlsConnect({ socket: await c.epsv(), rejectUnauthorized: false });
      const received = readAll(down);
      expect((await c.command('RETR zero.bin')).code).toBe(150);
      expect((await received).length).toBe(0);
      expect((await c.reply(60_000)).code).toBe(226);
    } finally {
      c.close();
    }
  }, 90_000);

  it('a data connection accepted under PROT P is not used in the clear after PROT C', async () => {
    const c = await protectedSession('TLSv1.3');
    try {
      await bridge.put('prot-switch.txt', 'secret\n');
      const data = await c.epsv();
      const secureData = tlsConnect({ socket: data, rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => secureData.once('secureConnect', resolve).once('error', reject));
      const closed = new Promise<void>((resolve) => secureData.once('close', () => resolve()));
      secureData.on('error', () => undefined);
      secureData.resume();
      expect((await c.command('PROT C')).code).toBe(200);
      expect((await c.command('RETR prot-switch.txt')).code).toBe(425);
      await closed;
    } finally {
      c.close();
    }
  });
});

describe('implicit FTPS (ftp.tls.implicitPort)', () => {
  // curl 7.88 cannot do active mode on an implicit FTPS connection ("sa_addr inet_ntop() failed
  // with errno 97" before it sends anything): lftp covers implicit active mode (test/system/ftps-lftp.test.ts).
  it('curl ftps:// stores and retrieves a file in passive mode', async () => {
    const mode = 'passive';
    const { path, data } = localFile(`curl-implicit-${mode}.bin`, 500_000);
    const url = `ftps://127.0.0.1:${implicitPort()}/curl-implicit-${mode}.bin`;
    const auth = ['--user', `${USER}:${PASSWORD}`, '--cacert', certA.cert];
    const up = await curl([...auth, '-T', path, url]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(await bridge.objectHash(`curl-implicit-${mode}.bin`)).toBe(sha256(data));
    const down = await curl([...auth, url]);
    expect(down.code).toBe(0);
    expect(sha256(down.stdout)).toBe(sha256(data));
  });

  it('protects data connections without PROT P, as implicit FTPS clients expect', async () => {
    const c = await Control.implicit(implicitPort());
    try {
      expect((await c.command(`USER ${USER}`)).code).toBe(331);
      expect((await c.command(`PASS ${PASSWORD}`)).code).toBe(230);
      await bridge.put('implicit-default.txt', 'protected by default\n');
      const data = await c.epsv();
      c.send('RETR implicit-default.txt');
      expect((await c.reply()).code).toBe(150);
      const secureData = tlsConnect({ socket: data, rejectUnauthorized: false });
      expect((await readAll(secureData)).toString()).toBe('protected by default\n');
      expect((await c.reply()).code).toBe(226);
    } finally {
      c.close();
    }
  });
});

describe('requireTls', () => {
  it('per account: in the clear USER answers 331 like any name, and the right password gets the plain 530 of any refusal', async () => {
    const c = await Control.plain(bridge.port);
    try {
      const user = await c.command(`USER ${TLS_USER}`);
      expect(user.text).toBe('331 Password required');
      expect((await c.command('USER nobody-here')).text).toBe(user.text);
      expect((await c.command(`USER ${TLS_USER}`)).text).toBe(user.text);
      expect((await c.command(`PASS ${TLS_PASSWORD}`)).text).toBe('530 Login incorrect');
      expect((await c.command(`USER ${USER}`)).code).toBe(331);
      expect((await c.command(`PASS ${PASSWORD}`)).code).toBe(230);
    } finally {
      c.close();
    }
  });

  it('per account: curl without TLS is refused; data without PROT P gets 521, PROT C 534; PROT P works', async () => {
    const plain = await curl(['--user', `${TLS_USER}:${TLS_PASSWORD}`, `ftp://127.0.0.1:${bridge.port}/`]);
    expect(plain.code).not.toBe(0);
    expect(plain.stderr).toMatch(/530|denied/i);

    const c = await Control.plain(bridge.port);
    try {
      await c.authTls();
      expect((await c.command(`USER ${TLS_USER}`)).code).toBe(331);
      expect((await c.command(`PASS ${TLS_PASSWORD}`)).code).toBe(230);
      expect((await c.command('PBSZ 0')).code).toBe(200);
      // No PROT yet: the data connection would be in the clear.
      const data = await c.epsv();
      const list = await c.command('LIST');
      expect(list.code).toBe(521);
      data.destroy();
      const prot = await c.command('PROT C');
      expect(prot.code).toBe(534);
      expect((await c.command('PROT P')).code).toBe(200);
      const data2 = await c.epsv();
      c.send('STOR bob.txt');
      expect((await c.reply()).code).toBe(150);
      const secureData = tlsConnect({ socket: data2, rejectUnauthorized: false });
      await new Promise<void>((resolve) => secureData.end('bob over TLS\n', resolve));
      expect((await c.reply()).code).toBe(226);
      expect((await bridge.getObject('bob.txt'))?.toString()).toBe('bob over TLS\n');
    } finally {
      c.close();
    }
  });

  it('per account: curl --ssl-reqd works for the account that requires TLS', async () => {
    const { path, data } = localFile('bob-curl.bin', 100_000);
    const auth = ['--user', `${TLS_USER}:${TLS_PASSWORD}`, '--ssl-reqd', '--cacert', certA.cert];
    const up = await curl([...auth, '-T', path, `ftp://127.0.0.1:${bridge.port}/bob-curl.bin`]);
    expect(up.stderr).toBe('');
    expect(await bridge.objectHash('bob-curl.bin')).toBe(sha256(data));
  });

  it('an auth-hook account with requireTls: a login in the clear gets the plain 530 at PASS, over TLS it works', async () => {
    const hook = createHttpServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const call = JSON.parse(text) as { username: string; password: string };
        const ok = call.username === 'partner' && call.password === 'partner-pw';
        res.writeHead(ok ? 200 : 403, { 'content-type': 'application/json' });
        res.end(ok ? JSON.stringify({ bucket: hooked.bucket, requireTls: true }) : '{}');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/auth`;
    const hooked: TestBridge = await TestBridge.start({ ftp: { tls: { cert: certA.cert, key: certA.key } }, config: { auth: { hook: { url: hookUrl, timeoutSeconds: 1 } } } });
    try {
      const clear = await Control.plain(hooked.port);
      expect((await clear.command('USER partner')).code).toBe(331);
      const refused = await clear.command('PASS partner-pw');
      expect(refused.text).toBe('530 Login incorrect');
      clear.close();
      const secure = await Control.plain(hooked.port);
      await secure.authTls();
      expect((await secure.command('USER partner')).code).toBe(331);
      expect((await secure.command('PASS partner-pw')).code).toBe(230);
      expect((await secure.command('PBSZ 0')).code).toBe(200);
      const data = await secure.epsv();
      expect((await secure.command('LIST')).code).toBe(521);
      data.destroy();
      secure.close();
    } finally {
      await hooked.close();
      hook.closeAllConnections();
      await new Promise((resolve) => hook.close(resolve));
    }
  });

  describe('ftp.requireTls', () => {
    let strict: TestBridge;
    beforeAll(async () => {
      strict = await TestBridge.start({ ftp: { requireTls: true, tls: { cert: certB.cert, key: certB.key } } });
    });
    afterAll(async () => {
      await strict?.close();
    });

    it('answers every USER in the clear with the same 530, existing account or not', async () => {
      const c = await Control.plain(strict.port);
      try {
        const known = await c.command(`USER ${USER}`);
        const unknown = await c.command('USER nobody-here');
        expect(known.code).toBe(530);
        expect(known.text).toMatch(/TLS required/);
        expect(unknown).toEqual(known);
      } finally {
        c.close();
      }
    });

    it('refuses a transfer with PROT C (521 on the data command after PROT C is refused with 534)', async () => {
      const c = await Control.plain(strict.port);
      try {
        await c.authTls();
        expect((await c.command(`USER ${USER}`)).code).toBe(331);
        expect((await c.command(`PASS ${PASSWORD}`)).code).toBe(230);
        expect((await c.command('PBSZ 0')).code).toBe(200);
        expect((await c.command('PROT C')).code).toBe(534);
        const data = await c.epsv();
        expect((await c.command('STOR clear.bin')).code).toBe(521);
        data.destroy();
        expect(await strict.exists('clear.bin')).toBe(false);
      } finally {
        c.close();
      }
    });

    it('python ftplib without prot_p() cannot transfer; with prot_p() it can', async () => {
      const { path, data } = localFile('strict.src', 50_000);
      const clear = await python(PY_FTPS, [String(strict.port), USER, PASSWORD, certB.cert, 'passive', 'C', path]);
      expect(clear.code).not.toBe(0);
      expect(clear.stderr).toMatch(/521/);
      const res = await python(PY_FTPS, [String(strict.port), USER, PASSWORD, certB.cert, 'passive', 'P', path]);
      expect(res.stderr).toBe('');
      expect(await strict.objectHash('py-passive-P.bin')).toBe(sha256(data));
    });
  });
});

describe('a bridge without ftp.tls', () => {
  let plainBridge: TestBridge;
  beforeAll(async () => {
    plainBridge = await TestBridge.start();
  });
  afterAll(async () => {
    await plainBridge?.close();
  });

  it('refuses AUTH TLS with 502 and does not announce it', async () => {
    const c = await Control.plain(plainBridge.port);
    try {
      expect((await c.command('FEAT')).text).not.toMatch(/AUTH TLS|PBSZ|PROT/);
      expect((await c.command('AUTH TLS')).code).toBe(502);
      expect((await c.command(`USER ${USER}`)).code).toBe(331);
    } finally {
      c.close();
    }
  });
});

describe('certificate reload', () => {
  async function waitForFingerprint(expected: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const [explicit, implicit] = await Promise.all([presentedFingerprint('explicit'), presentedFingerprint('implicit')]);
      if (explicit === expected && implicit === expected) return;
      if (Date.now() > deadline) throw new Error(`still presenting ${explicit} / ${implicit}, expected ${expected}`);
      await sleep(200);
    }
  }

  it('new connections get a replaced certificate without a restart; a session open across the swap keeps working', async () => {
    await waitForFingerprint(certA.fingerprint256);
    const open = await Control.plain(bridge.port);
    try {
      await open.authTls();
      expect((await open.command(`USER ${USER}`)).code).toBe(331);
      expect((await open.command(`PASS ${PASSWORD}`)).code).toBe(230);
      // Atomic replacement, as cert-manager or a deploy tool does it: write aside, rename over.
      copyFileSync(certB.key, live.key + '.tmp');
      copyFileSync(certB.cert, live.cert + '.tmp');
      renameSync(live.key + '.tmp', live.key);
      renameSync(live.cert + '.tmp', live.cert);
      await waitForFingerprint(certB.fingerprint256);
      // Data connections of the old session use the new certificate too, and work.
      expect((await open.command('PBSZ 0')).code).toBe(200);
      expect((await open.command('PROT P')).code).toBe(200);
      await bridge.put('after-reload.txt', 'still fine\n');
      const data = await open.epsv();
      open.send('RETR after-reload.txt');
      expect((await open.reply()).code).toBe(150);
      const secureData = tlsConnect({ socket: data, rejectUnauthorized: false });
      const body = readAll(secureData);
      await new Promise<void>((resolve) => secureData.once('secureConnect', resolve));
      expect(secureData.getPeerX509Certificate()?.fingerprint256).toBe(certB.fingerprint256);
      expect((await body).toString()).toBe('still fine\n');
      expect((await open.reply()).code).toBe(226);
    } finally {
      open.close();
    }
    // Back to A for the other tests, by overwriting in place this time.
    writeFileSync(live.cert, readFileSync(certA.cert));
    writeFileSync(live.key, readFileSync(certA.key));
    await waitForFingerprint(certA.fingerprint256);
  });

  it('follows a Kubernetes-style symlink swap of the mounted directory', async () => {
    // <mount>/tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/; an update retargets ..data.
    const mount = join(dir, 'mount');
    mkdirSync(join(mount, '..v1'), { recursive: true });
    copyFileSync(certA.cert, join(mount, '..v1', 'tls.crt'));
    copyFileSync(certA.key, join(mount, '..v1', 'tls.key'));
    symlinkSync('..v1', join(mount, '..data'));
    symlinkSync('..data/tls.crt', join(mount, 'tls.crt'));
    symlinkSync('..data/tls.key', join(mount, 'tls.key'));
    const k8s = await TestBridge.start({
      ftp: { tls: { cert: join(mount, 'tls.crt'), key: join(mount, 'tls.key'), implicitPort: 0, reloadCheckSeconds: 1 } },
    });
    try {
      const fingerprint = async () => {
        const c = await Control.implicit(k8s.ftpsImplicitPort as number);
        const f = (c.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256;
        c.close();
        return f;
      };
      expect(await fingerprint()).toBe(certA.fingerprint256);
      mkdirSync(join(mount, '..v2'));
      copyFileSync(certB.cert, join(mount, '..v2', 'tls.crt'));
      copyFileSync(certB.key, join(mount, '..v2', 'tls.key'));
      symlinkSync('..v2', join(mount, '..data_tmp'));
      renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
      const deadline = Date.now() + 15_000;
      let seen = await fingerprint();
      while (seen !== certB.fingerprint256 && Date.now() < deadline) {
        await sleep(200);
        seen = await fingerprint();
      }
      expect(seen).toBe(certB.fingerprint256);
    } finally {
      await k8s.close();
    }
  });

  it('keeps serving the current certificate when the new files do not fit together, and logs it', async () => {
    const logs: string[] = [];
    const logStream = new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString());
        cb();
      },
    });
    const own = join(dir, 'mismatch');
    mkdirSync(own);
    const files = { cert: join(own, 'c.pem'), key: join(own, 'k.pem') };
    copyFileSync(certA.cert, files.cert);
    copyFileSync(certA.key, files.key);
    const b = await TestBridge.start({ ftp: { tls: { ...files, implicitPort: 0, reloadCheckSeconds: 1 } }, logStream, logLevel: 'info' });
    try {
      // Certificate B with key A: unusable.
      copyFileSync(certB.cert, files.cert);
      const deadline = Date.now() + 10_000;
      while (!logs.some((l) => l.includes('cannot be used')) && Date.now() < deadline) await sleep(100);
      expect(logs.some((l) => l.includes('cannot be used'))).toBe(true);
      const c = await Control.implicit(b.ftpsImplicitPort as number);
      expect((c.socket as TLSSocket).getPeerX509Certificate()?.fingerprint256).toBe(certA.fingerprint256);
      expect((await c.command(`USER ${USER}`)).code).toBe(331);
      c.close();
      expect(logs.join('')).not.toContain('PRIVATE KEY');
    } finally {
      await b.close();
    }
  });
});

describe('ftp.tls.minVersion', () => {
  // Node's own OpenSSL still speaks TLS 1.1 when asked (security level 0), so a TLS 1.1 client
  // can be made here; the system openssl/curl refuse to, so they cannot serve as the old client.
  const tls11: ConnectionOptions = { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };

  it('refuses a TLS 1.1 client by default (implicit and AUTH TLS) and accepts TLS 1.2 and 1.3', async () => {
    await expect(Control.implicit(implicitPort(), tls11)).rejects.toThrow();
    const c = await Control.plain(bridge.port);
    expect((await c.command('AUTH TLS')).code).toBe(234);
    const plain = c.socket;
    plain.removeAllListeners('data');
    await expect(
      new Promise<void>((resolve, reject) => tlsConnect({ socket: plain, rejectUnauthorized: false, ...tls11 }).once('secureConnect', resolve).once('error', reject)),
    ).rejects.toThrow();
    c.close();
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const ok = await Control.implicit(implicitPort(), { minVersion: version, maxVersion: version });
      expect((ok.socket as TLSSocket).getProtocol()).toBe(version);
      ok.close();
    }
  });

  it('accepts TLS 1.1 when configured, with a warning in the log', async () => {
    const logs: string[] = [];
    const logStream = new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString());
        cb();
      },
    });
    const old = await TestBridge.start({
      ftp: { tls: { cert: certA.cert, key: certA.key, implicitPort: 0, minVersion: 'TLSv1.1' } },
      logStream,
      logLevel: 'info',
    });
    try {
      const warning = logs.map((l) => JSON.parse(l) as { level: number; msg: string }).find((l) => l.msg.includes('minVersion'));
      expect(warning?.level).toBe(40);
      const c = await Control.implicit(old.ftpsImplicitPort as number, tls11);
      expect((c.socket as TLSSocket).getProtocol()).toBe('TLSv1.1');
      expect((await c.command(`USER ${USER}`)).code).toBe(331);
      expect((await c.command(`PASS ${PASSWORD}`)).code).toBe(230);
      c.close();
    } finally {
      await old.close();
    }
  });
});
