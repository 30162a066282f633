import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBridge, sha256 } from '../support/bridge.js';
import { RawFtp, curl, readAll, storBytes } from '../support/clients.js';
import { Haproxy, freePort } from '../support/haproxy.js';
import { LogLines } from '../support/log-lines.js';
import { sftpBatch, SshKeys } from '../support/sftp.js';
import { certDir, makeCertificate, type TestCertificate } from '../support/tls.js';

const passiveRange = () => {
  const portMin = 10000 + Math.floor(Math.random() * 2000) * 10;
  return { portMin, portMax: portMin + 9 };
};

/** Waits (bounded) for a log line matching `match`. */
async function waitForLine(log: LogLines, match: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = log.lines.find(match);
    if (line) return line;
    if (Date.now() > deadline) throw new Error('no such log line within ' + timeoutMs + ' ms');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A raw connection from `localAddress` to `host` (127.0.0.1; the SFTP listener is on 127.0.0.6):
 * sends `first` (if any) once connected, collects what the server sends, and resolves when the
 * server closes it (or after `maxMs`, closed: false), with the time from connect to close.
 */
function rawSession(
  port: number,
  localAddress: string,
  first: Buffer | string | undefined,
  { host = '127.0.0.1', maxMs = 30_000 }: { host?: string; maxMs?: number } = {},
): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ port, host, localAddress });
    let text = '';
    let started = Date.now();
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.once('connect', () => {
      started = Date.now();
      if (first !== undefined) socket.write(first);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false, ms: Date.now() - started });
    }, maxMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true, ms: Date.now() - started });
    });
  });
}

const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');

/** A v2 PROXY header (TCP over IPv4) naming `source`, or a LOCAL one. */
function v2Header(source: string | 'local', tlv = Buffer.alloc(0)): Buffer {
  if (source === 'local') return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const addresses = Buffer.from([...source.split('.').map(Number), 127, 0, 0, 1, 0x30, 0x39, 0x08, 0x49]);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(addresses.length + tlv.length);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11]), length, addresses, tlv]);
}

/** A control connection that starts with `header`, from `localAddress`, once greeted. */
async function proxiedControl(port: number, localAddress: string, header: Buffer | string): Promise<RawFtp> {
  const ftp = await RawFtp.connect(port, '127.0.0.1', localAddress, header);
  return ftp;
}

