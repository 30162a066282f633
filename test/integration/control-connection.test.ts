import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, TestBridge, USER } from '../support/bridge.js';
import { RawFtp } from '../support/clients.js';

/** ftp-srv 4.6.3 control connection bugs, fixed by src/ftp/control-channel.ts; each test fails on stock ftp-srv. */
let bridge: TestBridge;
beforeAll(async () => {
  bridge = await TestBridge.start({ ftp: { loginFailureDelayMs: 300 } });
});
afterAll(async () => {
  await bridge?.close();
});

describe('the control connection is line-buffered and runs commands in order', () => {
  it('a command split across TCP segments is one command (stock ftp-srv: two 502s)', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    ftp.socket.write('US');
    await sleep(100);
    ftp.socket.write(`ER ${USER}\r`);
    await sleep(100);
    ftp.socket.write('\n');
    expect(await ftp.reply()).toMatchObject({ code: 331 });
    ftp.close();
  });

  it('a UTF-8 character split across segments survives', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    const name = Buffer.from('MKD dü\r\n', 'utf8');
    const cut = name.indexOf(0xc3) + 1; // inside the two bytes of "ü"
    ftp.socket.write(name.subarray(0, cut));
    await sleep(100);
    ftp.socket.write(name.subarray(cut));
    expect((await ftp.reply()).text).toBe('257 "/dü" created');
    ftp.close();
  });

  it('pipelined commands in separate segments answer in order (stock: NOOP overtakes a slow PASS)', async () => {
    const ftp = await RawFtp.connect(bridge.port);
    ftp.send(`USER ${USER}`);
    expect((await ftp.reply()).code).toBe(331);
    ftp.send('PASS wrong');
    await sleep(20);
    ftp.send('NOOP');
    expect((await ftp.reply()).code).toBe(530);
    expect((await ftp.reply()).code).toBe(200);
    ftp.close();
  });

  it('a failed transfer leaves no stale REST offset for the next one', async () => {
    await bridge.put('rest-stale.txt', '0123456789');
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    expect((await ftp.command('REST 5')).code).toBe(350);
    expect((await ftp.command('RETR missing.txt')).code).toBe(425); // no data connection set up
    const data = await ftp.pasv();
    ftp.send('RETR rest-stale.txt');
    expect((await ftp.reply()).code).toBe(150);
    const chunks: Buffer[] = [];
    data.on('data', (c: Buffer) => chunks.push(c));
    expect((await ftp.reply()).code).toBe(226);
    expect(Buffer.concat(chunks).toString()).toBe('0123456789');
    ftp.close();
  });

  it('LIST -la is an option, not a path; quotes in names are kept', async () => {
    await bridge.put('quotes/say "hi".txt', 'q');
    const ftp = await RawFtp.connect(bridge.port);
    await ftp.login(USER, PASSWORD);
    expect((await ftp.command('CWD quotes')).code).toBe(250);
    const data = await ftp.pasv();
    ftp.send('LIST -la');
    expect((await ftp.reply()).code).toBe(150);
    const chunks: Buffer[] = [];
    data.on('data', (c: Buffer) => chunks.push(c));
    expect((await ftp.reply()).code).toBe(226);
    expect(Buffer.concat(chunks).toString()).toMatch(/ say "hi"\.txt\r\n$/);
    expect((await ftp.command('SIZE say "hi".txt')).text).toBe('213 1');
    ftp.close();
  });
});
