import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { StorageError } from './errors.js';
import type { Entry } from './object-store.js';
import { retainedError, type ObjectLockState } from './object-lock.js';
import { KeyMapper, baseName } from './paths.js';
import type { S3Bucket } from './s3-request.js';

/** A file as a HeadObject describes it, with its Object Lock state. */
export type FileEntry = Entry & { lock?: ObjectLockState };

/**
 * Directory semantics of one account's virtual tree on `bucket/prefix`: a file is an object, a
 * directory is any key prefix "dir/" that holds objects, and an empty directory is a "dir/" marker
 * object. What the other parts of the store ask of the tree (is this a file, is that a directory)
 * is answered here.
 */
export class S3Directories {
  constructor(
    readonly s3: S3Bucket,
    readonly keys: KeyMapper,
    /**
     * The account writes with Object Lock (accounts[].retention, legalHold): what would replace or
     * delete an object (STOR over a file, the target of a rename, an RMD's marker) first checks it
     * for a lock (one HeadObject each).
     */
    readonly checksLocks: boolean,
  ) {}

  async stat(path: string): Promise<FileEntry> {
    if (path === '/') return dirEntry('', new Date());
    const file = await this.headFile(path);
    if (file) return file;
    const marker = await this.s3.firstUnder(this.keys.dirPrefix(path));
    if (marker) return dirEntry(baseName(path), marker.LastModified ?? new Date());
    throw new StorageError('NOT_FOUND', 'No such file or directory');
  }

  async *list(path: string): AsyncIterable<Entry[]> {
    const prefix = this.keys.dirPrefix(path);
    const seenDirs = new Set<string>();
    let token: string | undefined;
    let first = true;
    do {
      const page = await this.s3.send(this.s3.client.send(
        new ListObjectsV2Command({ Bucket: this.s3.name, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
      ));
      const entries: Entry[] = [];
      for (const cp of page.CommonPrefixes ?? []) {
        const name = (cp.Prefix ?? '').slice(prefix.length, -1);
        if (name === '' || seenDirs.has(name)) continue;
        seenDirs.add(name);
        entries.push(dirEntry(name, new Date()));
      }
      for (const obj of page.Contents ?? []) {
        const key = obj.Key ?? '';
        if (key === prefix) continue; // the listed directory's own marker
        const name = key.slice(prefix.length);
        entries.push({
          name,
          isDirectory: false,
          size: obj.Size ?? 0,
          mtime: obj.LastModified ?? new Date(0),
          etag: obj.ETag,
        });
      }
      if (first && path !== '/' && !page.KeyCount && !(page.Contents ?? []).length && !(page.CommonPrefixes ?? []).length) {
        // Nothing under the prefix: a file of that name, or nothing at all.
        if (await this.headFile(path)) throw new StorageError('NOT_DIRECTORY', 'Not a directory');
        throw new StorageError('NOT_FOUND', 'No such file or directory');
      }
      first = false;
      yield entries;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async mkdir(path: string): Promise<void> {
    if (path === '/') throw new StorageError('ALREADY_EXISTS', 'Directory already exists');
    const prefix = this.keys.dirPrefix(path);
    if (await this.headFile(path)) throw new StorageError('ALREADY_EXISTS', 'A file of that name exists');
    if (await this.s3.firstUnder(prefix)) throw new StorageError('ALREADY_EXISTS', 'Directory already exists');
    await this.s3.send(this.s3.client.send(new PutObjectCommand({ Bucket: this.s3.name, Key: prefix, Body: '', ContentLength: 0 })));
  }

  async rmdir(path: string): Promise<void> {
    if (path === '/') throw new StorageError('DENIED', 'Cannot remove the root directory');
    const prefix = this.keys.dirPrefix(path);
    const page = await this.s3.send(this.s3.client.send(new ListObjectsV2Command({ Bucket: this.s3.name, Prefix: prefix, MaxKeys: 2 })));
    const keys = (page.Contents ?? []).map((o) => o.Key);
    if (!keys.length) {
      if (await this.headFile(path)) throw new StorageError('NOT_DIRECTORY', 'Not a directory');
      throw new StorageError('NOT_FOUND', 'No such file or directory');
    }
    if (keys.some((k) => k !== prefix)) throw new StorageError('NOT_EMPTY', 'Directory not empty');
    if (this.checksLocks) await this.refuseIfRetained(path, prefix);
    await this.s3.send(this.s3.client.send(new DeleteObjectCommand({ Bucket: this.s3.name, Key: prefix })));
  }

  /** The file at `path`; undefined when there is none (there may be a directory of that name). */
  async headFile(path: string): Promise<FileEntry | undefined> {
    const res = await this.s3.head(this.keys.fileKey(path));
    if (!res) return undefined;
    const { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus } = res;
    return {
      name: baseName(path),
      isDirectory: false,
      size: res.ContentLength ?? 0,
      mtime: res.LastModified ?? new Date(0),
      etag: res.ETag,
      ...(ObjectLockMode || ObjectLockLegalHoldStatus ? { lock: { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus } } : {}),
    };
  }

  /** Throws RETAINED (naming `name`) when the object at `key` is locked; a missing object is not. */
  async refuseIfRetained(name: string, key: string): Promise<void> {
    const retained = retainedError(name, await this.lockOf(key));
    if (retained) throw retained;
  }

  /** The Object Lock state of the object at `key`; undefined when there is none. */
  async lockOf(key: string): Promise<ObjectLockState | undefined> {
    const head = await this.s3.head(key);
    if (!head) return undefined;
    const { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus } = head;
    return { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus };
  }

  /** Whether a directory of that name exists (an object under "path/"). */
  async isDirectory(path: string): Promise<boolean> {
    return (await this.s3.firstUnder(this.keys.dirPrefix(path))) !== undefined;
  }

  /** The error for a file operation on a path that holds no file: IS_DIRECTORY or NOT_FOUND. */
  async noFileAt(path: string, notFound?: StorageError): Promise<StorageError> {
    if (await this.isDirectory(path)) return new StorageError('IS_DIRECTORY', 'Is a directory');
    return notFound ?? new StorageError('NOT_FOUND', 'No such file or directory');
  }
}

function dirEntry(name: string, mtime: Date): Entry {
  return { name, isDirectory: true, size: 0, mtime };
}
