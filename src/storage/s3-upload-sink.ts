import { PassThrough, Writable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { StorageError } from './errors.js';
import type { CommittedObject, UploadSink } from './object-store.js';
import { classifyS3Error } from './s3-errors.js';

export interface UploadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  partSize: number;
  queueSize: number;
}

/**
 * A Writable over a lib-storage Upload. lib-storage sends one PutObject when the data fits a
 * single part and a multipart upload otherwise; it pulls parts only while fewer than `queueSize`
 * are in flight, so a slow S3 stops the body, which stops this Writable, which pauses the socket.
 *
 * `_final` waits for the commit, so 'finish' means the object exists. Destroying the sink before
 * that errors the body stream: lib-storage then aborts the multipart upload (or never sends the
 * PutObject) and `committed` rejects once the abort has been sent.
 */
export class S3UploadSink extends Writable implements UploadSink {
  bytesWritten = 0;
  readonly committed: Promise<CommittedObject>;
  private readonly body = new PassThrough({ highWaterMark: 256 * 1024 });
  private readonly upload: Upload;
  private isCommitted = false;
  private finalCalled = false;

  constructor(private readonly options: UploadOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.upload = new Upload({
      client: options.client,
      params: { Bucket: options.bucket, Key: options.key, Body: this.body },
      partSize: options.partSize,
      queueSize: options.queueSize,
      leavePartsOnError: false,
    });
    this.committed = this.upload.done().then(
      (result) => {
        this.isCommitted = true;
        return { bucket: options.bucket, key: options.key, size: this.bytesWritten, etag: result.ETag };
      },
      (err: unknown) => {
        const error = this.destroyed && this.abortReason ? this.abortReason : classifyS3Error(err);
        // A failure before the client finished sending: stop taking its data.
        if (!this.destroyed) this.destroy(error);
        throw error;
      },
    );
    this.committed.catch(() => undefined);
  }

  private abortReason: StorageError | undefined;

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    if (this.body.write(chunk)) callback();
    else this.body.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finalCalled = true;
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
