import { Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { StorageError } from './errors.js';
import { classifyS3Error } from './s3-errors.js';

export interface ResumableReadOptions {
  client: S3Client;
  bucket: string;
  key: string;
  /** The byte offset `first` starts at. */
  start: number;
  /** The GetObject response already received (its headers tell the length and the ETag). */
  first: GetObjectCommandOutput;
  /** Consecutive failures without a byte of progress before the read gives up. */
  maxAttempts: number;
}

/**
 * A GetObject body that survives S3 breaking it: when the body errors (reset, stall time-out) or
 * ends short of its Content-Length, the rest is fetched with a ranged GET from the byte reached,
 * pinned to the first response's ETag (If-Match, and checked on the answer, for stores that ignore
 * If-Match). The stream ends only after exactly Content-Length bytes; otherwise it errors with
 * UNAVAILABLE, so a short file is never mistaken for a complete one.
 *
 * It pulls from S3 only as fast as it is read: a consumer that stops reading holds no more than
 * the stream buffers (an S3 socket left idle times out, and reading later resumes from there).
 */
export function resumableRead(options: ResumableReadOptions): Readable {
  return new ResumableRead(options);
}

/**
 * Relays each body chunk as it arrives (events, not async iteration: a download is tens of
 * thousands of chunks per GiB, and the relay is the bridge's whole work on RETR).
 */
class ResumableRead extends Readable {
  private readonly etag: string | undefined;
  private readonly end: number;
  private position: number;
  private failures = 0;
  private body: Readable | undefined;
  private detach: (() => void) | undefined;
  private readonly abortController = new AbortController();

  constructor(private readonly options: ResumableReadOptions) {
    super({ highWaterMark: 64 * 1024 });
    this.etag = options.first.ETag;
    this.position = options.start;
    this.end = options.start + (options.first.ContentLength ?? 0);
    this.attach(options.first.Body as Readable | undefined);
  }

  override _read(): void {
    this.body?.resume();
  }

  private attach(body: Readable | undefined): void {
    if (!body) return this.bodyDone(false, undefined);
    this.body = body;
    let progressed = false;
    let done = false;
    const finish = (err: unknown) => {
      if (done) return;
      done = true;
      this.detach?.();
      this.body = undefined;
      body.destroy();
      this.bodyDone(progressed, err);
    };
    const onData = (chunk: Buffer) => {
      this.position += chunk.length;
      progressed = true;
      if (!this.push(chunk)) body.pause();
    };
    const onEnd = () => finish(undefined);
    const onError = (err: unknown) => finish(err ?? new Error('body failed'));
    const onClose = () => finish(new Error('body closed before its end'));
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
    body.once('close', onClose);
    this.detach = () => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      body.on('error', () => undefined);
    };
  }

  /** A body ended or failed: finish, give up, or fetch the rest pinned to the ETag. */
  private bodyDone(progressed: boolean, err: unknown): void {
    if (this.destroyed) return;
    if (!err && this.position === this.end) {
      this.push(null);
      return;
    }
    if (this.position > this.end) return void this.destroy(new StorageError('INTERNAL', 'Object longer than announced'));
    const cause = err ?? new Error(`body ended at byte ${this.position} of ${this.end}`);
    this.failures = progressed ? 1 : this.failures + 1;
    if (this.failures >= this.options.maxAttempts || this.etag === undefined) {
      return void this.destroy(new StorageError('UNAVAILABLE', 'Download interrupted', { cause }));
    }
    void this.fetchRest();
  }

  private async fetchRest(): Promise<void> {
    const { client, bucket, key } = this.options;
    let next: GetObjectCommandOutput;
    try {
      next = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${this.position}-`, IfMatch: this.etag }), {
        abortSignal: this.abortController.signal,
      });
    } catch (err) {
      if (!this.destroyed) this.destroy(classifyS3Error(err));
      return;
    }
    const body = next.Body as Readable | undefined;
    if (this.destroyed) return void body?.destroy();
    if (next.ETag !== this.etag) {
      body?.destroy();
      return void this.destroy(new StorageError('UNAVAILABLE', 'Object changed during download'));
    }
    this.attach(body);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.abortController.abort();
    this.detach?.();
    this.body?.destroy();
    this.body = undefined;
    callback(error);
  }
}
