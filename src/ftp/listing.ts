import type { Entry } from '../storage/object-store.js';
import { hasControlChars } from '../storage/paths.js';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS_MS = 182 * 24 * 3600 * 1000;
/** S3's clock may run ahead of ours: a slightly future mtime is still "recent". */
const CLOCK_SKEW_MS = 24 * 3600 * 1000;

/**
 * Splits a page of entries into those a listing shows and those it leaves out: names with control
 * characters, which other tools can write to the bucket. A CR or LF sent raw would end the line and
 * let the rest of the key pose as an entry of its own; no client could address such a name anyway.
 */
export function listableEntries(entries: readonly Entry[]): { shown: Entry[]; leftOut: Entry[] } {
  const shown: Entry[] = [];
  const leftOut: Entry[] = [];
  for (const entry of entries) (hasControlChars(entry.name) ? leftOut : shown).push(entry);
  return { shown, leftOut };
}

/** The last line of defence behind listableEntries: a formatter never renders a control character. */
function safeName(name: string): string {
  if (hasControlChars(name)) throw new TypeError(`refusing to format a name with control characters: ${JSON.stringify(name)}`);
  return name;
}

/**
 * One line of a LIST reply in the `ls -l` form that curl, lftp, FileZilla and python's ftplib
 * parse: recent entries show the time, older (or far future) ones the year, all in UTC.
 */
export function formatListLine(entry: Entry, now: Date = new Date()): string {
  const mode = entry.isDirectory ? 'drwxr-xr-x' : '-rw-r--r--';
  const t = entry.mtime;
  const month = MONTHS[t.getUTCMonth()];
  const day = String(t.getUTCDate()).padStart(2, ' ');
  const age = now.getTime() - t.getTime();
  const when =
    age > -CLOCK_SKEW_MS && age < SIX_MONTHS_MS
      ? `${String(t.getUTCHours()).padStart(2, '0')}:${String(t.getUTCMinutes()).padStart(2, '0')}`
      : ` ${t.getUTCFullYear()}`;
  const size = String(entry.size).padStart(12, ' ');
  return `${mode} 1 ftp ftp ${size} ${month} ${day} ${when} ${safeName(entry.name)}`;
}

/** One line of an NLST reply: the bare name. */
export function formatNameLine(entry: Entry): string {
  return safeName(entry.name);
}

/** YYYYMMDDHHMMSS in UTC, as MDTM (RFC 3659 §2.3) and the MLSx modify fact want it. */
export function formatTimeVal(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    p(date.getUTCFullYear(), 4) +
    p(date.getUTCMonth() + 1) +
    p(date.getUTCDate()) +
    p(date.getUTCHours()) +
    p(date.getUTCMinutes()) +
    p(date.getUTCSeconds())
  );
}

/**
 * An MLSD/MLST entry (RFC 3659 §7): facts, a space, then the name. `type` is cdir for the listed
 * directory itself. The unique fact is stable per path so clients can detect loops.
 */
export function formatFacts(entry: Entry, options: { type?: 'cdir'; uniqueId: string; canWrite: boolean; canDelete: boolean; canRename: boolean; canRead: boolean; canList: boolean; canMkdir: boolean; facts?: ReadonlySet<string> }): string {
  const type = options.type ?? (entry.isDirectory ? 'dir' : 'file');
  let perm = '';
  if (entry.isDirectory) {
    if (options.canWrite) perm += 'c';
    if (options.canDelete) perm += 'd';
    if (options.canList) perm += 'el';
    if (options.canRename) perm += 'f';
    if (options.canMkdir) perm += 'm';
    if (options.canDelete) perm += 'p';
  } else {
    if (options.canWrite) perm += 'aw';
    if (options.canDelete) perm += 'd';
    if (options.canRename) perm += 'f';
    if (options.canRead) perm += 'r';
  }
  const facts = [`type=${type}`];
  if (!entry.isDirectory) facts.push(`size=${entry.size}`);
  facts.push(`modify=${formatTimeVal(entry.mtime)}`, `perm=${perm}`, `unique=${options.uniqueId}`);
  // OPTS MLST picks the facts sent (RFC 3659 §7.9); no fact at all leaves only " name".
  const selected = options.facts ? facts.filter((f) => options.facts?.has(f.slice(0, f.indexOf('=')).toLowerCase())) : facts;
  return `${selected.map((f) => f + ';').join('')} ${safeName(entry.name)}`;
}
