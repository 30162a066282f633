import { describe, expect, it } from 'vitest';
import { StorageError, type StorageErrorCode } from '../../../src/storage/errors.js';
import { KeyMapper, MAX_KEY_BYTES, baseName, parentPath, resolveVirtualPath } from '../../../src/storage/paths.js';

function codeOf(fn: () => unknown): StorageErrorCode {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return (err as StorageError).code;
  }
  throw new Error('expected a StorageError, but the call succeeded');
}

const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('resolveVirtualPath', () => {
  it.each([
    ['/', '.', '/'],
    ['/', '', '/'],
    ['/a', '', '/a'],
    ['/a/b', '.', '/a/b'],
    ['/a/b', './c', '/a/b/c'],
    ['/a/b', '..', '/a'],
    ['/a/b', '../c', '/a/c'],
    ['/a/b', '../../..', '/'],
    ['/', '..', '/'],
    ['/', '../../../..', '/'],
    ['/a', 'x//y///z', '/a/x/y/z'],
    ['/a', 'dir/', '/a/dir'],
    ['/a/b', '/c/./d/../e', '/c/e'],
    ['/a', '//x//y/', '/x/y'],
    ['/a', 'x\\y', '/a/x/y'],
    ['/a', '\\etc\\passwd', '/etc/passwd'],
    ['/a', '..\\..\\x', '/x'],
    ['/a', '...', '/a/...'],
    ['/a', '..a/b..', '/a/..a/b..'],
  ])('cwd %j + %j → %j', (cwd, input, expected) => {
    expect(resolveVirtualPath(cwd, input)).toBe(expected);
  });

  it('never lets ".." escape the account root', () => {
    expect(resolveVirtualPath('/a', '../../etc/passwd')).toBe('/etc/passwd');
    expect(resolveVirtualPath('/a/b/c', '../../../../../../etc/passwd')).toBe('/etc/passwd');
    expect(resolveVirtualPath('/', '/../../etc/passwd')).toBe('/etc/passwd');
    expect(resolveVirtualPath('/a', 'x/../../../y')).toBe('/y');
    // Whatever the mix, the result is absolute, normalised and holds no "." or ".." segment.
    for (const input of ['../..', '..\\..\\..', './../x/./..', 'a/../../..//b/..', '/..//../.']) {
      const out = resolveVirtualPath('/deep/down/here', input);
      expect(out.startsWith('/')).toBe(true);
      expect(out.split('/').slice(1).filter((s) => s === '..' || s === '.' || (s === '' && out !== '/'))).toEqual([]);
    }
  });

  it('absolute input ignores the working directory; relative input builds on it', () => {
    expect(resolveVirtualPath('/work/dir', '/top.txt')).toBe('/top.txt');
    expect(resolveVirtualPath('/work/dir', 'top.txt')).toBe('/work/dir/top.txt');
  });

  it('keeps spaces, quotes and UTF-8 in names unchanged', () => {
    expect(resolveVirtualPath('/', 'my "quoted"  name.txt')).toBe('/my "quoted"  name.txt');
    expect(resolveVirtualPath('/Fotos', 'Überwachung/日本語 ü.jpg')).toBe('/Fotos/Überwachung/日本語 ü.jpg');
  });

  it.each([
    ['NUL', 'a\u0000b'],
    ['CR', 'a\rb'],
    ['LF', 'a\nb'],
    ['CRLF at the end', 'file.txt\r\n'],
    ['TAB', 'a\tb'],
    ['ESC', 'a\u001bb'],
    ['SOH', '\u0001'],
    ['unit separator', 'a\u001f'],
    ['DEL', 'a\u007fb'],
    ['C1 NEL', 'a\u0085b'],
  ])('refuses %s with BAD_NAME', (_label, input) => {
    expect(codeOf(() => resolveVirtualPath('/', input))).toBe('BAD_NAME');
    expect(codeOf(() => resolveVirtualPath('/a', '/x/' + input))).toBe('BAD_NAME');
  });

  it('accepts Latin-1 letters just above the C1 range', () => {
    expect(resolveVirtualPath('/', '\u00a0\u00dc\u00ff')).toBe('/\u00a0\u00dc\u00ff');
  });
});

describe('parentPath and baseName', () => {
  it.each([
    ['/', '/', ''],
    ['/a', '/', 'a'],
    ['/a/b', '/a', 'b'],
    ['/a/b/c.txt', '/a/b', 'c.txt'],
    ['/日本語/ü.jpg', '/日本語', 'ü.jpg'],
  ])('%j → parent %j, base %j', (path, parent, base) => {
    expect(parentPath(path)).toBe(parent);
    expect(baseName(path)).toBe(base);
  });
});

