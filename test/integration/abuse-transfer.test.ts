import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, sha256, TestBridge, USER } from '../support/bridge.js';
import { curl, python, RawFtp, storBytes } from '../support/clients.js';
import { LogLines } from '../support/log-lines.js';

/**
 * Hostile and unusual clients during transfers (issue 14, §1a and §2): ABOR, STAT and QUIT act
 * while a transfer runs, an aborted upload is never committed, and a data connection that moves
 * nothing ends its transfer after ftp.dataIdleTimeoutSeconds. Real bridge, real S3 (through the
 * recording proxy, which shows the multipart upload aborted), raw sockets, curl and ftplib.
 */

const PART = 5 * 1024 * 1024;
const BIG = randomBytes(16 * 1024 * 1024);

let bridge: TestBridge;
let log: LogLines;
beforeAll(async () => {
  log = new LogLines();
  bridge = await TestBridge.start({
    proxy: true,
    logStream: log.stream,
    logLevel: 'info',
    accounts: [
      { username: USER, password: PASSWORD },
      { username: 'slow', password: 'slow-pw', policy: { bandwidth: { downloadKiBps: 16 } } },
    ],
  });
  await bridge.put('big.bin', BIG);
});
afterAll(async () => {
  await bridge?.close();
});

const write = (socket: Socket, bytes: Buffer) =>
  new Promise<void>((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : resolve())));

/** Starts STOR of `name` and sends `bytes` on its data connection, which stays open. */
async function startUpload(ftp: RawFtp, name: string, bytes: Buffer): Promise<Socket> {
  const data = await ftp.pasv();
  data.on('error', () => undefined);
  ftp.send(`STOR ${name}`);
  expect((await ftp.reply()).code).toBe(150);
  await write(data, bytes);
  return data;
}

/** Waits until the upload of `key` is a multipart upload (its first part is on its way to S3). */
async function multipartStarted(key: string): Promise<void> {
  await expect.poll(() => bridge.proxy!.requestsOf('CreateMultipartUpload').some((r) => r.key === key), { timeout: 20_000 }).toBe(true);
}

const completed = (key: string) =>
  bridge.proxy!.requestsOf('CompleteMultipartUpload').some((r) => r.key === key) ||
  bridge.proxy!.requestsOf('PutObject').some((r) => r.key === key);
const aborted = (key: string) => bridge.proxy!.requestsOf('AbortMultipartUpload').some((r) => r.key === key);

describe('ABOR during a transfer (RFC 959 §4.1.3)', () => {
  it('ABOR during STOR, then a clean close of the data connection: 426, 226, nothing committed, multipart upload aborted', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const data = await startUpload(ftp, 'abor-stor.bin', randomBytes(PART + 1024 * 1024));
    await multipartStarted('abor-stor.bin');
    // Telnet IP + Synch before ABOR, as BSD ftp and many others send it.
    ftp.socket.write(Buffer.concat([Buffer.from([0xff, 0xf4, 0xff, 0xf2]), Buffer.from('ABOR\r\n')]));
    data.end();
    expect((await ftp.reply()).code).toBe(426);
    expect((await ftp.reply()).code).toBe(226);
    expect(aborted('abor-stor.bin')).toBe(true);
    expect(completed('abor-stor.bin')).toBe(false);
    expect(await bridge.exists('abor-stor.bin')).toBe(false);
    // The session goes on.
    expect((await ftp.command('NOOP')).code).toBe(200);
    await storBytes(ftp, 'after-abor.bin', Buffer.from('next'));
    expect((await bridge.getObject('after-abor.bin'))?.toString()).toBe('next');
    ftp.close();
  });

  it('ABOR during a small single-request STOR: nothing committed even though the data connection closes cleanly', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const data = await startUpload(ftp, 'abor-small.bin', Buffer.from('truncated'));
    ftp.send('ABOR');
    data.end();
    expect((await ftp.reply()).code).toBe(426);
    expect((await ftp.reply()).code).toBe(226);
    expect(completed('abor-small.bin')).toBe(false);
    expect(await bridge.exists('abor-small.bin')).toBe(false);
    ftp.close();
  });

  it('ABOR during APPE leaves the file as it was', async () => {
    await bridge.put('appe-base.txt', 'original');
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    data.on('error', () => undefined);
    ftp.send('APPE appe-base.txt');
    expect((await ftp.reply()).code).toBe(150);
    await write(data, Buffer.from(' and a truncated tail'));
    ftp.send('ABOR');
    data.end();
    expect((await ftp.reply()).code).toBe(426);
    expect((await ftp.reply()).code).toBe(226);
    expect((await bridge.getObject('appe-base.txt'))?.toString()).toBe('original');
    ftp.close();
  });

  it('ABOR during RETR: the transfer stops within a second, 426 then 226', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    data.pause(); // a client that reads nothing: the bridge's writes wait
    const closed = new Promise<void>((resolve) => data.once('close', () => resolve()));
    data.on('error', () => undefined);
    ftp.send('RETR big.bin');
    expect((await ftp.reply()).code).toBe(150);
    const started = Date.now();
    ftp.send('ABOR');
    expect((await ftp.reply()).code).toBe(426);
    // RFC 959: within a second on an idle machine; slack for a loaded CI machine.
    expect(Date.now() - started).toBeLessThan(2500);
    expect((await ftp.reply()).code).toBe(226);
    data.resume();
    await closed;
    expect((await ftp.command('NOOP')).code).toBe(200);
    ftp.close();
  });

  it('ABOR while LIST waits for its data connection: 426 then 226', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    expect((await ftp.command('PASV')).code).toBe(227);
    ftp.send('LIST');
    ftp.send('ABOR');
    expect((await ftp.reply()).code).toBe(426);
    expect((await ftp.reply()).code).toBe(226);
    expect((await ftp.command('NOOP')).code).toBe(200);
    ftp.close();
  });

  it('ABOR with no transfer: 225', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    expect((await ftp.command('ABOR')).code).toBe(225);
    ftp.close();
  });
});

