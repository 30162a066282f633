import { connect } from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { PassiveDataConnector } from '../../../../src/ftp/commands/data-connection.js';
import { PassivePortPool } from '../../../../src/ftp/passive-ports.js';
import { fakeConnection } from '../../../support/fake-connection.js';

const opened: { end(): void }[] = [];
afterEach(() => {
  for (const connector of opened.splice(0)) connector.end();
});

/** PASV, EPSV, PORT and EPRT driven through the command table (passive listeners on loopback). */
describe('data connection commands', () => {
  // A port range of its own: other test files run beside this one.
  const pool = () => new PassivePortPool(47600, 47619, 4);

  it('PASV and EPSV open a passive listener on a pool port; the client connecting to it is the data connection', async () => {
    const c = fakeConnection({ context: { passivePorts: pool() } });
    const pasv = await c.send('PASV');
    expect(pasv.code).toBe(227);
    const [, p1, p2] = /\(127,0,0,1,(\d+),(\d+)\)$/.exec(pasv.lines[0] ?? '') ?? [];
    const port = Number(p1) * 256 + Number(p2);
    expect(port).toBeGreaterThanOrEqual(47600);
    expect(c.connection.dataConnector).toBeInstanceOf(PassiveDataConnector);
    opened.push(c.connection.dataConnector);
    const client = connect(port, '127.0.0.1');
    const data = await c.connection.dataConnector.waitForConnection({ timeout: 10_000 });
    expect(data.remotePort).toBe((await once(client, 'connect'), client.localPort));
    client.destroy();
    const epsv = await c.send('EPSV');
    expect(epsv.lines[0]).toMatch(/^Entering Extended Passive Mode \(\|\|\|476\d\d\|\)$/);
    opened.push(c.connection.dataConnector);
  });

  it('EPSV ALL refuses PASV, PORT and EPRT afterwards; EPSV with another family is 522', async () => {
    const c = fakeConnection({ context: { passivePorts: pool() } });
    expect((await c.send('EPSV 2')).code).toBe(522);
    expect(await c.send('EPSV ALL')).toEqual({ code: 200, lines: ['EPSV ALL ok'] });
    expect(await c.send('PASV')).toEqual({ code: 503, lines: ['PASV not allowed after EPSV ALL'] });
    expect((await c.send('PORT 127,0,0,1,200,10')).code).toBe(503);
    expect((await c.send('EPRT |1|127.0.0.1|51210|')).code).toBe(503);
  });

  it('PORT and EPRT: bad syntax 501, unknown protocol 522, another address or a low port 504 (RFC 2577)', async () => {
    const c = fakeConnection();
    expect(await c.send('PORT 1,2,3')).toEqual({ code: 501, lines: ['Syntax error in PORT parameters'] });
    expect((await c.send('EPRT |3|127.0.0.1|5000|')).code).toBe(522);
    expect(await c.send('PORT 10,0,0,9,200,10')).toEqual({ code: 504, lines: ['PORT refused: address is not the client address'] });
    expect(await c.send('EPRT |1|127.0.0.1|80|')).toEqual({ code: 504, lines: ['EPRT refused: port below 1024'] });
  });

  it('PASV from an IPv6 client is 522', async () => {
    const c = fakeConnection({ remoteAddress: '::1' });
    expect(await c.send('PASV')).toEqual({ code: 522, lines: ['PASV needs IPv4; use EPSV'] });
  });
});
