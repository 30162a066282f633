import { describe, expect, it } from 'vitest';
import { FTP_ERROR_CODES, FtpError, type FtpErrorCode } from '../../../src/ftp/errors.js';
import { replyFor, safeReplyLetter, safeReplyText } from '../../../src/ftp/replies.js';
import { SessionError } from '../../../src/sessions/errors.js';
import { STORAGE_ERROR_CODES, StorageError, type StorageErrorCode } from '../../../src/storage/errors.js';

const SECRET = 'SECRET';

/** The scanner's refusals name the file and the signature: their text is written by the bridge (storage/scan.ts). */
const DETAILED: StorageErrorCode[] = ['SCAN_REJECTED', 'SCAN_UNAVAILABLE'];

describe('replyFor: storage errors', () => {
  it.each(STORAGE_ERROR_CODES.filter((c) => !DETAILED.includes(c)).map((c) => [c]))('%s → a 4xx/5xx reply with a fixed text', (code) => {
    const reply = replyFor(new StorageError(code, `internal detail ${SECRET}`));
    expect(reply.code).toBeGreaterThanOrEqual(400);
    expect(reply.code).toBeLessThan(600);
    expect(reply.message).toMatch(/\S/);
    // The StorageError's own message never reaches the client.
    expect(reply.message).not.toContain(SECRET);
  });

  const expected: Array<[StorageErrorCode, number]> = [
    ['NOT_FOUND', 550],
    ['IS_DIRECTORY', 550],
    ['NOT_DIRECTORY', 550],
    ['ALREADY_EXISTS', 550],
    ['NOT_EMPTY', 550],
    ['BAD_NAME', 553],
    ['NAME_TOO_LONG', 553],
    ['TOO_MANY_OBJECTS', 550],
    ['INVALID_RANGE', 554],
    ['STORAGE_FULL', 552],
    ['DENIED', 550],
    ['UNAVAILABLE', 451],
    ['ABORTED', 426],
    ['PARTIAL_RENAME', 451],
    ['APPEND_UNSUPPORTED', 504],
    ['CHANGED', 451],
    ['SCAN_REJECTED', 550],
    ['SCAN_UNAVAILABLE', 451],
    ['CHECKSUM_MISMATCH', 451],
    ['RETAINED', 550],
    ['INTERNAL', 451],
  ];

  it('covers every storage code in this table', () => {
    expect(expected.map(([c]) => c).sort()).toEqual([...STORAGE_ERROR_CODES].sort());
  });

  it.each(expected)('%s → %i', (code, reply) => {
    expect(replyFor(new StorageError(code, 'x')).code).toBe(reply);
  });

  it("scanner refusals carry the bridge's text (file name, signature)", () => {
    expect(replyFor(new StorageError('SCAN_REJECTED', 'a.exe: rejected by the malware scanner (Eicar-Test-Signature)'))).toEqual({
      code: 550,
      message: 'a.exe: rejected by the malware scanner (Eicar-Test-Signature)',
    });
    expect(replyFor(new StorageError('SCAN_UNAVAILABLE', ''))).toEqual({ code: 451, message: 'Malware scanner unavailable; try again' });
  });

  it('transient failures are 4xx (retry), permanent ones 5xx', () => {
    expect(replyFor(new StorageError('UNAVAILABLE', 'x')).code).toBeLessThan(500);
    expect(replyFor(new StorageError('NOT_FOUND', 'x')).code).toBeGreaterThanOrEqual(500);
    expect(replyFor(new StorageError('BAD_NAME', 'x')).code).toBeGreaterThanOrEqual(500);
  });
});

describe('replyFor: session errors', () => {
  it('PERMISSION_DENIED of the session layer → 550', () => {
    expect(replyFor(new SessionError('PERMISSION_DENIED', 'Permission denied'))).toEqual({ code: 550, message: 'Permission denied' });
  });
});