describe('PROXY protocol through a real HAProxy (send-proxy-v2 to the control, implicit FTPS, passive and SFTP ports)', () => {
  const log = new LogLines();
  let bridge: TestBridge;
  let haproxy: Haproxy;
  let control: number;
  let implicit: number;
  let sftp: number;
  let keys: SshKeys;
  let cert: TestCertificate;
  const work = mkdtempSync(join(tmpdir(), 'proxy-protocol-'));
  const certs = certDir();
  beforeAll(async () => {
    const passive = passiveRange();
    keys = await SshKeys.create();
    cert = await makeCertificate(certs, 'proxy');
    // The bridge listens on 127.0.0.6 (HAProxy holds 127.0.0.1's ports of the passive range) and
    // trusts HAProxy's outgoing address; PASV announces HAProxy's.
    bridge = await TestBridge.start({
      logStream: log.stream,
      logLevel: 'info',
      ftp: {
        host: '127.0.0.6',
        passive: { ...passive, address: '127.0.0.1', maxPerClient: 10 },
        loginFailureDelayMs: 50,
        bruteForce: { maxFailures: 2, windowSeconds: 60, banSeconds: 120 },
        proxyProtocol: { enabled: true, trustedProxies: ['127.0.0.1'] },
        tls: { cert: cert.cert, key: cert.key, implicitPort: 0 },
      },
      config: {
        sftp: { enabled: true, host: '127.0.0.6', port: 0, hostKeys: [keys.hostKey], proxyProtocol: { enabled: true, trustedProxies: ['127.0.0.1'], headerTimeoutSeconds: 2 } },
      },
    });
    [control, implicit, sftp] = [await freePort(), await freePort(), await freePort()];
    haproxy = await Haproxy.start(
      [
        'frontend ftp',
        `  bind 127.0.0.1:${control}`,
        '  default_backend bridge',
        'backend bridge',
        `  server b 127.0.0.6:${bridge.port} send-proxy-v2 source 127.0.0.1`,
        'listen ftps',
        `  bind 127.0.0.1:${implicit}`,
        `  server b 127.0.0.6:${bridge.ftpsImplicitPort} send-proxy-v2 source 127.0.0.1`,
        'listen sftp',
        `  bind 127.0.0.1:${sftp}`,
        `  server b 127.0.0.6:${bridge.sftpPort} send-proxy-v2 source 127.0.0.1`,
        // No port: each connection goes to the port it came in on.
        'listen pasv',
        `  bind 127.0.0.1:${passive.portMin}-${passive.portMax}`,
        '  server b 127.0.0.6 send-proxy-v2 source 127.0.0.1',
      ].join('\n'),
    );
  }, 60_000);
  afterAll(async () => {
    await haproxy?.stop();
    await bridge?.close();
    keys?.remove();
    rmSync(work, { recursive: true, force: true });
    rmSync(certs, { recursive: true, force: true });
  });

  it('STOR and RETR from 127.0.0.2 through HAProxy: the object names 127.0.0.2, bytes match, the log line names 127.0.0.2', async () => {
    const body = randomBytes(300_000);
    const ftp = await RawFtp.connect(control, '127.0.0.1', '127.0.0.2');
    try {
      await ftp.login('alice', 'correct horse');
      await storBytes(ftp, 'via-proxy.bin', body);
      const data = await ftp.pasv();
      const read = readAll(data);
      ftp.send('RETR via-proxy.bin');
      expect((await ftp.reply()).code).toBe(150);
      expect(sha256(await read)).toBe(sha256(body));
      expect((await ftp.reply()).code).toBe(226);
    } finally {
      ftp.close();
    }
    expect(await bridge.objectHash('via-proxy.bin')).toBe(sha256(body));
    const head = await bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: 'via-proxy.bin' }));
    expect(head.Metadata?.['ftp-client-ip']).toBe('127.0.0.2');
    expect(await log.waitForOperation('STOR', '/via-proxy.bin', 'ok')).toMatchObject({ clientIp: '127.0.0.2' });
    expect(await log.waitForOperation('RETR', '/via-proxy.bin', 'ok')).toMatchObject({ clientIp: '127.0.0.2' });
    expect(log.lines.find((l) => l.event === 'login' && l.result === 'ok')).toMatchObject({ clientIp: '127.0.0.2' });
    expect(log.lines.some((l) => l.event === 'port-stealing-refused')).toBe(false);
  });

  it('implicit FTPS through HAProxy (curl from 127.0.0.2, passive): stored and read back, the object names 127.0.0.2', async () => {
    const body = randomBytes(200_000);
    const file = join(work, 'implicit.bin');
    writeFileSync(file, body);
    const url = `ftps://127.0.0.1:${implicit}/implicit.bin`;
    const auth = ['--interface', '127.0.0.2', '--user', 'alice:correct horse', '--cacert', cert.cert];
    const up = await curl([...auth, '-T', file, url]);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(await bridge.objectHash('implicit.bin')).toBe(sha256(body));
    const down = await curl([...auth, url]);
    expect(down.code).toBe(0);
    expect(sha256(down.stdout)).toBe(sha256(body));
    const head = await bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: 'implicit.bin' }));
    expect(head.Metadata?.['ftp-client-ip']).toBe('127.0.0.2');
  });

  it('SFTP (OpenSSH from 127.0.0.2) through HAProxy: put and get byte-exact, the object names 127.0.0.2', async () => {
    const body = randomBytes(200_000);
    const local = join(work, 'sftp-up.bin');
    const back = join(work, 'sftp-down.bin');
    writeFileSync(local, body);
    const r = await sftpBatch({ port: sftp, user: 'alice', password: 'correct horse', bindAddress: '127.0.0.2' }, [`put ${local} /sftp.bin`, `get /sftp.bin ${back}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(sha256(readFileSync(back))).toBe(sha256(body));
    expect(await bridge.objectHash('sftp.bin')).toBe(sha256(body));
    const head = await bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: 'sftp.bin' }));
    expect(head.Metadata).toMatchObject({ 'ftp-client-ip': '127.0.0.2', 'uploader-protocol': 'sftp' });
  });

  it('SFTP port: the trusted source without a header is closed after the time-out, an untrusted one sending a header at once', async () => {
    const direct = await rawSession(bridge.sftpPort as number, '127.0.0.1', undefined, { host: '127.0.0.6' });
    expect(direct).toMatchObject({ closed: true, text: '' });
    // The server's timer and this clock may differ by a millisecond or two (1999 ms was seen).
    expect(direct.ms).toBeGreaterThanOrEqual(2000 - 50);
    const forged = await rawSession(bridge.sftpPort as number, '127.0.0.5', 'PROXY TCP4 198.51.100.7 127.0.0.6 40000 22\r\nSSH-2.0-x\r\n', { host: '127.0.0.6' });
    expect(forged.closed).toBe(true);
    expect(forged.ms).toBeLessThan(2000);
    expect(await waitForLine(log, (l) => l.protocol === 'sftp' && l.reason === 'proxy-header-untrusted')).toMatchObject({ clientIp: '127.0.0.5' });
    expect(await waitForLine(log, (l) => l.protocol === 'sftp' && l.reason === 'proxy-header-timeout')).toMatchObject({ clientIp: '127.0.0.1' });
  });

  it('a ban earned through HAProxy by 127.0.0.7 does not ban 127.0.0.3 through the same HAProxy', async () => {
    for (let i = 0; i < 2; i++) {
      const ftp = await RawFtp.connect(control, '127.0.0.1', '127.0.0.7');
      try {
        expect((await ftp.command('USER alice')).code).toBe(331);
        expect((await ftp.command('PASS wrong')).code).toBe(530);
      } finally {
        ftp.close();
      }
    }
    expect(await waitForLine(log, (l) => l.event === 'brute-force-ban')).toMatchObject({ clientIp: '127.0.0.7' });
    const banned = await rawSession(control, '127.0.0.7', undefined);
    expect(banned.closed).toBe(true);
    expect(banned.text).toMatch(/^421 /);
    expect(await waitForLine(log, (l) => l.event === 'connection-refused' && l.reason === 'banned')).toMatchObject({ clientIp: '127.0.0.7' });

    const other = await RawFtp.connect(control, '127.0.0.1', '127.0.0.3');
    try {
      await other.login('alice', 'correct horse');
      expect((await other.command('PWD')).code).toBe(257);
    } finally {
      other.close();
    }
  });
});

describe('PROXY protocol on raw sockets: trust rules, time-out, size cap', () => {
  const log = new LogLines();
  let bridge: TestBridge;
  const TIMEOUT_S = 3;
  beforeAll(async () => {
    bridge = await TestBridge.start({
      logStream: log.stream,
      logLevel: 'info',
      accounts: [
        { username: 'alice', password: 'correct horse' },
        { username: 'far', password: 'far-pw', allowFrom: ['198.51.100.0/24'] },
      ],
      ftp: { proxyProtocol: { enabled: true, trustedProxies: ['127.0.0.4'], headerTimeoutSeconds: TIMEOUT_S } },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('a trusted source without a header is closed without a greeting after headerTimeoutSeconds', async () => {
    const r = await rawSession(bridge.port, '127.0.0.4', undefined);
    expect(r).toMatchObject({ closed: true, text: '' });
    // The server's timer and this clock may differ by a millisecond or two.
    expect(r.ms).toBeGreaterThanOrEqual(TIMEOUT_S * 1000 - 50);
    expect(await waitForLine(log, (l) => l.reason === 'proxy-header-timeout')).toMatchObject({ event: 'connection-refused', clientIp: '127.0.0.4' });
  });

  it('a trusted source sending garbage is closed at once, without a greeting', async () => {
    const r = await rawSession(bridge.port, '127.0.0.4', 'USER alice\r\n');
    expect(r).toMatchObject({ closed: true, text: '' });
    expect(r.ms).toBeLessThan(TIMEOUT_S * 1000);
    expect(await waitForLine(log, (l) => l.reason === 'proxy-header-invalid')).toMatchObject({ clientIp: '127.0.0.4' });
  });

  it('a v2 header longer than 4096 bytes is refused from its length, unread; a v1 line without CRLF within 107 bytes too', async () => {
    const huge = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    const r = await rawSession(bridge.port, '127.0.0.4', huge);
    expect(r).toMatchObject({ closed: true, text: '' });
    expect(r.ms).toBeLessThan(TIMEOUT_S * 1000);
    const long = await rawSession(bridge.port, '127.0.0.4', `PROXY TCP4 ${'1'.repeat(120)}`);
    expect(long).toMatchObject({ closed: true, text: '' });
    expect(long.ms).toBeLessThan(TIMEOUT_S * 1000);
    expect(log.lines.filter((l) => l.reason === 'proxy-header-too-large').length).toBeGreaterThanOrEqual(1);
    // An unsupported header (v1 UNKNOWN) is refused too.
    const unknown = await rawSession(bridge.port, '127.0.0.4', 'PROXY UNKNOWN\r\n');
    expect(unknown).toMatchObject({ closed: true, text: '' });
  });

  it('a v1 header from the trusted source is honoured: allowFrom, the log and the data connection check see its client', async () => {
    const ftp = await proxiedControl(bridge.port, '127.0.0.4', 'PROXY TCP4 198.51.100.7 127.0.0.1 40000 2121\r\n');
    try {
      // `far` may log in from 198.51.100.0/24 only: the header's address, not 127.0.0.4.
      await ftp.login('far', 'far-pw');
      expect(await waitForLine(log, (l) => l.event === 'login' && l.user === 'far')).toMatchObject({ clientIp: '198.51.100.7', result: 'ok' });
      // A data connection from the proxy naming another client is refused as port stealing...
      const pasv = await ftp.command('PASV');
      const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv.text) as RegExpExecArray;
      const port = Number(m[5]) * 256 + Number(m[6]);
      const thief = await rawSession(port, '127.0.0.4', 'PROXY TCP4 198.51.100.8 127.0.0.1 40001 2121\r\nstolen');
      expect(thief.closed).toBe(true);
      expect(await waitForLine(log, (l) => l.event === 'port-stealing-refused')).toMatchObject({ dataPeer: '198.51.100.8', controlPeer: '198.51.100.7' });
      // ...one naming the client carries the upload, the bytes after the header are the file's.
      const data = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.4' });
      await new Promise<void>((resolve, reject) => data.once('connect', resolve).once('error', reject));
      const body = randomBytes(50_000);
      data.write(Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.7 127.0.0.1 40002 2121\r\n'), body.subarray(0, 1000)]));
      ftp.send('STOR far.bin');
      expect((await ftp.reply()).code).toBe(150);
      data.end(body.subarray(1000));
      expect((await ftp.reply(60_000)).code).toBe(226);
      expect(await bridge.objectHash('far.bin')).toBe(sha256(body));
    } finally {
      ftp.close();
    }
    const head = await bridge.s3.send(new HeadObjectCommand({ Bucket: bridge.bucket, Key: 'far.bin' }));
    expect(head.Metadata?.['ftp-client-ip']).toBe('198.51.100.7');
  });

  it('a v2 LOCAL header (health check) is served as the proxy itself', async () => {
    const ftp = await proxiedControl(bridge.port, '127.0.0.4', v2Header('local'));
    try {
      await ftp.login('alice', 'correct horse');
    } finally {
      ftp.close();
    }
    expect(await waitForLine(log, (l) => l.event === 'login' && l.user === 'alice' && l.clientIp === '127.0.0.4')).toMatchObject({ result: 'ok' });
  });

  it('a v2 header with TLVs names its client', async () => {
    const tlv = Buffer.concat([Buffer.from([0x04, 0x00, 0x40]), Buffer.alloc(64, 0x20)]);
    const ftp = await proxiedControl(bridge.port, '127.0.0.4', v2Header('198.51.100.9', tlv));
    try {
      await ftp.login('far', 'far-pw');
    } finally {
      ftp.close();
    }
    expect(await waitForLine(log, (l) => l.event === 'login' && l.clientIp === '198.51.100.9')).toMatchObject({ result: 'ok' });
  });

  it('an untrusted source is served without a header, and closed when its first line is one', async () => {
    const plain = await RawFtp.connect(bridge.port, '127.0.0.1', '127.0.0.5');
    try {
      await plain.login('alice', 'correct horse');
      expect((await plain.command('PWD')).code).toBe(257);
    } finally {
      plain.close();
    }
    const forged = await rawSession(bridge.port, '127.0.0.5', 'PROXY TCP4 198.51.100.7 127.0.0.1 40000 2121\r\nUSER far\r\n');
    expect(forged.closed).toBe(true);
    // The greeting, and nothing after it: no reply to either line.
    expect(forged.text).toMatch(/^220[ -]/);
    expect(forged.text).not.toMatch(/^(331|500|501|530)/m);
    expect(await waitForLine(log, (l) => l.reason === 'proxy-header-untrusted')).toMatchObject({ clientIp: '127.0.0.5' });
    const forgedV2 = await rawSession(bridge.port, '127.0.0.5', v2Header('198.51.100.7'));
    expect(forgedV2.closed).toBe(true);
    expect(forgedV2.text).toMatch(/^220[ -]/);
    expect(forgedV2.text).not.toMatch(/^(500|501)/m);
  });
});
