import { randomUUID } from 'node:crypto';
import { isStorageError } from '../../storage/errors.js';
import type { Entry, FileStore } from '../../storage/object-store.js';
import { baseName } from '../../storage/paths.js';
import { transferOf } from '../control-channel.js';
import { receiveUpload, sendStream } from '../data-transfer.js';
import { FtpError } from '../errors.js';
import type { UploadAdmission } from '../../sessions/transfer-policy.js';
import { report, sessionCommand, waitForData, type CommandSpec, type ContextOf } from './context.js';

/** STOR, STOU, APPE and RETR: the data transfers. */
export function transferCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  const store = (op: 'STOR' | 'STOU' | 'APPE') =>
    sessionCommand(contextOf, async (conn, session, arg) => {
      const stou = op === 'STOU';
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
      if (offset > 0 && stou) throw new FtpError('NOT_IMPLEMENTED_PARAMETER', 'STOU cannot restart an upload');
      // REST n + STOR resumes an upload: it appends, and only where the file now ends.
      const existing = offset > 0 ? await checkResumeOffset(session.store, path, offset) : undefined;
      const appendAt = op === 'APPE' ? 'end' : offset > 0 ? offset : undefined;
      const where = session.store.locate(path);
      const data = await waitForData(contextOf, conn);
      let admission: UploadAdmission | undefined;
      try {
        // Quota (552 before any byte), bandwidth and the cut at the quota.
        admission = await contextOf(conn).transferPolicy?.admitUpload(session, path, { append: appendAt !== undefined });
        const sink = await session.store.write(path, { appendAt, existing }).catch((err: unknown) => {
          // The file changed size between the check and the upload.
          if (isStorageError(err, 'INVALID_RANGE')) throw new FtpError('INVALID_RESTART', `Cannot resume at ${offset}: the file changed; ask SIZE again`);
          throw err;
        });
        await conn.reply(150, stou ? `FILE: ${baseName(path)}` : 'Opening data connection');
        const object = await receiveUpload(admission ? admission.wrap(data, sink) : data, sink, conn.commandSocket, transferOf(conn));
        report(contextOf, conn, session, { op, path, ...where, bytes: object.size, etag: object.etag, started, code: 226 });
        await conn.reply(226, stou ? `Transfer complete (FILE: ${baseName(path)})` : 'Transfer complete');
      } catch (error) {
        data.destroy();
        report(contextOf, conn, session, { op, path, ...where, started, error });
        throw error;
      } finally {
        admission?.release();
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
      const policy = contextOf(conn).transferPolicy;
      const bytes = await sendStream(policy ? policy.download(session, source) : source, data, conn.commandSocket, transferOf(conn));
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
    STOR: { handler: store('STOR'), syntax: 'STOR <path>' },
    STOU: { handler: store('STOU'), syntax: 'STOU [<prefix>]' },
    APPE: { handler: store('APPE'), syntax: 'APPE <path>' },
    RETR: { handler: retrieve, syntax: 'RETR <path>', feat: ['REST STREAM'] },
  };
}

/**
 * REST n before STOR: n must be the file's current size (RFC 3659 §5.5: 554 otherwise). Returns
 * the file as found, which the store appends to without looking it up again.
 */
async function checkResumeOffset(store: FileStore, path: string, offset: number): Promise<Entry> {
  let file: Entry | undefined;
  try {
    const entry = await store.stat(path);
    if (!entry.isDirectory) file = entry;
  } catch (err) {
    if (!isStorageError(err, 'NOT_FOUND')) throw err;
  }
  if (file === undefined) throw new FtpError('INVALID_RESTART', `Cannot resume at ${offset}: no such file`);
  if (file.size !== offset) {
    throw new FtpError('INVALID_RESTART', `Cannot resume at ${offset}: an upload resumes only at the file's current size (${file.size})`);
  }
  return file;
}
