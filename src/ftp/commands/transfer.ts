import { randomUUID } from 'node:crypto';
import { baseName } from '../../storage/paths.js';
import { receiveUpload, sendStream } from '../data-transfer.js';
import { FtpError } from '../errors.js';
import { report, sessionCommand, waitForData, type CommandSpec, type ContextOf } from './context.js';

/** STOR, STOU and RETR: the data transfers. */
export function transferCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  const store = (stou: boolean) =>
    sessionCommand(contextOf, async (conn, session, arg) => {
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
      const op = stou ? 'STOU' : 'STOR';
      const data = await waitForData(contextOf, conn);
      try {
        const sink = await session.store.write(path);
        await conn.reply(150, stou ? `FILE: ${baseName(path)}` : 'Opening data connection');
        const object = await receiveUpload(data, sink, conn.commandSocket);
        report(contextOf, conn, session, { op, path, ...where, bytes: object.size, etag: object.etag, started, code: 226 });
        await conn.reply(226, stou ? `Transfer complete (FILE: ${baseName(path)})` : 'Transfer complete');
      } catch (error) {
        data.destroy();
        report(contextOf, conn, session, { op, path, ...where, started, error });
        throw error;
      } finally {
        conn.connector.end();
      }
    });

  const retrieve = sessionCommand(contextOf, async (conn, session, arg) => {
    const started = Date.now();
    const offset = session.takeRestOffset();
    session.require('read');
    if (!arg) throw new FtpError('BAD_ARGUMENT', 'File name required');
    const path = session.resolve(arg);
    const where = session.store.locate(path);
    const data = await waitForData(contextOf, conn);
    try {
      const source = await session.store.read(path, { start: offset });
      await conn.reply(150, 'Opening data connection');
      const bytes = await sendStream(source, data, conn.commandSocket);
      report(contextOf, conn, session, { op: 'RETR', path, ...where, bytes, started, code: 226 });
      await conn.reply(226, 'Transfer complete');
    } catch (error) {
      data.destroy();
      report(contextOf, conn, session, { op: 'RETR', path, ...where, started, error });
      throw error;
    } finally {
      conn.connector.end();
    }
  });

  return {
    STOR: { handler: store(false), syntax: 'STOR <path>' },
    STOU: { handler: store(true), syntax: 'STOU [<prefix>]' },
    RETR: { handler: retrieve, syntax: 'RETR <path>', feat: ['REST STREAM'] },
  };
}
