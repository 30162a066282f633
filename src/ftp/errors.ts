/** Failures that belong to the FTP side of a transfer rather than to storage. */
export const FTP_ERROR_CODES = [
  'PERMISSION_DENIED', // the account lacks the permission the command needs
  'NO_DATA_CONNECTION', // PASV/PORT missing, or the client never connected
  'DATA_CONNECTION_LOST', // the data connection broke before the transfer ended
  'CONTROL_CONNECTION_LOST', // the client left (or the server shut down) during a transfer
  'BAD_SEQUENCE', // RNTO without RNFR, and the like
  'BAD_ARGUMENT',
  'NOT_IMPLEMENTED_PARAMETER',
  'PROTECTION_REQUIRED', // TLS is required and the data connection would be in the clear (no PROT P)
  'INVALID_RESTART', // REST n + STOR where n is not the file's current size (RFC 3659 554)
  'TOO_MANY_PASSIVE_PORTS', // PASV/EPSV beyond ftp.passive.maxPerClient ports held by one client address
  'NOT_AVAILABLE', // HASH of a file whose digest is neither stored nor small enough to compute
  'TRANSFER_ABORTED', // ABOR or QUIT during the transfer, or its data connection idle too long
] as const;
export type FtpErrorCode = (typeof FTP_ERROR_CODES)[number];

export class FtpError extends Error {
  constructor(
    readonly code: FtpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'FtpError';
  }
}
