import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { StorageError, isStorageError } from './errors.js';
import { objectLockParams, retainedError, type ObjectLockPolicy } from './object-lock.js';
import type { S3Directories } from './s3-directories.js';
import { withObjectLockContentMd5 } from './s3-client.js';
import { classifyS3Error } from './s3-errors.js';
import { MAX_COPY_OBJECT_BYTES, MAX_PARTS, MIN_PART_BYTES, encodeCopySource, isNotImplemented } from './s3-request.js';
import type { ObjectParams } from './s3-upload-sink.js';

const MiB = 1024 * 1024;
const COPY_PART_BYTES = 512 * MiB;
const RENAME_CONCURRENCY = 8;

export interface S3RenameOptions {
  /** A directory rename holding more objects than this is refused before anything is copied. */
  renameDirectoryMaxObjects: number;
  /** Objects larger than this are copied part by part (UploadPartCopy); at most CopyObject's 5 GiB limit. */
  multipartCopyThresholdBytes: number;
  /** The account's storage class and encryption, which copies take. */
  objectParams?: ObjectParams;
  /**
   * Object Lock of the copies a rename makes (accounts[].retention, legalHold); with it, the target
   * of a file rename and each object of a renamed directory are first checked for a lock.
   */
  objectLock?: ObjectLockPolicy;
}

/**
 * RNFR/RNTO of files and directories: S3 has no rename, so every object is copied server-side to
 * its new key (CopyObject, or UploadPartCopy above the threshold), then the old keys are deleted.
 */
export class S3Rename {
  constructor(
    private readonly tree: S3Directories,
    private readonly options: S3RenameOptions,
  ) {}

  async rename(from: string, to: string): Promise<void> {
    const { keys } = this.tree;
    if (from === '/' || to === '/') throw new StorageError('DENIED', 'Cannot rename the root directory');
    if (from === to) return;
    if (to.startsWith(from + '/')) throw new StorageError('BAD_NAME', 'Cannot move a directory into itself');
    const source = await this.tree.stat(from);
    if (!source.isDirectory) {
      const toKey = keys.fileKey(to);
      const retained = retainedError(from, source.lock);
      if (retained) throw retained;
      if (await this.tree.isDirectory(to)) throw new StorageError('IS_DIRECTORY', 'A directory of that name exists');
      if (this.options.objectLock) await this.tree.refuseIfRetained(to, toKey);
      const fromKey = keys.fileKey(from);
      await this.copyObject(fromKey, toKey, source.size);
      await this.deleteRenamedSource(from, fromKey, toKey);
      return;
    }
    const fromPrefix = keys.dirPrefix(from);
    const toPrefix = keys.dirPrefix(to);
    try {
      await this.tree.stat(to);
      throw new StorageError('ALREADY_EXISTS', 'Target name already exists');
    } catch (err) {
      if (!isStorageError(err, 'NOT_FOUND')) throw err;
    }
    const objects = await this.listAll(fromPrefix, this.options.renameDirectoryMaxObjects);
    // Every new key is checked (length, characters) before the first copy.
    for (const o of objects) keys.fileKey('/' + (toPrefix + o.key.slice(fromPrefix.length)).slice(keys.prefix.length));
    if (this.options.objectLock) {
      await mapLimit(objects, RENAME_CONCURRENCY, (o) => this.tree.refuseIfRetained('/' + o.key.slice(keys.prefix.length), o.key));
    }
    await mapLimit(objects, RENAME_CONCURRENCY, (o) => this.copyObject(o.key, toPrefix + o.key.slice(fromPrefix.length), o.size));
    await this.deleteSources(objects.map((o) => o.key));
  }

