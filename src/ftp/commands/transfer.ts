import { randomUUID } from 'node:crypto';
import { formatChecksum } from '../../storage/checksums.js';
import { isStorageError } from '../../storage/errors.js';
import type { Entry, FileStore } from '../../storage/object-store.js';
import { baseName } from '../../storage/paths.js';
import type { ScanReport } from '../../storage/scan.js';
import { receiveUpload, sendStream } from '../data-transfer.js';
import { FtpError } from '../errors.js';
import type { UploadAdmission } from '../../sessions/transfer-policy.js';
import { report, sessionCommand, waitForData, type CommandSpec } from './context.js';

const store = (op: 'STOR' | 'STOU' | 'APPE', syntax: string, help: string) =>
  sessionCommand(
    { permission: ['write'], consumes: ['restOffset'], transfer: true, store: ['stat', 'locate', 'write'], syntax, help },
    async (conn, session, arg) => {
      const stou = op === 'STOU';
      const started = Date.now();
      const offset = session.takeRestOffset();
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
      const data = await waitForData(conn);
      let admission: UploadAdmission | undefined;
      try {
        // Quota (552 before any byte), bandwidth and the cut at the quota.
        const size = conn.allocatedBytes;
        conn.allocatedBytes = undefined;
        admission = await conn.server.transferPolicy?.admitUpload(session, path, { append: appendAt !== undefined, size });
        const sink = await session.store.write(path, { appendAt, existing }).catch((err: unknown) => {
          // The file changed size between the check and the upload.
          if (isStorageError(err, 'INVALID_RANGE')) throw new FtpError('INVALID_RESTART', `Cannot resume at ${offset}: the file changed; ask SIZE again`);
          throw err;
        });
        await conn.reply(150, stou ? `FILE: ${baseName(path)}` : 'Opening data connection');
        const object = await receiveUpload(admission ? admission.wrap(data, sink) : data, sink, conn.commandSocket, conn.transfer);
        report(conn, session, {
          op,
          path,
          ...where,
          bytes: object.size,
          etag: object.etag,
          ...(object.checksum && { checksum: formatChecksum(object.checksum) }),
          started,
          code: 226,
          ...scanOf(object),
        });
        await conn.reply(226, stou ? `Transfer complete (FILE: ${baseName(path)})` : 'Transfer complete');
      } catch (error) {
        data.destroy();
        report(conn, session, { op, path, ...where, started, error, ...scanOf(error) });
        throw error;
      } finally {
        admission?.release();
        conn.endDataConnection();
      }
    },
  );

const retrieve = sessionCommand(
  {
    permission: ['read'],
    consumes: ['restOffset'],
    transfer: true,
    store: ['locate', 'read'],
    syntax: 'RETR <path>',
    help: 'Download a file (from the REST offset)',
    feat: ['REST STREAM'],
  },
  async (conn, session, arg) => {
    const started = Date.now();
    const offset = session.takeRestOffset();
    if (!arg) throw new FtpError('BAD_ARGUMENT', 'File name required');
    const path = session.resolve(arg);
    const where = session.store.locate(path);
    const data = await waitForData(conn);
    try {
      const source = await session.store.read(path, { start: offset });
      await conn.reply(150, 'Opening data connection');
      const policy = conn.server.transferPolicy;
      const bytes = await sendStream(policy ? policy.download(session, source) : source, data, conn.commandSocket, conn.transfer);
      report(conn, session, { op: 'RETR', path, ...where, bytes, started, code: 226 });
      await conn.reply(226, 'Transfer complete');
    } catch (error) {
      data.destroy();
      report(conn, session, { op: 'RETR', path, ...where, started, error });
      throw error;
    } finally {
      conn.endDataConnection();
    }
  },
);

/** STOR, STOU, APPE and RETR: the data transfers. */
export const transferCommands: Record<string, CommandSpec> = {
  STOR: store('STOR', 'STOR <path>', 'Upload a file (at the REST offset: resume it)'),
  STOU: store('STOU', 'STOU [<prefix>]', 'Upload a file under a unique name'),
  APPE: store('APPE', 'APPE <path>', 'Append to a file'),
  RETR: retrieve,
};

/** The malware scan's report carried by a committed object or a scan refusal, as an event field. */
function scanOf(outcome: unknown): { scan?: ScanReport } {
  const scan = (outcome as { scan?: ScanReport } | undefined)?.scan;
  return scan ? { scan } : {};
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
