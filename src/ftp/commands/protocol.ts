import type { FtpConnection } from '../ftp-srv-internals.js';
import { FtpError } from '../errors.js';
import { rawArgument, sessionCommand, type CommandSpec, type ContextOf } from './context.js';
import { optsHash } from './hash.js';
import { optsMlst } from './listing.js';
import { controlProtected } from '../tls.js';

/** Session and protocol state: USER, REST, TYPE, MODE, STRU, ALLO, NOOP, SYST, OPTS, SITE, STAT, ABOR. */
export function protocolCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  return {
    USER: {
      // ftp-srv refuses a second USER ("Username already set"), which breaks a retry after a failed PASS.
      handler: async function (this: FtpConnection, { command }) {
        if (this.authenticated) return this.reply(530, 'Already logged in');
        const username = rawArgument(command).trim();
        if (!username) return this.reply(501, 'Must provide username');
        // Only ftp.requireTls refuses here, every name alike; an account's own requireTls is
        // checked at PASS, so USER answers the same for every name.
        if (!controlProtected(this.commandSocket) && contextOf(this).tlsRequired(this)) {
          return this.reply(530, 'TLS required: use AUTH TLS (explicit FTPS) or implicit FTPS before logging in');
        }
        this.username = username;
        return this.reply(331, 'Password required');
      },
      noAuth: true,
      syntax: 'USER <username>',
    },
    REST: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        if (!/^\d+$/.test(arg.trim())) throw new FtpError('BAD_ARGUMENT', 'REST requires a byte count');
        const offset = Number(arg.trim());
        if (!Number.isSafeInteger(offset)) throw new FtpError('BAD_ARGUMENT', 'Byte count too large');
        session.restOffset = offset;
        await conn.reply(350, `Restarting at ${offset}. Send STORE or RETRIEVE to initiate transfer`);
      }),
      syntax: 'REST <offset>',
    },
    TYPE: {
      handler: async function (this: FtpConnection, { command }) {
        const arg = rawArgument(command).trim().toUpperCase().replace(/\s+/g, ' ');
        // I, and L 8 / L8 (Lexmark and other devices send them).
        if (arg === 'I' || arg === 'L 8' || arg === 'L8') {
          this.transferType = 'binary';
          return this.reply(200, 'Switching to Binary mode');
        }
        if (arg === 'A' || arg === 'A N') {
          // Objects pass through unchanged in both types: an object store has no line endings to convert.
          this.transferType = 'ascii';
          return this.reply(200, 'Switching to ASCII mode');
        }
        return this.reply(504, 'Type not supported');
      },
      syntax: 'TYPE <A|I|L 8>',
    },
    MODE: {
      handler: async function (this: FtpConnection, { command }) {
        return rawArgument(command).trim().toUpperCase() === 'S'
          ? this.reply(200, 'Mode set to S')
          : this.reply(504, 'Only stream mode is supported');
      },
      syntax: 'MODE S',
    },
    STRU: {
      handler: async function (this: FtpConnection, { command }) {
        return rawArgument(command).trim().toUpperCase() === 'F'
          ? this.reply(200, 'Structure set to F')
          : this.reply(504, 'Only file structure is supported');
      },
      syntax: 'STRU F',
    },
    ALLO: {
      // 200, not 202: Dahua recorders reconnect in a loop on 202.
      handler: async function (this: FtpConnection, { command }) {
        // The announced size lets a quota refuse the upload before its first byte.
        const ctx = contextOf(this);
        const session = ctx.sessionOf(this);
        const size = Number(rawArgument(command).trim().split(/\s+/)[0]);
        if (session && Number.isSafeInteger(size) && size >= 0) ctx.transferPolicy?.allocate(session, size);
        return this.reply(200, 'ALLO command successful');
      },
      syntax: 'ALLO <size>',
    },
    NOOP: {
      handler: async function (this: FtpConnection) {
        return this.reply(200, 'NOOP ok');
      },
      noAuth: true,
      syntax: 'NOOP',
    },
    SYST: {
      handler: async function (this: FtpConnection) {
        return this.reply(215, 'UNIX Type: L8');
      },
      noAuth: true,
      syntax: 'SYST',
    },
    OPTS: {
      handler: async function (this: FtpConnection, { command }) {
        const [option = '', setting = ''] = rawArgument(command).trim().toUpperCase().split(/\s+/);
        if (option === 'UTF8' || option === 'UTF-8') {
          // Names are always UTF-8 (RFC 2640); OFF is accepted but changes nothing.
          return setting === 'ON' || setting === 'OFF' || setting === ''
            ? this.reply(200, `UTF8 mode ${setting === 'OFF' ? 'off' : 'on'}`)
            : this.reply(501, 'Unknown UTF8 setting');
        }
        if (option === 'MLST') return this.reply(200, optsMlst(this, setting));
        if (option === 'HASH') {
          const reply = optsHash(this, setting);
          return this.reply(reply.code, reply.message);
        }
        return this.reply(501, 'Option not understood');
      },
      noAuth: true,
      syntax: 'OPTS UTF8 ON',
      feat: ['UTF8', 'TVFS'],
    },
    SITE: {
      handler: async function (this: FtpConnection) {
        return this.reply(202, 'SITE command not implemented; ignored');
      },
      syntax: 'SITE <command>',
    },
    STAT: {
      // During a transfer the control channel answers 213 with the bytes moved.
      handler: async function (this: FtpConnection) {
        return this.reply(211, 'ftp-s3-bridge status: connected');
      },
      syntax: 'STAT',
    },
    ABOR: {
      // During a transfer the control channel acts on ABOR at once (426 from the transfer, then
      // 226); this is ABOR with nothing running: a data connection set up is closed.
      handler: async function (this: FtpConnection) {
        this.connector.end();
        return this.reply(225, 'No transfer to abort');
      },
      syntax: 'ABOR',
    },
  };
}
