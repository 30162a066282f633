import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { python, RawFtp, storBytes } from '../support/clients.js';

/**
 * Command lines from hostile and unusual clients (issue 14, §3c): arguments reach the handlers
 * verbatim, control characters are refused (501) before any handler, hook, log line or object,
 * Telnet IAC sequences are dropped, and no reply echoes a control character.
 */

const PASSWORDS = ['"quoted" pass', ' leading space', '-x', 'two  spaces', 'trailing ', "it's \"-v\" -- ok"];
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_IN_REPLY = /[\u0000-\u001f\u007f-\u009f]/;

let bridge: TestBridge;
let hook: Server;
let hookCalls: { username: string; password: string }[] = [];
let logText = '';

beforeAll(async () => {
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hookCalls.push(JSON.parse(body) as { username: string; password: string });
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  const log = new PassThrough();
  log.on('data', (c: Buffer) => (logText += c.toString()));
  bridge = await TestBridge.start({
    logStream: log,
    logLevel: 'trace',
    accounts: [{ username: USER, password: PASSWORD }, ...PASSWORDS.map((password, i) => ({ username: `verbatim${i}`, password }))],
    ftp: { loginFailureDelayMs: 10, bruteForce: { maxFailures: 0 } },
    config: { auth: { hook: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/auth`, cacheSeconds: 0 } } },
  });
});
afterAll(async () => {
  await bridge?.close();
  hook?.closeAllConnections();
  await new Promise((resolve) => hook?.close(resolve));
});

describe('arguments reach the handlers verbatim', () => {
  it.each(PASSWORDS.map((p, i) => [JSON.stringify(p), i] as const))('password %s logs in as sent', async (_shown, i) => {
    const password = PASSWORDS[i] as string;
    const ftp = await RawFtp.connect(bridge.port);
    expect((await ftp.command(`USER verbatim${i}`)).code).toBe(331);
    expect((await ftp.command(`PASS ${password}`)).code).toBe(230);
    ftp.close();
  });

  it.each([
    ['quotes stripped', 0, 'quoted pass'],
    ['leading space lost', 1, 'leading space'],
    ['spaces collapsed', 3, 'two spaces'],
    ['trailing space lost', 4, 'trailing'],
  ])('what a lossy parser would make of it is refused (%s)', async (_why, i, mangled) => {
    const ftp = await RawFtp.connect(bridge.port);
    expect((await ftp.command(`USER verbatim${i}`)).code).toBe(331);
    expect((await ftp.command(`PASS ${mangled}`)).code).toBe(530);
    ftp.close();
  });

  it('python ftplib logs in with a password with quotes and a leading space', async () => {
    const script = `
import ftplib, sys
for user, password in zip(sys.argv[2::2], sys.argv[3::2]):
    ftp = ftplib.FTP()
    ftp.connect('127.0.0.1', int(sys.argv[1]))
    print(ftp.login(user, password)[:3])
    ftp.quit()
`;
    const result = await python(script, [String(bridge.port), 'verbatim1', PASSWORDS[1] as string, 'verbatim5', PASSWORDS[5] as string]);
    expect(result.stdout.toString().trim().split('\n')).toEqual(['230', '230']);
  });

  it('names with quotes, runs of spaces and a leading dash are kept exactly', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    expect((await ftp.command('MKD -p')).text).toBe('257 "/-p" created');
    await storBytes(ftp, '-x "say  hi".txt', Buffer.from('q'));
    expect(await bridge.keys()).toContain('-x "say  hi".txt');
    expect((await ftp.command('SIZE -x "say  hi".txt')).text).toBe('213 1');
    ftp.close();
  });
});

describe('control characters are refused before any handler', () => {
  it('USER and PASS with control characters: 501, the auth hook is never asked, nothing is logged', async () => {
    hookCalls = [];
    const ftp = await RawFtp.connect(bridge.port);
    for (const line of ['USER evil\u0007user', 'USER evil\u0000', 'USER evil\u001b[2J', 'USER evil\u0085']) {
      const reply = await ftp.command(line);
      expect(reply.code).toBe(501);
      expect(reply.text).not.toMatch(CONTROL_IN_REPLY);
    }
    expect((await ftp.command('USER hooked')).code).toBe(331);
    expect((await ftp.command('PASS evil\u0001pass')).code).toBe(501);
    expect((await ftp.command('PASS evil\tpass')).code).toBe(501);
    expect(hookCalls).toEqual([]);
    // The hook is live: a clean attempt reaches it (and is refused by it).
    expect((await ftp.command('PASS clean')).code).toBe(530);
    expect(hookCalls).toEqual([expect.objectContaining({ username: 'hooked', password: 'clean' })]);
    ftp.close();
    expect(logText).toContain('hooked'); // the log is captured at trace level
    expect(logText).not.toContain('evil');
  });

  it('paths with control characters: 501 for every command, no object, no upload started', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const names = ['bad\u0001name.txt', 'bad\u001b[31mred', 'bad\r\u0000nul', 'bad\u007fdel', 'bad\u009bcsi'];
    for (const name of names) {
      for (const verb of ['STOR', 'APPE', 'MKD', 'CWD', 'DELE', 'RNFR', 'SIZE', 'MDTM', 'RETR', 'LIST', 'MLST']) {
        const reply = await ftp.command(`${verb} ${name}`);
        expect(reply.code, `${verb} ${JSON.stringify(name)}`).toBe(501);
        expect(reply.text).not.toMatch(CONTROL_IN_REPLY);
      }
    }
    expect((await ftp.command('NOOP')).code).toBe(200);
    expect((await bridge.keys()).filter((k) => k.includes('bad'))).toEqual([]);
    ftp.close();
    // None of the names, raw or JSON-escaped, reached a log line (plain "bad" can occur in random hex).
    // eslint-disable-next-line no-control-regex
    expect(logText).not.toMatch(/bad(\\u00|\\r|\[31m|name|del|csi|nul|[\x00-\x1f\x7f-\x9f])/);
  });

  it('an unknown command is never echoed with control characters or other bytes', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    const escape = await ftp.command('XYZ\u001b]0;pwned\u0007');
    expect(escape.code).toBe(501);
    expect(escape.text).not.toMatch(CONTROL_IN_REPLY);
    expect(escape.text).not.toContain('pwned');
    const odd = await ftp.command('F\u00c9O <script>');
    expect(odd.code).toBe(500);
    expect(odd.text).not.toContain('script');
    expect((await ftp.command('FOO')).code).toBe(502);
    ftp.close();
  });
});

describe('Telnet IAC sequences are dropped', () => {
  it('IP + Synch, option negotiation and IAC IAC around commands', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    const send = (...parts: (number[] | string)[]) =>
      ftp.socket.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p)))));
    send([0xff, 0xf4, 0xff, 0xf2], 'NOOP\r\n');
    expect((await ftp.reply()).code).toBe(200);
    send([0xff, 0xfb, 0x18, 0xff, 0xfd, 0x01], `USER ${USER}\r\n`);
    expect((await ftp.reply()).code).toBe(331);
    send('PASS ', PASSWORD.slice(0, 3), [0xff, 0xf1], PASSWORD.slice(3), '\r\n');
    expect((await ftp.reply()).code).toBe(230);
    send([0xff, 0xf4, 0xf2], 'ABOR\r\n'); // the Synch's IAC taken out of band as urgent data
    expect((await ftp.reply()).code).toBe(225);
    ftp.close();
  });
});
