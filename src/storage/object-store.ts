import type { Readable, Writable } from 'node:stream';
import type { ObjectChecksum } from './checksums.js';
import type { DigestAlgorithm, StoredDigests } from './digests.js';
import type { ScanReport } from './scan.js';

/** A file or directory of an account's virtual tree. */
export interface Entry {
  /** Last path segment ("" for the root). */
  name: string;
  isDirectory: boolean;
  size: number;
  mtime: Date;
  etag?: string;
}

/** A committed object, as returned when an upload completes. */
export interface CommittedObject {
  bucket: string;
  key: string;
  size: number;
  etag?: string;
  /** Hex digests of the whole object, computed while it streamed in (absent for appends of large objects). */
  digests?: StoredDigests;
  /** Whether `digests` were stored as the object's metadata (single-request uploads). */
  digestsInMetadata?: boolean;
  /** The malware scan's verdict, for accounts that scan. */
  scan?: ScanReport;
  /** The checksum S3 verified and keeps with the object (s3.checksumAlgorithm), as it reported it. */
  checksum?: ObjectChecksum;
}

export interface WriteOptions {
  /**
   * Append instead of replacing: 'end' appends to whatever the file holds (APPE; a missing file
   * is created); a number resumes an upload at that offset, which must equal the file's current
   * size (REST n + STOR). The old object stays visible until the new one commits.
   */
  appendAt?: number | 'end';
  /**
   * With a numeric `appendAt`: the file as the caller just saw it (a `stat` that checked the offset).
   * The store appends to that version, guarded by its ETag, instead of looking the file up again;
   * a file changed or removed since fails with INVALID_RANGE.
   */
  existing?: Entry;
}

/** A digest of a whole file, and where it came from. */
export interface FileDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  size: number;
  /** 'stored': from what the upload computed; 'computed': the object was read to compute it. */
  source: 'stored' | 'computed';
}

/**
 * The writable end of an upload. `end()` commits: its 'finish' fires only after the store holds the
 * object. `destroy(err)` (or any error) aborts: nothing becomes visible.
 */
export interface UploadSink extends Writable {
  readonly bytesWritten: number;
  /** Resolves with the committed object after 'finish'; rejects when the upload failed or was aborted. */
  readonly committed: Promise<CommittedObject>;
}

export interface ReadOptions {
  /** Byte offset to start at (FTP REST). */
  start?: number;
}

/**
 * One account's view of the object store: virtual paths in, typed StorageErrors out. Paths are
 * normalised absolute virtual paths (see paths.resolveVirtualPath).
 */
export interface FileStore {
  readonly bucket: string;
  stat(path: string): Promise<Entry>;
  /** Every entry of a directory, page by page; throws NOT_FOUND for a missing directory. */
  list(path: string): AsyncIterable<Entry[]>;
  read(path: string, options?: ReadOptions): Promise<Readable>;
  write(path: string, options?: WriteOptions): Promise<UploadSink>;
  /**
   * The digest of a file: from what its upload computed, else by reading it when it is at most
   * `maxStreamBytes` long (default: the store's configured limit). Undefined when neither is possible.
   */
  digest(path: string, algorithm: DigestAlgorithm, options?: { maxStreamBytes?: number }): Promise<FileDigest | undefined>;
  remove(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** The bucket and key a path maps to, for logs and events. */
  locate(path: string): { bucket: string; key: string };
}
