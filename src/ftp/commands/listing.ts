import { createHash } from 'node:crypto';
import type { Entry } from '../../storage/object-store.js';
import { closeData, writeLines } from '../data-transfer.js';
import { FtpError } from '../errors.js';
import { formatFacts, formatListLine, formatNameLine, listableEntries } from '../listing.js';
import type { FtpConnection } from '../ftp-srv-internals.js';
import type { Session } from '../../sessions/session.js';
import { joinPath, sessionCommand, waitForData, type CommandSpec, type ContextOf } from './context.js';

/** The facts MLSD/MLST send (RFC 3659 §7): all by default, as picked by OPTS MLST per connection. */
export const MLST_FACTS = ['type', 'size', 'modify', 'perm', 'unique'] as const;
const selectedFacts = new WeakMap<FtpConnection, ReadonlySet<string>>();

/** OPTS MLST <fact>;<fact>;... : picks the facts (unknown ones ignored); the reply names those now sent. */
export function optsMlst(conn: FtpConnection, setting: string): string {
  const asked = new Set(setting.toLowerCase().split(';').map((f) => f.trim()));
  const facts = new Set<string>(MLST_FACTS.filter((f) => asked.has(f)));
  selectedFacts.set(conn, facts);
  return `MLST OPTS ${[...facts].map((f) => f + ';').join('')}`.trimEnd();
}

/** LIST, NLST, MLSD and MLST: what a directory holds, in three dialects that always agree. */
export function listingCommands(contextOf: ContextOf): Record<string, CommandSpec> {
  const factOptions = (session: Session, path: string, type?: 'cdir', conn?: FtpConnection) => ({
    facts: conn && selectedFacts.get(conn),
    type,
    uniqueId: createHash('sha1').update(session.store.locate(path).key).digest('hex').slice(0, 16),
    canWrite: session.permissions.has('write'),
    canDelete: session.permissions.has('delete'),
    canRename: session.permissions.has('rename'),
    canRead: session.permissions.has('read'),
    canList: session.permissions.has('list'),
    canMkdir: session.permissions.has('mkdir'),
  });

  const listing = (format: 'ls' | 'names' | 'facts') =>
    sessionCommand(contextOf, async (conn, session, arg) => {
      session.require('list');
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
      const data = await waitForData(contextOf, conn);
      try {
        await conn.reply(150, 'Here comes the directory listing');
        if (!target.isDirectory) {
          await writeLines(data, [line(target)]);
        } else {
          if (format === 'facts') await writeLines(data, [line({ ...target, name: '.' }, 'cdir')]);
          let leftOut = 0;
          let example: string | undefined;
          for await (const page of session.store.list(path)) {
            const entries = listableEntries(page);
            if (entries.leftOut.length > 0) {
              leftOut += entries.leftOut.length;
              example ??= session.store.locate(joinPath(path, (entries.leftOut[0] as Entry).name)).key;
            }
            await writeLines(data, entries.shown.map((e) => line(e)));
          }
          // One line per listing, whatever the count; JSON.stringify keeps the key's CR/LF inert in any log viewer.
          if (example !== undefined) session.log.warn({ path, leftOut, example: JSON.stringify(example) }, 'listing left out names with control characters');
        }
        await closeData(data);
        await conn.reply(226, 'Directory send OK');
      } catch (err) {
        // A listing cut short is not a listing: the error reply, never 226.
        data.destroy();
        throw err;
      } finally {
        conn.connector.end();
      }
    });

  return {
    LIST: { handler: listing('ls'), syntax: 'LIST [<path>]' },
    NLST: { handler: listing('names'), syntax: 'NLST [<path>]' },
    MLSD: { handler: listing('facts'), syntax: 'MLSD [<path>]', feat: ['MLST type*;size*;modify*;perm*;unique*;'] },
    MLST: {
      handler: sessionCommand(contextOf, async (conn, session, arg) => {
        session.require('list', 'read');
        const path = session.resolve(arg);
        const entry = await session.store.stat(path);
        const facts = formatFacts({ ...entry, name: path }, factOptions(session, path, undefined, conn));
        await conn.reply(250, 'Listing ' + path, { message: ' ' + facts, raw: true }, 'End');
      }),
      syntax: 'MLST [<path>]',
    },
  };
}
