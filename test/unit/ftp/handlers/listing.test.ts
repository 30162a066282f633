import { describe, expect, it } from 'vitest';
import { fakeConnection, readAll, ReadyDataConnector, socketPair } from '../../../support/fake-connection.js';

type Fake = ReturnType<typeof fakeConnection>;

async function list(c: Fake, line: string) {
  const { server, client } = await socketPair();
  c.connection.dataConnector = new ReadyDataConnector(server);
  const received = readAll(client);
  const replies = await c.run(line);
  client.end();
  return { replies, lines: (await received).split('\r\n').filter(Boolean) };
}

/** LIST, NLST, MLSD, MLST and OPTS MLST driven through the command table over a MemoryFileStore. */
describe('listing commands', () => {
  it('LIST (ls options skipped), NLST and MLSD list the same entries', async () => {
    const c = fakeConnection();
    c.store.put('/cam/a.jpg', 'aaa');
    c.store.put('/cam/sub/b.jpg', 'b');
    const ls = await list(c, 'LIST -la /cam');
    expect(ls.replies.map((r) => r.code)).toEqual([150, 226]);
    expect(ls.lines).toHaveLength(2);
    expect(ls.lines[0]).toMatch(/^-.* 3 .* a\.jpg$/);
    expect(ls.lines[1]).toMatch(/^d.* sub$/);
    expect((await list(c, 'NLST cam')).lines).toEqual(['a.jpg', 'sub']);
    const mlsd = await list(c, 'MLSD /cam');
    expect(mlsd.lines[0]).toMatch(/^type=cdir;.* \.$/);
    expect(mlsd.lines.slice(1).map((l) => l.split(' ').at(-1))).toEqual(['a.jpg', 'sub']);
    expect(mlsd.lines[1]).toMatch(/^type=file;size=3;modify=\d{14};perm=[a-z]+;unique=[0-9a-f]{16}; a\.jpg$/);
  });

  it('MLSD of a file is 501; LIST of a missing path is 550 and opens no data connection', async () => {
    const c = fakeConnection();
    c.store.put('/f', 'x');
    expect((await c.run('MLSD /f')).at(-1)).toEqual({ code: 501, lines: ['Not a directory'] });
    expect(await c.send('LIST /missing')).toEqual({ code: 550, lines: ['No such file or directory'] });
  });

  it('MLST answers on the control connection; OPTS MLST picks the facts of this connection', async () => {
    const c = fakeConnection();
    c.store.put('/f', 'xy');
    const full = await c.send('MLST /f');
    expect(full.code).toBe(250);
    expect(full.lines[1]).toMatch(/^ type=file;size=2;modify=\d{14};perm=[a-z]+;unique=[0-9a-f]{16}; \/f$/);
    expect(await c.send('OPTS MLST size;type;bogus')).toEqual({ code: 200, lines: ['MLST OPTS type;size;'] });
    expect((await c.send('MLST /f')).lines[1]).toBe(' type=file;size=2; /f');
    expect((await fakeConnection({ store: c.store }).send('MLST /f')).lines[1]).toMatch(/modify=/);
  });

  it('needs the list permission', async () => {
    const c = fakeConnection({ login: ['read'] });
    expect(await c.send('NLST /')).toEqual({ code: 550, lines: ['Permission denied'] });
  });
});
