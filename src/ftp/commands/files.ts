import { isStorageError } from '../../storage/errors.js';
import { parentPath } from '../../storage/paths.js';
import { FtpError } from '../errors.js';
import { formatTimeVal } from '../listing.js';
import { quotePath, report, sessionCommand, type CommandSpec, type ContextOf } from './context.js';

/** Commands on single files and directories: SIZE, MDTM, CWD/CDUP/PWD, MKD, RMD, DELE, RNFR/RNTO. */
export function fileCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  /** An operation that reports to the audit/metrics listener whether it worked or not. */
  const reported = async (
    conn: Parameters<typeof report>[1],
    session: Parameters<typeof report>[2],
    op: 'DELE' | 'MKD' | 'RMD' | 'RENAME',
    path: string,
    code: number,
    run: () => Promise<void>,
    from?: string,
  ) => {
    const started = Date.now();
    const where = session.store.locate(path);
    try {
      await run();
      report(contextOf, conn, session, { op, path, from, ...where, started, code });
    } catch (error) {
      report(contextOf, conn, session, { op, path, from, ...where, started, error });
      throw error;
    }
  };

  const commands: Record<string, CommandSpec> = {
    SIZE: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        session.require('list', 'read');
        const entry = await session.store.stat(session.resolve(arg));
        if (entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a plain file');
        await conn.reply(213, String(entry.size));
      }),
      syntax: 'SIZE <path>',
      feat: ['SIZE'],
    },
    MDTM: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        session.require('list', 'read');
        const entry = await session.store.stat(session.resolve(arg));
        if (entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a plain file');
        await conn.reply(213, formatTimeVal(entry.mtime));
      }),
      syntax: 'MDTM <path>',
      feat: ['MDTM'],
    },
    CWD: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        const path = session.resolve(arg || '/');
        const entry = await session.store.stat(path);
        if (!entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a directory');
        session.cwd = path;
        await conn.reply(250, `Directory changed to ${quotePath(path)}`);
      }),
      syntax: 'CWD <path>',
    },
    CDUP: {
      handler: sessionCommand(contextOf, async (conn, session) => {
        session.cwd = parentPath(session.cwd);
        await conn.reply(250, `Directory changed to ${quotePath(session.cwd)}`);
      }),
      syntax: 'CDUP',
    },
    PWD: {
      handler: sessionCommand(contextOf, async (conn, session) => conn.reply(257, `${quotePath(session.cwd)} is the current directory`)),
      syntax: 'PWD',
    },
    MKD: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        session.require('mkdir');
        const path = session.resolve(arg);
        try {
          await reported(conn, session, 'MKD', path, 257, () => session.store.mkdir(path));
        } catch (err) {
          // NVRs and cameras MKD every path component before each upload; some stop at a 550.
          const existing = isStorageError(err, 'ALREADY_EXISTS') && contextOf(conn).mkdExistingDirectory !== 'error'
            ? await session.store.stat(path).catch(() => undefined)
            : undefined;
          if (!existing?.isDirectory) throw err;
          await conn.reply(257, `${quotePath(path)} directory already exists`);
          return;
        }
        await conn.reply(257, `${quotePath(path)} created`);
      }),
      syntax: 'MKD <path>',
    },
    RMD: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        session.require('delete');
        const path = session.resolve(arg);
        await reported(conn, session, 'RMD', path, 250, () => session.store.rmdir(path));
        await conn.reply(250, 'Directory removed');
      }),
      syntax: 'RMD <path>',
    },
    DELE: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        session.require('delete');
        const path = session.resolve(arg);
        await reported(conn, session, 'DELE', path, 250, () => session.store.remove(path));
        await conn.reply(250, 'File deleted');
      }),
      syntax: 'DELE <path>',
    },
    RNFR: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
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
      handler: sessionCommand(contextOf, async (conn, session, arg, _command, previous) => {
        const from = session.renameFrom;
        session.renameFrom = undefined;
        session.require('rename');
        if (!from || previous.directive !== 'RNFR') throw new FtpError('BAD_SEQUENCE', 'RNFR required first');
        const to = session.resolve(arg);
        await reported(conn, session, 'RENAME', to, 250, () => session.store.rename(from, to), from);
        await conn.reply(250, 'Rename successful');
      }),
      syntax: 'RNTO <path>',
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
