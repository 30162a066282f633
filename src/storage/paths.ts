import { StorageError } from './errors.js';

/** S3's limit on the UTF-8 length of an object key. */
export const MAX_KEY_BYTES = 1024;

// C0 controls, DEL and C1 controls: never part of a name a client may create or address.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\x00-\x1f\x7f-\x9f]/;

/**
 * Whether a name holds a C0 or C1 control character or DEL. No client can address such a name, and
 * written raw into a listing or reply a CR or LF would start a line of its own.
 */
export function hasControlChars(name: string): boolean {
  return CONTROL_CHARS.test(name);
}

/**
 * Resolves a client-supplied path against the session's working directory into a normalised
 * absolute path of the account's virtual tree ("/" is the account root). Backslashes count as
 * separators, "." and empty segments vanish, and ".." stops at the root: nothing ever resolves
 * outside the account. Control characters (NUL, CR, LF, ...) are refused.
 */
export function resolveVirtualPath(cwd: string, input: string): string {
  if (hasControlChars(input)) throw new StorageError('BAD_NAME', 'File name contains control characters');
  const joined = input.replace(/\\/g, '/');
  const start = joined.startsWith('/') ? [] : splitSegments(cwd);
  const out = [...start];
  for (const seg of joined.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

function splitSegments(path: string): string[] {
  return path.split('/').filter((s) => s !== '' && s !== '.');
}

/** The parent of a normalised virtual path ("/" for top-level entries and for "/" itself). */
export function parentPath(vpath: string): string {
  const i = vpath.lastIndexOf('/');
  return i <= 0 ? '/' : vpath.slice(0, i);
}

/** The last segment of a normalised virtual path ("" for "/"). */
export function baseName(vpath: string): string {
  return vpath.slice(vpath.lastIndexOf('/') + 1);
}

/**
 * Maps virtual paths of one account onto object keys under its prefix. The only place where a key
 * is built from client input.
 */
export class KeyMapper {
  /** @param prefix the account's prefix: "" (whole bucket) or ending with "/" */
  constructor(readonly prefix: string) {}

  /** The object key of a file. Throws BAD_NAME for "/" and NAME_TOO_LONG above 1024 bytes. */
  fileKey(vpath: string): string {
    if (vpath === '/') throw new StorageError('BAD_NAME', 'A file name is required');
    return this.checked(this.prefix + vpath.slice(1));
  }

  /** The key prefix that holds a directory's entries ("" + prefix for the root), ending with "/". */
  dirPrefix(vpath: string): string {
    if (vpath === '/') return this.prefix;
    return this.checked(this.prefix + vpath.slice(1) + '/');
  }

  /** The virtual path of a key under the prefix, or undefined for keys outside it. */
  toVirtual(key: string): string | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length).replace(/\/$/, '');
    return '/' + rest;
  }

  private checked(key: string): string {
    if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) {
      throw new StorageError('NAME_TOO_LONG', 'File name too long');
    }
    return key;
  }
}
