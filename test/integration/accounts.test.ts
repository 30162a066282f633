import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBridge } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';

const log = new PassThrough();
let logText = '';
log.on('data', (c: Buffer) => (logText += c.toString()));

let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({
    proxy: true,
    logStream: log,
    logLevel: 'trace',
    ftp: { loginFailureDelayMs: 1000 },
    accounts: [
      { username: 'full', password: 'full-pw' },
      { username: 'reader', password: 'reader-pw', permissions: ['list', 'read'] },
      { username: 'dropbox', password: 'drop-pw', prefix: 'inbox/', permissions: ['write'] },
    ],
  });
  await bridge.put('shared.txt', 'shared');
  await bridge.put('inbox/existing.txt', 'x');
});
afterAll(async () => {
  await bridge?.close();
});

async function login(user: string, password: string): Promise<RawFtp> {
  const ftp = await RawFtp.connect(bridge.port);
  await ftp.login(user, password);
  return ftp;
}

describe('authentication', () => {
  it('answers a wrong password and an unknown user with the same 530 after the same delay', async () => {
    const attempt = async (user: string) => {
      const ftp = await RawFtp.connect(bridge.port);
      expect((await ftp.command(`USER ${user}`)).code).toBe(331);
      const started = Date.now();
      const reply = await ftp.command('PASS wrong-password');
      const ms = Date.now() - started;
      ftp.close();
      return { reply, ms };
    };
    const wrongPassword = await attempt('full');
    const unknownUser = await attempt('nobody');
    expect(wrongPassword.reply).toEqual(unknownUser.reply);
    expect(wrongPassword.reply.code).toBe(530);
    expect(wrongPassword.ms).toBeGreaterThanOrEqual(990);
    expect(unknownUser.ms).toBeGreaterThanOrEqual(990);
    // Both wait out the 1000 ms floor; an unknown user answered without it would differ by ~1 s.
    // 400 ms leaves room for a loaded machine's scheduling.
    expect(Math.abs(wrongPassword.ms - unknownUser.ms)).toBeLessThan(400);
  });

  it('lets a client retry USER/PASS on the same connection after a failure', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.command('USER full');
    expect((await ftp.command('PASS nope')).code).toBe(530);
    expect((await ftp.command('USER full')).code).toBe(331);
    expect((await ftp.command('PASS full-pw')).code).toBe(230);
    ftp.close();
  });

  it('refuses file commands before login', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    expect((await ftp.command('LIST')).code).toBe(530);
    expect((await ftp.command('CWD /')).code).toBe(530);
    ftp.close();
  });

  it('never logs a password, even at trace level', async () => {
    const ftp = await login('full', 'full-pw');
    const before = logText.length;
    // The trace line of this later command comes after everything logged about the login.
    expect((await ftp.command('NOOP')).code).toBe(200);
    await expect.poll(() => logText.slice(before).includes('"directive":"NOOP"'), { timeout: 30_000 }).toBe(true);
    ftp.close();
    expect(logText).toContain('"user":"full"');
    expect(logText).not.toContain('full-pw');
    expect(logText).not.toContain('wrong-password');
  });
});

describe('permissions are enforced before S3 is touched', () => {
  /** Runs `fn` and returns how many S3 requests it caused. */
  const s3RequestsDuring = async (fn: () => Promise<void>) => {
    const before = bridge.proxy!.requests.length;
    await fn();
    return bridge.proxy!.requests.length - before;
  };

  it('a read-only account can list and read, and gets 550 for writes, deletes, renames and MKD', async () => {
    const ftp = await login('reader', 'reader-pw');
    const data = await ftp.pasv();
    ftp.send('RETR shared.txt');
    expect((await ftp.reply()).code).toBe(150);
    const chunks: Buffer[] = [];
    data.on('data', (c: Buffer) => chunks.push(c));
    expect((await ftp.reply()).code).toBe(226);
    expect(Buffer.concat(chunks).toString()).toBe('shared');

    const denied = await s3RequestsDuring(async () => {
      expect((await ftp.command('STOR new.txt')).code).toBe(550);
      expect((await ftp.command('DELE shared.txt')).code).toBe(550);
      expect((await ftp.command('RNFR shared.txt')).code).toBe(550);
      expect((await ftp.command('MKD newdir')).code).toBe(550);
      expect((await ftp.command('RMD inbox')).code).toBe(550);
    });
    expect(denied).toBe(0);
    expect(await bridge.exists('shared.txt')).toBe(true);
    expect(await bridge.exists('new.txt')).toBe(false);
    ftp.close();
  });

  it('a drop-box account can upload but not list, read or delete', async () => {
    const ftp = await login('dropbox', 'drop-pw');
    const data = await ftp.pasv();
    ftp.send('STOR scan.pdf');
    expect((await ftp.reply()).code).toBe(150);
    data.end('%PDF-1.4');
    expect((await ftp.reply()).code).toBe(226);
    expect((await bridge.getObject('inbox/scan.pdf'))?.toString()).toBe('%PDF-1.4');

    const denied = await s3RequestsDuring(async () => {
      expect((await ftp.command('LIST')).code).toBe(550);
      expect((await ftp.command('NLST')).code).toBe(550);
      expect((await ftp.command('RETR scan.pdf')).code).toBe(550);
      expect((await ftp.command('SIZE scan.pdf')).code).toBe(550);
      expect((await ftp.command('DELE existing.txt')).code).toBe(550);
    });
    expect(denied).toBe(0);
    expect(await bridge.exists('inbox/existing.txt')).toBe(true);
    ftp.close();
  });
});
