import { Readable, type Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { checksumOf, type S3Checksum } from './checksums.js';
import { objectLockParams, retainedError, type ObjectLockPolicy, type ObjectLockState } from './object-lock.js';
import { DigestCache, createDigest, digestsFromMetadata, type DigestAlgorithm, type StoredAlgorithm, type StoredDigests } from './digests.js';
import { StorageError, isStorageError } from './errors.js';
import type { CommittedObject, Entry, FileDigest, FileStore, ReadOptions, UploadSink, WriteOptions } from './object-store.js';
import { KeyMapper, baseName } from './paths.js';
import { classifyS3Error } from './s3-errors.js';
import type { MemoryBudget, MemoryOwner } from './memory-budget.js';
import { resumableRead } from './s3-resumable-read.js';
import { MIN_PART_BYTES, S3UploadSink, type ObjectParams, type UploadOptions } from './s3-upload-sink.js';

const MiB = 1024 * 1024;
/** CopyObject's limit; larger objects are copied part by part with UploadPartCopy. */
const MAX_SINGLE_COPY_BYTES = 5 * 1024 * MiB;
const COPY_PART_BYTES = 512 * MiB;
const MAX_PARTS = 10_000;
const RENAME_CONCURRENCY = 8;

export interface S3FileStoreOptions {
  client: S3Client;
  bucket: string;
  prefix: string;
  partSizeBytes: number;
  queueSize: number;
  renameDirectoryMaxObjects: number;
  /** Uploads onto a directory's name: refused (one ListObjectsV2 per upload, the default) or allowed. */
  storeOntoDirectory?: 'refuse' | 'allow';
  /** Digests computed as each upload streams in and stored with it; default SHA-256 and MD5. */
  uploadDigests?: readonly StoredAlgorithm[];
  /** HASH of an object without stored digests reads it when it is at most this long. */
  hashMaxStreamBytes?: number;
  /** Attempts of a download that S3 breaks (resumed from the byte reached); default 5. */
  maxAttempts?: number;
  /** Shared budget for upload part buffers (all sessions); omitted: unbounded. */
  memoryBudget?: MemoryBudget;
  /** Who this store's uploads are charged to within the budget's shares (the session's client address and account). */
  memoryOwner?: MemoryOwner;
  /** Digests of multipart uploads (whose metadata was sent before the data); default: one per process. */
  digestCache?: DigestCache;
  /** Sent with every object this store creates (account policy, uploader metadata). */
  objectParams?: ObjectParams;
  /** Renames copy larger objects part by part (UploadPartCopy); default and most: CopyObject's 5 GiB limit. */
  multipartCopyThresholdBytes?: number;
  /** Checksum S3 verifies on every upload and keeps with the object (s3.checksumAlgorithm); omitted: none. */
  checksumAlgorithm?: S3Checksum;
  /**
   * Object Lock of what this store creates (uploads, copies of a rename); with it, a STOR over a
   * file, the target of a rename, each object of a renamed directory and an RMD's marker are also
   * checked for a lock before anything is done (one HeadObject each).
   */
  objectLock?: ObjectLockPolicy;
}

/** A file as a HeadObject describes it, with its Object Lock state. */
type FileEntry = Entry & { lock?: ObjectLockState };

const processDigestCache = new DigestCache();

/** One account's virtual tree on `bucket/prefix`, with "dir/" marker objects for empty directories. */
export class S3FileStore implements FileStore {
  readonly bucket: string;
  private readonly keys: KeyMapper;
  private readonly client: S3Client;

  constructor(private readonly options: S3FileStoreOptions) {
    this.bucket = options.bucket;
    this.client = options.client;
    this.keys = new KeyMapper(options.prefix);
  }

  locate(path: string): { bucket: string; key: string } {
    return { bucket: this.bucket, key: path === '/' ? this.keys.prefix : this.keys.fileKey(path) };
  }

  async stat(path: string): Promise<FileEntry> {
    if (path === '/') return dirEntry('', new Date());
    const file = await this.headFile(path);
    if (file) return file;
    const marker = await this.firstUnder(this.keys.dirPrefix(path));
    if (marker) return dirEntry(baseName(path), marker.LastModified ?? new Date());
    throw new StorageError('NOT_FOUND', 'No such file or directory');
  }

  async *list(path: string): AsyncIterable<Entry[]> {
    const prefix = this.keys.dirPrefix(path);
    const seenDirs = new Set<string>();
    let token: string | undefined;
    let first = true;
    do {
      const page = await this.s3(this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
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

  async read(path: string, options: ReadOptions = {}): Promise<Readable> {
    const key = this.keys.fileKey(path);
    const start = options.start ?? 0;
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: start > 0 ? `bytes=${start}-` : undefined }),
      );
      return resumableRead({ client: this.client, bucket: this.bucket, key, start, first: res, maxAttempts: this.options.maxAttempts ?? 5 });
    } catch (err) {
      const error = classifyS3Error(err);
      if (error.code === 'NOT_FOUND' && (await this.firstUnder(this.keys.dirPrefix(path)))) {
        throw new StorageError('IS_DIRECTORY', 'Is a directory');
      }
      if (error.code === 'INVALID_RANGE') {
        // "bytes=size-" is unsatisfiable for S3, yet resuming a complete download is legitimate.
        const file = await this.headFile(path);
        if (file && file.size === start) return Readable.from([]);
      }
      throw error;
    }
  }

  async write(path: string, options: WriteOptions = {}): Promise<UploadSink> {
    const key = this.keys.fileKey(path);
    const isDirectory =
      this.options.storeOntoDirectory === 'allow'
        ? Promise.resolve()
        : this.firstUnder(this.keys.dirPrefix(path)).then((found) => {
            if (found) throw new StorageError('IS_DIRECTORY', 'Is a directory');
          });
    const { appendAt } = options;
    // A new upload looks for a directory of that name while the data flows, and commits only if
    // there is none: one S3 round trip less before the 150 reply.
    if (appendAt === undefined || appendAt === 0) {
      isDirectory.catch(() => undefined);
      // A locked object is not replaced: refused before any byte flows.
      if (this.options.objectLock) await this.refuseIfRetained(path, key);
      return this.newUpload(key, isDirectory);
    }
    await isDirectory;
    const existing = appendAt === undefined || appendAt === 0 ? undefined : await this.headFile(path);
    const retained = retainedError(path, existing?.lock);
    if (retained) throw retained;
    if (appendAt !== undefined && appendAt !== 'end' && appendAt !== (existing?.size ?? 0)) {
      throw new StorageError('INVALID_RANGE', `Restart offset ${appendAt} is not the file size ${existing?.size ?? 0}`);
    }
    if (!existing || existing.size === 0) return this.newUpload(key);
    if (existing.size >= MIN_PART_BYTES) {
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

  private newUpload(key: string, beforeCommit?: Promise<void>, copySource?: UploadOptions['copySource']): S3UploadSink {
    const sink = new S3UploadSink({
      client: this.client,
      bucket: this.bucket,
      key,
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
          this.digestCache.set(object.bucket, object.key, object.etag, object.digests);
        }
      },
      () => undefined,
    );
    return sink;
  }

  private get digestCache(): DigestCache {
    return this.options.digestCache ?? processDigestCache;
  }

  /** Writes an object's bytes into `sink`, provided it still is the version with `etag`. */
  private async streamInto(sink: Writable, key: string, etag: string | undefined): Promise<void> {
    const res = await this.s3(this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, IfMatch: etag })));
    const body = res.Body as Readable;
    try {
      for await (const chunk of body) {
        await new Promise<void>((resolve, reject) => sink.write(chunk as Buffer, (err) => (err ? reject(err) : resolve())));
      }
    } finally {
      body.destroy();
    }
  }

  async digest(path: string, algorithm: DigestAlgorithm, options: { maxStreamBytes?: number } = {}): Promise<FileDigest | undefined> {
    const key = this.keys.fileKey(path);
    let head;
    try {
      // Only where checksums are in use: a store that knows none need not be sent the header.
      const ChecksumMode = this.options.checksumAlgorithm ? 'ENABLED' : undefined;
      head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode }));
    } catch (err) {
      const error = classifyS3Error(err);
      if (error.code === 'NOT_FOUND' && (await this.firstUnder(this.keys.dirPrefix(path)))) {
        throw new StorageError('IS_DIRECTORY', 'Is a directory');
      }
      throw error;
    }
    const size = head.ContentLength ?? 0;
    const stored: StoredDigests = { ...checksumDigests(head), ...this.digestCache.get(this.bucket, key, head.ETag), ...digestsFromMetadata(head.Metadata) };
    const hex = stored[algorithm];
    if (hex) return { algorithm, hex, size, source: 'stored' };
    const max = options.maxStreamBytes ?? this.options.hashMaxStreamBytes ?? 0;
    if (size > max) return undefined;
    const res = await this.s3(this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, IfMatch: head.ETag })));
    const hash = createDigest(algorithm);
    try {
      for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
    } catch (err) {
      throw classifyS3Error(err);
    }
    return { algorithm, hex: hash.digest('hex'), size, source: 'computed' };
  }

  async remove(path: string): Promise<void> {
    const key = this.keys.fileKey(path);
    const file = await this.headFile(path);
    if (!file) {
      if (await this.firstUnder(this.keys.dirPrefix(path))) throw new StorageError('IS_DIRECTORY', 'Is a directory');
      throw new StorageError('NOT_FOUND', 'No such file or directory');
    }
    // On a versioned bucket (Object Lock needs one) S3 accepts this delete as a delete marker: the
    // file would vanish from view while its version stays. Refused here instead.
    const retained = retainedError(path, file.lock);
    if (retained) throw retained;
    await this.s3(this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
  }

  async mkdir(path: string): Promise<void> {
    if (path === '/') throw new StorageError('ALREADY_EXISTS', 'Directory already exists');
    const prefix = this.keys.dirPrefix(path);
    if (await this.headFile(path)) throw new StorageError('ALREADY_EXISTS', 'A file of that name exists');
    if (await this.firstUnder(prefix)) throw new StorageError('ALREADY_EXISTS', 'Directory already exists');
    await this.s3(this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: prefix, Body: '', ContentLength: 0 })));
  }

  async rmdir(path: string): Promise<void> {
    if (path === '/') throw new StorageError('DENIED', 'Cannot remove the root directory');
    const prefix = this.keys.dirPrefix(path);
    const page = await this.s3(this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 2 })));
    const keys = (page.Contents ?? []).map((o) => o.Key);
    if (!keys.length) {
      if (await this.headFile(path)) throw new StorageError('NOT_DIRECTORY', 'Not a directory');
      throw new StorageError('NOT_FOUND', 'No such file or directory');
    }
    if (keys.some((k) => k !== prefix)) throw new StorageError('NOT_EMPTY', 'Directory not empty');
    if (this.options.objectLock) await this.refuseIfRetained(path, prefix);
    await this.s3(this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: prefix })));
  }

  async rename(from: string, to: string): Promise<void> {
    if (from === '/' || to === '/') throw new StorageError('DENIED', 'Cannot rename the root directory');
    if (from === to) return;
    if (to.startsWith(from + '/')) throw new StorageError('BAD_NAME', 'Cannot move a directory into itself');
    const source = await this.stat(from);
    if (!source.isDirectory) {
      const toKey = this.keys.fileKey(to);
      const retained = retainedError(from, source.lock);
      if (retained) throw retained;
      if (await this.firstUnder(this.keys.dirPrefix(to))) throw new StorageError('IS_DIRECTORY', 'A directory of that name exists');
      if (this.options.objectLock) await this.refuseIfRetained(to, toKey);
      const fromKey = this.keys.fileKey(from);
      await this.copyObject(fromKey, toKey, source.size);
      await this.deleteRenamedSource(from, fromKey, toKey);
      return;
    }
    const fromPrefix = this.keys.dirPrefix(from);
    const toPrefix = this.keys.dirPrefix(to);
    try {
      await this.stat(to);
      throw new StorageError('ALREADY_EXISTS', 'Target name already exists');
    } catch (err) {
      if (!isStorageError(err, 'NOT_FOUND')) throw err;
    }
    const objects = await this.listAll(fromPrefix, this.options.renameDirectoryMaxObjects);
    for (const o of objects) this.keys.fileKey('/' + (toPrefix + o.key.slice(fromPrefix.length)).slice(this.keys.prefix.length));
    if (this.options.objectLock) {
      await mapLimit(objects, RENAME_CONCURRENCY, (o) => this.refuseIfRetained('/' + o.key.slice(this.keys.prefix.length), o.key));
    }
    await mapLimit(objects, RENAME_CONCURRENCY, (o) => this.copyObject(o.key, toPrefix + o.key.slice(fromPrefix.length), o.size));
    await this.deleteSources(objects.map((o) => o.key));
  }

  /**
   * The delete that ends a file rename. Refused by the store (a lock this process could not see,
   * or a policy): the copy is removed again, so nothing is half done, and the reply names the lock.
   */
  private async deleteRenamedSource(from: string, fromKey: string, toKey: string): Promise<void> {
    try {
      await this.s3(this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: fromKey })));
    } catch (err) {
      if (!isStorageError(err, 'DENIED')) throw new StorageError('PARTIAL_RENAME', 'Copied to the new name, but the old name could not be removed', { cause: err });
      try {
        await this.s3(this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: toKey })));
      } catch (undo) {
        throw new StorageError('PARTIAL_RENAME', 'Copied to the new name, but the old name could not be removed', { cause: undo });
      }
      throw retainedError(from, await this.lockOf(fromKey).catch(() => undefined)) ?? err;
    }
  }

  /** Throws RETAINED when the object at `key` is locked (a missing object is not). */
  private async refuseIfRetained(name: string, key: string): Promise<void> {
    const retained = retainedError(name, await this.lockOf(key));
    if (retained) throw retained;
  }

  /** The Object Lock state of the object at `key`; undefined when there is none. */
  private async lockOf(key: string): Promise<ObjectLockState | undefined> {
    try {
      const { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus } = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus };
    } catch (err) {
      const error = classifyS3Error(err);
      if (error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  private async deleteSources(keys: string[]): Promise<void> {
    try {
      await mapLimit(keys, RENAME_CONCURRENCY, (key) => this.s3(this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))));
    } catch (err) {
      throw new StorageError('PARTIAL_RENAME', 'Copied to the new name, but the old name could not be removed', {
        cause: err,
      });
    }
  }

  private async listAll(prefix: string, max: number): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3(this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token })));
      for (const o of page.Contents ?? []) {
        out.push({ key: o.Key ?? '', size: o.Size ?? 0 });
        if (out.length > max) {
          throw new StorageError('TOO_MANY_OBJECTS', `Directory holds more than ${max} objects; rename refused`);
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  private async copyObject(fromKey: string, toKey: string, size: number): Promise<void> {
    const copySource = `${this.bucket}/${encodeURIComponent(fromKey).replace(/%2F/g, '/')}`;
    const threshold = Math.min(this.options.multipartCopyThresholdBytes ?? MAX_SINGLE_COPY_BYTES, MAX_SINGLE_COPY_BYTES);
    if (size <= threshold) {
      await this.s3(this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: toKey, CopySource: copySource, ...this.copyPolicy() })));
      return;
    }
    // What CopyObject would carry over by itself (metadata, content headers, tags), given explicitly.
    const source = await this.s3(this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: fromKey })));
    const Tagging = await this.taggingOf(fromKey);
    const { UploadId } = await this.s3(this.client.send(
      new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: toKey,
        Metadata: source.Metadata,
        ContentType: source.ContentType,
        ContentEncoding: source.ContentEncoding,
        ContentDisposition: source.ContentDisposition,
        ContentLanguage: source.ContentLanguage,
        CacheControl: source.CacheControl,
        Expires: source.Expires,
        WebsiteRedirectLocation: source.WebsiteRedirectLocation,
        Tagging,
        ...this.copyPolicy(),
      }),
    ));
    try {
      const partBytes = Math.max(Math.min(COPY_PART_BYTES, threshold), MIN_PART_BYTES, Math.ceil(size / MAX_PARTS));
      const ranges: { n: number; start: number; end: number }[] = [];
      for (let start = 0, n = 1; start < size; start += partBytes, n++) {
        ranges.push({ n, start, end: Math.min(start + partBytes, size) - 1 });
      }
      const parts = await mapLimit(ranges, 4, async (r) => {
        const res = await this.s3(this.client.send(
          new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key: toKey,
            UploadId,
            PartNumber: r.n,
            CopySource: copySource,
            CopySourceRange: `bytes=${r.start}-${r.end}`,
          }),
        ));
        return { PartNumber: r.n, ETag: res.CopyPartResult?.ETag };
      });
      await this.s3(this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: toKey, UploadId, MultipartUpload: { Parts: parts } }),
      ));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: toKey, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** The object's tags as `x-amz-tagging`; none on stores without object tagging (Swift answers NotImplemented). */
  private async taggingOf(key: string): Promise<string | undefined> {
    try {
      const { TagSet } = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.bucket, Key: key }));
      return TagSet?.length ? new URLSearchParams(TagSet.map((t): [string, string] => [t.Key ?? '', t.Value ?? ''])).toString() : undefined;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e.name === 'NotImplemented' || e.$metadata?.httpStatusCode === 501) return undefined;
      throw classifyS3Error(err);
    }
  }

  /** A copy made by a rename keeps the source's metadata and tags, but takes the account's class and encryption. */
  private copyPolicy(): ObjectParams {
    const { StorageClass, ServerSideEncryption, SSEKMSKeyId } = this.options.objectParams ?? {};
    return { StorageClass, ServerSideEncryption, SSEKMSKeyId, ...objectLockParams(this.options.objectLock) };
  }

  private async headFile(path: string): Promise<FileEntry | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keys.fileKey(path) }));
      const { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus } = res;
      return {
        name: baseName(path),
        isDirectory: false,
        size: res.ContentLength ?? 0,
        mtime: res.LastModified ?? new Date(0),
        etag: res.ETag,
        ...(ObjectLockMode || ObjectLockLegalHoldStatus ? { lock: { ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus } } : {}),
      };
    } catch (err) {
      const error = classifyS3Error(err);
      if (error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /** The first object under a key prefix, if any: how a directory's existence is decided. */
  private async firstUnder(prefix: string): Promise<{ Key?: string; LastModified?: Date } | undefined> {
    const page = await this.s3(this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 1 })));
    return page.Contents?.[0];
  }

  /** Runs an S3 call and classifies its failure. */
  private async s3<T>(request: Promise<T>): Promise<T> {
    try {
      return await request;
    } catch (err) {
      throw classifyS3Error(err);
    }
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

function dirEntry(name: string, mtime: Date): Entry {
  return { name, isDirectory: true, size: 0, mtime };
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return results;
}
