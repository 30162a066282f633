import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Checksum } from './checksums.js';
import { DigestCache, type StoredAlgorithm } from './digests.js';
import type { MemoryBudget, MemoryOwner } from './memory-budget.js';
import type { FileStore } from './object-store.js';
import type { ObjectLockPolicy } from './object-lock.js';
import { KeyMapper } from './paths.js';
import { S3Directories } from './s3-directories.js';
import { S3Reads } from './s3-reads.js';
import { S3Rename } from './s3-rename.js';
import { MAX_COPY_OBJECT_BYTES, S3Bucket } from './s3-request.js';
import type { ObjectParams } from './s3-upload-sink.js';
import type { AccountScanPolicy } from './scan.js';
import { S3Writes } from './s3-writes.js';

export interface S3FileStoreOptions {
  client: S3Client;
  bucket: string;
  prefix: string;
  partSizeBytes: number;
  queueSize: number;
  renameDirectoryMaxObjects: number;
  /** Uploads onto a directory's name: refused (one ListObjectsV2 per upload) or allowed. */
  storeOntoDirectory: 'refuse' | 'allow';
  /** Digests computed as each upload streams in and stored with it. */
  uploadDigests: readonly StoredAlgorithm[];
  /** HASH of an object without stored digests reads it when it is at most this long. */
  hashMaxStreamBytes: number;
  /** Attempts of a download that S3 breaks (resumed from the byte reached). */
  maxAttempts: number;
  /** Shared budget for upload part buffers (all sessions); omitted: unbounded. */
  memoryBudget?: MemoryBudget;
  /** Who this store's uploads are charged to within the budget's shares (the session's client address and account). */
  memoryOwner?: MemoryOwner;
  /** Digests of multipart uploads (whose metadata was sent before the data); default: one per process. */
  digestCache?: DigestCache;
  /** Sent with every object this store creates (account policy, uploader metadata). */
  objectParams?: ObjectParams;
  /** Renames copy larger objects part by part (UploadPartCopy); at most CopyObject's 5 GiB limit. */
  multipartCopyThresholdBytes: number;
  /** Checksum S3 verifies on every upload and keeps with the object (s3.checksumAlgorithm); omitted: none. */
  checksumAlgorithm?: S3Checksum;
  /**
   * Object Lock of what this store creates (uploads, copies of a rename); with it, a STOR over a
   * file, the target of a rename, each object of a renamed directory and an RMD's marker are also
   * checked for a lock before anything is done (one HeadObject each).
   */
  objectLock?: ObjectLockPolicy;
  /** Malware scan of every upload before its commit (accounts[].scan); omitted: none. */
  scan?: AccountScanPolicy;
}

const processDigestCache = new DigestCache();

/**
 * One account's virtual tree on `bucket/prefix`, with "dir/" marker objects for empty directories:
 * the FileStore the FTP handlers use, composed of its directory semantics, reads, writes and
 * renames, which share one S3Bucket (where every S3 failure is classified).
 */
export class S3FileStore implements FileStore {
  readonly bucket: string;
  private readonly tree: S3Directories;
  private readonly reads: S3Reads;
  private readonly writes: S3Writes;
  private readonly renames: S3Rename;

  constructor(options: S3FileStoreOptions) {
    this.bucket = options.bucket;
    this.tree = new S3Directories(new S3Bucket(options.client, options.bucket), new KeyMapper(options.prefix), options.objectLock !== undefined);
    const digestCache = options.digestCache ?? processDigestCache;
    this.reads = new S3Reads(this.tree, {
      maxAttempts: options.maxAttempts,
      hashMaxStreamBytes: options.hashMaxStreamBytes,
      digestCache,
      checksumAlgorithm: options.checksumAlgorithm,
    });
    this.writes = new S3Writes(this.tree, {
      partSizeBytes: options.partSizeBytes,
      queueSize: options.queueSize,
      storeOntoDirectory: options.storeOntoDirectory,
      uploadDigests: options.uploadDigests,
      memoryBudget: options.memoryBudget,
      memoryOwner: options.memoryOwner,
      digestCache,
      objectParams: options.objectParams,
      checksumAlgorithm: options.checksumAlgorithm,
      objectLock: options.objectLock,
      scan: options.scan,
    });
    this.renames = new S3Rename(this.tree, {
      renameDirectoryMaxObjects: options.renameDirectoryMaxObjects,
      multipartCopyThresholdBytes: Math.min(options.multipartCopyThresholdBytes, MAX_COPY_OBJECT_BYTES),
      objectParams: options.objectParams,
      objectLock: options.objectLock,
    });
  }

  locate(path: string): { bucket: string; key: string } {
    const { keys } = this.tree;
    return { bucket: this.bucket, key: path === '/' ? keys.prefix : keys.fileKey(path) };
  }

  stat: FileStore['stat'] = (path) => this.tree.stat(path);
  list: FileStore['list'] = (path) => this.tree.list(path);
  mkdir: FileStore['mkdir'] = (path) => this.tree.mkdir(path);
  rmdir: FileStore['rmdir'] = (path) => this.tree.rmdir(path);
  read: FileStore['read'] = (path, options) => this.reads.read(path, options);
  digest: FileStore['digest'] = (path, algorithm, options) => this.reads.digest(path, algorithm, options);
  write: FileStore['write'] = (path, options) => this.writes.write(path, options);
  remove: FileStore['remove'] = (path) => this.writes.remove(path);
  rename: FileStore['rename'] = (from, to) => this.renames.rename(from, to);
}
