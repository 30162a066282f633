import type { Readable, Writable } from 'node:stream';

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
  write(path: string): Promise<UploadSink>;
  remove(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** The bucket and key a path maps to, for logs and events. */
  locate(path: string): { bucket: string; key: string };
}