describe('KeyMapper with the whole bucket (prefix "")', () => {
  const m = new KeyMapper('');

  it('maps files and directories to keys without a leading slash', () => {
    expect(m.fileKey('/a.txt')).toBe('a.txt');
    expect(m.fileKey('/a/b/c.txt')).toBe('a/b/c.txt');
    expect(m.dirPrefix('/')).toBe('');
    expect(m.dirPrefix('/a')).toBe('a/');
    expect(m.dirPrefix('/a/b')).toBe('a/b/');
  });

  it('maps keys back to virtual paths', () => {
    expect(m.toVirtual('a.txt')).toBe('/a.txt');
    expect(m.toVirtual('a/b/c.txt')).toBe('/a/b/c.txt');
    expect(m.toVirtual('a/b/')).toBe('/a/b');
    expect(m.toVirtual('')).toBe('/');
  });

  it('fileKey("/") is BAD_NAME', () => {
    expect(codeOf(() => m.fileKey('/'))).toBe('BAD_NAME');
  });

  it('accepts a key of exactly 1024 UTF-8 bytes and refuses 1025, counting multi-byte characters as bytes', () => {
    expect(MAX_KEY_BYTES).toBe(1024);
    const exact = 'ü'.repeat(512); // 512 characters, 1024 bytes
    expect(utf8Bytes(exact)).toBe(1024);
    expect(m.fileKey('/' + exact)).toBe(exact);
    const over = exact + 'a'; // 513 characters, 1025 bytes
    expect(codeOf(() => m.fileKey('/' + over))).toBe('NAME_TOO_LONG');
  });

  it('counts the trailing slash of a directory prefix', () => {
    const name = 'd'.repeat(1023);
    expect(m.dirPrefix('/' + name)).toBe(name + '/');
    expect(codeOf(() => m.dirPrefix('/' + name + 'd'))).toBe('NAME_TOO_LONG');
  });
});

describe('KeyMapper with an account prefix ("site-a/cam01/")', () => {
  const prefix = 'site-a/cam01/';
  const m = new KeyMapper(prefix);

  it('puts every key under the prefix', () => {
    expect(m.fileKey('/a.txt')).toBe('site-a/cam01/a.txt');
    expect(m.fileKey('/2024/01/02/img.jpg')).toBe('site-a/cam01/2024/01/02/img.jpg');
    expect(m.dirPrefix('/')).toBe('site-a/cam01/');
    expect(m.dirPrefix('/2024')).toBe('site-a/cam01/2024/');
  });

  it('maps keys under the prefix back, and nothing else', () => {
    expect(m.toVirtual('site-a/cam01/a.txt')).toBe('/a.txt');
    expect(m.toVirtual('site-a/cam01/2024/')).toBe('/2024');
    expect(m.toVirtual('site-a/cam01/')).toBe('/');
    expect(m.toVirtual('site-a/cam02/a.txt')).toBeUndefined();
    expect(m.toVirtual('site-a/cam01x/a.txt')).toBeUndefined();
    expect(m.toVirtual('site-a/cam01')).toBeUndefined();
    expect(m.toVirtual('a.txt')).toBeUndefined();
  });

  it('round-trips a resolved path whatever ".." the client sent', () => {
    const vpath = resolveVirtualPath('/a', '../../../../etc/passwd');
    const key = m.fileKey(vpath);
    expect(key).toBe('site-a/cam01/etc/passwd');
    expect(key.startsWith(prefix)).toBe(true);
    expect(m.toVirtual(key)).toBe(vpath);
  });

  it('maps UTF-8 names to the identical UTF-8 key', () => {
    const vpath = '/Fotos/Überwachung/日本語 ü.jpg';
    const key = m.fileKey(vpath);
    expect(key).toBe('site-a/cam01/Fotos/Überwachung/日本語 ü.jpg');
    expect(Buffer.from(key, 'utf8').equals(Buffer.concat([Buffer.from(prefix), Buffer.from(vpath.slice(1), 'utf8')]))).toBe(true);
    // Not normalised to another Unicode form: "Ü" stays the single code point U+00DC.
    expect(key.normalize('NFD')).not.toBe(key);
    expect(m.toVirtual(key)).toBe(vpath);
  });

  it('counts the prefix and multi-byte characters toward the 1024-byte limit', () => {
    // prefix: 13 bytes; "日" is 3 bytes: 13 + 337 * 3 = 1024.
    const exact = '日'.repeat(337);
    expect(utf8Bytes(prefix + exact)).toBe(1024);
    expect(m.fileKey('/' + exact)).toBe(prefix + exact);
    const over = '日'.repeat(336) + 'üü'; // 13 + 1008 + 4 = 1025
    expect(utf8Bytes(prefix + over)).toBe(1025);
    expect(codeOf(() => m.fileKey('/' + over))).toBe('NAME_TOO_LONG');
  });

  it('fileKey("/") is BAD_NAME: the root is not a file', () => {
    expect(codeOf(() => m.fileKey('/'))).toBe('BAD_NAME');
  });
});
