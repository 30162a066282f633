import { Writable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { StorageError } from './errors.js';
import type { MemoryBudget } from './memory-budget.js';
import type { CommittedObject, UploadSink } from './object-store.js';
import { classifyS3Error } from './s3-errors.js';
import type { ObjectParams } from './s3-upload-sink.js';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last) and largest part. */
export const MIN_PART_BYTES = 5 * MiB;
const MAX_PART_BYTES = 5 * 1024 * MiB;

export interface AppendUploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** The object appended to: at least MIN_PART_BYTES long; its ETag guards against a concurrent change. */
  source: { size: number; etag: string };
  partSize: number;
  queueSize: number;
  /** Sent with CreateMultipartUpload, as for any new object (account policy, uploader metadata). */
  objectParams?: ObjectParams;
  /**
   * Shared budget of upload buffers: each part buffer is taken from it before the first byte of
   * that part is copied in, and given back once the part is uploaded (or the upload failed).
   */
  budget?: MemoryBudget;
}

/**
 * Appends a stream to an existing object of at least 5 MiB without moving its bytes through the
 * bridge: a new multipart upload on the same key whose first parts are UploadPartCopy requests of
 * the existing object (server-side, guarded by its ETag), followed by the appended bytes in parts
 * of `partSize`. Nothing is visible until CompleteMultipartUpload: readers see the old object until
 * then, and a failure aborts the upload and leaves the old object as it was.
 *
 * Back-pressure as in S3UploadSink: the appended bytes are copied into part buffers taken from the
 * shared memory budget; at most `queueSize` part requests are in flight; a write waits for a free
 * slot or for budget, which stops the data connection. A write waits for budget only once every
 * part buffer it holds is in flight (those complete on their own and give theirs back), so
 * sessions cannot deadlock on it. Stores without UploadPartCopy (answering 501, or a reply without
 * a CopyPartResult) fail the append with APPEND_UNSUPPORTED.
 */
export class S3AppendUpload extends Writable implements UploadSink {
  /** Bytes appended (the committed object is `source.size` longer). */
  bytesWritten = 0;
  readonly committed: Promise<CommittedObject>;
  /**
   * Settles once the existing object has been copied into the new upload: rejects when that
   * failed (the store cannot copy parts, or the object changed), before any new byte was taken.
   */
  readonly ready: Promise<void>;
  private resolveCommitted!: (object: CommittedObject) => void;
  private rejectCommitted!: (err: StorageError) => void;
  private readonly abortController = new AbortController();
  private readonly uploadId: Promise<string>;
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** The part being filled, and how many bytes it holds. */
  private current: Buffer | undefined;
  private fill = 0;
  private nextPartNumber = 1;
  private failure: StorageError | undefined;
  private isCommitted = false;
  private settled = false;

  constructor(private readonly options: AppendUploadOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.committed = new Promise<CommittedObject>((resolve, reject) => {
      this.resolveCommitted = resolve;
      this.rejectCommitted = reject;
    });
    const settle = () => {
      this.settled = true;
      this.dropCurrent();
    };
    this.committed.then(settle, settle);
    // Not cancellable: a create cancelled in flight may still exist on the server, with no id to abort it by.
    this.uploadId = options.client
      .send(new CreateMultipartUploadCommand({ ...options.objectParams, Bucket: options.bucket, Key: options.key }))
      .then((res) => {
        if (!res.UploadId) throw new StorageError('INTERNAL', 'Storage returned no upload id');
        return res.UploadId;
      });
    this.uploadId.catch((err: unknown) => this.fail(classifyS3Error(err)));
    // Failures are reported through `ready`, `committed` and to whoever pipes into this sink; an
    // abort before anyone listens must not become an uncaught 'error'.
    this.on('error', () => undefined);
    this.ready = Promise.all(this.copySource()).then(() => {
      if (this.failure) throw this.failure;
    });
    this.ready.catch(() => undefined);
  }

  /** The existing object as parts 1..n, each under S3's part limit, none under 5 MiB. */
  private copySource(): Promise<void>[] {
    const copies: Promise<void>[] = [];
    const { size, etag } = this.options.source;
    const count = Math.ceil(size / MAX_PART_BYTES);
    const step = Math.ceil(size / count);
    const copySource = `${this.options.bucket}/${encodeURIComponent(this.options.key).replace(/%2F/g, '/')}`;
    for (let start = 0; start < size; start += step) {
      const end = Math.min(start + step, size) - 1;
      const partNumber = this.nextPartNumber++;
      const copy = this.track(async () => {
        const UploadId = await this.uploadId;
        let res;
        try {
          res = await this.send<{ CopyPartResult?: { ETag?: string } }>(
            new UploadPartCopyCommand({
              Bucket: this.options.bucket,
              Key: this.options.key,
              UploadId,
              PartNumber: partNumber,
              CopySource: copySource,
              CopySourceIfMatch: etag,
              CopySourceRange: `bytes=${start}-${end}`,
            }),
          );
        } catch (err) {
          const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
          if (status === 501 || (err as { name?: string }).name === 'NotImplemented') throw unsupported(err);
          throw err;
        }
        // A store that ignores x-amz-copy-source stored an empty part: never complete with it.
        if (!res.CopyPartResult?.ETag) throw unsupported();
        this.parts.push({ PartNumber: partNumber, ETag: res.CopyPartResult.ETag });
      });
      copies.push(copy);
    }
    return copies;
  }

