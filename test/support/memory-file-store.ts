import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { createDigest, type DigestAlgorithm } from '../../src/storage/digests.js';
import { StorageError } from '../../src/storage/errors.js';
import type { CommittedObject, Entry, FileDigest, FileStore, ReadOptions, UploadSink, WriteOptions } from '../../src/storage/object-store.js';
import { baseName, parentPath } from '../../src/storage/paths.js';

interface StoredFile {
  data: Buffer;
  mtime: Date;
  etag: string;
}

/**
 * A FileStore held in memory, for unit tests of the command handlers only: the errors S3FileStore
 * gives for the same cases (NOT_FOUND, IS_DIRECTORY, NOT_EMPTY, ALREADY_EXISTS, INVALID_RANGE ...),
 * directories as explicit entries, every call recorded in `calls`.
 */
export class MemoryFileStore implements FileStore {
  readonly bucket = 'memory';
  readonly files = new Map<string, StoredFile>();
  readonly directories = new Set<string>(['/']);
  /** The FileStore methods called, in order. */
  readonly calls: (keyof FileStore)[] = [];
  private now = Date.UTC(2026, 0, 1);

  /** Puts a file (its parent directories too), as an upload would have. */
  put(path: string, content: string | Buffer): void {
    for (let dir = parentPath(path); !this.directories.has(dir); dir = parentPath(dir)) this.directories.add(dir);
    const data = Buffer.from(content);
    this.files.set(path, { data, mtime: new Date((this.now += 1000)), etag: createHash('md5').update(data).digest('hex') });
  }

  text(path: string): string | undefined {
    return this.files.get(path)?.data.toString();
  }

  private record(method: keyof FileStore): void {
    this.calls.push(method);
  }

  private entry(path: string): Entry | undefined {
    const file = this.files.get(path);
    if (file) return { name: baseName(path), isDirectory: false, size: file.data.length, mtime: file.mtime, etag: file.etag };
    if (this.directories.has(path)) return { name: baseName(path), isDirectory: true, size: 0, mtime: new Date(this.now) };
    return undefined;
  }

  private children(path: string): string[] {
    const prefix = path === '/' ? '/' : path + '/';
    const direct = (p: string) => p !== path && p.startsWith(prefix) && !p.slice(prefix.length).includes('/');
    return [...this.directories].filter(direct).concat([...this.files.keys()].filter(direct)).sort();
  }

  async stat(path: string): Promise<Entry> {
    this.record('stat');
    const entry = this.entry(path);
    if (!entry) throw new StorageError('NOT_FOUND', 'No such file or directory');
    return entry;
  }

  async *list(path: string): AsyncIterable<Entry[]> {
    this.record('list');
    if (this.files.has(path)) throw new StorageError('NOT_DIRECTORY', 'Not a directory');
    if (!this.directories.has(path)) throw new StorageError('NOT_FOUND', 'No such file or directory');
    yield this.children(path).map((p) => this.entry(p) as Entry);
  }

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    this.record('read');
    const file = this.files.get(path);
    if (!file) throw new StorageError(this.directories.has(path) ? 'IS_DIRECTORY' : 'NOT_FOUND', 'Cannot read');
    const start = options.start ?? 0;
    if (start > file.data.length) throw new StorageError('INVALID_RANGE', 'Offset beyond the end');
    return Readable.from([file.data.subarray(start)]);
  }

  async write(path: string, options: WriteOptions = {}): Promise<UploadSink> {
    this.record('write');
    if (this.directories.has(path)) throw new StorageError('IS_DIRECTORY', 'Is a directory');
    if (!this.directories.has(parentPath(path))) throw new StorageError('NOT_FOUND', 'No such directory');
    const existing = this.files.get(path)?.data;
    const { appendAt } = options;
    if (typeof appendAt === 'number' && appendAt !== (existing?.length ?? 0)) throw new StorageError('INVALID_RANGE', 'Offset is not the file size');
    const parts: Buffer[] = appendAt !== undefined && existing ? [existing] : [];
    let resolveCommitted!: (object: CommittedObject) => void;
    let rejectCommitted!: (err: Error) => void;
    const committed = new Promise<CommittedObject>((resolve, reject) => {
      resolveCommitted = resolve;
      rejectCommitted = reject;
    });
    committed.catch(() => undefined);
    let received = 0;
    const sink = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        // A copy: the data pump frees each chunk once written (storage/free-buffer.ts).
        parts.push(Buffer.from(chunk));
        received += chunk.length;
        callback();
      },
      final: (callback) => {
        this.put(path, Buffer.concat(parts));
        const file = this.files.get(path) as StoredFile;
        resolveCommitted({ bucket: this.bucket, key: this.locate(path).key, size: file.data.length, etag: file.etag });
        callback();
      },
      destroy: (err, callback) => {
        rejectCommitted(err ?? new StorageError('ABORTED', 'Upload aborted'));
        callback(err);
      },
    });
    return Object.assign(sink, {
      committed,
      get bytesWritten() {
        return received;
      },
    }) as UploadSink;
  }

  async digest(path: string, algorithm: DigestAlgorithm): Promise<FileDigest | undefined> {
    this.record('digest');
    const file = this.files.get(path);
    if (!file) throw new StorageError(this.directories.has(path) ? 'IS_DIRECTORY' : 'NOT_FOUND', 'No such file');
    const hash = createDigest(algorithm);
    hash.update(file.data);
    const hex = hash.digest('hex');
    return { algorithm, hex, size: file.data.length, source: 'computed' };
  }

  async remove(path: string): Promise<void> {
    this.record('remove');
    if (this.directories.has(path)) throw new StorageError('IS_DIRECTORY', 'Is a directory');
    if (!this.files.delete(path)) throw new StorageError('NOT_FOUND', 'No such file or directory');
  }

  async mkdir(path: string): Promise<void> {
    this.record('mkdir');
    if (this.entry(path)) throw new StorageError('ALREADY_EXISTS', 'Already exists');
    if (!this.directories.has(parentPath(path))) throw new StorageError('NOT_FOUND', 'No such directory');
    this.directories.add(path);
  }

  async rmdir(path: string): Promise<void> {
    this.record('rmdir');
    if (path === '/') throw new StorageError('DENIED', 'Cannot remove the root directory');
    if (this.files.has(path)) throw new StorageError('NOT_DIRECTORY', 'Not a directory');
    if (!this.directories.has(path)) throw new StorageError('NOT_FOUND', 'No such file or directory');
    if (this.children(path).length > 0) throw new StorageError('NOT_EMPTY', 'Directory not empty');
    this.directories.delete(path);
  }

  async rename(from: string, to: string): Promise<void> {
    this.record('rename');
    const file = this.files.get(from);
    if (!file) throw new StorageError(this.directories.has(from) ? 'IS_DIRECTORY' : 'NOT_FOUND', 'Only files are renamed here');
    if (this.entry(to)) throw new StorageError('ALREADY_EXISTS', 'Target name already exists');
    this.files.delete(from);
    this.files.set(to, file);
  }

  locate(path: string): { bucket: string; key: string } {
    this.record('locate');
    return { bucket: this.bucket, key: path.slice(1) };
  }
}
