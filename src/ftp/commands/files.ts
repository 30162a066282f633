import { isStorageError } from '../../storage/errors.js';
import { parentPath } from '../../storage/paths.js';
import type { Connection } from '../connection.js';
import { FtpError } from '../errors.js';
import { formatTimeVal } from '../listing.js';
import type { Session } from '../../sessions/session.js';
import { quotePath, report, sessionCommand, type CommandSpec } from './context.js';

/** An operation that reports to the audit/metrics listener whether it worked or not. */
async function reported(
  conn: Connection,
  session: Session,
  op: 'DELE' | 'MKD' | 'RMD' | 'RENAME',
  path: string,
  code: number,
  run: () => Promise<void>,
  from?: string,
): Promise<void> {
  const started = Date.now();
  const where = session.store.locate(path);
  try {
    await run();
    report(conn, session, { op, path, from, ...where, started, code });
  } catch (error) {
    report(conn, session, { op, path, from, ...where, started, error });
    throw error;
  }
}

const SIZE = sessionCommand(
  { permission: ['list', 'read'], store: ['stat'], syntax: 'SIZE <path>', help: 'Size of a file in bytes', feat: ['SIZE'] },
  async (conn, session, arg) => {
    const entry = await session.store.stat(session.resolve(arg));
    if (entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a plain file');
    await conn.reply(213, String(entry.size));
  },
);

const MDTM = sessionCommand(
  { permission: ['list', 'read'], store: ['stat'], syntax: 'MDTM <path>', help: 'Last modification time of a file', feat: ['MDTM'] },
  async (conn, session, arg) => {
    const entry = await session.store.stat(session.resolve(arg));
    if (entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a plain file');
    await conn.reply(213, formatTimeVal(entry.mtime));
  },
);

const CWD = sessionCommand({ store: ['stat'], syntax: 'CWD <path>', help: 'Change the working directory' }, async (conn, session, arg) => {
  const path = session.resolve(arg || '/');
  const entry = await session.store.stat(path);
  if (!entry.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a directory');
  session.cwd = path;
  await conn.reply(250, `Directory changed to ${quotePath(path)}`);
});

const CDUP = sessionCommand({ syntax: 'CDUP', help: 'Change to the parent directory' }, async (conn, session) => {
  session.cwd = parentPath(session.cwd);
  await conn.reply(250, `Directory changed to ${quotePath(session.cwd)}`);
});

const PWD = sessionCommand({ syntax: 'PWD', help: 'Print the working directory' }, async (conn, session) =>
  conn.reply(257, `${quotePath(session.cwd)} is the current directory`),
);

const MKD = sessionCommand(
  { permission: ['mkdir'], store: ['mkdir', 'stat', 'locate'], syntax: 'MKD <path>', help: 'Make a directory' },
  async (conn, session, arg) => {
    const path = session.resolve(arg);
    try {
      await reported(conn, session, 'MKD', path, 257, () => session.store.mkdir(path));
    } catch (err) {
      // NVRs and cameras MKD every path component before each upload; some stop at a 550.
      const existing =
        isStorageError(err, 'ALREADY_EXISTS') && conn.server.mkdExistingDirectory !== 'error'
          ? await session.store.stat(path).catch(() => undefined)
          : undefined;
      if (!existing?.isDirectory) throw err;
      await conn.reply(257, `${quotePath(path)} directory already exists`);
      return;
    }
    await conn.reply(257, `${quotePath(path)} created`);
  },
);

const RMD = sessionCommand(
  { permission: ['delete'], store: ['rmdir', 'locate'], syntax: 'RMD <path>', help: 'Remove an empty directory' },
  async (conn, session, arg) => {
    const path = session.resolve(arg);
    await reported(conn, session, 'RMD', path, 250, () => session.store.rmdir(path));
    await conn.reply(250, 'Directory removed');
  },
);

const DELE = sessionCommand(
  { permission: ['delete'], store: ['remove', 'locate'], syntax: 'DELE <path>', help: 'Delete a file' },
  async (conn, session, arg) => {
    const path = session.resolve(arg);
    await reported(conn, session, 'DELE', path, 250, () => session.store.remove(path));
    await conn.reply(250, 'File deleted');
  },
);

const RNFR = sessionCommand(
  { permission: ['rename'], consumes: ['renameFrom'], store: ['stat'], syntax: 'RNFR <path>', help: 'Rename from (RNTO must follow)' },
  async (conn, session, arg) => {
    session.renameFrom = undefined;
    const path = session.resolve(arg);
    await session.store.stat(path);
    session.renameFrom = path;
    await conn.reply(350, 'Ready for RNTO');
  },
);

const RNTO = sessionCommand(
  { permission: ['rename'], consumes: ['renameFrom'], store: ['rename', 'locate'], syntax: 'RNTO <path>', help: 'Rename to (right after RNFR)' },
  async (conn, session, arg) => {
    const from = session.renameFrom;
    session.renameFrom = undefined;
    if (!from || conn.previousDirective !== 'RNFR') throw new FtpError('BAD_SEQUENCE', 'RNFR required first');
    const to = session.resolve(arg);
    await reported(conn, session, 'RENAME', to, 250, () => session.store.rename(from, to), from);
    await conn.reply(250, 'Rename successful');
  },
);

/** Commands on single files and directories: SIZE, MDTM, CWD/CDUP/PWD, MKD, RMD, DELE, RNFR/RNTO. */
export const fileCommands: Record<string, CommandSpec> = {
  SIZE,
  MDTM,
  CWD,
  CDUP,
  PWD,
  MKD,
  RMD,
  DELE,
  RNFR,
  RNTO,
  // RFC 775 X-commands, still sent by Windows ftp.exe and some devices.
  XCWD: CWD,
  XCUP: CDUP,
  XPWD: PWD,
  XMKD: MKD,
  XRMD: RMD,
};
