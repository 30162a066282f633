/**
 * Typed storage errors. The S3 adapter classifies every SDK failure into one of these codes; the
 * FTP layer picks the reply from the code alone (ftp/replies.ts). Messages are safe to show a client:
 * they never carry S3 response text or stack traces.
 */
export const STORAGE_ERROR_CODES = [
  'NOT_FOUND', // no such file or directory
  'IS_DIRECTORY', // a file operation aimed at a directory
  'NOT_DIRECTORY', // a directory operation aimed at a file
  'ALREADY_EXISTS',
  'NOT_EMPTY', // RMD of a directory that still holds objects
  'BAD_NAME', // control characters, empty segment where a name is needed
  'NAME_TOO_LONG', // the object key would exceed 1024 bytes
  'TOO_MANY_OBJECTS', // directory rename above the configured limit
  'INVALID_RANGE', // a read offset beyond the end of the object
  'STORAGE_FULL', // the store refused the size
  'DENIED', // the store refused our credentials
  'UNAVAILABLE', // transient: throttling, 5xx, network
  'ABORTED', // the transfer was cancelled (client gone, shutdown)
  'PARTIAL_RENAME', // a rename copied data but could not remove every source
  'APPEND_UNSUPPORTED', // appending to a large object needs UploadPartCopy, which the store lacks
  'CHANGED', // the object changed while an append or resume was being set up (ETag mismatch)
  'SCAN_REJECTED', // the malware scanner found something (or the file is too large to scan): nothing committed where asked
  'SCAN_UNAVAILABLE', // the malware scanner could not be reached or timed out: nothing committed
  'RETAINED', // Object Lock: the object is retained or under legal hold; the message names it and the date
  'CHECKSUM_MISMATCH', // the store's checksum of the bytes it received differs from the one sent: nothing stored
  'INTERNAL',
] as const;
export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number];

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/**
 * RETAINED, with what the reply names: the file as the client named it, and the date its
 * retention ends (none: a legal hold, which has no end date).
 */
export class RetainedError extends StorageError {
  constructor(
    readonly path: string,
    readonly until: Date | undefined,
  ) {
    super('RETAINED', until ? `${path}: retained until ${until.toISOString()}` : `${path}: under legal hold`);
  }
}

export const isStorageError = (err: unknown, code?: StorageErrorCode): err is StorageError =>
  err instanceof StorageError && (code === undefined || err.code === code);