  private send<T>(command: { input: unknown } & object): Promise<T> {
    return this.options.client.send(command as never, { abortSignal: this.abortController.signal }) as Promise<T>;
  }

  /** Runs a part request as one of the in-flight requests; its failure fails the upload. Never rejects. */
  private track(run: () => Promise<void>): Promise<void> {
    const p: Promise<void> = run().then(
      () => {
        this.inFlight.delete(p);
      },
      (err: unknown) => {
        this.inFlight.delete(p);
        this.fail(classifyS3Error(err));
      },
    );
    this.inFlight.add(p);
    return p;
  }

  private async waitForSlot(): Promise<void> {
    while (this.inFlight.size >= this.options.queueSize && !this.failure) await Promise.race(this.inFlight);
  }

  /** Sends the current part; its buffer goes back to the budget once S3 has it. */
  private uploadCurrent(): void {
    const buffer = this.current as Buffer;
    const length = this.fill;
    this.current = undefined;
    this.fill = 0;
    const partNumber = this.nextPartNumber++;
    const budget = this.options.budget;
    this.track(async () => {
      try {
        const UploadId = await this.uploadId;
        const res = await this.send<{ ETag?: string }>(
          new UploadPartCommand({ Bucket: this.options.bucket, Key: this.options.key, UploadId, PartNumber: partNumber, Body: buffer.subarray(0, length) }),
        );
        this.parts.push({ PartNumber: partNumber, ETag: res.ETag });
      } catch (err) {
        // An aborted request may still be reading the buffer: release its bytes, never reuse it.
        budget?.release(buffer.length);
        throw err;
      }
      budget?.giveBack(buffer);
    });
  }

  /** A buffer for the next part: from the budget (waits for room), or allocated without one. Undefined once failed. */
  private async newPart(): Promise<Buffer | undefined> {
    const { budget, partSize } = this.options;
    if (!budget) return Buffer.allocUnsafe(partSize);
    const buffer = await budget.takeBuffer(partSize);
    if (this.failure || this.settled) {
      budget.giveBack(buffer);
      return undefined;
    }
    return buffer;
  }

  /** Gives back the buffer of a part that will never be sent. */
  private dropCurrent(): void {
    const buffer = this.current;
    this.current = undefined;
    this.fill = 0;
    if (buffer) this.options.budget?.giveBack(buffer);
  }

  /** Copies what fits into the current part buffer; returns the offset reached. */
  private copyIn(chunk: Buffer, offset: number): number {
    const current = this.current;
    if (!current || this.fill === current.length) return offset;
    const n = chunk.copy(current, this.fill, offset);
    this.fill += n;
    this.bytesWritten += n;
    return offset + n;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.failure) return callback(this.failure);
    let offset = this.copyIn(chunk, 0);
    if (offset === chunk.length) return callback();
    void (async () => {
      // Part by part: a full part is sent before a buffer for the next one is asked for.
      while (offset < chunk.length && !this.failure) {
        if (this.current) {
          await this.waitForSlot();
          if (this.failure) break;
          this.uploadCurrent();
        }
        const buffer = await this.newPart();
        if (!buffer) break;
        this.current = buffer;
        this.fill = 0;
        offset = this.copyIn(chunk, offset);
      }
      callback(this.failure ?? null);
    })();
  }

  override _final(callback: (error?: Error | null) => void): void {
    void (async () => {
      try {
        if (this.failure) throw this.failure;
        if (this.fill > 0) {
          await this.waitForSlot();
          if (this.failure) throw this.failure;
          this.uploadCurrent();
        } else this.dropCurrent();
        while (this.inFlight.size) await Promise.all(this.inFlight);
        if (this.failure) throw this.failure;
        const UploadId = await this.uploadId;
        const Parts = [...this.parts].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
        const res = await this.send<{ ETag?: string }>(
          new CompleteMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.options.key, UploadId, MultipartUpload: { Parts } }),
        );
        this.isCommitted = true;
        this.resolveCommitted({
          bucket: this.options.bucket,
          key: this.options.key,
          size: this.options.source.size + this.bytesWritten,
          etag: res.ETag,
        });
        callback();
      } catch (err) {
        const error = this.failure ?? classifyS3Error(err);
        this.fail(error);
        callback(error);
      }
    })();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.isCommitted) {
      this.fail(error instanceof StorageError ? error : new StorageError('ABORTED', 'Transfer aborted', { cause: error ?? undefined }));
    }
    callback(error);
  }

  /** First failure wins: stop the requests in flight, abort the upload, then reject `committed`. */
  private fail(error: StorageError): void {
    if (this.failure || this.isCommitted) return;
    this.failure = error;
    this.dropCurrent();
    this.abortController.abort();
    void (async () => {
      try {
        const UploadId = await this.uploadId;
        await Promise.allSettled([...this.inFlight]);
        await this.options.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.options.key, UploadId }),
        );
      } catch {
        // No upload id (nothing to abort), or the abort itself failed: the bucket's lifecycle rule
        // for incomplete multipart uploads removes the parts.
      }
      this.rejectCommitted(error);
      if (!this.destroyed) this.destroy(error);
    })();
  }
}

function unsupported(cause?: unknown): StorageError {
  return new StorageError('APPEND_UNSUPPORTED', 'The storage cannot copy parts (UploadPartCopy); appending to this file is not possible', { cause });
}
