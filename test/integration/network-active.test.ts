import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, curl, runProgram } from '../support/clients.js';

const log = new PassThrough();
let logText = '';
log.on('data', (c: Buffer) => (logText += c.toString()));

const PY_ACTIVE = `import ftplib,sys,hashlib,io
host,port,user,pw,mode=sys.argv[1],int(sys.argv[2]),sys.argv[3],sys.argv[4],sys.argv[5]
f=ftplib.FTP(); f.connect(host, port); f.login(user, pw); f.set_pasv(mode=='passive')
data=bytes.fromhex(sys.stdin.read().strip())
f.storbinary('STOR py-'+mode+'.bin', io.BytesIO(data))
buf=bytearray(); f.retrbinary('RETR py-'+mode+'.bin', buf.extend)
print(hashlib.sha256(buf).hexdigest()); f.quit()`;

async function pythonTransfer(host: string, port: number, mode: 'active' | 'passive', body: Buffer): Promise<string> {
  const r = await runProgram('python3', ['-c', PY_ACTIVE, host, String(port), USER, PASSWORD, mode], { input: body.toString('hex') });
  expect(r.stderr).toBe('');
  return r.stdout.toString().trim();
}

/** A listener that must never be connected to (bounce target). */
async function trap(host: string): Promise<{ server: Server; port: number; hits: () => number }> {
  let hits = 0;
  const server = createServer((s) => {
    hits++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, port: (server.address() as { port: number }).port, hits: () => hits };
}

describe('active mode (PORT, EPRT) on IPv4', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await TestBridge.start({ logStream: log, logLevel: 'debug', ftp: { dataConnectionTimeoutSeconds: 5 } });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('python ftplib (PORT) stores and retrieves; bytes verified in S3', async () => {
    const body = randomBytes(300_000);
    expect(await pythonTransfer('127.0.0.1', bridge.port, 'active', body)).toBe(sha256(body));
    expect(await bridge.objectHash('py-active.bin')).toBe(sha256(body));
  });

  it('curl active mode with EPRT and with PORT (--disable-eprt)', async () => {
    const body = randomBytes(100_000);
    const up = await curl(['-P', '127.0.0.1', '-T', '-', bridge.url('/curl-eprt.bin')], body);
    expect(up.stderr).toBe('');
    expect(await bridge.objectHash('curl-eprt.bin')).toBe(sha256(body));
    const down = await curl(['-P', '127.0.0.1', '--disable-eprt', bridge.url('/curl-eprt.bin')]);
    expect(sha256(down.stdout)).toBe(sha256(body));
  });

  describe('RFC 2577 bounce protection', () => {
    it('PORT/EPRT to another address or to a port below 1024 get 504, are logged and never connect', async () => {
      const target = await trap('127.0.0.2');
      const ftp = await RawFtp.connect(bridge.port, '127.0.0.1');
      await ftp.login(USER, PASSWORD);
      const p = target.port;
      const cases = [
        `PORT 127,0,0,2,${p >> 8},${p & 255}`,
        `EPRT |1|127.0.0.2|${p}|`,
        'PORT 127,0,0,1,0,21',
        'PORT 127,0,0,1,3,255',
        'EPRT |1|127.0.0.1|25|',
        `PORT 10,0,0,1,${p >> 8},${p & 255}`,
      ];
      for (const c of cases) {
        const r = await ftp.command(c);
        expect(r.code, c).toBe(504);
        // A transfer after a refused PORT has no data connection to use: the bridge answers
        // without connecting anywhere.
        expect((await ftp.command('LIST')).code, `LIST after ${c}`).toBe(425);
      }
      expect((await ftp.command('PORT 1,2,3')).code).toBe(501);
      expect((await ftp.command('EPRT |3|127.0.0.1|5000|')).code).toBe(522);
      expect((await ftp.command('NOOP')).code).toBe(200);
      // every command above has been answered, the LISTs without a data connection
      expect(target.hits()).toBe(0);
      expect(logText.match(/"event":"active-refused"/g)?.length).toBeGreaterThanOrEqual(cases.length);
      expect(logText).toContain('"target":"127.0.0.2:' + p + '"');
      ftp.close();
      target.server.close();
    });
  });
});

describe('IPv6 (::1) and dual stack (::)', () => {
  it('control and data over ::1: EPSV and EPRT with curl and python; PASV gets 522', async () => {
    const portMin = 31000 + Math.floor(Math.random() * 50) * 10;
    const bridge = await TestBridge.start({ ftp: { host: '::1', passive: { portMin, portMax: portMin + 9 } } });
    try {
      const body = randomBytes(200_000);
      const url = `ftp://${USER}:${encodeURIComponent(PASSWORD)}@[::1]:${bridge.port}/v6.bin`;
      const up = await curl(['-g', '-T', '-', url], body);
      expect(up.stderr).toBe('');
      expect(await bridge.objectHash('v6.bin')).toBe(sha256(body));
      const down = await curl(['-g', '-P', '::1', url]);
      expect(sha256(down.stdout)).toBe(sha256(body));
      expect(await pythonTransfer('::1', bridge.port, 'passive', body)).toBe(sha256(body));
      expect(await pythonTransfer('::1', bridge.port, 'active', body)).toBe(sha256(body));
      const ftp = await RawFtp.connect(bridge.port, '::1');
      await ftp.login(USER, PASSWORD);
      expect((await ftp.command('PASV')).code).toBe(522);
      expect((await ftp.command('EPSV 1')).code).toBe(522);
      const epsv = await ftp.command('EPSV 2');
      expect(epsv.code).toBe(229);
      expect((await ftp.command(`EPRT |2|::2|5000|`)).code).toBe(504);
      ftp.close();
    } finally {
      await bridge.close();
    }
  });

  it('listening on "::" serves IPv4 clients (PASV announces their IPv4 address) and IPv6 clients', async () => {
    const portMin = 31500 + Math.floor(Math.random() * 50) * 10;
    const bridge = await TestBridge.start({ ftp: { host: '::', passive: { portMin, portMax: portMin + 9 } } });
    try {
      const ftp = await RawFtp.connect(bridge.port, '127.0.0.1');
      await ftp.login(USER, PASSWORD);
      const data = await ftp.pasv();
      expect((await ftp.command('STOR dual.txt')).code).toBe(150);
      data.end('dual');
      expect((await ftp.reply()).code).toBe(226);
      ftp.close();
      const down = await curl(['-g', `ftp://${USER}:${encodeURIComponent(PASSWORD)}@[::1]:${bridge.port}/dual.txt`]);
      expect(down.stdout.toString()).toBe('dual');
      const v4 = await curl([`ftp://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${bridge.port}/dual.txt`, '--disable-epsv']);
      expect(v4.stdout.toString()).toBe('dual');
      // Active mode from an IPv4 client: its control address is ::ffff:127.0.0.1, its PORT 127.0.0.1
      // (one host: ftp-srv's active connector must fold the mapped form, patches/ftp-srv+4.6.3.patch).
      const body = randomBytes(100_000);
      expect(await pythonTransfer('127.0.0.1', bridge.port, 'active', body)).toBe(sha256(body));
    } finally {
      await bridge.close();
    }
  });
});
