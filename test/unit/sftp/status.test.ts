import { describe, expect, it } from 'vitest';
import { SessionError } from '../../../src/sessions/errors.js';
import { SFTP_ERROR_CODES, SFTP_STATUS, SftpError, statusFor } from '../../../src/sftp/status.js';
import { STORAGE_ERROR_CODES, StorageError } from '../../../src/storage/errors.js';

describe('statusFor', () => {
  it('every storage error has a fixed status and text; nothing of the error message reaches the client', () => {
    for (const code of STORAGE_ERROR_CODES) {
      const status = statusFor(new StorageError(code, 'S3 said SECRET'));
      expect(status.code, code).toBeGreaterThan(SFTP_STATUS.EOF);
      expect(status.message, code).not.toContain('SECRET');
    }
    expect(statusFor(new StorageError('NOT_FOUND', ''))).toEqual({ code: SFTP_STATUS.NO_SUCH_FILE, message: 'No such file or directory' });
    expect(statusFor(new StorageError('STORAGE_FULL', '')).message).toBe('Exceeded storage allocation');
  });

  it('session and SFTP errors, and anything else', () => {
    expect(statusFor(new SessionError('PERMISSION_DENIED', 'x')).code).toBe(SFTP_STATUS.PERMISSION_DENIED);
    for (const code of SFTP_ERROR_CODES) expect(statusFor(new SftpError(code, '')).message, code).toMatch(/\S/);
    expect(statusFor(new SftpError('UNSUPPORTED', 'Symbolic links are not supported'))).toEqual({ code: SFTP_STATUS.OP_UNSUPPORTED, message: 'Symbolic links are not supported' });
    expect(statusFor(new Error('boom at /internal/path'))).toEqual({ code: SFTP_STATUS.FAILURE, message: 'Local error in processing' });
  });
});
