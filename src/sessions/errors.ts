/**
 * Failures decided by the protocol-neutral session layer rather than by storage. Each front end
 * maps them in its one reply table (FTP: ftp/replies.ts, SFTP: sftp/status.ts).
 */
export const SESSION_ERROR_CODES = [
  'PERMISSION_DENIED', // the account lacks the permission the operation needs
] as const;
export type SessionErrorCode = (typeof SESSION_ERROR_CODES)[number];

export class SessionError extends Error {
  constructor(
    readonly code: SessionErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SessionError';
  }
}
