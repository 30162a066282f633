import { describe, expect, it } from 'vitest';
import { NO_DATA_CONNECTION } from '../../../../src/ftp/connection.js';
import type { UploadAdmission } from '../../../../src/sessions/transfer-policy.js';
import { fakeConnection, readAll, ReadyDataConnector, socketPair } from '../../../support/fake-connection.js';

type Fake = ReturnType<typeof fakeConnection>;

/** Runs a transfer command with a data connection ready: `upload` is what the client sends; resolves with what it received. */
async function transfer(c: Fake, line: string, upload?: string) {
  const { server, client } = await socketPair();
  c.connection.dataConnector = new ReadyDataConnector(server);
  const received = readAll(client);
  if (upload !== undefined) client.end(upload);
  const replies = await c.run(line);
  if (upload === undefined) client.end();
  return { replies, received: await received };
}

/** STOR, STOU, APPE, RETR with REST and ALLO, driven through the command table over a MemoryFileStore and a loopback data connection. */
describe('transfer commands', () => {
  it('STOR commits what the data connection carried, replies 150 then 226, and reports the upload', async () => {
    const c = fakeConnection();
    const { replies } = await transfer(c, 'STOR /cam/../up.bin', 'hello world');
    expect(replies.map((r) => r.code)).toEqual([150, 226]);
    expect(c.store.text('/up.bin')).toBe('hello world');
    expect(c.events).toEqual([expect.objectContaining({ op: 'STOR', path: '/up.bin', key: 'up.bin', bytes: 11, result: 'ok', code: 226 })]);
    // One data connection per transfer: none is set up after it.
    expect(c.connection.dataConnector).toBe(NO_DATA_CONNECTION);
  });

  it('REST n + STOR resumes at the current size only; APPE appends; STOU picks a unique name', async () => {
    const c = fakeConnection();
    c.store.put('/f', 'abc');
    await c.send('REST 2');
    expect((await c.run('STOR /f')).at(-1)).toMatchObject({ code: 554 });
    expect(c.store.text('/f')).toBe('abc');
    await c.send('REST 3');
    await transfer(c, 'STOR /f', 'def');
    expect(c.store.text('/f')).toBe('abcdef');
    await transfer(c, 'APPE /f', 'ghi');
    expect(c.store.text('/f')).toBe('abcdefghi');
    const { replies } = await transfer(c, 'STOU cam', 'u');
    const name = /^FILE: (cam\.[0-9a-f-]{36})$/.exec(replies[0]?.lines[0] ?? '')?.[1];
    expect(name).toBeDefined();
    expect(c.store.text(`/${name}`)).toBe('u');
    await c.send('REST 1');
    expect(await c.send('STOU')).toEqual({ code: 504, lines: ['STOU cannot restart an upload'] });
  });

  it('RETR sends the file from the REST offset; the offset is taken by one transfer only', async () => {
    const c = fakeConnection();
    c.store.put('/f', '0123456789');
    await c.send('REST 4');
    const first = await transfer(c, 'RETR /f');
    expect(first.replies.map((r) => r.code)).toEqual([150, 226]);
    expect(first.received).toBe('456789');
    expect((await transfer(c, 'RETR /f')).received).toBe('0123456789');
    expect((await transfer(c, 'RETR /missing')).replies).toEqual([{ code: 550, lines: ['No such file or directory'] }]);
    expect(await c.send('RETR')).toEqual({ code: 501, lines: ['File name required'] });
  });

  it('a STOR refused for want of the write permission still takes the REST offset', async () => {
    const c = fakeConnection({ login: ['read', 'list'] });
    c.store.put('/f', '0123');
    await c.send('REST 2');
    expect(await c.send('STOR /f')).toEqual({ code: 550, lines: ['Permission denied'] });
    expect((await transfer(c, 'RETR /f')).received).toBe('0123');
  });

  it('ALLO announces the size the next upload is admitted with, once', async () => {
    const sizes: (number | undefined)[] = [];
    const admission: UploadAdmission = { wrap: (data) => data, release: () => undefined };
    const policy = {
      admitUpload: async (_s: unknown, _p: string, options: { size?: number }) => (sizes.push(options.size), admission),
      download: (_s: unknown, source: unknown) => source,
    };
    const c = fakeConnection({ context: { transferPolicy: policy as never } });
    expect(await c.send('ALLO 1234')).toEqual({ code: 200, lines: ['ALLO command successful'] });
    await transfer(c, 'STOR /a', 'x');
    await transfer(c, 'STOR /b', 'y');
    expect(sizes).toEqual([1234, undefined]);
  });

  it('without a data connection set up: 425, nothing written, the failure reported', async () => {
    const c = fakeConnection();
    expect(await c.send('STOR /x')).toEqual({ code: 425, lines: ["Can't open data connection"] });
    expect(c.store.files.size).toBe(0);
    expect(c.events).toEqual([]);
  });
});
