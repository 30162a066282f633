import type { Readable, Writable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import type { S3Checksum } from './checksums.js';
import type { DigestCache, StoredAlgorithm } from './digests.js';
import { StorageError, isStorageError } from './errors.js';
import type { MemoryBudget, MemoryOwner } from './memory-budget.js';
import type { CommittedObject, UploadSink, WriteOptions } from './object-store.js';
import { objectLockParams, retainedError, type ObjectLockPolicy } from './object-lock.js';
import type { FileEntry, S3Directories } from './s3-directories.js';
import { classifyS3Error } from './s3-errors.js';
import { MIN_PART_BYTES } from './s3-request.js';
import { S3UploadSink, type ObjectParams, type UploadOptions } from './s3-upload-sink.js';
import { UploadScan, type AccountScanPolicy } from './scan.js';
import { baseName } from './paths.js';

export interface S3WriteOptions {
  partSizeBytes: number;
  queueSize: number;
  /** Uploads onto a directory's name: refused (one ListObjectsV2 per upload) or allowed. */
  storeOntoDirectory: 'refuse' | 'allow';
  /** Digests computed as each upload streams in and stored with it; omitted: SHA-256 and MD5. */
  uploadDigests?: readonly StoredAlgorithm[];
  /** Shared budget for upload part buffers (all sessions); omitted: unbounded. */
  memoryBudget?: MemoryBudget;
  /** Who this store's uploads are charged to within the budget's shares. */
  memoryOwner?: MemoryOwner;
  /** Where the digests of multipart uploads are kept after the commit. */
  digestCache: DigestCache;
  /** Sent with every object this store creates (account policy, uploader metadata). */
  objectParams?: ObjectParams;
  /** Checksum S3 verifies on every upload and keeps with the object (s3.checksumAlgorithm); omitted: none. */
  checksumAlgorithm?: S3Checksum;
  /**
   * Object Lock of what this store uploads (accounts[].retention, legalHold); with it, a STOR over
   * a file first checks that file for a lock (one HeadObject).
   */
  objectLock?: ObjectLockPolicy;
  /** Malware scan of every upload before its commit (accounts[].scan); omitted: none. */
  scan?: AccountScanPolicy;
}

/** Uploads (STOR, STOU), appends (APPE, REST + STOR) and deletes (DELE) of one account's files. */
export class S3Writes {
  constructor(
    private readonly tree: S3Directories,
    private readonly options: S3WriteOptions,
  ) {}

  async write(path: string, options: WriteOptions = {}): Promise<UploadSink> {
    const key = this.tree.keys.fileKey(path);
    const isDirectory =
      this.options.storeOntoDirectory === 'allow'
        ? Promise.resolve()
        : this.tree.isDirectory(path).then((found) => {
            if (found) throw new StorageError('IS_DIRECTORY', 'Is a directory');
          });
    const { appendAt } = options;
    // A new upload looks for a directory of that name while the data flows, and commits only if
    // there is none: one S3 round trip less before the 150 reply.
    if (appendAt === undefined || appendAt === 0) {
      isDirectory.catch(() => undefined);
      // A locked object is not replaced: refused before any byte flows.
      if (this.options.objectLock) await this.tree.refuseIfRetained(path, key);
      return this.newUpload(key, isDirectory);
    }
    await isDirectory;
    // The entry the caller saw came from this store's stat, which carries the lock (FileEntry).
    const seen = typeof appendAt === 'number' ? (options.existing as FileEntry | undefined) : undefined;
    const existing = seen ?? (await this.tree.headFile(path));
    const retained = retainedError(path, existing?.lock);
    if (retained) throw retained;
    if (appendAt !== 'end' && appendAt !== (existing?.size ?? 0)) {
      throw new StorageError('INVALID_RANGE', `Restart offset ${appendAt} is not the file size ${existing?.size ?? 0}`);
    }
    try {
      return await this.append(key, existing);
    } catch (err) {
      // The version the caller saw is gone: for the caller, its offset no longer is the file's size.
      if (seen && (isStorageError(err, 'CHANGED') || isStorageError(err, 'NOT_FOUND'))) {
        throw new StorageError('INVALID_RANGE', `Restart offset ${appendAt} is not the file size any more`, { cause: err });
      }
      throw err;
    }
  }

  /** An upload that starts with the bytes of `existing` (the object at `key`, if any). */
  private async append(key: string, existing: FileEntry | undefined): Promise<UploadSink> {
    if (!existing || existing.size === 0) return this.newUpload(key);
    // A scanned account streams the old bytes too (below): the scanner must see the whole object.
    if (existing.size >= MIN_PART_BYTES && !this.options.scan) {
      if (!existing.etag) throw new StorageError('INTERNAL', 'Storage returned no ETag');
      const upload = this.newUpload(key, undefined, { size: existing.size, etag: existing.etag });
      // Server-side copy first: a store that cannot copy parts is refused before any data flows.
      await upload.ready;
      return upload;
    }
    // Under S3's minimum part size the old bytes cannot be a copied part: they are read (< 5 MiB)
    // and streamed ahead of the new ones into the same commit-or-abort upload as any STOR, straight
    // into its part buffers, which come from the shared memory budget. Nothing else holds them: a
    // session never waits for budget while holding some outside its upload (no deadlock).
    const sink = this.newUpload(key);
    try {
      await this.streamInto(sink, key, existing.etag);
    } catch (err) {
      const error = classifyS3Error(err);
      sink.destroy(error);
      throw error;
    }
    return sink;
  }

  async remove(path: string): Promise<void> {
    const { s3, keys } = this.tree;
    const key = keys.fileKey(path);
    const file = await this.tree.headFile(path);
    if (!file) throw await this.tree.noFileAt(path);
    // On a versioned bucket (Object Lock needs one) S3 accepts this delete as a delete marker: the
    // file would vanish from view while its version stays. Refused here instead.
    const retained = retainedError(path, file.lock);
    if (retained) throw retained;
    await s3.send(s3.client.send(new DeleteObjectCommand({ Bucket: s3.name, Key: key })));
  }

  private newUpload(key: string, beforeCommit?: Promise<void>, copySource?: UploadOptions['copySource']): S3UploadSink {
    const { s3, keys } = this.tree;
    // Quarantine accounts stage multipart uploads under a unique key: the final one depends on the verdict.
    const scanner = this.options.scan && new UploadScan(this.options.scan, baseName(key), { bucket: s3.name, key }, key.slice(keys.prefix.length));
    const sink = new S3UploadSink({
      client: s3.client,
      bucket: scanner?.stagingKey ? scanner.stagingBucket : s3.name,
      key: scanner?.stagingKey ?? key,
      scanner,
      partSize: this.options.partSizeBytes,
      queueSize: this.options.queueSize,
      budget: this.options.memoryBudget,
      memoryOwner: this.options.memoryOwner,
      // The retention runs from the start of the upload.
      objectParams: { ...this.options.objectParams, ...objectLockParams(this.options.objectLock) },
      beforeCommit,
      digestAlgorithms: this.options.uploadDigests,
      copySource,
      checksumAlgorithm: this.options.checksumAlgorithm,
    });
    sink.committed.then(
      (object: CommittedObject) => {
        // No digests (an append, or s3.uploadDigests: []): nothing to cache.
        if (object.digests && Object.keys(object.digests).length && !object.digestsInMetadata) {
          this.options.digestCache.set(object.bucket, object.key, object.etag, object.digests);
        }
      },
      () => undefined,
    );
    return sink;
  }

  /** Writes an object's bytes into `sink`, provided it still is the version with `etag`. */
  private async streamInto(sink: Writable, key: string, etag: string | undefined): Promise<void> {
    const { s3 } = this.tree;
    const res = await s3.send(s3.client.send(new GetObjectCommand({ Bucket: s3.name, Key: key, IfMatch: etag })));
    const body = res.Body as Readable;
    // Checked on the answer too: some stores (s3rver) ignore If-Match.
    if (etag !== undefined && res.ETag !== etag) {
      body?.destroy();
      throw new StorageError('CHANGED', 'The file changed meanwhile');
    }
    try {
      for await (const chunk of body) {
        await new Promise<void>((resolve, reject) => sink.write(chunk as Buffer, (err) => (err ? reject(err) : resolve())));
      }
    } finally {
      body.destroy();
    }
  }
}
