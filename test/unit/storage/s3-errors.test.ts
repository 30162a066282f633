import { NoSuchBucket, NoSuchKey, NotFound, S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { StorageError, type StorageErrorCode } from '../../../src/storage/errors.js';
import { classifyS3Error } from '../../../src/storage/s3-errors.js';

const SECRET = 'SECRET-S3-TEXT';

/** An S3 error as the SDK throws it for a response with this error code and status. */
function s3Error(name: string, status: number, fault: 'client' | 'server' = status >= 500 ? 'server' : 'client'): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: fault,
    $metadata: { httpStatusCode: status, requestId: 'REQ-' + SECRET },
    message: `${SECRET}: ${name} from the store`,
  });
}

function networkError(code: string): Error {
  return Object.assign(new Error(`read ${code} ${SECRET}`), { code, errno: -104, syscall: 'read' });
}

const cases: Array<[string, unknown, StorageErrorCode]> = [
  ['NoSuchKey (SDK class)', new NoSuchKey({ message: SECRET, $metadata: { httpStatusCode: 404 } }), 'NOT_FOUND'],
  ['NotFound from HeadObject (SDK class, 404 metadata)', new NotFound({ message: SECRET, $metadata: { httpStatusCode: 404 } }), 'NOT_FOUND'],
  ['an unnamed error with a 404 status', s3Error('UnknownError', 404), 'NOT_FOUND'],
  ['NoSuchUpload', s3Error('NoSuchUpload', 404), 'NOT_FOUND'],
  ['NoSuchBucket (SDK class, 404): a deployment problem, not a missing file', new NoSuchBucket({ message: SECRET, $metadata: { httpStatusCode: 404 } }), 'UNAVAILABLE'],
  ['AccessDenied', s3Error('AccessDenied', 403), 'DENIED'],
  ['InvalidAccessKeyId', s3Error('InvalidAccessKeyId', 403), 'DENIED'],
  ['SignatureDoesNotMatch', s3Error('SignatureDoesNotMatch', 403), 'DENIED'],
  ['an unnamed error with a 403 status', s3Error('Whatever', 403), 'DENIED'],
  ['SlowDown (503)', s3Error('SlowDown', 503), 'UNAVAILABLE'],
  ['ServiceUnavailable (503)', s3Error('ServiceUnavailable', 503), 'UNAVAILABLE'],
  ['InternalError (500)', s3Error('InternalError', 500), 'UNAVAILABLE'],
  ['an unnamed 502', s3Error('BadGateway', 502), 'UNAVAILABLE'],
  ['InvalidRange (416)', s3Error('InvalidRange', 416), 'INVALID_RANGE'],
  ['an unnamed 416', s3Error('RangeNotSatisfiable', 416), 'INVALID_RANGE'],
  ['EntityTooLarge', s3Error('EntityTooLarge', 400), 'STORAGE_FULL'],
  ['an unnamed 507', s3Error('Full', 507), 'STORAGE_FULL'],
  ['KeyTooLongError', s3Error('KeyTooLongError', 400), 'NAME_TOO_LONG'],
  ['ECONNRESET', networkError('ECONNRESET'), 'UNAVAILABLE'],
  ['ECONNREFUSED', networkError('ECONNREFUSED'), 'UNAVAILABLE'],
  ['ETIMEDOUT', networkError('ETIMEDOUT'), 'UNAVAILABLE'],
  ['EPIPE', networkError('EPIPE'), 'UNAVAILABLE'],
  ['TimeoutError by name', Object.assign(new Error(SECRET), { name: 'TimeoutError' }), 'UNAVAILABLE'],
  ['AbortError (Error with the name)', Object.assign(new Error(SECRET), { name: 'AbortError' }), 'ABORTED'],
  ['AbortError (DOMException)', new DOMException(SECRET, 'AbortError'), 'ABORTED'],
  ['AbortError even with a status', Object.assign(new Error(SECRET), { name: 'AbortError', $metadata: { httpStatusCode: 500 } }), 'ABORTED'],
  ['an unknown S3 error code (400)', s3Error('InvalidArgument', 400), 'INTERNAL'],
  ['a plain Error', new Error(SECRET), 'INTERNAL'],
  ['an Error with an unknown code', Object.assign(new Error(SECRET), { code: 'ESOMETHING' }), 'INTERNAL'],
  ['a TypeError', new TypeError(SECRET), 'INTERNAL'],
  ['a string', SECRET, 'INTERNAL'],
  ['null', null, 'INTERNAL'],
  ['undefined', undefined, 'INTERNAL'],
];

describe('classifyS3Error', () => {
  it.each(cases)('%s → %s', (_label, err, code) => {
    const classified = classifyS3Error(err);
    expect(classified).toBeInstanceOf(StorageError);
    expect(classified.code).toBe(code);
  });

  it.each(cases)('%s: the message never carries the original S3 text', (_label, err) => {
    const classified = classifyS3Error(err);
    expect(classified.message).not.toContain(SECRET);
    expect(classified.message).not.toMatch(/REQ-/);
    expect(classified.message.length).toBeGreaterThan(0);
  });

  it('keeps the original error as the cause, for the logs', () => {
    const original = s3Error('SlowDown', 503);
    expect(classifyS3Error(original).cause).toBe(original);
    const reset = networkError('ECONNRESET');
    expect(classifyS3Error(reset).cause).toBe(reset);
  });

  it('passes a StorageError through unchanged', () => {
    const already = new StorageError('NOT_EMPTY', 'Directory not empty');
    expect(classifyS3Error(already)).toBe(already);
  });

  it('a 4xx without a known name is not mistaken for a transient failure', () => {
    expect(classifyS3Error(s3Error('MethodNotAllowed', 405)).code).toBe('INTERNAL');
  });

  it('bytes the store checksummed otherwise than the request said: CHECKSUM_MISMATCH (451, nothing stored)', () => {
    expect(classifyS3Error(s3Error('BadDigest', 400)).code).toBe('CHECKSUM_MISMATCH');
    expect(classifyS3Error(s3Error('XAmzContentSHA256Mismatch', 400)).code).toBe('CHECKSUM_MISMATCH');
    const invalid = Object.assign(s3Error('InvalidRequest', 400), { message: 'Value for x-amz-checksum-sha256 header is invalid.' });
    expect(classifyS3Error(invalid).code).toBe('CHECKSUM_MISMATCH');
    expect(classifyS3Error(s3Error('InvalidRequest', 400)).code).toBe('INTERNAL');
  });
});
