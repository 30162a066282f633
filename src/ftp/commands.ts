import { randomUUID, createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Entry } from '../storage/object-store.js';
import { baseName, parentPath } from '../storage/paths.js';
import { closeData, receiveUpload, sendStream, writeLines } from './data-transfer.js';
import { FtpError } from './errors.js';
import { PassiveConnector, type CommandHandler, type FtpCommand, type FtpConnection } from './ftp-srv-internals.js';
import { formatFacts, formatListLine, formatTimeVal } from './listing.js';
import { replyFor } from './replies.js';
import type { Session } from './session.js';

/** What the command handlers need from the server around them. */
export interface CommandContext {
  sessionOf(connection: FtpConnection): Session | undefined;
  dataConnectionTimeoutMs: number;
  /** Address announced in PASV replies for a connection. */
  passiveAddress(connection: FtpConnection): Promise<string>;
}

export interface CommandSpec {
  handler: CommandHandler;
  /** Allowed before login. */
  noAuth?: boolean;
  syntax: string;
}

/** The argument exactly as sent: ftp-srv's parser strips every '"' and splits flags off. */
export function rawArgument(command: FtpCommand): string {
  const m = /^\S+ (.*)$/s.exec(command.raw);
  return m ? (m[1] as string) : '';
}

const quotePath = (p: string) => `"${p.replace(/"/g, '""')}"`;

export const FEATURES = [
  'EPRT',
  'EPSV',
  'MDTM',
  'MLST type*;size*;modify*;perm*;unique*;',
  'PASV',
  'REST STREAM',
  'SIZE',
  'TVFS',
  'UTF8',
];

