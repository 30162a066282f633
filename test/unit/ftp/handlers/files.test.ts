import { describe, expect, it } from 'vitest';
import { fakeConnection } from '../../../support/fake-connection.js';

/** SIZE, MDTM, CWD/CDUP/PWD, MKD, RMD, DELE, RNFR/RNTO driven through the command table over a MemoryFileStore. */
describe('file commands', () => {
  it('SIZE and MDTM answer for files, 501 for a directory, 550 for nothing', async () => {
    const c = fakeConnection();
    c.store.put('/a/b.txt', 'hello');
    expect(await c.send('SIZE /a/b.txt')).toEqual({ code: 213, lines: ['5'] });
    expect((await c.send('MDTM a/b.txt')).lines[0]).toMatch(/^2026\d{10}$/);
    expect((await c.send('SIZE /a')).code).toBe(501);
    expect(await c.send('SIZE /nope')).toEqual({ code: 550, lines: ['No such file or directory'] });
  });

  it('CWD, XCWD, CDUP and PWD move the working directory and relative paths follow it', async () => {
    const c = fakeConnection();
    c.store.put('/cam/2026/x.jpg', 'x');
    expect(await c.send('CWD cam')).toEqual({ code: 250, lines: ['Directory changed to "/cam"'] });
    expect((await c.send('XCWD 2026')).code).toBe(250);
    expect(await c.send('PWD')).toEqual({ code: 257, lines: ['"/cam/2026" is the current directory'] });
    expect(await c.send('SIZE x.jpg')).toEqual({ code: 213, lines: ['1'] });
    expect((await c.send('CDUP')).lines[0]).toBe('Directory changed to "/cam"');
    expect((await c.send('CWD 2026/x.jpg')).code).toBe(501);
    expect((await c.send('CWD ../../..')).lines[0]).toBe('Directory changed to "/"');
  });

  it('MKD creates a directory; an existing one is 257 by default and 550 with mkdExistingDirectory: error', async () => {
    const c = fakeConnection();
    expect(await c.send('MKD cams')).toEqual({ code: 257, lines: ['"/cams" created'] });
    expect(c.store.directories.has('/cams')).toBe(true);
    expect(await c.send('XMKD /cams')).toEqual({ code: 257, lines: ['"/cams" directory already exists'] });
    const strict = fakeConnection({ context: { mkdExistingDirectory: 'error' }, store: c.store });
    expect((await strict.send('MKD /cams')).code).toBe(550);
    expect(c.events.map((e) => [e.op, e.path, e.result, e.code])).toEqual([
      ['MKD', '/cams', 'ok', 257],
      ['MKD', '/cams', 'error', 550],
    ]);
  });

  it('RMD removes only an empty directory; DELE removes a file and reports it', async () => {
    const c = fakeConnection();
    c.store.put('/d/f', '1');
    expect(await c.send('RMD /d')).toEqual({ code: 550, lines: ['Directory not empty'] });
    expect(await c.send('DELE /d/f')).toEqual({ code: 250, lines: ['File deleted'] });
    expect(c.store.files.has('/d/f')).toBe(false);
    expect(await c.send('XRMD /d')).toEqual({ code: 250, lines: ['Directory removed'] });
    expect(await c.send('DELE /d/f')).toEqual({ code: 550, lines: ['No such file or directory'] });
    expect(c.events.map((e) => [e.op, e.key, e.result, e.error])).toEqual([
      ['RMD', 'd', 'error', 'NOT_EMPTY'],
      ['DELE', 'd/f', 'ok', undefined],
      ['RMD', 'd', 'ok', undefined],
      ['DELE', 'd/f', 'error', 'NOT_FOUND'],
    ]);
  });

  it('RNTO renames only right after an RNFR of an existing file', async () => {
    const c = fakeConnection();
    c.store.put('/old.txt', 'x');
    expect(await c.send('RNFR /missing')).toEqual({ code: 550, lines: ['No such file or directory'] });
    expect(await c.send('RNTO /new.txt')).toEqual({ code: 503, lines: ['RNFR required first'] });
    expect(await c.send('RNFR old.txt')).toEqual({ code: 350, lines: ['Ready for RNTO'] });
    await c.send('NOOP');
    expect((await c.send('RNTO /new.txt')).code).toBe(503);
    await c.send('RNFR old.txt');
    expect(await c.send('RNTO new.txt')).toEqual({ code: 250, lines: ['Rename successful'] });
    expect([...c.store.files.keys()]).toEqual(['/new.txt']);
    expect(c.events.at(-1)).toMatchObject({ op: 'RENAME', from: '/old.txt', path: '/new.txt', result: 'ok' });
  });

  it('a missing permission is 550 before the store is touched; before login every command is 530', async () => {
    const c = fakeConnection({ login: ['list', 'read'] });
    c.store.put('/f', '1');
    c.store.calls.length = 0;
    for (const line of ['DELE /f', 'MKD /d', 'RMD /', 'RNFR /f', 'RNTO /g']) {
      expect(await c.send(line), line).toEqual({ code: 550, lines: ['Permission denied'] });
    }
    expect(c.store.calls).toEqual([]);
    expect(c.store.files.has('/f')).toBe(true);
    const anonymous = fakeConnection({ login: false });
    expect(await anonymous.send('SIZE /f')).toEqual({ code: 530, lines: ['Command requires authentication: SIZE'] });
    expect(anonymous.store.calls).toEqual([]);
  });
});
