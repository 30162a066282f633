import { SessionError, type SessionErrorCode } from '../sessions/errors.js';
import { RetainedError, StorageError, type StorageErrorCode } from '../storage/errors.js';
import { FtpError, type FtpErrorCode } from './errors.js';

export interface Reply {
  code: number;
  message: string;
}

/**
 * The one table from typed errors to FTP replies (RFC 959 §4.2, RFC 3659 §5.5 for 554). Texts are
 * fixed here; nothing from S3 or a stack trace reaches a client.
 */
const STORAGE_REPLIES: Record<StorageErrorCode, Reply> = {
  NOT_FOUND: { code: 550, message: 'No such file or directory' },
  IS_DIRECTORY: { code: 550, message: 'Is a directory' },
  NOT_DIRECTORY: { code: 550, message: 'Not a directory' },
  ALREADY_EXISTS: { code: 550, message: 'File exists' },
  NOT_EMPTY: { code: 550, message: 'Directory not empty' },
  BAD_NAME: { code: 553, message: 'File name not allowed' },
  NAME_TOO_LONG: { code: 553, message: 'File name too long' },
  TOO_MANY_OBJECTS: { code: 550, message: 'Directory too large to rename' },
  INVALID_RANGE: { code: 554, message: 'Invalid REST parameter' },
  STORAGE_FULL: { code: 552, message: 'Exceeded storage allocation' },
  DENIED: { code: 550, message: 'Permission denied' },
  UNAVAILABLE: { code: 451, message: 'Storage temporarily unavailable, try again' },
  ABORTED: { code: 426, message: 'Connection closed; transfer aborted' },
  PARTIAL_RENAME: { code: 451, message: 'Rename incomplete: the file now exists under both names' },
  APPEND_UNSUPPORTED: { code: 504, message: 'Appending to a file of 5 MiB or more is not supported by this storage' },
  CHANGED: { code: 451, message: 'The file changed meanwhile; try again' },
  SCAN_REJECTED: { code: 550, message: 'Rejected by the malware scanner' },
  SCAN_UNAVAILABLE: { code: 451, message: 'Malware scanner unavailable; try again' },
  RETAINED: { code: 550, message: 'File is retained (Object Lock)' },
  CHECKSUM_MISMATCH: { code: 451, message: 'The storage received other bytes than were sent (checksum mismatch); nothing was stored, try again' },
  INTERNAL: { code: 451, message: 'Local error in processing' },
};

/**
 * Codes whose StorageError message is the reply text: written by the bridge for the client (the
 * file's name and the scanner's signature name), never S3 text.
 */
const STORAGE_DETAILED_REPLIES: ReadonlySet<StorageErrorCode> = new Set(['SCAN_REJECTED', 'SCAN_UNAVAILABLE']);

const SESSION_REPLIES: Record<SessionErrorCode, Reply> = {
  PERMISSION_DENIED: { code: 550, message: 'Permission denied' },
};

const FTP_REPLIES: Record<FtpErrorCode, Reply> = {
  PERMISSION_DENIED: { code: 550, message: 'Permission denied' },
  NO_DATA_CONNECTION: { code: 425, message: "Can't open data connection" },
  DATA_CONNECTION_LOST: { code: 426, message: 'Connection closed; transfer aborted' },
  CONTROL_CONNECTION_LOST: { code: 426, message: 'Connection closed; transfer aborted' },
  BAD_SEQUENCE: { code: 503, message: 'Bad sequence of commands' },
  BAD_ARGUMENT: { code: 501, message: 'Syntax error in parameters or arguments' },
  NOT_IMPLEMENTED_PARAMETER: { code: 504, message: 'Command not implemented for that parameter' },
  // RFC 4217 §9: a data command whose PROT level the server's policy does not accept.
  PROTECTION_REQUIRED: { code: 521, message: 'Data connection cannot be opened with this PROT setting' },
  INVALID_RESTART: { code: 554, message: 'Invalid REST parameter' },
  TOO_MANY_PASSIVE_PORTS: { code: 425, message: 'Too many passive ports open from your address; use or close them first' },
  NOT_AVAILABLE: { code: 550, message: 'Requested action not taken: not available' },
  TRANSFER_ABORTED: { code: 426, message: 'Transfer aborted' },
};

const INTERNAL_REPLY: Reply = { code: 451, message: 'Local error in processing' };

/** The reply for any error a command handler throws. */
export function replyFor(err: unknown): Reply {
  // Built from the path the client named and the date S3 reported, never from S3's text.
  if (err instanceof RetainedError) {
    return { code: 550, message: err.until ? `${err.path}: retained until ${err.until.toISOString()}` : `${err.path}: under legal hold` };
  }
  if (err instanceof StorageError) {
    const reply = STORAGE_REPLIES[err.code];
    return STORAGE_DETAILED_REPLIES.has(err.code) && err.message ? { code: reply.code, message: err.message } : reply;
  }
  if (err instanceof SessionError) return SESSION_REPLIES[err.code];
  if (err instanceof FtpError) return { code: FTP_REPLIES[err.code].code, message: err.message || FTP_REPLIES[err.code].message };
  return INTERNAL_REPLY;
}

export { safeReplyLetter, safeReplyText } from './reply-text.js';

/**
 * Every refused login, whatever the reason (unknown user, wrong password, address not allowed,
 * TLS required, hook refusal or time-out): one reply, so it tells nothing about the account.
 */
export const LOGIN_REFUSED: Reply = { code: 530, message: 'Login incorrect' };

/** The right password of an account that has `maxConnections` sessions open already; no failed login. */
export const ACCOUNT_SESSIONS_EXCEEDED: Reply = { code: 530, message: 'Too many sessions for this account' };

/** A client banned by the brute-force guard, at connect and at PASS; the connection is then closed. */
export const CLIENT_BANNED: Reply = { code: 421, message: 'Too many failed logins; try again later' };
