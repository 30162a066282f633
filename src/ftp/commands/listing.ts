import { createHash } from 'node:crypto';
import type { Entry } from '../../storage/object-store.js';
import { closeData, writeLines } from '../data-transfer.js';
import { FtpError } from '../errors.js';
import { formatFacts, formatListLine, formatNameLine, listableEntries } from '../listing.js';
import type { Connection } from '../connection.js';
import type { Session } from '../../sessions/session.js';
import { joinPath, sessionCommand, waitForData, type CommandSpec } from './context.js';

/** The facts MLSD/MLST send (RFC 3659 §7): all by default, as picked by OPTS MLST per connection. */
const MLST_FACTS = ['type', 'size', 'modify', 'perm', 'unique'] as const;

/** OPTS MLST <fact>;<fact>;... : picks the facts (unknown ones ignored); the reply names those now sent. */
export function optsMlst(conn: Connection, setting: string): string {
  const asked = new Set(setting.toLowerCase().split(';').map((f) => f.trim()));
  const facts = new Set<string>(MLST_FACTS.filter((f) => asked.has(f)));
  conn.mlstFacts = facts;
  return `MLST OPTS ${[...facts].map((f) => f + ';').join('')}`.trimEnd();
}

const factOptions = (session: Session, path: string, type?: 'cdir', conn?: Connection) => ({
  facts: conn?.mlstFacts,
  type,
  uniqueId: createHash('sha1').update(session.store.locate(path).key).digest('hex').slice(0, 16),
  canWrite: session.permissions.has('write'),
  canDelete: session.permissions.has('delete'),
  canRename: session.permissions.has('rename'),
  canRead: session.permissions.has('read'),
  canList: session.permissions.has('list'),
  canMkdir: session.permissions.has('mkdir'),
});

const listing = (format: 'ls' | 'names' | 'facts', syntax: string, help: string) =>
  sessionCommand({ permission: ['list'], transfer: true, store: ['stat', 'list', 'locate'], syntax, help }, async (conn, session, arg) => {
    // "LIST -la dir": ls options are not a path; many clients send them.
    const path = session.resolve(format === 'facts' ? arg : arg.replace(/^(\s*-\w+)+\s*/, ''));
    const target = await session.store.stat(path);
    if (format === 'facts' && !target.isDirectory) throw new FtpError('BAD_ARGUMENT', 'Not a directory');
    const line = (e: Entry, type?: 'cdir') =>
      format === 'ls'
        ? formatListLine(e)
        : format === 'names'
          ? formatNameLine(e)
          : formatFacts(e, factOptions(session, joinPath(path, e.name), type, conn));
    const data = await waitForData(conn);
    try {
      await conn.reply(150, 'Here comes the directory listing');
      if (!target.isDirectory) {
        await writeLines(data, [line(target)], conn.transfer);
      } else {
        if (format === 'facts') await writeLines(data, [line({ ...target, name: '.' }, 'cdir')], conn.transfer);
        let leftOut = 0;
        let example: string | undefined;
        for await (const page of session.store.list(path)) {
          const entries = listableEntries(page);
          if (entries.leftOut.length > 0) {
            leftOut += entries.leftOut.length;
            example ??= session.store.locate(joinPath(path, (entries.leftOut[0] as Entry).name)).key;
          }
          await writeLines(data, entries.shown.map((e) => line(e)), conn.transfer);
        }
        // One line per listing, whatever the count; JSON.stringify keeps the key's CR/LF inert in any log viewer.
        if (example !== undefined) session.log.warn({ path, leftOut, example: JSON.stringify(example) }, 'listing left out names with control characters');
      }
      await closeData(data, conn.transfer);
      await conn.reply(226, 'Directory send OK');
    } catch (err) {
      // A listing cut short is not a listing: the error reply, never 226.
      data.destroy();
      throw err;
    } finally {
      conn.endDataConnection();
    }
  });

/** LIST, NLST, MLSD and MLST: what a directory holds, in three dialects that always agree. */
export const listingCommands: Record<string, CommandSpec> = {
  LIST: listing('ls', 'LIST [<path>]', 'Directory listing, ls -l style'),
  NLST: listing('names', 'NLST [<path>]', 'Names in a directory'),
  MLSD: { ...listing('facts', 'MLSD [<path>]', 'Directory listing, machine-readable facts (RFC 3659)'), feat: ['MLST type*;size*;modify*;perm*;unique*;'] },
  MLST: sessionCommand(
    { permission: ['list', 'read'], store: ['stat', 'locate'], syntax: 'MLST [<path>]', help: 'Facts of one file or directory (RFC 3659)' },
    async (conn, session, arg) => {
      const path = session.resolve(arg);
      const entry = await session.store.stat(path);
      const facts = formatFacts({ ...entry, name: path }, factOptions(session, path, undefined, conn));
      await conn.reply(250, 'Listing ' + path, { message: ' ' + facts, raw: true }, 'End');
    },
  ),
};
