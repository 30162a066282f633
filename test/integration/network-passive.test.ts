import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER, sha256 } from '../support/bridge.js';
import { RawFtp, curl, python, readAll } from '../support/clients.js';
import { waitForPassivePortsInUse } from '../support/metrics.js';

const log = new PassThrough();
let logText = '';
log.on('data', (c: Buffer) => (logText += c.toString()));

function dataPort(text: string): { host: string; port: number } {
  const m = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(text);
  if (m) return { host: `${m[1]}.${m[2]}.${m[3]}.${m[4]}`, port: Number(m[5]) * 256 + Number(m[6]) };
  const e = /\(\|\|\|(\d+)\|\)/.exec(text);
  if (e) return { host: '127.0.0.1', port: Number(e[1]) };
  throw new Error('no port in ' + text);
}

function open(port: number, host = '127.0.0.1', localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

const closed = (s: Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

async function uploadAndCheck(bridge: TestBridge, key: string): Promise<void> {
  const body = randomBytes(64 * 1024);
  const up = await curl(['-T', '-', bridge.url('/' + key)], body);
  expect(up.stderr).toBe('');
  expect(await bridge.objectHash(key)).toBe(sha256(body));
  const down = await curl(['--disable-epsv', bridge.url('/' + key)]);
  expect(sha256(down.stdout)).toBe(sha256(body));
}

describe('passive port pool (10 ports)', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await TestBridge.start({ logStream: log, logLevel: 'debug' });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('1,000 PASV commands without a transfer leak no port; transfers work afterwards', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const ports = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const r = await ftp.command(i % 2 ? 'PASV' : 'EPSV');
      expect(r.code, r.text).toBe(i % 2 ? 227 : 229);
      ports.add(dataPort(r.text).port);
    }
    expect(ports.size).toBe(10);
    ftp.close();
    await uploadAndCheck(bridge, 'after-1000-pasv.bin');
  });

  it('all ports taken: 425; after one is released the next PASV succeeds', async () => {
    const holders: RawFtp[] = [];
    for (let i = 0; i < 10; i++) {
      const ftp = await RawFtp.connect(bridge.port);
      await ftp.login(USER, PASSWORD);
      expect((await ftp.command('PASV')).code).toBe(227);
      holders.push(ftp);
    }
    const extra = await RawFtp.connect(bridge.port);
    await extra.login(USER, PASSWORD);
    const refused = await extra.command('PASV');
    expect(refused.code).toBe(425);
    expect(logText).toContain('passive-ports-exhausted');
    // The client going away releases its port.
    const gone = holders.pop() as RawFtp;
    gone.close();
    await closed(gone.socket);
    await waitForPassivePortsInUse(bridge, 9);
    expect((await extra.command('PASV')).code).toBe(227);
    // PASV issued twice on one connection keeps one port, not two.
    expect((await holders[0]!.command('PASV')).code).toBe(227);
    expect((await holders[0]!.command('EPSV')).code).toBe(229);
    for (const h of [...holders, extra]) h.close();
    await Promise.all([...holders, extra].map((h) => closed(h.socket)));
    await waitForPassivePortsInUse(bridge, 0);
    await uploadAndCheck(bridge, 'after-exhaustion.bin');
  });

  it('a busy port (EADDRINUSE) is skipped', BUSY);
});

describe('passive ports and timeouts (10 ports, 1 s data-connection timeout)', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await TestBridge.start({ ftp: { dataConnectionTimeoutSeconds: 1 } });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('a port released by the data-connection timeout, by a transfer error and by a finished transfer is reused', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    // Timeout: PASV, then never connect.
    for (let i = 0; i < 10; i++) expect((await ftp.command('PASV')).code).toBe(227);
    expect((await ftp.command('RETR missing-never-connected')).code).toBe(425);
    // Error: the file does not exist.
    for (let i = 0; i < 12; i++) {
      const data = await ftp.pasv();
      const r = await ftp.command('RETR no-such-file');
      expect(r.code).toBe(550);
      data.destroy();
    }
    // Finished transfers.
    await bridge.put('small.txt', 'hello');
    for (let i = 0; i < 12; i++) {
      const data = await ftp.pasv();
      const reading = readAll(data);
      expect((await ftp.command('RETR small.txt')).code).toBe(150);
      expect((await reading).toString()).toBe('hello');
      expect((await ftp.reply()).code).toBe(226);
    }
    ftp.close();
  });

  it('an unused passive listener times out and frees its port', async () => {
    const holders: RawFtp[] = [];
    for (let i = 0; i < 10; i++) {
      const ftp = await RawFtp.connect(bridge.port);
      await ftp.login(USER, PASSWORD);
      expect((await ftp.command('PASV')).code).toBe(227);
      holders.push(ftp);
    }
    // the clients stay connected: only the 1 s data-connection timeout can free the ports
    await waitForPassivePortsInUse(bridge, 0);
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    expect((await ftp.command('PASV')).code).toBe(227);
    for (const h of [...holders, ftp]) h.close();
  });

});

