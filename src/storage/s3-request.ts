import { HeadObjectCommand, ListObjectsV2Command, type HeadObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { classifyS3Error } from './s3-errors.js';

const MiB = 1024 * 1024;

/** Parts of one multipart upload at most. */
export const MAX_PARTS = 10_000;
/** Bytes of one part at least (all but the last part of an upload). */
export const MIN_PART_BYTES = 5 * MiB;
/** Bytes of one part at most. */
export const MAX_PART_BYTES = 5 * 1024 * MiB;
/** The largest object one CopyObject copies; larger ones are copied part by part (UploadPartCopy). */
export const MAX_COPY_OBJECT_BYTES = 5 * 1024 * MiB;

/**
 * The `x-amz-copy-source` of an object: "bucket/key", the key URL-encoded with its slashes kept
 * (the SDK sends the value as given, and S3 decodes it once).
 */
export function encodeCopySource(bucket: string, key: string): string {
  return `${bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
}

/**
 * Whether the store lacks the operation that failed (Swift's s3api answers NotImplemented or 501
 * to object tagging and to UploadPartCopy on some versions); the raw SDK error, before classification.
 */
export function isNotImplemented(err: unknown): boolean {
  const e = (err ?? {}) as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotImplemented' || e.Code === 'NotImplemented' || e.$metadata?.httpStatusCode === 501;
}

/** Waits for one S3 request; any failure comes out as a classified StorageError. */
export async function s3Request<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (err) {
    throw classifyS3Error(err);
  }
}

/** The requests a store makes on one bucket, with every failure classified into a StorageError. */
export class S3Bucket {
  constructor(
    readonly client: S3Client,
    readonly name: string,
  ) {}

  /** `request` (a `client.send(...)`), its failure classified. */
  send<T>(request: Promise<T>): Promise<T> {
    return s3Request(request);
  }

  /**
   * The object's headers; undefined when there is no object of that key. `checksums`: with the
   * checksum S3 keeps (x-amz-checksum-mode), asked only where checksums are in use: a store that
   * knows none need not be sent the header.
   */
  async head(key: string, options: { checksums?: boolean } = {}): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, ...(options.checksums && { ChecksumMode: 'ENABLED' as const }) }));
    } catch (err) {
      const error = classifyS3Error(err);
      if (error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** The first object under a key prefix, if any: how a directory's existence is decided. */
  async firstUnder(prefix: string): Promise<{ Key?: string; LastModified?: Date } | undefined> {
    const page = await this.send(this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, MaxKeys: 1 })));
    return page.Contents?.[0];
  }
}
