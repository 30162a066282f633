import { describe, expect, it } from 'vitest';
import { SessionError } from '../../../src/sessions/errors.js';
import { SFTP_ERROR_CODES, SFTP_STATUS, SftpError, statusFor } from '../../../src/sftp/status.js';
import { RetainedError, STORAGE_ERROR_CODES, StorageError, type StorageErrorCode } from '../../../src/storage/errors.js';

/** The scanner's refusals name the file and the signature: their text is written by the bridge (storage/scan.ts), as for FTP. */
const DETAILED: StorageErrorCode[] = ['SCAN_REJECTED', 'SCAN_UNAVAILABLE'];

describe('statusFor', () => {
  it('every storage error has a fixed status and text; nothing of the error message reaches the client', () => {
    for (const code of STORAGE_ERROR_CODES.filter((c) => !DETAILED.includes(c))) {
      const status = statusFor(new StorageError(code, 'S3 said SECRET'));
      expect(status.code, code).toBeGreaterThan(SFTP_STATUS.EOF);
      expect(status.message, code).not.toContain('SECRET');
    }
    expect(statusFor(new StorageError('NOT_FOUND', ''))).toEqual({ code: SFTP_STATUS.NO_SUCH_FILE, message: 'No such file or directory' });
    expect(statusFor(new StorageError('STORAGE_FULL', '')).message).toBe('Exceeded storage allocation');
  });

  it('scanner refusals carry the text the bridge wrote; retention names the file and its date', () => {
    expect(statusFor(new StorageError('SCAN_REJECTED', '/a.bin: Eicar-Signature'))).toEqual({ code: SFTP_STATUS.FAILURE, message: '/a.bin: Eicar-Signature' });
    expect(statusFor(new StorageError('SCAN_UNAVAILABLE', ''))).toEqual({ code: SFTP_STATUS.FAILURE, message: 'Malware scanner unavailable; try again' });
    expect(statusFor(new RetainedError('/r.txt', new Date('2030-01-01T00:00:00Z')))).toEqual({
      code: SFTP_STATUS.PERMISSION_DENIED,
      message: '/r.txt: retained until 2030-01-01T00:00:00.000Z',
    });
    expect(statusFor(new RetainedError('/h.txt', undefined)).message).toBe('/h.txt: under legal hold');
  });

  it('session and SFTP errors, and anything else', () => {
    expect(statusFor(new SessionError('PERMISSION_DENIED', 'x')).code).toBe(SFTP_STATUS.PERMISSION_DENIED);
    for (const code of SFTP_ERROR_CODES) expect(statusFor(new SftpError(code, '')).message, code).toMatch(/\S/);
    expect(statusFor(new SftpError('UNSUPPORTED', 'Symbolic links are not supported'))).toEqual({ code: SFTP_STATUS.OP_UNSUPPORTED, message: 'Symbolic links are not supported' });
    expect(statusFor(new Error('boom at /internal/path'))).toEqual({ code: SFTP_STATUS.FAILURE, message: 'Local error in processing' });
  });
});