describe('STAT and other commands during a transfer', () => {
  it('STAT answers 213 with the bytes moved at once; a NOOP sent meanwhile waits for the transfer, in order', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const first = randomBytes(100_000);
    const data = await startUpload(ftp, 'stat.bin', first);
    ftp.send('NOOP');
    // STAT answers before the transfer ends; the count reaches what was sent.
    let stat = await ftp.command('STAT');
    expect(stat.code).toBe(213);
    for (let i = 0; i < 100 && !stat.text.includes(' 100000 bytes'); i++) stat = await ftp.command('STAT');
    expect(stat.text).toMatch(/ 100000 bytes transferred/);
    const rest = randomBytes(50_000);
    await write(data, rest);
    data.end();
    expect((await ftp.reply(60_000)).code).toBe(226);
    expect((await ftp.reply()).code).toBe(200); // the NOOP, after the transfer
    expect(await bridge.objectHash('stat.bin')).toBe(sha256(Buffer.concat([first, rest])));
    ftp.close();
  });

  it('QUIT during STOR aborts the upload and closes the session: 426, 221, nothing committed', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const closed = new Promise<void>((resolve) => ftp.socket.once('close', () => resolve()));
    const data = await startUpload(ftp, 'quit-stor.bin', randomBytes(PART + 512 * 1024));
    await multipartStarted('quit-stor.bin');
    ftp.send('QUIT');
    ftp.send('MKD after-quit'); // never runs
    expect((await ftp.reply()).code).toBe(426);
    expect((await ftp.reply()).code).toBe(221);
    await closed;
    data.destroy();
    expect(aborted('quit-stor.bin')).toBe(true);
    expect(completed('quit-stor.bin')).toBe(false);
    expect(await bridge.exists('quit-stor.bin')).toBe(false);
    expect(await bridge.keys('after-quit')).toEqual([]);
  });
});

describe('python ftplib abort() (ABOR sent as urgent data)', () => {
  const SCRIPT = `
import ftplib, json, socket, sys
port, user, password = sys.argv[1:4]
ftp = ftplib.FTP()
ftp.connect('127.0.0.1', int(port))
ftp.login(user, password)
out = {}
conn = ftp.transfercmd('STOR ftplib-aborted.bin')
conn.sendall(b'x' * 300000)
out['stor_abort'] = ftp.abort()[:3]
conn.close()
out['stor_after'] = ftp.getresp()[:3]
conn = ftp.transfercmd('RETR big.bin')
conn.recv(65536)
out['retr_abort'] = ftp.abort()[:3]
while conn.recv(65536):
    pass
conn.close()
out['retr_after'] = ftp.getresp()[:3]
# BSD ftp's way: IAC IP IAC as urgent data (Linux takes the last byte out of band), then DM ABOR.
conn = ftp.transfercmd('STOR ftplib-synch.bin')
conn.sendall(b'y' * 1000)
ftp.sock.send(b'\\xff\\xf4\\xff', socket.MSG_OOB)
ftp.sock.sendall(b'\\xf2ABOR\\r\\n')
out['synch'] = [ftp.getline()[:3], ftp.getline()[:3]]
conn.close()
out['noop'] = ftp.voidcmd('NOOP')[:3]
ftp.quit()
print(json.dumps(out))
`;

  it('aborts a STOR (nothing committed) and a RETR; the session goes on', async () => {
    const result = await python(SCRIPT, [String(bridge.port), USER, PASSWORD]);
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout.toString())).toEqual({
      stor_abort: '426',
      stor_after: '226',
      retr_abort: '426',
      retr_after: '226',
      synch: ['426', '226'],
      noop: '200',
    });
    expect(await bridge.exists('ftplib-aborted.bin')).toBe(false);
    expect(await bridge.exists('ftplib-synch.bin')).toBe(false);
    expect(completed('ftplib-aborted.bin')).toBe(false);
  });
});

