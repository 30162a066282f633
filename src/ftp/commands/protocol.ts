import { FtpError } from '../errors.js';
import { controlProtected } from '../tls.js';
import { sessionCommand, type CommandSpec } from './context.js';
import { optsHash } from './hash.js';
import { optsMlst } from './listing.js';

/** Session and protocol state: USER, PASS, QUIT, REST, TYPE, MODE, STRU, ALLO, NOOP, SYST, OPTS, SITE, STAT, ABOR. */
export const protocolCommands: Record<string, CommandSpec> = {
  USER: {
    // A second USER is taken (a retry after a failed PASS).
    handler: async (conn, arg) => {
      if (conn.authenticated) return conn.reply(530, 'Already logged in');
      const username = arg.trim();
      if (!username) return conn.reply(501, 'Must provide username');
      // Only ftp.requireTls refuses here, every name alike; an account's own requireTls is
      // checked at PASS, so USER answers the same for every name.
      if (!controlProtected(conn.commandSocket) && conn.server.tlsRequired(conn)) {
        return conn.reply(530, 'TLS required: use AUTH TLS (explicit FTPS) or implicit FTPS before logging in');
      }
      conn.username = username;
      return conn.reply(331, 'Password required');
    },
    loginRequired: false,
    syntax: 'USER <username>',
    help: 'Authentication username',
  },
  PASS: {
    handler: async (conn, arg) => {
      if (!conn.username) return conn.reply(503, 'Bad sequence of commands');
      if (conn.authenticated) return conn.reply(202, 'Superfluous command');
      if (!arg) return conn.reply(501, 'Must provide password');
      try {
        await conn.server.login(conn, conn.username, arg);
      } catch (err) {
        return conn.reply(530, (err as Error).message || 'Authentication failed');
      }
      return conn.reply(230, 'User logged in, proceed');
    },
    loginRequired: false,
    syntax: 'PASS <password>',
    help: 'Authentication password',
  },
  QUIT: {
    handler: async (conn) => conn.close(221, 'Client called QUIT'),
    loginRequired: false,
    duringTransfer: true,
    syntax: 'QUIT',
    help: 'Disconnect (aborts a transfer in flight)',
  },
  REST: sessionCommand({ syntax: 'REST <offset>', help: 'Restart the next transfer at a byte offset' }, async (conn, session, arg) => {
    if (!/^\d+$/.test(arg.trim())) throw new FtpError('BAD_ARGUMENT', 'REST requires a byte count');
    const offset = Number(arg.trim());
    if (!Number.isSafeInteger(offset)) throw new FtpError('BAD_ARGUMENT', 'Byte count too large');
    session.restOffset = offset;
    await conn.reply(350, `Restarting at ${offset}. Send STORE or RETRIEVE to initiate transfer`);
  }),
  TYPE: {
    handler: async (conn, raw) => {
      const arg = raw.trim().toUpperCase().replace(/\s+/g, ' ');
      // I, and L 8 / L8 (Lexmark and other devices send them).
      if (arg === 'I' || arg === 'L 8' || arg === 'L8') {
        conn.transferType = 'binary';
        return conn.reply(200, 'Switching to Binary mode');
      }
      if (arg === 'A' || arg === 'A N') {
        // Objects pass through unchanged in both types: an object store has no line endings to convert.
        conn.transferType = 'ascii';
        return conn.reply(200, 'Switching to ASCII mode');
      }
      return conn.reply(504, 'Type not supported');
    },
    loginRequired: true,
    syntax: 'TYPE <A|I|L 8>',
    help: 'Set the transfer type (data passes unchanged in every type)',
  },
  MODE: {
    handler: async (conn, arg) =>
      arg.trim().toUpperCase() === 'S' ? conn.reply(200, 'Mode set to S') : conn.reply(504, 'Only stream mode is supported'),
    loginRequired: true,
    syntax: 'MODE S',
    help: 'Set the transfer mode (stream only)',
  },
  STRU: {
    handler: async (conn, arg) =>
      arg.trim().toUpperCase() === 'F' ? conn.reply(200, 'Structure set to F') : conn.reply(504, 'Only file structure is supported'),
    loginRequired: true,
    syntax: 'STRU F',
    help: 'Set the file structure (file only)',
  },
  ALLO: {
    // 200, not 202: Dahua recorders reconnect in a loop on 202.
    handler: async (conn, arg) => {
      // The announced size lets a quota refuse the upload before its first byte.
      const size = Number(arg.trim().split(/\s+/)[0]);
      if (conn.session && Number.isSafeInteger(size) && size >= 0) conn.allocatedBytes = size;
      return conn.reply(200, 'ALLO command successful');
    },
    loginRequired: true,
    syntax: 'ALLO <size>',
    help: 'Announce the size of the next upload',
  },
  NOOP: {
    handler: async (conn) => conn.reply(200, 'NOOP ok'),
    loginRequired: false,
    syntax: 'NOOP',
    help: 'No operation',
  },
  SYST: {
    handler: async (conn) => conn.reply(215, 'UNIX Type: L8'),
    loginRequired: false,
    syntax: 'SYST',
    help: 'System type',
  },
  OPTS: {
    handler: async (conn, arg) => {
      const [option = '', setting = ''] = arg.trim().toUpperCase().split(/\s+/);
      if (option === 'UTF8' || option === 'UTF-8') {
        // Names are always UTF-8 (RFC 2640); OFF is accepted but changes nothing.
        return setting === 'ON' || setting === 'OFF' || setting === ''
          ? conn.reply(200, `UTF8 mode ${setting === 'OFF' ? 'off' : 'on'}`)
          : conn.reply(501, 'Unknown UTF8 setting');
      }
      if (option === 'MLST') return conn.reply(200, optsMlst(conn, setting));
      if (option === 'HASH') {
        const reply = optsHash(conn, setting);
        return conn.reply(reply.code, reply.message);
      }
      return conn.reply(501, 'Option not understood');
    },
    loginRequired: false,
    syntax: 'OPTS <UTF8 ON|MLST <facts>|HASH <algorithm>>',
    help: 'Set an option',
    feat: ['UTF8', 'TVFS'],
  },
  SITE: {
    handler: async (conn) => conn.reply(202, 'SITE command not implemented; ignored'),
    loginRequired: true,
    syntax: 'SITE <command>',
    help: 'Site-specific commands (none; accepted and ignored)',
  },
  STAT: {
    // During a transfer the control channel answers 213 with the bytes moved.
    handler: async (conn) => conn.reply(211, 'ftp-s3-bridge status: connected'),
    loginRequired: true,
    duringTransfer: true,
    syntax: 'STAT',
    help: 'Server status; during a transfer, the bytes moved',
  },
  ABOR: {
    // During a transfer the control channel acts on ABOR at once (426 from the transfer, then
    // 226); this is ABOR with nothing running: a data connection set up is closed.
    handler: async (conn) => {
      conn.endDataConnection();
      return conn.reply(225, 'No transfer to abort');
    },
    loginRequired: true,
    duringTransfer: true,
    syntax: 'ABOR',
    help: 'Abort the transfer in flight',
  },
};
