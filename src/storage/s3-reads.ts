import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { checksumOf, type S3Checksum } from './checksums.js';
import { createDigest, digestsFromMetadata, type DigestAlgorithm, type DigestCache, type StoredDigests } from './digests.js';
import type { FileDigest, ReadOptions } from './object-store.js';
import type { S3Directories } from './s3-directories.js';
import { classifyS3Error } from './s3-errors.js';
import { resumableRead } from './s3-resumable-read.js';

export interface S3ReadOptions {
  /** Attempts of a download that S3 breaks (resumed from the byte reached). */
  maxAttempts: number;
  /** HASH of an object without stored digests reads it when it is at most this long. */
  hashMaxStreamBytes: number;
  /** Digests of multipart uploads (whose metadata was sent before the data). */
  digestCache: DigestCache;
  /** Checksum S3 verifies and keeps with uploads (s3.checksumAlgorithm); HASH/XCRC answer from it. */
  checksumAlgorithm: S3Checksum | undefined;
}

/** Downloads (RETR, with REST) and digests (HASH) of one account's files. */
export class S3Reads {
  constructor(
    private readonly tree: S3Directories,
    private readonly options: S3ReadOptions,
  ) {}

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const { s3, keys } = this.tree;
    const key = keys.fileKey(path);
    const start = options.start ?? 0;
    try {
      const res = await s3.client.send(
        new GetObjectCommand({ Bucket: s3.name, Key: key, Range: start > 0 ? `bytes=${start}-` : undefined }),
      );
      return resumableRead({ client: s3.client, bucket: s3.name, key, start, first: res, maxAttempts: this.options.maxAttempts });
    } catch (err) {
      const error = classifyS3Error(err);
      if (error.code === 'NOT_FOUND') throw await this.tree.noFileAt(path, error);
      if (error.code === 'INVALID_RANGE') {
        // "bytes=size-" is unsatisfiable for S3, yet resuming a complete download is legitimate.
        const file = await this.tree.headFile(path);
        if (file && file.size === start) return Readable.from([]);
      }
      throw error;
    }
  }

  async digest(path: string, algorithm: DigestAlgorithm, options: { maxStreamBytes?: number } = {}): Promise<FileDigest | undefined> {
    const { s3, keys } = this.tree;
    const key = keys.fileKey(path);
    const head = await s3.head(key, { checksums: this.options.checksumAlgorithm !== undefined });
    if (!head) throw await this.tree.noFileAt(path);
    const size = head.ContentLength ?? 0;
    // The checksum S3 keeps has the lowest precedence: the bridge's own digests are exact.
    const stored: StoredDigests = {
      ...checksumDigests(head),
      ...this.options.digestCache.get(s3.name, key, head.ETag),
      ...digestsFromMetadata(head.Metadata),
    };
    const hex = stored[algorithm];
    if (hex) return { algorithm, hex, size, source: 'stored' };
    const max = options.maxStreamBytes ?? this.options.hashMaxStreamBytes;
    if (size > max) return undefined;
    const res = await s3.send(s3.client.send(new GetObjectCommand({ Bucket: s3.name, Key: key, IfMatch: head.ETag })));
    const hash = createDigest(algorithm);
    try {
      for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
    } catch (err) {
      throw classifyS3Error(err);
    }
    return { algorithm, hex: hash.digest('hex'), size, source: 'computed' };
  }
}

/**
 * The digests a checksum S3 keeps gives for the whole object: SHA-256 and CRC32 when it covers the
 * object's bytes (a single-request upload, or a full-object multipart checksum), not a composite one.
 */
function checksumDigests(head: Parameters<typeof checksumOf>[0]): StoredDigests {
  const checksum = checksumOf(head);
  if (!checksum || checksum.type !== 'FULL_OBJECT') return {};
  const hex = Buffer.from(checksum.value, 'base64').toString('hex');
  if (checksum.algorithm === 'SHA256') return { 'SHA-256': hex };
  if (checksum.algorithm === 'CRC32') return { CRC32: hex };
  return {};
}
