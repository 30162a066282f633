import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fakeConnection } from '../../../support/fake-connection.js';

const hex = (algorithm: string, text: string) => createHash(algorithm).update(text).digest('hex');

/** HASH, OPTS HASH and the X-digest commands driven through the command table over a MemoryFileStore. */
describe('hash commands', () => {
  it('HASH answers in the algorithm OPTS HASH picked on that connection (SHA-256 until then)', async () => {
    const c = fakeConnection();
    c.store.put('/cam/a.jpg', 'image');
    expect(await c.send('HASH /cam/a.jpg')).toEqual({ code: 213, lines: [`SHA-256 0-5 ${hex('sha256', 'image')} /cam/a.jpg`] });
    expect(await c.send('OPTS HASH md5')).toEqual({ code: 200, lines: ['MD5'] });
    expect(await c.send('HASH cam/a.jpg')).toEqual({ code: 213, lines: [`MD5 0-5 ${hex('md5', 'image')} /cam/a.jpg`] });
    expect((await c.send('OPTS HASH CRC32')).code).toBe(501);
    expect(await c.send('OPTS HASH')).toEqual({ code: 200, lines: ['MD5'] });
    const other = fakeConnection({ store: c.store });
    expect((await other.send('HASH /cam/a.jpg')).lines[0]).toMatch(/^SHA-256 /);
  });

  it('XSHA1, XSHA256, XSHA512 and XMD5 answer 250 with the hex digest', async () => {
    const c = fakeConnection();
    c.store.put('/f', 'abc');
    expect(await c.send('XSHA1 /f')).toEqual({ code: 250, lines: [hex('sha1', 'abc')] });
    expect(await c.send('XSHA256 /f')).toEqual({ code: 250, lines: [hex('sha256', 'abc')] });
    expect(await c.send('XSHA512 /f')).toEqual({ code: 250, lines: [hex('sha512', 'abc')] });
    expect(await c.send('XMD5 /f')).toEqual({ code: 250, lines: [hex('md5', 'abc')] });
  });

  it('needs a file name, an existing file and the read permission', async () => {
    const c = fakeConnection();
    expect(await c.send('HASH')).toEqual({ code: 501, lines: ['File name required'] });
    expect((await c.send('HASH /missing')).code).toBe(550);
    const writer = fakeConnection({ login: ['write'], store: c.store });
    c.store.put('/f', 'x');
    expect(await writer.send('HASH /f')).toEqual({ code: 550, lines: ['Permission denied'] });
  });
});