/** Builds our handlers for every command that touches the file tree or the session state. */
export function buildCommands(contextOf: (connection: FtpConnection) => CommandContext): Record<string, CommandSpec> {
  const sessionOf = (conn: FtpConnection): Session => {
    const s = contextOf(conn).sessionOf(conn);
    if (!s) throw new FtpError('BAD_SEQUENCE', 'Not logged in');
    return s;
  };

  /** Runs a handler body; any thrown error becomes the reply from the one error table. */
  const handle =
    (body: (conn: FtpConnection, session: Session, arg: string, command: FtpCommand, previous: Partial<FtpCommand>) => Promise<unknown>): CommandHandler =>
    async function (this: FtpConnection, { command, previous_command }) {
      let session: Session | undefined;
      try {
        session = sessionOf(this);
        await body(this, session, rawArgument(command), command, previous_command);
      } catch (err) {
        const reply = replyFor(err);
        (session?.log ?? console).warn?.(
          { err, directive: command.directive, reply: reply.code },
          'command failed',
        );
        await this.reply(reply.code, reply.message);
      }
    };

  const waitForData = async (conn: FtpConnection): Promise<Socket> => {
    try {
      const socket = await conn.connector.waitForConnection({ timeout: contextOf(conn).dataConnectionTimeoutMs });
      return socket;
    } catch (err) {
      throw new FtpError('NO_DATA_CONNECTION', "Can't open data connection", { cause: err });
    }
  };

  const audit = (session: Session, fields: Record<string, unknown>) => session.log.info({ audit: true, ...fields }, 'transfer');

  const store = (stou: boolean) =>
    handle(async (conn, session, arg) => {
      const started = Date.now();
      const offset = session.takeRestOffset();
      session.require('write');
      let path: string;
      if (stou) {
        path = session.resolve((arg ? arg.replace(/\/+$/, '') + '.' : '') + randomUUID());
      } else {
        if (!arg) throw new FtpError('BAD_ARGUMENT', 'File name required');
        path = session.resolve(arg);
      }
      if (offset > 0) {
        throw new FtpError('NOT_IMPLEMENTED_PARAMETER', 'Restarting an upload (REST before STOR) is not supported');
      }
      const where = session.store.locate(path);
      const data = await waitForData(conn);
      try {
        const sink = await session.store.write(path);
        await conn.reply(150, stou ? `FILE: ${baseName(path)}` : 'Opening data connection');
        const object = await receiveUpload(data, sink, conn.commandSocket);
        audit(session, { op: stou ? 'STOU' : 'STOR', path, ...where, bytes: object.size, etag: object.etag, durationMs: Date.now() - started, result: 'ok', code: 226 });
        await conn.reply(226, stou ? `Transfer complete (FILE: ${baseName(path)})` : 'Transfer complete');
      } catch (err) {
        data.destroy();
        audit(session, { op: stou ? 'STOU' : 'STOR', path, ...where, durationMs: Date.now() - started, result: 'error', code: replyFor(err).code, error: (err as Error).message });
        throw err;
      } finally {
        conn.connector.end();
      }
    });

  const retrieve = handle(async (conn, session, arg) => {
    const started = Date.now();
    const offset = session.takeRestOffset();
    session.require('read');
    if (!arg) throw new FtpError('BAD_ARGUMENT', 'File name required');
    const path = session.resolve(arg);
    const where = session.store.locate(path);
    const data = await waitForData(conn);
    try {
      const source = await session.store.read(path, { start: offset });
      await conn.reply(150, 'Opening data connection');
      const bytes = await sendStream(source, data, conn.commandSocket);
      audit(session, { op: 'RETR', path, ...where, bytes, offset, durationMs: Date.now() - started, result: 'ok', code: 226 });
      await conn.reply(226, 'Transfer complete');
    } catch (err) {
      data.destroy();
      audit(session, { op: 'RETR', path, ...where, offset, durationMs: Date.now() - started, result: 'error', code: replyFor(err).code, error: (err as Error).message });
      throw err;
    } finally {
      conn.connector.end();
    }
  });

  /** LIST, NLST and MLSD: entries of a directory (or the one entry of a file) over the data connection. */
  const listing = (format: 'ls' | 'names' | 'facts') =>
    handle(async (conn, session, arg) => {
      session.require('list');
      // "LIST -la dir": ls options are not a path; many clients send them.
      const path = session.resolve(format === 'facts' ? arg : arg.replace(/^(\s*-\w+)+\s*/, ''));
      const target = await session.store.stat(path);
      if (format === 'facts' && !target.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a directory');
      const data = await waitForData(conn);
      try {
        await conn.reply(150, 'Here comes the directory listing');
        const line = (e: Entry, type?: 'cdir') =>
          format === 'ls' ? formatListLine(e) : format === 'names' ? e.name : formatFacts(e, factOptions(session, joinPath(path, e.name), type));
        if (!target.isDirectory) {
          await writeLines(data, [line(target)]);
        } else {
          if (format === 'facts') await writeLines(data, [line({ ...target, name: '.' }, 'cdir')]);
          for await (const page of session.store.list(path)) await writeLines(data, page.map((e) => line(e)));
        }
        await closeData(data);
        await conn.reply(226, 'Directory send OK');
      } catch (err) {
        data.destroy();
        // A listing cut short is not a listing: never 226.
        throw err;
      } finally {
        conn.connector.end();
      }
    });

  const factOptions = (session: Session, path: string, type?: 'cdir') => ({
    type,
    uniqueId: createHash('sha1').update(session.store.locate(path).key).digest('hex').slice(0, 16),
    canWrite: session.permissions.has('write'),
    canDelete: session.permissions.has('delete'),
    canRename: session.permissions.has('rename'),
    canRead: session.permissions.has('read'),
    canList: session.permissions.has('list'),
    canMkdir: session.permissions.has('mkdir'),
  });

  const commands: Record<string, CommandSpec> = {
    STOR: { handler: store(false), syntax: 'STOR <path>' },
    STOU: { handler: store(true), syntax: 'STOU [<prefix>]' },
    RETR: { handler: retrieve, syntax: 'RETR <path>' },
    LIST: { handler: listing('ls'), syntax: 'LIST [<path>]' },
    NLST: { handler: listing('names'), syntax: 'NLST [<path>]' },
    MLSD: { handler: listing('facts'), syntax: 'MLSD [<path>]' },
    MLST: {
      handler: handle(async (conn, session, arg) => {
        session.require('list', 'read');
        const path = session.resolve(arg);
        const entry = await session.store.stat(path);
        const facts = formatFacts({ ...entry, name: path }, factOptions(session, path));
        await conn.reply(250, 'Listing ' + path, { message: ' ' + facts, raw: true }, 'End');
      }),
      syntax: 'MLST [<path>]',
    },
    SIZE: {
      handler: handle(async (conn, session, arg) => {
        session.require('list', 'read');
        const entry = await session.store.stat(session.resolve(arg));
        if (entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a plain file');
        await conn.reply(213, String(entry.size));
      }),
      syntax: 'SIZE <path>',
    },
    MDTM: {
      handler: handle(async (conn, session, arg) => {
        session.require('list', 'read');
        const entry = await session.store.stat(session.resolve(arg));
        if (entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a plain file');
        await conn.reply(213, formatTimeVal(entry.mtime));
      }),
      syntax: 'MDTM <path>',
    },
    CWD: {
      handler: handle(async (conn, session, arg) => {
        const path = session.resolve(arg || '/');
        const entry = await session.store.stat(path);
        if (!entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a directory');
        session.cwd = path;
        await conn.reply(250, `Directory changed to ${quotePath(path)}`);
      }),
      syntax: 'CWD <path>',
    },
    CDUP: {
      handler: handle(async (conn, session) => {
        session.cwd = parentPath(session.cwd);
        await conn.reply(250, `Directory changed to ${quotePath(session.cwd)}`);
      }),
      syntax: 'CDUP',
    },
    PWD: {
      handler: handle(async (conn, session) => conn.reply(257, `${quotePath(session.cwd)} is the current directory`)),
      syntax: 'PWD',
    },
    MKD: {
      handler: handle(async (conn, session, arg) => {
        session.require('mkdir');
        const path = session.resolve(arg);
        await session.store.mkdir(path);
        audit(session, { op: 'MKD', path, ...session.store.locate(path), result: 'ok', code: 257 });
        await conn.reply(257, `${quotePath(path)} created`);
      }),
      syntax: 'MKD <path>',
    },
    RMD: {
      handler: handle(async (conn, session, arg) => {
        session.require('delete');
        const path = session.resolve(arg);
        await session.store.rmdir(path);
        audit(session, { op: 'RMD', path, ...session.store.locate(path), result: 'ok', code: 250 });
        await conn.reply(250, 'Directory removed');
      }),
      syntax: 'RMD <path>',
    },
    DELE: {
      handler: handle(async (conn, session, arg) => {
        session.require('delete');
        const path = session.resolve(arg);
        await session.store.remove(path);
        audit(session, { op: 'DELE', path, ...session.store.locate(path), result: 'ok', code: 250 });
        await conn.reply(250, 'File deleted');
      }),
      syntax: 'DELE <path>',
    },
    RNFR: {
      handler: handle(async (conn, session, arg) => {
        session.renameFrom = undefined;
        session.require('rename');
        const path = session.resolve(arg);
        await session.store.stat(path);
        session.renameFrom = path;
        await conn.reply(350, 'Ready for RNTO');
      }),
      syntax: 'RNFR <path>',
    },
    RNTO: {
      handler: handle(async (conn, session, arg, _command, previous) => {
        const from = session.renameFrom;
        session.renameFrom = undefined;
        session.require('rename');
        if (!from || previous.directive !== 'RNFR') throw new FtpError('BAD_SEQUENCE', 'RNFR required first');
        const to = session.resolve(arg);
        await session.store.rename(from, to);
        audit(session, { op: 'RENAME', path: to, from, ...session.store.locate(to), result: 'ok', code: 250 });
        await conn.reply(250, 'Rename successful');
      }),
      syntax: 'RNTO <path>',
    },
    REST: {
      handler: handle(async (conn, session, arg) => {
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
        // A and A N (non-print), I, L 8 / L8 (Lexmark and other devices send them); E and other forms no.
        if (arg === 'I' || arg === 'L 8' || arg === 'L8') {
          this.transferType = 'binary';
          return this.reply(200, 'Switching to Binary mode');
        }
        if (arg === 'A' || arg === 'A N') {
          // Objects are passed through unchanged in both types: an object store has no line endings to convert.
          this.transferType = 'ascii';
          return this.reply(200, 'Switching to ASCII mode');
        }
        return this.reply(504, 'Type not supported');
      },
      noAuth: false,
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
      handler: async function (this: FtpConnection) {
        return this.reply(200, 'ALLO command successful');
      },
      syntax: 'ALLO <size>',
    },
    USER: {
      // ftp-srv refuses a second USER ("Username already set"), which breaks a retry after a failed PASS.
      handler: async function (this: FtpConnection, { command }) {
        if (this.authenticated) return this.reply(530, 'Already logged in');
        const username = rawArgument(command).trim();
        if (!username) return this.reply(501, 'Must provide username');
        this.username = username;
        return this.reply(331, 'Password required');
      },
      noAuth: true,
      syntax: 'USER <username>',
    },
    NOOP: { handler: async function (this: FtpConnection) { return this.reply(200, 'NOOP ok'); }, noAuth: true, syntax: 'NOOP' },
    SYST: { handler: async function (this: FtpConnection) { return this.reply(215, 'UNIX Type: L8'); }, noAuth: true, syntax: 'SYST' },
    FEAT: {
      handler: async function (this: FtpConnection) {
        return this.reply(211, 'Features:', ...FEATURES.map((f) => ({ message: ' ' + f, raw: true })), 'End');
      },
      noAuth: true,
      syntax: 'FEAT',
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
        if (option === 'MLST') return this.reply(200, 'MLST OPTS type;size;modify;perm;unique;');
        return this.reply(501, 'Option not understood');
      },
      noAuth: true,
      syntax: 'OPTS UTF8 ON',
    },
    SITE: {
      handler: async function (this: FtpConnection) {
        return this.reply(202, 'SITE command not implemented; ignored');
      },
      syntax: 'SITE <command>',
    },
    STAT: {
      handler: async function (this: FtpConnection) {
        return this.reply(211, 'ftp-s3-bridge status: connected');
      },
      syntax: 'STAT',
    },
    ABOR: {
      // Commands run one at a time, so an ABOR is read only after the transfer ended.
      handler: async function (this: FtpConnection) {
        this.connector.end();
        return this.reply(225, 'No transfer to abort');
      },
      syntax: 'ABOR',
    },
    PASV: {
      handler: async function (this: FtpConnection) {
        const connector = new PassiveConnector(this);
        this.connector = connector;
        try {
          const server = await (connector.setupServer as () => Promise<import('node:net').Server>)();
          const { port } = server.address() as import('node:net').AddressInfo;
          const address = await contextOf(this).passiveAddress(this);
          if (!/^\d+\.\d+\.\d+\.\d+$/.test(address)) return this.reply(425, 'PASV needs an IPv4 address; use EPSV');
          return this.reply(227, `Entering Passive Mode (${address.replace(/\./g, ',')},${port >> 8},${port & 255})`);
        } catch {
          return this.reply(425, "Can't open passive connection");
        }
      },
      syntax: 'PASV',
    },
  };
  // RFC 775 X-commands, still sent by Windows ftp.exe and some devices.
  commands.XCWD = commands.CWD as CommandSpec;
  commands.XCUP = commands.CDUP as CommandSpec;
  commands.XPWD = commands.PWD as CommandSpec;
  commands.XMKD = commands.MKD as CommandSpec;
  commands.XRMD = commands.RMD as CommandSpec;
  return commands;
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : `${dir}/${name}`;
}