describe('replyFor: FTP errors', () => {
  it.each(FTP_ERROR_CODES.map((c) => [c]))('%s → a 4xx/5xx reply', (code) => {
    const reply = replyFor(new FtpError(code, ''));
    expect(reply.code).toBeGreaterThanOrEqual(400);
    expect(reply.code).toBeLessThan(600);
    expect(reply.message).toMatch(/\S/);
  });

  const expected: Array<[FtpErrorCode, number]> = [
    ['PERMISSION_DENIED', 550],
    ['NO_DATA_CONNECTION', 425],
    ['DATA_CONNECTION_LOST', 426],
    ['CONTROL_CONNECTION_LOST', 426],
    ['BAD_SEQUENCE', 503],
    ['BAD_ARGUMENT', 501],
    ['NOT_IMPLEMENTED_PARAMETER', 504],
    ['PROTECTION_REQUIRED', 521],
    ['INVALID_RESTART', 554],
    ['TOO_MANY_PASSIVE_PORTS', 425],
    ['NOT_AVAILABLE', 550],
    ['TRANSFER_ABORTED', 426],
  ];

  it('covers every FTP code in this table', () => {
    expect(expected.map(([c]) => c).sort()).toEqual([...FTP_ERROR_CODES].sort());
  });

  it.each(expected)('%s → %i', (code, reply) => {
    expect(replyFor(new FtpError(code, 'x')).code).toBe(reply);
  });

  it('uses the FtpError message when there is one, the table text otherwise', () => {
    expect(replyFor(new FtpError('BAD_ARGUMENT', 'File name required'))).toEqual({ code: 501, message: 'File name required' });
    expect(replyFor(new FtpError('NO_DATA_CONNECTION', ''))).toEqual({ code: 425, message: "Can't open data connection" });
  });
});

describe('replyFor: anything else', () => {
  it('a plain Error → 451 without its text', () => {
    const err = new Error(`stack text ${SECRET}`);
    const reply = replyFor(err);
    expect(reply.code).toBe(451);
    expect(reply.message).not.toContain(SECRET);
    expect(reply.message).not.toContain('stack');
    expect(reply.message).not.toContain(err.stack?.split('\n')[1]?.trim() ?? 'at ');
  });

  it.each([
    ['a TypeError', new TypeError(`Cannot read properties of undefined ${SECRET}`)],
    ['an error shaped like a StorageError but not one', Object.assign(new Error(SECRET), { name: 'StorageError', code: 'NOT_FOUND' })],
    ['a string', `thrown string ${SECRET}`],
    ['undefined', undefined],
    ['null', null],
  ])('%s → 451 without its text', (_label, err) => {
    const reply = replyFor(err);
    expect(reply.code).toBe(451);
    expect(reply.message).not.toContain(SECRET);
  });
});

describe('safeReplyText and safeReplyLetter', () => {
  it('shows C0, DEL and C1 controls as \\xHH and leaves everything else alone', () => {
    expect(safeReplyText('Command not allowed: X\rFORGED\n226 ok')).toBe('Command not allowed: X\\x0dFORGED\\x0a226 ok');
    expect(safeReplyText('a\x00b\tc\x1bd\x7fe\u0085f\u009bg')).toBe('a\\x00b\\x09c\\x1bd\\x7fe\\x85f\\x9bg');
    expect(safeReplyText('"/dir/ü 日本 \u2028" created')).toBe('"/dir/ü 日本 \u2028" created');
  });

  it('guards string letters and message letters, keeping the other fields', () => {
    expect(safeReplyLetter('Command not allowed: X\r\nFORGED')).toBe('Command not allowed: X\\x0d\\x0aFORGED');
    expect(safeReplyLetter({ message: ' type=file; a\nb', raw: true })).toEqual({ message: ' type=file; a\\x0ab', raw: true });
    expect(safeReplyLetter({ code: 421 })).toEqual({ code: 421 });
    expect(safeReplyLetter(undefined)).toBeUndefined();
  });
});
