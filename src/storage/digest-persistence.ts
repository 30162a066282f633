import { CopyObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { digestMetadata, digestsFromMetadata } from './digests.js';
import type { StorageError } from './errors.js';
import type { CommittedObject } from './object-store.js';
import { classifyS3Error } from './s3-errors.js';
import { MAX_COPY_OBJECT_BYTES, encodeCopySource } from './s3-request.js';
import type { ObjectParams } from './s3-upload-sink.js';

const changed = () => Object.assign(new Error('The object changed since the upload committed'), { name: 'PreconditionFailed' });

/** CopyObject's limit: larger objects keep their digests in the process's cache only. */
export const MAX_PERSIST_BYTES = MAX_COPY_OBJECT_BYTES;

/**
 * How one persistence ended. `persisted`: the object now carries its digests. `skipped`: nothing to
 * do or nothing allowed (too large for CopyObject, already stamped, or replaced/removed since the
 * commit: the copy is guarded by the committed ETag). `failed`: the store refused or broke; the
 * object is unchanged and HASH falls back to the cache or to reading it.
 */
export interface PersistOutcome {
  result: 'persisted' | 'skipped' | 'failed';
  bucket: string;
  key: string;
  size: number;
  reason?: 'too-large' | 'already-stored' | 'changed' | 'shutdown';
  /**
   * What kept a replaced object from being stamped: the copy's `x-amz-copy-source-if-match`, or
   * (stores that cannot evaluate it on multipart objects) a HeadObject of the same ETag just before.
   */
  guard?: 'copy-source-if-match' | 'head';
  error?: StorageError;
  durationMs: number;
}

/**
 * Stores the digests of multipart uploads as the object's metadata after the commit.
 *
 * A multipart upload sends its metadata with CreateMultipartUpload, before any byte has been
 * digested. Once it is committed, a server-side CopyObject of the object onto itself with
 * MetadataDirective REPLACE writes the same metadata plus the digests (and the upload's content
 * type, storage class and encryption; tags are kept by the copy). `CopySourceIfMatch` with the
 * committed ETag makes sure an object replaced meanwhile is never stamped with our digests (a HeadObject
 * first compares the ETag too, and is the only guard on stores that cannot evaluate that header on
 * multipart objects: OpenStack Swift's s3api, which itself checks it with a HEAD before copying).
 *
 * Runs in the background: the upload's 226 never waits for it and its failure never turns into an
 * error reply. Each one is tracked, so a drain waits for them, and so `idle(key)` lets a later
 * write, delete or rename of the same key in this process wait until the copy has landed (a copy
 * still running when the object is deleted or overwritten would otherwise bring the old content back).
 */
export class DigestPersistence {
  private readonly pending = new Map<Promise<void>, { bucket: string; key: string }>();
  private readonly abortController = new AbortController();
  private running = 0;
  private readonly queued: (() => void)[] = [];

  constructor(
    private readonly options: {
      onOutcome?: (outcome: PersistOutcome) => void;
      /** Copies in flight at once (the rest wait their turn, still tracked); default 8. */
      maxConcurrent?: number;
    } = {},
  ) {}

  /** Persistences not finished yet. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Starts persisting the digests of a committed upload whose metadata lacks them. `objectParams`
   * are those the upload was created with.
   */
  persist(client: S3Client, object: CommittedObject, objectParams: ObjectParams = {}): void {
    if (!object.digests || object.digestsInMetadata || !object.etag) return;
    const started = Date.now();
    const done = (outcome: Omit<PersistOutcome, 'bucket' | 'key' | 'size' | 'durationMs'>) =>
      this.options.onOutcome?.({ bucket: object.bucket, key: object.key, size: object.size, durationMs: Date.now() - started, ...outcome });
    if (object.size > MAX_PERSIST_BYTES) {
      done({ result: 'skipped', reason: 'too-large' });
      return;
    }
    if (this.abortController.signal.aborted) {
      done({ result: 'skipped', reason: 'shutdown' });
      return;
    }
    const run = this.inTurn(() => this.copy(client, object, objectParams)).then(
      (result) => done(result === 'already-stored' ? { result: 'skipped', reason: result } : { result: 'persisted', guard: result }),
      (err: unknown) => {
        const error = classifyS3Error(err);
        if (error.code === 'CHANGED' || error.code === 'NOT_FOUND') done({ result: 'skipped', reason: 'changed' });
        else if (error.code === 'ABORTED') done({ result: 'skipped', reason: 'shutdown' });
        else done({ result: 'failed', error });
      },
    );
    const tracked = run.then(() => {
      this.pending.delete(tracked);
    });
    this.pending.set(tracked, { bucket: object.bucket, key: object.key });
  }

  /** Runs `task` once fewer than `maxConcurrent` run; after an abort, it is not started. */
  private async inTurn<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= (this.options.maxConcurrent ?? 8)) await new Promise<void>((resolve) => this.queued.push(resolve));
    this.running++;
    try {
      if (this.abortController.signal.aborted) throw Object.assign(new Error('Shutting down'), { name: 'AbortError' });
      return await task();
    } finally {
      this.running--;
      this.queued.shift()?.();
    }
  }

  private async copy(client: S3Client, object: CommittedObject, params: ObjectParams): Promise<PersistOutcome['guard'] | 'already-stored'> {
    const { bucket, key, etag } = object;
    const signal = this.abortController.signal;
    const headNow = async () => {
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }), { abortSignal: signal });
      if (head.ETag !== etag) throw changed();
      return head;
    };
    // What the store recorded (content type and friends are carried over; they were never ours to pick).
    const head = await headNow();
    const stamped = digestMetadata(object.digests ?? {});
    const stored = digestMetadata(digestsFromMetadata(head.Metadata));
    if (Object.keys(stamped).length && Object.entries(stamped).every(([k, v]) => stored[k] === v)) return 'already-stored';
    const { StorageClass, ServerSideEncryption, SSEKMSKeyId } = params;
    const copy = (ifMatch: string | undefined) =>
      client.send(
        new CopyObjectCommand({
          Bucket: bucket,
          Key: key,
          CopySource: encodeCopySource(bucket, key),
          CopySourceIfMatch: ifMatch,
          MetadataDirective: 'REPLACE',
          Metadata: { ...params.Metadata, ...stamped },
          ContentType: head.ContentType,
          ContentEncoding: head.ContentEncoding,
          ContentDisposition: head.ContentDisposition,
          ContentLanguage: head.ContentLanguage,
          CacheControl: head.CacheControl,
          StorageClass,
          ServerSideEncryption,
          SSEKMSKeyId,
        }),
        { abortSignal: signal },
      );
    try {
      await copy(etag);
      return 'copy-source-if-match';
    } catch (err) {
      if (classifyS3Error(err).code !== 'CHANGED') throw err;
      // OpenStack Swift's s3api answers 412 to the right ETag of a multipart (SLO) object: it checks
      // the condition with a HEAD of its own before copying, against the Swift ETag. The same check,
      // done here: the object is still the committed one, so copy it.
      await headNow();
      await copy(undefined);
      return 'head';
    }
  }

  /**
   * Resolves once no persistence is pending for a key of `bucket` starting with `keyPrefix` (a
   * file's key covers the file and, as `key/`, the directory of that name).
   */
  async idle(bucket: string, keyPrefix: string): Promise<void> {
    for (;;) {
      const waits = [...this.pending].filter(([, o]) => o.bucket === bucket && o.key.startsWith(keyPrefix)).map(([p]) => p);
      if (!waits.length) return;
      await Promise.all(waits);
    }
  }

  /**
   * Graceful stop: waits for every pending persistence, for at most `timeoutMs`; what still runs
   * then is aborted (the object then keeps its metadata without digests). New ones are not started.
   */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    const all = (async () => {
      while (this.pending.size) await Promise.all(this.pending.keys());
    })();
    await Promise.race([all, timeout]);
    clearTimeout(timer);
    await this.close();
  }

  /** Immediate stop: aborts whatever runs, and resolves once it has settled. */
  async close(): Promise<void> {
    this.abortController.abort();
    while (this.pending.size) await Promise.all(this.pending.keys());
  }
}
