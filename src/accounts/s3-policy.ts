import type { AccountConfig } from '../config/schema.js';
import type { ObjectParams } from '../storage/s3-upload-sink.js';

/** Header-safe form of a value that may hold non-ASCII characters (user names may). */
const headerSafe = (v: string) => (/^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v));

/**
 * The request parameters every object uploaded for an account carries: its storage class,
 * encryption, tags and metadata, plus who sent it and how (`x-amz-meta-ftp-user`,
 * `x-amz-meta-ftp-client-ip`, `x-amz-meta-uploader-protocol`) unless `uploaderMetadata` is off.
 */
export function objectParamsFor(account: AccountConfig, session: { clientIp: string; protocol?: 'ftp' | 'sftp' }, uploaderMetadata: boolean): ObjectParams {
  const metadata: Record<string, string> = { ...account.metadata };
  if (uploaderMetadata) {
    metadata['ftp-user'] = headerSafe(account.username);
    metadata['ftp-client-ip'] = session.clientIp;
    metadata['uploader-protocol'] = session.protocol ?? 'ftp';
  }
  const tags = Object.entries(account.tags ?? {});
  return {
    ...(Object.keys(metadata).length ? { Metadata: metadata } : {}),
    ...(tags.length ? { Tagging: new URLSearchParams(tags).toString() } : {}),
    ...(account.storageClass ? { StorageClass: account.storageClass as ObjectParams['StorageClass'] } : {}),
    ...(account.serverSideEncryption ? { ServerSideEncryption: account.serverSideEncryption } : {}),
    ...(account.sseKmsKeyId ? { SSEKMSKeyId: account.sseKmsKeyId } : {}),
  };
}