async function BUSY(): Promise<void> {
  {
    const bridge = await TestBridge.start();
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const first = dataPort((await ftp.command('PASV')).text).port;
    // The pool hands out ports round robin: the next one is first+1 (or wraps). Occupy it.
    const blockers: Server[] = [];
    const taken = new Set<number>();
    for (const p of [first + 1, first + 2]) {
      const server = createServer();
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(p, '127.0.0.1', () => resolve(true));
      });
      if (ok) {
        blockers.push(server);
        taken.add(p);
      }
    }
    expect(taken.size).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) {
      const r = await ftp.command('PASV');
      expect(r.code).toBe(227);
      expect(taken.has(dataPort(r.text).port)).toBe(false);
    }
    for (const b of blockers) b.close();
    ftp.close();
    await bridge.close();
  }
}

describe('passive address, overrides, PASV and EPSV with real clients', () => {
  it('a host name for ftp.passive.address is resolved when PASV is answered', async () => {
    const portMin = 10000 + Math.floor(Math.random() * 2000) * 10;
    const bridge = await TestBridge.start({ ftp: { passive: { address: 'localhost', portMin, portMax: portMin + 9 } } });
    try {
      const ftp = await RawFtp.connect(bridge.port);
      await ftp.login(USER, PASSWORD);
      expect((await ftp.command('PASV')).text).toMatch(/^227 .*\(127,0,0,1,\d+,\d+\)/);
      ftp.close();
      await uploadAndCheck(bridge, 'hostname.bin');
    } finally {
      await bridge.close();
    }
  });

  it('overrides: a client in the CIDR gets the override address, others the public one', async () => {
    const portMin = 10000 + Math.floor(Math.random() * 2000) * 10;
    const bridge = await TestBridge.start({
      ftp: {
        passive: { portMin, portMax: portMin + 9, address: '192.0.2.10', overrides: [{ cidr: '127.0.0.1/32', address: '127.0.0.1' }] },
      },
    });
    try {
      const local = await RawFtp.connect(bridge.port, '127.0.0.1');
      await local.login(USER, PASSWORD);
      expect((await local.command('PASV')).text).toMatch(/\(127,0,0,1,/);
      local.close();
      // From 127.0.0.2 (outside 127.0.0.1/32) the public address is announced.
      const sock = await open(bridge.port, '127.0.0.1', '127.0.0.2');
      sock.setEncoding('utf8');
      let text = '';
      sock.on('data', (c: string) => (text += c));
      sock.write(`USER ${USER}\r\nPASS ${PASSWORD}\r\nPASV\r\n`);
      const deadline = Date.now() + 30_000;
      while (!/^227 /m.test(text) && Date.now() < deadline) await sleep(50); // polls for the reply
      expect(text).toMatch(/^227 .*\(192,0,2,10,/m);
      sock.destroy();
      // curl and python ftplib (PASV) work through the override.
      await uploadAndCheck(bridge, 'override.bin');
      const body = randomBytes(10_000);
      await bridge.put('py.bin', body);
      const py = await python(
        `import ftplib,sys,hashlib
f=ftplib.FTP(); f.connect('127.0.0.1', int(sys.argv[1])); f.login(sys.argv[2], sys.argv[3]); f.set_pasv(True)
buf=bytearray(); f.retrbinary('RETR py.bin', buf.extend); print(hashlib.sha256(buf).hexdigest()); f.quit()`,
        [String(bridge.port), USER, PASSWORD],
      );
      expect(py.stdout.toString().trim()).toBe(sha256(body));
    } finally {
      await bridge.close();
    }
  });
});

describe('misconfiguration warnings at start', () => {
  it('a passive range smaller than the expected concurrency is logged as a warning', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const portMin = 10000 + Math.floor(Math.random() * 2000) * 10;
    const bridge = await TestBridge.start({ logStream: out, logLevel: 'info', ftp: { passive: { portMin, portMax: portMin + 1 } } });
    await bridge.close();
    expect(text).toMatch(/"level":40[^\n]*"event":"misconfiguration"[^\n]*only 2 port/);
  });
});

describe('port stealing (RFC 2577)', () => {
  let bridge: TestBridge;
  beforeAll(async () => {
    bridge = await TestBridge.start({ logStream: log, logLevel: 'debug' });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('a data connection from 127.0.0.2 is dropped and logged; the real client then transfers on the same PASV', async () => {
    const ftp = await RawFtp.connect(bridge.port, '127.0.0.1');
    await ftp.login(USER, PASSWORD);
    const { host, port } = dataPort((await ftp.command('PASV')).text);
    const thief = await open(port, host, '127.0.0.2');
    await closed(thief);
    expect(logText).toContain('port-stealing-refused');
    expect(logText).toContain('"dataPeer":"127.0.0.2"');
    // The control connection is still alive and the right client can still use the listener.
    const data = await open(port, host);
    const body = randomBytes(20_000);
    expect((await ftp.command('STOR stolen.bin')).code).toBe(150);
    data.end(body);
    expect((await ftp.reply()).code).toBe(226);
    expect(await bridge.objectHash('stolen.bin')).toBe(sha256(body));
    expect((await ftp.command('NOOP')).code).toBe(200);
    ftp.close();
  });
});
