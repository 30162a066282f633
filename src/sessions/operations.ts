import type { ScanReport } from '../storage/scan.js';

/** What a finished (or failed) file operation reports, for audit logs, metrics and events. */
export interface OperationEvent {
  op: 'STOR' | 'STOU' | 'APPE' | 'RETR' | 'DELE' | 'MKD' | 'RMD' | 'RENAME';
  sessionId: string;
  user: string;
  clientIp: string;
  /** The virtual path (for RENAME: the new one). */
  path: string;
  /** For RENAME: the old virtual path. */
  from?: string;
  bucket: string;
  key: string;
  bytes?: number;
  etag?: string;
  /** The checksum S3 verified and keeps, `<algorithm>:<base64>` (uploads with s3.checksumAlgorithm). */
  checksum?: string;
  durationMs: number;
  result: 'ok' | 'error';
  /** The reply sent: the FTP reply code, or with protocol 'sftp' the SFTP status code (0: OK). */
  code: number;
  /** The front end that served it; absent means FTP. */
  protocol?: 'ftp' | 'sftp';
  /** Our error code (StorageErrorCode / FtpErrorCode) when result is 'error'. */
  error?: string;
  /** Uploads of accounts that scan: the malware scanner's verdict and what was done. */
  scan?: ScanReport;
}

export type OperationListener = (event: OperationEvent) => void;
