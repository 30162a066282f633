import { PassThrough, Writable } from 'node:stream';
import type { PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StreamDigests, digestMetadata, type StoredDigests } from './digests.js';
import { StorageError } from './errors.js';
import type { MemoryBudget } from './memory-budget.js';
import type { CommittedObject, UploadSink } from './object-store.js';
import { classifyS3Error } from './s3-errors.js';

export interface UploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  partSize: number;
  queueSize: number;
  /** Shared budget: a part's worth is acquired as each part fills and released once it is uploaded. */
  budget?: MemoryBudget;
  /** Per-account S3 policy and uploader metadata, sent with PutObject / CreateMultipartUpload. */
  objectParams?: ObjectParams;
}

/**
 * What every stored object carries besides its bytes. Tags go as the x-amz-tagging header of the
 * request that creates the object (lib-storage's `tags` option would tag after the commit, and a
 * failure then would leave a committed object behind an error reply).
 */
export type ObjectParams = Partial<Pick<PutObjectCommandInput, 'Metadata' | 'Tagging' | 'StorageClass' | 'ServerSideEncryption' | 'SSEKMSKeyId'>>;

/**
 * A Writable over a lib-storage Upload. lib-storage sends one PutObject when the data fits a
 * single part and a multipart upload otherwise; it pulls parts only while fewer than `queueSize`
 * are in flight, so a slow S3 stops the body, which stops this Writable, which pauses the socket.
 *
 * `_final` waits for the commit, so 'finish' means the object exists. Destroying the sink before
 * that errors the body stream: lib-storage then aborts the multipart upload (or never sends the
 * PutObject) and `committed` rejects once the abort has been sent.
 *
 * SHA-256 and MD5 are computed as the bytes pass. lib-storage reads the request parameters only
 * when it sends a request, and a single PutObject is sent only after the body ended, so the digests
 * set in `_final` reach the object's metadata; a multipart upload sent its metadata with
 * CreateMultipartUpload, before the digests existed, and `committed` reports them with
 * `inMetadata: false`.
 */
export class S3UploadSink extends Writable implements UploadSink {
  bytesWritten = 0;
  readonly committed: Promise<CommittedObject>;
  private readonly body = new PassThrough({ highWaterMark: 256 * 1024 });
  private readonly upload: Upload;
  private readonly params: PutObjectCommandInput;
  private readonly digests = new StreamDigests();
  private finalDigests: StoredDigests | undefined;
  private isCommitted = false;
  private finalCalled = false;

  constructor(private readonly options: UploadOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.params = { ...options.objectParams, Bucket: options.bucket, Key: options.key, Body: this.body };
    this.upload = new Upload({
      client: options.client,
      params: this.params,
      partSize: options.partSize,
      queueSize: options.queueSize,
      leavePartsOnError: false,
    });
    this.committed = this.upload.done().then(
      (result) => {
        this.isCommitted = true;
        const digests = this.finalDigests;
        const inMetadata = this.bytesWritten < options.partSize;
        return { bucket: options.bucket, key: options.key, size: this.bytesWritten, etag: result.ETag, digests, digestsInMetadata: inMetadata };
      },
      (err: unknown) => {
        const error = this.destroyed && this.abortReason ? this.abortReason : classifyS3Error(err);
        // A failure before the client finished sending: stop taking its data.
        if (!this.destroyed) this.destroy(error);
        throw error;
      },
    );
    this.committed.catch(() => undefined);
    if (options.budget) {
      // lib-storage reports progress once per uploaded part (our handler emits no byte progress).
      this.upload.on('httpUploadProgress', () => this.partUploaded());
      const settle = () => {
        this.budgetSettled = true;
        this.releaseBudget(this.budgetHeld);
      };
      this.committed.then(settle, settle);
    }
  }

  private budgetHeld = 0;
  private budgetCredit = 0;
  private budgetSettled = false;
  /** Units whose part is uploaded but whose buffer lib-storage still holds (at most one). */
  private budgetRetained = 0;
  /** Set while a write waits for budget; called when an own part finished first. */
  private budgetWaiter: (() => void) | undefined;

  /**
   * An uploaded part frees its unit, except that lib-storage keeps the last cut part's buffer
   * alive (the remainder it carries over is a view of it) until it cuts the next one: one unit
   * per session stays retained, and is reused for the session's next part.
   */
  private partUploaded(): void {
    const waiter = this.budgetWaiter;
    if (waiter) {
      this.budgetWaiter = undefined;
      waiter();
      return;
    }
    this.budgetRetained++;
    if (this.budgetRetained > 1) {
      this.budgetRetained--;
      this.releaseBudget(this.options.partSize);
    }
  }

  /** Makes a part's worth of budget available to this sink: a retained unit, or a new one. */
  private takeBudget(budget: MemoryBudget, done: () => void): void {
    const partSize = this.options.partSize;
    if (this.budgetRetained > 0) {
      this.budgetRetained--;
      this.budgetCredit += partSize;
      return done();
    }
    let satisfied = false;
    const finish = () => {
      if (satisfied) return;
      satisfied = true;
      this.budgetCredit += partSize;
      done();
    };
    // Whichever comes first: an own part finishing (its unit is reused) or a grant.
    this.budgetWaiter = finish;
    void budget.acquire(partSize).then(() => {
      this.budgetHeld += partSize;
      if (satisfied || this.budgetSettled) {
        this.releaseBudget(partSize);
        return;
      }
      this.budgetWaiter = undefined;
      finish();
    });
  }

  private releaseBudget(bytes: number): void {
    const n = Math.min(bytes, this.budgetHeld);
    this.budgetHeld -= n;
    this.options.budget?.release(n);
  }

  private abortReason: StorageError | undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const budget = this.options.budget;
    // A part's worth is acquired once the previous one is overdrawn by a chunk: lib-storage cuts a
    // part only after a byte beyond it arrived, so a session waiting here has every part it holds
    // budget for already cut (they upload and release it): no deadlock, whatever the cap.
    if (budget && this.budgetCredit < 0) {
      // Back-pressure: the client's socket pauses until the shared budget has room for a part.
      this.takeBudget(budget, () => {
        if (this.budgetSettled || this.destroyed) {
          this.releaseBudget(this.budgetHeld);
          return callback();
        }
        this._write(chunk, _encoding, callback);
      });
      return;
    }
    this.budgetCredit -= chunk.length;
    this.bytesWritten += chunk.length;
    this.digests.update(chunk);
    if (this.body.write(chunk)) callback();
    else this.body.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finalCalled = true;
    this.finalDigests = this.digests.digest();
    this.params.Metadata = { ...this.params.Metadata, ...digestMetadata(this.finalDigests) };
    this.body.end();
    this.committed.then(
      () => callback(),
      (err: Error) => callback(err),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.isCommitted) {
      const reason = error instanceof StorageError ? error : new StorageError('ABORTED', 'Transfer aborted', { cause: error ?? undefined });
      this.abortReason = reason;
      this.body.destroy(reason);
      // Once the body has ended, only an abort of the in-flight requests can stop the commit.
      if (this.finalCalled) void this.upload.abort();
    }
    callback(error);
  }
}