  /**
   * The delete that ends a file rename. Refused by the store (a lock this process could not see,
   * or a policy): the copy is removed again, so nothing is half done, and the reply names the lock.
   */
  private async deleteRenamedSource(from: string, fromKey: string, toKey: string): Promise<void> {
    const { s3 } = this.tree;
    try {
      await s3.send(s3.client.send(new DeleteObjectCommand({ Bucket: s3.name, Key: fromKey })));
    } catch (err) {
      if (!isStorageError(err, 'DENIED')) throw new StorageError('PARTIAL_RENAME', 'Copied to the new name, but the old name could not be removed', { cause: err });
      try {
        await s3.send(s3.client.send(new DeleteObjectCommand({ Bucket: s3.name, Key: toKey })));
      } catch (undo) {
        throw new StorageError('PARTIAL_RENAME', 'Copied to the new name, but the old name could not be removed', { cause: undo });
      }
      throw retainedError(from, await this.tree.lockOf(fromKey).catch(() => undefined)) ?? err;
    }
  }

  private async deleteSources(keys: string[]): Promise<void> {
    const { s3 } = this.tree;
    try {
      await mapLimit(keys, RENAME_CONCURRENCY, (key) => s3.send(s3.client.send(new DeleteObjectCommand({ Bucket: s3.name, Key: key }))));
    } catch (err) {
      throw new StorageError('PARTIAL_RENAME', 'Copied to the new name, but the old name could not be removed', {
        cause: err,
      });
    }
  }

  private async listAll(prefix: string, max: number): Promise<{ key: string; size: number }[]> {
    const { s3 } = this.tree;
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(s3.client.send(new ListObjectsV2Command({ Bucket: s3.name, Prefix: prefix, ContinuationToken: token })));
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
    const { s3 } = this.tree;
    const Bucket = s3.name;
    const CopySource = encodeCopySource(Bucket, fromKey);
    const threshold = Math.min(this.options.multipartCopyThresholdBytes, MAX_COPY_OBJECT_BYTES);
    if (size <= threshold) {
      await s3.send(s3.client.send(withObjectLockContentMd5(new CopyObjectCommand({ Bucket, Key: toKey, CopySource, ...this.copyPolicy() }))));
      return;
    }
    // What CopyObject would carry over by itself (metadata, content headers, tags), given explicitly.
    const source = await s3.send(s3.client.send(new HeadObjectCommand({ Bucket, Key: fromKey })));
    const Tagging = await this.taggingOf(fromKey);
    const { UploadId } = await s3.send(s3.client.send(
      new CreateMultipartUploadCommand({
        Bucket,
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
        const res = await s3.send(s3.client.send(
          new UploadPartCopyCommand({ Bucket, Key: toKey, UploadId, PartNumber: r.n, CopySource, CopySourceRange: `bytes=${r.start}-${r.end}` }),
        ));
        return { PartNumber: r.n, ETag: res.CopyPartResult?.ETag };
      });
      await s3.send(s3.client.send(new CompleteMultipartUploadCommand({ Bucket, Key: toKey, UploadId, MultipartUpload: { Parts: parts } })));
    } catch (err) {
      await s3.client.send(new AbortMultipartUploadCommand({ Bucket, Key: toKey, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  /** The object's tags as `x-amz-tagging`; none on stores without object tagging (Swift answers NotImplemented). */
  private async taggingOf(key: string): Promise<string | undefined> {
    const { s3 } = this.tree;
    try {
      const { TagSet } = await s3.client.send(new GetObjectTaggingCommand({ Bucket: s3.name, Key: key }));
      return TagSet?.length ? new URLSearchParams(TagSet.map((t): [string, string] => [t.Key ?? '', t.Value ?? ''])).toString() : undefined;
    } catch (err) {
      if (isNotImplemented(err)) return undefined;
      throw classifyS3Error(err);
    }
  }

  /** A copy made by a rename keeps the source's metadata and tags, but takes the account's class, encryption and Object Lock. */
  private copyPolicy(): ObjectParams {
    const { StorageClass, ServerSideEncryption, SSEKMSKeyId } = this.options.objectParams ?? {};
    return { StorageClass, ServerSideEncryption, SSEKMSKeyId, ...objectLockParams(this.options.objectLock) };
  }
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
