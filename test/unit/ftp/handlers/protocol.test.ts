import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../../../src/ftp/commands/index.js';
import { NO_DATA_CONNECTION } from '../../../../src/ftp/connection.js';
import { Session } from '../../../../src/sessions/session.js';
import { fakeConnection, ReadyDataConnector } from '../../../support/fake-connection.js';

/** USER/PASS, QUIT, REST, TYPE, MODE, STRU, NOOP, SYST, OPTS, SITE, STAT, ABOR, FEAT and HELP through the command table. */
describe('protocol commands', () => {
  it('USER then PASS logs in through the server; refusals answer 530 with the server text', async () => {
    const tries: string[] = [];
    const c = fakeConnection({
      login: false,
      context: {
        login: async (connection, username, password) => {
          tries.push(`${username}:${password}`);
          if (password !== 'right pass') throw new Error('Login incorrect');
          connection.session = new Session({ username } as never, connection.server as never, connection.log);
        },
      },
    });
    expect(await c.send('PASS x')).toEqual({ code: 503, lines: ['Bad sequence of commands'] });
    expect(await c.send('USER')).toEqual({ code: 501, lines: ['Must provide username'] });
    expect(await c.send('USER cam01')).toEqual({ code: 331, lines: ['Password required'] });
    expect(await c.send('PASS')).toEqual({ code: 501, lines: ['Must provide password'] });
    expect(await c.send('PASS wrong')).toEqual({ code: 530, lines: ['Login incorrect'] });
    expect(c.connection.authenticated).toBe(false);
    // A second USER after a failed PASS is taken; the password is passed verbatim.
    await c.send('USER cam01');
    expect(await c.send('PASS right pass')).toEqual({ code: 230, lines: ['User logged in, proceed'] });
    expect(c.connection.authenticated).toBe(true);
    expect(tries).toEqual(['cam01:wrong', 'cam01:right pass']);
    expect(await c.send('USER other')).toEqual({ code: 530, lines: ['Already logged in'] });
    expect(await c.send('PASS again')).toEqual({ code: 202, lines: ['Superfluous command'] });
  });

  it('USER is refused in the clear when TLS is required', async () => {
    const c = fakeConnection({ login: false, context: { tlsRequired: () => true } });
    expect((await c.send('USER cam01')).code).toBe(530);
    expect(c.connection.username).toBeUndefined();
  });

  it('TYPE, MODE, STRU, REST, NOOP, SYST, SITE and STAT answer as clients expect', async () => {
    const c = fakeConnection();
    expect(await c.send('TYPE A')).toEqual({ code: 200, lines: ['Switching to ASCII mode'] });
    expect(c.connection.transferType).toBe('ascii');
    expect(await c.send('TYPE L 8')).toEqual({ code: 200, lines: ['Switching to Binary mode'] });
    expect((await c.send('TYPE E')).code).toBe(504);
    expect((await c.send('MODE S')).code).toBe(200);
    expect((await c.send('MODE B')).code).toBe(504);
    expect((await c.send('STRU F')).code).toBe(200);
    expect((await c.send('STRU R')).code).toBe(504);
    expect(await c.send('REST 100')).toEqual({ code: 350, lines: ['Restarting at 100. Send STORE or RETRIEVE to initiate transfer'] });
    expect(c.connection.session?.restOffset).toBe(100);
    expect((await c.send('REST -1')).code).toBe(501);
    expect((await c.send('REST 99999999999999999999')).code).toBe(501);
    expect(await c.send('NOOP')).toEqual({ code: 200, lines: ['NOOP ok'] });
    expect(await c.send('SYST')).toEqual({ code: 215, lines: ['UNIX Type: L8'] });
    expect((await c.send('SITE CHMOD 755 f')).code).toBe(202);
    expect((await c.send('STAT')).code).toBe(211);
    expect(await c.send('OPTS UTF8 ON')).toEqual({ code: 200, lines: ['UTF8 mode on'] });
    expect((await c.send('OPTS FOO')).code).toBe(501);
  });

  it('an unknown verb is 502; a command needing login is 530 before it', async () => {
    const c = fakeConnection({ login: false });
    expect(await c.send('XYZZY')).toEqual({ code: 502, lines: ['Command not allowed: XYZZY'] });
    expect(await c.send('TYPE I')).toEqual({ code: 530, lines: ['Command requires authentication: TYPE'] });
    expect((await c.send('NOOP')).code).toBe(200);
  });

  it('ABOR with no transfer closes the data connection set up; QUIT closes with 221', async () => {
    const c = fakeConnection();
    const setUp = new ReadyDataConnector({} as Socket);
    c.connection.dataConnector = setUp;
    expect(await c.send('ABOR')).toEqual({ code: 225, lines: ['No transfer to abort'] });
    expect(setUp.ended).toBe(true);
    expect(c.connection.dataConnector).toBe(NO_DATA_CONNECTION);
    await c.send('QUIT');
    expect(c.closed()).toEqual({ code: 221, message: 'Client called QUIT' });
  });

  it('FEAT and HELP are generated from the command table', async () => {
    const c = fakeConnection({ login: false });
    const feat = await c.send('FEAT');
    expect(feat.code).toBe(211);
    expect(feat.lines).toEqual(expect.arrayContaining([' UTF8', ' SIZE', ' REST STREAM', ' HASH SHA-256*;SHA-1;SHA-512;MD5']));
    expect(feat.lines).not.toContain(' AUTH TLS');
    const help = await c.send('HELP');
    expect(help.code).toBe(211);
    const listed = help.lines.slice(1, -1).join(' ').split(' ');
    expect(listed.sort()).toEqual(Object.keys(COMMANDS).sort());
    expect(await c.send('HELP stor')).toEqual({ code: 214, lines: [COMMANDS.STOR?.syntax, COMMANDS.STOR?.help] });
    expect(await c.send('HELP BOGUS')).toEqual({ code: 502, lines: ['Unknown command BOGUS.'] });
  });
});
