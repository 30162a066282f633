import { StorageError } from './errors.js';

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload']);
const DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'Forbidden']);
/** The store computed another checksum (or payload hash) of the bytes than the one the request carried. */
const MISMATCH = new Set(['BadDigest', 'InvalidDigest', 'XAmzContentChecksumMismatch', 'XAmzContentSHA256Mismatch']);
const TOO_LARGE = new Set(['EntityTooLarge', 'QuotaExceeded', 'InsufficientStorage']);
const TRANSIENT = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ThrottlingException',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * Classifies any error thrown by the AWS SDK (or the network under it) into a StorageError. The
 * original stays as `cause` for the logs; the message is what a client may see.
 */
export function classifyS3Error(err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  const e = (err ?? {}) as SdkError;
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'AbortError') return new StorageError('ABORTED', 'Transfer aborted', { cause: err });
  if (NOT_FOUND.has(name) || status === 404) {
    if (name === 'NoSuchBucket') return new StorageError('UNAVAILABLE', 'Storage bucket unavailable', { cause: err });
    return new StorageError('NOT_FOUND', 'No such file or directory', { cause: err });
  }
  if (name === 'NoSuchBucket') return new StorageError('UNAVAILABLE', 'Storage bucket unavailable', { cause: err });
  const message = (e as { message?: unknown }).message;
  if (MISMATCH.has(name) || (name === 'InvalidRequest' && typeof message === 'string' && /checksum/i.test(message))) {
    return new StorageError('CHECKSUM_MISMATCH', 'The storage received other bytes than were sent; nothing was stored', { cause: err });
  }
  if (DENIED.has(name) || status === 403) return new StorageError('DENIED', 'Storage access denied', { cause: err });
  if (name === 'PreconditionFailed' || status === 412) return new StorageError('CHANGED', 'The file changed meanwhile', { cause: err });
  if (name === 'InvalidRange' || status === 416) return new StorageError('INVALID_RANGE', 'Restart offset beyond end of file', { cause: err });
  if (TOO_LARGE.has(name) || status === 507) return new StorageError('STORAGE_FULL', 'Storage refused the file size', { cause: err });
  if (name === 'KeyTooLongError') return new StorageError('NAME_TOO_LONG', 'File name too long', { cause: err });
  if (TRANSIENT.has(name) || TRANSIENT.has(e.code ?? '') || (status !== undefined && status >= 500)) {
    return new StorageError('UNAVAILABLE', 'Storage temporarily unavailable', { cause: err });
  }
  return new StorageError('INTERNAL', 'Storage error', { cause: err });
}