describe('curl giving up on a slow transfer (-Y/-y)', () => {
  it('an upload curl abandons for being too slow is not committed', async () => {
    // curl held to 4 KiB/s by --limit-rate, below its own -Y floor: it gives up after 2 s.
    const { code } = await curl(['--limit-rate', '4k', '-Y', '100000', '-y', '2', '-T', '-', bridge.url('/curl-slow.bin')], randomBytes(1024 * 1024));
    expect(code).toBe(28); // operation too slow
    await expect.poll(() => log.operation('STOR', '/curl-slow.bin'), { timeout: 20_000 }).toMatchObject({ result: 'error' });
    expect(await bridge.exists('curl-slow.bin')).toBe(false);
  });

  it('a download curl abandons ends on the bridge too', async () => {
    const result = await new Promise<number | null>((resolve) => {
      const child = spawn('curl', ['-sS', '--max-time', '60', '-Y', '100000', '-y', '2', '-o', '/dev/null', bridge.url('/big.bin', 'slow', 'slow-pw')], {
        stdio: 'ignore',
      });
      child.once('close', resolve);
    });
    expect(result).toBe(28);
    await expect.poll(() => log.operation('RETR', '/big.bin'), { timeout: 20_000 }).toMatchObject({ result: 'error', replyCode: 426 });
  });
});

describe('ftp.dataIdleTimeoutSeconds', () => {
  let idle: TestBridge;
  beforeAll(async () => {
    idle = await TestBridge.start({ proxy: true, ftp: { dataIdleTimeoutSeconds: 2 } });
    await idle.put('big.bin', BIG);
  });
  afterAll(async () => {
    await idle?.close();
  });

  it('a STOR whose data connection falls silent is aborted (426): nothing committed, multipart upload aborted', async () => {
    const ftp = await RawFtp.connect(idle.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    data.on('error', () => undefined);
    ftp.send('STOR stalled.bin');
    expect((await ftp.reply()).code).toBe(150);
    await write(data, randomBytes(PART + 1024 * 1024));
    const reply = await ftp.reply(30_000);
    expect(reply.code).toBe(426);
    expect(reply.text).toMatch(/No data moved/);
    expect(idle.proxy!.requestsOf('AbortMultipartUpload').some((r) => r.key === 'stalled.bin')).toBe(true);
    expect(await idle.exists('stalled.bin')).toBe(false);
    data.destroy();
    // The session is usable, and a transfer that moves its bytes is not cut.
    await storBytes(ftp, 'fine.bin', Buffer.from('fine'));
    ftp.close();
  });

  it('a RETR whose client reads nothing is aborted (426)', async () => {
    const ftp = await RawFtp.connect(idle.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    data.pause();
    data.on('error', () => undefined);
    ftp.send('RETR big.bin');
    expect((await ftp.reply()).code).toBe(150);
    expect((await ftp.reply(30_000)).code).toBe(426);
    data.destroy();
    expect((await ftp.command('NOOP')).code).toBe(200);
    ftp.close();
  });

  it('an upload that trickles for longer than the timeout, never pausing that long, is committed', async () => {
    const ftp = await RawFtp.connect(idle.port);
    await ftp.login(USER, PASSWORD);
    const data = await ftp.pasv();
    ftp.send('STOR trickle.bin');
    expect((await ftp.reply()).code).toBe(150);
    const chunks: Buffer[] = [];
    const started = Date.now();
    for (let i = 0; i < 16; i++) {
      const chunk = randomBytes(10_000);
      chunks.push(chunk);
      await write(data, chunk);
      await sleep(300);
    }
    expect(Date.now() - started).toBeGreaterThan(4000); // twice the idle timeout
    data.end();
    expect((await ftp.reply(60_000)).code).toBe(226);
    expect(await idle.objectHash('trickle.bin')).toBe(sha256(Buffer.concat(chunks)));
    ftp.close();
  });
});
