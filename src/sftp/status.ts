import { SessionError, type SessionErrorCode } from '../sessions/errors.js';
import { RetainedError, StorageError, type StorageErrorCode } from '../storage/errors.js';

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7), the only ones OpenSSH and most clients know. */
export const SFTP_STATUS = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;
export type SftpStatusCode = (typeof SFTP_STATUS)[keyof typeof SFTP_STATUS];

export interface SftpStatus {
  code: SftpStatusCode;
  message: string;
}

/** Failures of the SFTP front end itself, mapped below like the storage and session errors. */
export const SFTP_ERROR_CODES = [
  'UNSUPPORTED', // symlinks, a write that goes backwards or leaves a gap beyond the reorder window, ...
  'BAD_HANDLE', // a handle this session never gave out, or one already closed
  'BAD_ARGUMENT', // an OPEN without READ or WRITE, and the like
  'TOO_MANY_HANDLES', // sftp.maxOpenHandlesPerSession reached
  'SHUTTING_DOWN', // an OPEN while the server drains
] as const;
export type SftpErrorCode = (typeof SFTP_ERROR_CODES)[number];

export class SftpError extends Error {
  constructor(
    readonly code: SftpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SftpError';
  }
}

/**
 * The one table from typed errors to SFTP statuses, as ftp/replies.ts is for FTP replies. Texts
 * are fixed here; nothing from S3 or a stack trace reaches a client. v3 has no "file exists",
 * "not empty" or "no space" codes: those are FAILURE with a message that says which.
 */
const STORAGE_STATUS: Record<StorageErrorCode, SftpStatus> = {
  NOT_FOUND: { code: SFTP_STATUS.NO_SUCH_FILE, message: 'No such file or directory' },
  IS_DIRECTORY: { code: SFTP_STATUS.FAILURE, message: 'Is a directory' },
  NOT_DIRECTORY: { code: SFTP_STATUS.FAILURE, message: 'Not a directory' },
  ALREADY_EXISTS: { code: SFTP_STATUS.FAILURE, message: 'File exists' },
  NOT_EMPTY: { code: SFTP_STATUS.FAILURE, message: 'Directory not empty' },
  BAD_NAME: { code: SFTP_STATUS.FAILURE, message: 'File name not allowed' },
  NAME_TOO_LONG: { code: SFTP_STATUS.FAILURE, message: 'File name too long' },
  TOO_MANY_OBJECTS: { code: SFTP_STATUS.FAILURE, message: 'Directory too large to rename' },
  INVALID_RANGE: { code: SFTP_STATUS.OP_UNSUPPORTED, message: 'Resuming is only possible at the end of the file' },
  STORAGE_FULL: { code: SFTP_STATUS.FAILURE, message: 'Exceeded storage allocation' },
  DENIED: { code: SFTP_STATUS.PERMISSION_DENIED, message: 'Permission denied' },
  UNAVAILABLE: { code: SFTP_STATUS.FAILURE, message: 'Storage temporarily unavailable, try again' },
  ABORTED: { code: SFTP_STATUS.CONNECTION_LOST, message: 'Transfer aborted' },
  PARTIAL_RENAME: { code: SFTP_STATUS.FAILURE, message: 'Rename incomplete: the file now exists under both names' },
  APPEND_UNSUPPORTED: { code: SFTP_STATUS.OP_UNSUPPORTED, message: 'Appending to a file of 5 MiB or more is not supported by this storage' },
  CHANGED: { code: SFTP_STATUS.FAILURE, message: 'The file changed meanwhile; try again' },
  SCAN_REJECTED: { code: SFTP_STATUS.FAILURE, message: 'Rejected by the malware scanner' },
  SCAN_UNAVAILABLE: { code: SFTP_STATUS.FAILURE, message: 'Malware scanner unavailable; try again' },
  RETAINED: { code: SFTP_STATUS.PERMISSION_DENIED, message: 'File is retained (Object Lock)' },
  CHECKSUM_MISMATCH: { code: SFTP_STATUS.FAILURE, message: 'The storage received other bytes than were sent (checksum mismatch); nothing was stored, try again' },
  INTERNAL: { code: SFTP_STATUS.FAILURE, message: 'Local error in processing' },
};

/**
 * Codes whose StorageError message is the status text, as for FTP: written by the bridge for the
 * client (the file's name and the scanner's signature name), never S3 text.
 */
const STORAGE_DETAILED_STATUS: ReadonlySet<StorageErrorCode> = new Set(['SCAN_REJECTED', 'SCAN_UNAVAILABLE']);

const SESSION_STATUS: Record<SessionErrorCode, SftpStatus> = {
  PERMISSION_DENIED: { code: SFTP_STATUS.PERMISSION_DENIED, message: 'Permission denied' },
};

const SFTP_ERROR_STATUS: Record<SftpErrorCode, SftpStatus> = {
  UNSUPPORTED: { code: SFTP_STATUS.OP_UNSUPPORTED, message: 'Operation unsupported' },
  BAD_HANDLE: { code: SFTP_STATUS.FAILURE, message: 'Invalid handle' },
  BAD_ARGUMENT: { code: SFTP_STATUS.BAD_MESSAGE, message: 'Bad request' },
  TOO_MANY_HANDLES: { code: SFTP_STATUS.FAILURE, message: 'Too many open files' },
  SHUTTING_DOWN: { code: SFTP_STATUS.FAILURE, message: 'Server shutting down; try again later' },
};

const INTERNAL_STATUS: SftpStatus = { code: SFTP_STATUS.FAILURE, message: 'Local error in processing' };

/** The status for any error a request handler throws. */
export function statusFor(err: unknown): SftpStatus {
  // Built from the path the client named and the date S3 reported, never from S3's text.
  if (err instanceof RetainedError) {
    return { code: SFTP_STATUS.PERMISSION_DENIED, message: err.until ? `${err.path}: retained until ${err.until.toISOString()}` : `${err.path}: under legal hold` };
  }
  if (err instanceof StorageError) {
    const status = STORAGE_STATUS[err.code];
    return STORAGE_DETAILED_STATUS.has(err.code) && err.message ? { code: status.code, message: err.message } : status;
  }
  if (err instanceof SessionError) return SESSION_STATUS[err.code];
  if (err instanceof SftpError) return { code: SFTP_ERROR_STATUS[err.code].code, message: err.message || SFTP_ERROR_STATUS[err.code].message };
  return INTERNAL_STATUS;
}

/** Whether an error is one of ours (logged at info) rather than a bug or an unexpected failure (error). */
export const isExpectedError = (err: unknown): boolean => err instanceof StorageError || err instanceof SessionError || err instanceof SftpError;
